"""geo: industrial communities (产业社区) on the map — boundaries, grids, ownership, tiles, maps."""

__version__ = "0.1.0"
