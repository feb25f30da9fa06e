"""The named road network: one clean metric centerline per road name.

Road data comes in pieces: sub-metre gaps between the pieces of one road, dual carriageways
drawn as two parallel lines of one name, roads running past the junction that ends them, and
unnamed roads. `RoadNetwork.from_frame` turns that into one geometry per name, in
`geo.crs.METRIC_CRS` (EPSG:4549):

- the pieces of a name are joined where their ends lie within ``gap_tolerance_m`` of each
  other (a connector along the shortest line, then ``shapely.line_merge``);
- two strands of one name that run parallel 4–60 m apart (a dual carriageway) collapse to
  their midline, sampled every few metres; the strands are kept in `carriageways` so that a
  road ending at one carriageway can be joined to the midline;
- unnamed roads ("", None or NaN) are dropped: they never bound an area; names are NFKC
  normalised like four-to text (full-width letters and digits become ASCII).

A name's line is made on first use (`Centerlines`), so a network of a city's roads is ready at
once and a four-to edit pays only for the few roads it names (at ×10 the sample's 19,670 roads
took 15 s of CPU to make all at once).

A road that stops short of the junction a document names can be run on: `loose_ends` finds the
ends that touch nothing, `end_ray` gives an end's direction (over its last metres, so a stray
last node does not turn it), `extend_end` runs it on to the first line it meets and
`meet_ends` runs two ends on to where their directions cross.

`suggest` finds the names closest to a misspelt one, in characters and in pinyin (``jiangnan``
→ 江南大道, ``xincheng lu`` → 信诚路, 信成路 → 信诚路).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from rapidfuzz import fuzz
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

from geo.boundaries.fourto import normalise
from geo.crs import METRIC_CRS, to_metric, to_wgs84

GRID = 1e-3  # m: snap-rounding grid for noding (1 mm)
DUAL_MIN_M = 4.0  # carriageways closer than this are one road drawn twice
DUAL_MAX_M = 60.0  # … and farther apart than this are two roads
DUAL_SHARE = 0.5  # share of a strand that must run beside the other to count as a carriageway
SAMPLE_M = 5.0  # m between midline samples


def lonlat(x: float, y: float) -> tuple[float, float]:
    """One metric point as rounded WGS84 (lon, lat)."""
    lon, lat = to_wgs84([x], [y], METRIC_CRS)
    return round(float(lon[0]), 6), round(float(lat[0]), 6)


def frame_crs(frame) -> str:
    """The CRS of a GeoDataFrame as a `geo.crs` name (None → WGS84)."""
    if getattr(frame, "crs", None) is None:
        return "wgs84"
    epsg = frame.crs.to_epsg()
    if epsg in (4326, 4490, None):
        return "wgs84"
    return f"EPSG:{epsg}"


# --------------------------------------------------------------------------------------------
# Joining pieces
# --------------------------------------------------------------------------------------------


def _lines_of(geoms: Iterable[BaseGeometry]) -> list[LineString]:
    out: list[LineString] = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        for part in shapely.get_parts(g):
            if part.geom_type == "LineString" and part.length > 0:
                out.append(part)
    return out


def _endpoints(lines: Sequence[LineString]) -> list[tuple[int, np.ndarray]]:
    ends = []
    for i, line in enumerate(lines):
        xy = shapely.get_coordinates(line)
        ends += [(i, xy[0]), (i, xy[-1])]
    return ends


def bridge_gaps(
    lines: Sequence[LineString], others: Sequence[BaseGeometry], tolerance: float
) -> list[LineString]:
    """Short connectors from each loose line end to the nearest geometry within ``tolerance``.

    ``others[j]`` is the geometry an end of ``lines[i]`` may join when ``j != i`` (pass
    ``lines`` itself to join pieces of one road). An end already touching another geometry
    (within the noding grid) gets nothing.
    """
    connectors: list[LineString] = []
    if tolerance <= 0 or not lines:
        return connectors
    tree = shapely.STRtree(list(others))
    for i, xy in _endpoints(lines):
        p = shapely.Point(xy)
        best: tuple[float, int] | None = None
        for j in tree.query(p, predicate="dwithin", distance=tolerance):
            if j == i:
                continue
            d = shapely.distance(p, others[j])
            if best is None or d < best[0]:
                best = (d, int(j))
        if best is None or best[0] <= GRID:
            continue
        connectors.append(shapely.shortest_line(p, others[best[1]]))
    return connectors


def node(lines: Sequence[BaseGeometry]) -> BaseGeometry:
    """Union (noding) of lines with 1 mm snap rounding, so near-touching ends do meet."""
    return shapely.union_all(np.asarray(list(lines), dtype=object), grid_size=GRID)


def merge(lines: Sequence[LineString], tolerance: float) -> BaseGeometry:
    """One road's pieces as one (Multi)LineString: gaps ≤ tolerance bridged, then merged."""
    lines = _lines_of(lines)
    if not lines:
        return MultiLineString()
    parts = [*lines, *bridge_gaps(lines, lines, tolerance)]
    return shapely.line_merge(node(parts))


# --------------------------------------------------------------------------------------------
# Dual carriageways
# --------------------------------------------------------------------------------------------


def _samples(line: LineString, step: float) -> np.ndarray:
    n = max(int(np.ceil(line.length / step)), 1)
    return shapely.line_interpolate_point(line, np.linspace(0.0, line.length, n + 1))


def _beside(a: LineString, b: LineString) -> np.ndarray:
    """For samples along ``a``: whether the nearest point of ``b`` is 4–60 m away, inside ``b``."""
    pts = _samples(a, SAMPLE_M)
    at = shapely.line_locate_point(b, pts)
    d = shapely.distance(pts, b)
    inside = (at > 1e-6) & (at < b.length - 1e-6)
    return (d >= DUAL_MIN_M) & (d <= DUAL_MAX_M) & inside


def _midline(a: LineString, b: LineString) -> LineString | None:
    """The centerline between two carriageways, over the stretch where they run side by side."""
    if a.length < b.length:
        a, b = b, a
    pts = _samples(a, SAMPLE_M / 2)
    at = shapely.line_locate_point(b, pts)
    near = shapely.line_interpolate_point(b, at)
    d = shapely.distance(pts, near)
    ok = (d >= DUAL_MIN_M) & (d <= DUAL_MAX_M) & (at > 1e-6) & (at < b.length - 1e-6)
    if ok.sum() < 2:
        return None
    # keep the longest run of matched samples
    idx = np.flatnonzero(ok)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    run = max(runs, key=len)
    if len(run) < 2:
        return None
    pa = shapely.get_coordinates(pts[run])
    pb = shapely.get_coordinates(near[run])
    mid = LineString((pa + pb) / 2.0)
    return shapely.simplify(mid, 0.05)


def collapse_dual(parts: Sequence[LineString]) -> tuple[list[LineString], list[LineString]]:
    """Pairs of parallel strands → their midlines. Returns (lines, strands that were collapsed)."""
    parts = sorted(parts, key=lambda g: -g.length)
    used = [False] * len(parts)
    out: list[LineString] = []
    strands: list[LineString] = []
    for i, a in enumerate(parts):
        if used[i]:
            continue
        partner = None
        for j in range(i + 1, len(parts)):
            if used[j]:
                continue
            b = parts[j]
            if b.distance(a) > DUAL_MAX_M:
                continue
            if _beside(b, a).mean() >= DUAL_SHARE or _beside(a, b).mean() >= DUAL_SHARE:
                partner = j
                break
        if partner is None:
            continue
        mid = _midline(a, parts[partner])
        if mid is None:
            continue
        used[i] = used[partner] = True
        out.append(mid)
        strands += [a, parts[partner]]
    out += [p for p, u in zip(parts, used, strict=True) if not u]
    return out, strands


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

_SPACE_RE = re.compile(r"[\s\-_·.]+")


def _key(text: str) -> str:
    return _SPACE_RE.sub("", text).lower()


def pinyin_key(text: str) -> str:
    """Toneless pinyin with no separators: 江南大道 → jiangnandadao; ascii is lowercased."""
    from pypinyin import lazy_pinyin  # ~0.3 s to import: on first use

    return _key("".join(lazy_pinyin(_key(text))))


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def name_score(query: str, name: str) -> float:
    """0–100: how close ``query`` (Chinese or pinyin, any spacing) is to the road ``name``."""
    q, n = _key(query), _key(name)
    if not q:
        return 0.0
    qp, np_ = pinyin_key(q), pinyin_key(n)
    scores = [fuzz.ratio(qp, np_)]
    if _has_han(q):
        scores.append(fuzz.ratio(q, n))
        scores.append(0.9 * fuzz.partial_ratio(q, n) if len(q) >= 2 else 0.0)
    if len(qp) >= 4:
        # a pinyin prefix such as "jiangnan" for 江南大道
        scores.append(0.95 * fuzz.partial_ratio(qp, np_) if np_.startswith(qp[:2]) else 0.0)
        scores.append(0.85 * fuzz.partial_ratio(qp, np_))
    return float(max(scores))


def suggest_names(query: str, names: Iterable[str], n: int = 3, cutoff: float = 50.0) -> list[str]:
    """The ``n`` names closest to ``query`` (pinyin-aware), best first, above ``cutoff``."""
    scored = sorted(((name_score(query, name), name) for name in names), key=lambda t: -t[0])
    if not scored:
        return []
    floor = max(cutoff, scored[0][0] - 30.0)
    return [name for score, name in scored[:n] if score >= floor]


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class Centerlines(Mapping[str, BaseGeometry]):
    """Each name's centerline, made from its pieces on first use (joined, dual carriageways
    collapsed) and kept; the collapsed strands are kept in `strands` (see `Carriageways`)."""

    def __init__(self, pieces: dict[str, list[LineString]], gap_tolerance_m: float) -> None:
        self._pieces = pieces
        self._tolerance = gap_tolerance_m
        self._lines: dict[str, BaseGeometry] = {}
        self._strands: dict[str, list[LineString]] = {}
        self._lock = threading.Lock()  # one network serves concurrent requests

    def __getitem__(self, name: str) -> BaseGeometry:
        line = self._lines.get(name)
        if line is None:
            if name not in self._pieces:
                raise KeyError(name)
            line = self._make(name)
        return line

    def _make(self, name: str) -> BaseGeometry:
        merged = merge(self._pieces[name], self._tolerance)
        parts = _lines_of([merged])
        collapsed: list[LineString] = []
        if len(parts) > 1:
            parts, collapsed = collapse_dual(parts)
        line = parts[0] if len(parts) == 1 else MultiLineString(parts)
        with self._lock:
            if collapsed:
                self._strands[name] = collapsed
            self._lines[name] = line
        return line

    @property
    def made(self) -> int:
        """How many names have their centerline made so far."""
        return len(self._lines)

    def strands(self, name: str) -> list[LineString] | None:
        """The carriageways of ``name`` when it is a dual road collapsed to its midline."""
        if name in self._pieces:
            self[name]
        return self._strands.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._pieces)

    def __len__(self) -> int:
        return len(self._pieces)

    def __contains__(self, name: object) -> bool:
        return name in self._pieces


class Carriageways(Mapping[str, list[LineString]]):
    """The strands of each dual road, by name (made with the road's centerline, on first use)."""

    def __init__(self, lines: Centerlines) -> None:
        self._lines = lines

    def __getitem__(self, name: str) -> list[LineString]:
        strands = self._lines.strands(name)
        if strands is None:
            raise KeyError(name)
        return strands

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._lines if self._lines.strands(name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class RoadNetwork:
    """Named roads as metric (EPSG:4549) centerlines: ``lines[name]`` is a (Multi)LineString."""

    lines: Mapping[str, BaseGeometry]
    carriageways: Mapping[str, list[LineString]] = field(default_factory=dict)
    gap_tolerance_m: float = 1.0

    @classmethod
    def from_frame(cls, roads, *, gap_tolerance_m: float = 1.0) -> RoadNetwork:
        """From a GeoDataFrame with ``name`` and line geometries (WGS84 if it has no CRS)."""
        if "name" not in roads.columns:
            raise ValueError("the road frame has no 'name' column")
        return cls.from_lines(
            list(roads["name"]),
            list(roads.geometry.values),
            crs=frame_crs(roads),
            gap_tolerance_m=gap_tolerance_m,
        )

    @classmethod
    def from_lines(
        cls,
        names: Sequence[str | None],
        geoms: Sequence[BaseGeometry],
        *,
        crs: str = "wgs84",
        gap_tolerance_m: float = 1.0,
    ) -> RoadNetwork:
        """From parallel sequences of names and (Multi)LineStrings in ``crs``."""
        if len(names) != len(geoms):
            raise ValueError(f"{len(names)} names but {len(geoms)} geometries")
        metric = to_metric(np.asarray(list(geoms), dtype=object), crs)
        by_name: dict[str, list[BaseGeometry]] = {}
        for name, geom in zip(names, metric, strict=True):
            key = normalise(name).strip() if isinstance(name, str) else ""
            if key:
                by_name.setdefault(key, []).append(geom)
        pieces = {name: lines for name, geoms in by_name.items() if (lines := _lines_of(geoms))}
        lines = Centerlines(pieces, gap_tolerance_m)
        return cls(lines, Carriageways(lines), gap_tolerance_m)

    def names(self) -> list[str]:
        """The names of the network's roads, sorted."""
        return sorted(self.lines)

    def __contains__(self, name: str) -> bool:
        return name in self.lines

    def get(self, name: str) -> BaseGeometry | None:
        """The metric centerline of ``name``, or None."""
        return self.lines.get(name)

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The names closest to ``name``, pinyin-aware, best first."""
        return suggest_names(name, self.lines, n)


# --------------------------------------------------------------------------------------------
# Extending a road that stops short
# --------------------------------------------------------------------------------------------

DIRECTION_M = 20.0  # m: a road's last direction is that of its last this many metres …
TAIL_M = 2.0  # … leaving out the final few, where a stray last node may sit askew


@dataclass(frozen=True)
class Extension:
    """A road end extended along its last direction until it met another line."""

    road: str
    length_m: float
    lon: float  # the new end, WGS84
    lat: float
    reached: str  # the line the new end lies on

    def as_dict(self) -> dict:
        """The extension as plain JSON values (length rounded to 0.1 m)."""
        return {
            "road": self.road,
            "length_m": round(self.length_m, 1),
            "lon": self.lon,
            "lat": self.lat,
            "reached": self.reached,
        }


def end_ray(line: LineString, at_start: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The end of ``line`` and its unit direction outwards: that of the chord over the line's
    last `DIRECTION_M` metres but the final `TAIL_M`, so a tiny or askew final segment does not
    turn it. None if the line has no length."""
    length = line.length
    if length <= 0:
        return None
    back = min(DIRECTION_M, length)
    skip = min(TAIL_M, back / 2)
    at = np.array([back, skip]) if at_start else length - np.array([back, skip])
    inner, outer = shapely.get_coordinates(shapely.line_interpolate_point(line, at))
    vec = outer - inner
    norm = float(np.hypot(*vec))
    if norm <= 0:
        return None
    xy = shapely.get_coordinates(line)
    return (xy[0] if at_start else xy[-1]), vec / norm


def ray_hit(
    origin: np.ndarray, direction: np.ndarray, max_m: float, geoms: Sequence[BaseGeometry]
) -> tuple[float, int] | None:
    """(distance, index) of the first of ``geoms`` the ray from ``origin`` meets within
    ``max_m`` metres (a meeting at the origin itself does not count), or None."""
    if max_m <= 0 or not geoms:
        return None
    ray = LineString([origin, origin + direction * max_m])
    hits = shapely.intersection(ray, np.asarray(list(geoms), dtype=object))
    xy, idx = shapely.get_coordinates(hits, return_index=True)
    if not len(xy):
        return None
    t = (xy - origin) @ direction
    ok = t > GRID
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[np.argmin(t[ok])])
    return float(t[k]), int(idx[k])


def extend_end(
    line: LineString,
    at_start: bool,
    max_m: float,
    targets: Sequence[tuple[str, BaseGeometry]],
    *,
    road: str = "",
) -> tuple[LineString, Extension | None]:
    """``line`` with one end (its start if ``at_start``) extended along its last direction to
    the first of the named ``targets`` it meets within ``max_m`` metres; it never passes
    through one target to reach a farther one. Returns the line unchanged and None when no
    target is in reach."""
    ray = end_ray(line, at_start)
    hit = ray_hit(*ray, max_m, [g for _, g in targets]) if ray else None
    if hit is None:
        return line, None
    end, direction = ray
    dist, j = hit
    new_end = end + direction * dist
    xy = shapely.get_coordinates(line)
    coords = np.vstack([new_end, xy]) if at_start else np.vstack([xy, new_end])
    lon, lat = lonlat(*new_end)
    return LineString(coords), Extension(road, dist, lon, lat, targets[j][0])


def loose_ends(geom: BaseGeometry, others: BaseGeometry) -> list[tuple[LineString, bool]]:
    """``(line, at_start)`` for each end of ``geom``'s (merged) lines that touches neither
    ``others`` nor another of its own lines (within 1 cm)."""
    parts = _lines_of([shapely.line_merge(geom)])
    out = []
    for i, part in enumerate(parts):
        rest = shapely.union_all([others, *(p for j, p in enumerate(parts) if j != i)])
        ends = shapely.points(shapely.get_coordinates(part)[[0, -1]])
        free = rest.is_empty | (shapely.distance(ends, rest) > 10 * GRID)
        out += [(part, at_start) for at_start, ok in zip((True, False), free, strict=True) if ok]
    return out


def meet_ends(
    a: tuple[str, LineString, bool],
    b: tuple[str, LineString, bool],
    max_m: float,
    blockers: Sequence[BaseGeometry],
) -> tuple[list[LineString], list[Extension]] | None:
    """Two loose ends, each ``(name, line, at_start)``, extended along their directions to the
    point where those cross, each by at most ``max_m`` metres and neither meeting one of
    ``blockers`` on the way: the two new stretches and their records, or None."""
    ra, rb = end_ray(a[1], a[2]), end_ray(b[1], b[2])
    if ra is None or rb is None:
        return None
    (pa, da), (pb, db) = ra, rb
    system = np.column_stack([da, -db])
    if abs(np.linalg.det(system)) < 1e-6:  # (nearly) parallel
        return None
    s, t = (float(v) for v in np.linalg.solve(system, pb - pa))
    if not (GRID < s <= max_m and GRID < t <= max_m):
        return None
    if ray_hit(pa, da, s - GRID, blockers) or ray_hit(pb, db, t - GRID, blockers):
        return None
    meet = pa + da * s
    lon, lat = lonlat(*meet)
    lines = [LineString([pa, meet]), LineString([pb, meet])]
    return lines, [Extension(a[0], s, lon, lat, b[0]), Extension(b[0], t, lon, lat, a[0])]
