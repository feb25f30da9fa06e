"""Grids (网格) and micro-grids: codes, coverage reports and balanced splits of a community."""
