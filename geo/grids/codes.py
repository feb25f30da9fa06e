"""Grid and micro-grid codes: their format, their order, their stability, their validation.

A grid code is 15 digits: the county code (`geo.model.COUNTY_CODE`, 330108 for Binjiang), the
street's 3-digit code, the community's 3-digit code and a 3-digit grid sequence. A micro-grid
(a park, or a building outside every park) appends its own 3-digit sequence to its grid's code.

Numbering: the first grids of a community are numbered in reading order — rows from north to
south, west to east inside a row (`reading_order`). After a re-split codes stay stable
(`assign_grid_codes`): old and new grids are matched one-to-one by overlap area, largest overlap
first, and a new grid keeps the old code when it holds more than half of the old grid's area.
Every other new grid takes the next sequence above the highest ever issued in the community, so
a retired code is never issued again. The highest sequence is derived from the current codes and
the community's record of retired codes (`retired` below).

Pure functions: no I/O. Geometries are metric (EPSG:4549) shapely polygons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geo.errors import InvalidInput
from geo.model import COUNTY_CODE

SEQ_DIGITS = 3
MAX_SEQ = 10**SEQ_DIGITS - 1
KEEP_SHARE = 0.5  # a new grid keeps an old code when it holds more than this share of its area
KEEP_SLACK_M2 = 1.0  # … by more than this (an exact half stays a half despite rounding)
_PART_RE = re.compile(r"^\d{3}$")
GRID_CODE_LEN = len(COUNTY_CODE) + 3 * SEQ_DIGITS  # 15
MICRO_CODE_LEN = GRID_CODE_LEN + SEQ_DIGITS  # 18


class CodeError(InvalidInput):
    """A code cannot be issued (a sequence ran out, a street or community code is malformed)."""


def community_prefix(street_code: str, community_code: str) -> str:
    """The 12-digit prefix of every grid code of a community: county + street + community."""
    for what, code in (("street", street_code), ("community", community_code)):
        if not isinstance(code, str) or not _PART_RE.match(code):
            raise CodeError(f"{what} code {code!r} must be 3 digits")
    return f"{COUNTY_CODE}{street_code}{community_code}"


def make_code(prefix: str, seq: int) -> str:
    """``prefix`` followed by a 3-digit sequence (1…999)."""
    if not 1 <= seq <= MAX_SEQ:
        raise CodeError(f"sequence {seq} is outside 1…{MAX_SEQ}: the codes under {prefix} ran out")
    return f"{prefix}{seq:0{SEQ_DIGITS}d}"


def sequence(code: str | None, prefix: str) -> int | None:
    """The trailing 3-digit sequence of ``code`` when it is ``prefix`` + 3 digits, else None."""
    if not isinstance(code, str) or not code.startswith(prefix):
        return None
    tail = code[len(prefix) :]
    return int(tail) if len(tail) == SEQ_DIGITS and tail.isdigit() else None


def parse_retired(text: str | None) -> list[str]:
    """The codes of a ``;``-separated retired record (None or "" → none)."""
    if not isinstance(text, str):
        return []
    return [c.strip() for c in text.split(";") if c.strip()]


def format_retired(codes: Iterable[str]) -> str | None:
    """A retired record: sorted unique codes joined with ``;`` (None when empty)."""
    unique = sorted(set(codes))
    return ";".join(unique) if unique else None


def highest_issued(prefix: str, codes: Iterable[str | None]) -> int:
    """The highest sequence ever issued under ``prefix`` among ``codes`` (current + retired)."""
    seqs = [s for s in (sequence(c, prefix) for c in codes) if s is not None]
    return max(seqs, default=0)


def reading_order(geoms: Sequence[shapely.Geometry] | np.ndarray, theta: float = 0.0) -> np.ndarray:
    """Indices of ``geoms`` in reading order: rows north→south, west→east inside a row.

    A row is led by the northernmost remaining polygon; the next polygon (by centroid, north
    first) joins the row while its centroid lies within the leader's north–south extent.
    ``theta`` (radians from east) turns the frame to a street grid's bearing.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0, dtype=int)
    cos, sin = math.cos(theta), math.sin(theta)
    c = shapely.get_coordinates(shapely.centroid(geoms))
    u = c[:, 0] * cos + c[:, 1] * sin
    v = -c[:, 0] * sin + c[:, 1] * cos
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    vv = -xy[:, 0] * sin + xy[:, 1] * cos
    vmin = np.full(len(geoms), np.inf)
    vmax = np.full(len(geoms), -np.inf)
    np.minimum.at(vmin, owner, vv)
    np.maximum.at(vmax, owner, vv)
    row = np.zeros(len(geoms), dtype=int)
    lead = -1
    for rank, i in enumerate(np.lexsort((u, -v))):
        if lead < 0 or not vmin[lead] <= v[i] <= vmax[lead]:
            lead = i
            row[i] = rank
        else:
            row[i] = row[lead]
    return np.lexsort((u, row))


@dataclass(frozen=True)
class CodeAssignment:
    """Codes for new grids: ``codes[i]`` for new grid i, ``kept[i]`` the old index it continues
    (None for a new number), the old codes retired, and the highest sequence issued since."""

    codes: list[str]
    kept: list[int | None]
    retired: list[str]
    highest: int


def assign_grid_codes(
    old_codes: Sequence[str],
    old_geoms: Sequence[shapely.Geometry] | np.ndarray,
    new_geoms: Sequence[shapely.Geometry] | np.ndarray,
    prefix: str,
    retired: Iterable[str] = (),
    theta: float = 0.0,
) -> CodeAssignment:
    """Stable codes for a re-split community.

    Old→new pairs are matched one-to-one by overlap area, largest first; a pair keeps the old
    code when the overlap is more than half of the old grid's area. Unmatched new grids get new
    sequences above the highest ever issued (current old codes and ``retired``), in reading
    order. Old codes not kept are retired.
    """
    old_geoms = np.asarray(old_geoms, dtype=object)
    new_geoms = np.asarray(new_geoms, dtype=object)
    retired = list(retired)
    n_old, n_new = len(old_geoms), len(new_geoms)
    kept: list[int | None] = [None] * n_new
    if n_old and n_new:
        overlap = shapely.area(shapely.intersection(old_geoms[:, None], new_geoms[None, :]))
        old_area = shapely.area(old_geoms)
        pairs = sorted(
            ((overlap[i, j], i, j) for i in range(n_old) for j in range(n_new)),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        used_old: set[int] = set()
        for area, i, j in pairs:
            if area <= KEEP_SHARE * old_area[i] + KEEP_SLACK_M2:
                continue
            if i in used_old or kept[j] is not None:
                continue
            if sequence(old_codes[i], prefix) is None:  # a malformed old code is not kept
                continue
            kept[j] = i
            used_old.add(i)
    highest = highest_issued(prefix, [*old_codes, *retired])
    codes: list[str] = [""] * n_new
    for j in range(n_new):
        if kept[j] is not None:
            codes[j] = old_codes[kept[j]]
    fresh = [j for j in reading_order(new_geoms, theta) if kept[j] is None]
    for j in fresh:
        highest += 1
        codes[j] = make_code(prefix, highest)
    still = {codes[j] for j in range(n_new)}
    gone = [c for c in old_codes if c not in still]
    return CodeAssignment(codes, kept, sorted(set(retired) | set(gone)), highest)


# ------------------------------------------------------------------------------------ validation


@dataclass(frozen=True)
class CodeProblem:
    """One code problem found on load: the table, the feature id and what is wrong."""

    table: str
    id: str
    reason: str


def _digits(code: object, n: int) -> bool:
    return isinstance(code, str) and len(code) == n and code.isdigit()


def validate_codes(tables: Mapping[str, pd.DataFrame]) -> list[CodeProblem]:
    """Check codes: format, uniqueness, prefix consistency with street, community and grid.

    * streets and communities: 3 digits;
    * grids: 15 digits = county + its street's code + its community's code + 3 digits;
    * parks and buildings outside parks (micro-grids): 18 digits = their grid's code + 3 digits
      (one in no grid and without a code is not yet split and passes);
      a building inside a park carries no code of its own (the park's micro-grid code applies);
    * grid codes unique; micro-grid codes unique across parks and buildings.
    """
    col = _Columns(tables)
    problems: list[CodeProblem] = []
    for name in ("streets", "communities"):
        for fid, code in col(name, "code").items():
            if not _digits(code, 3):
                problems.append(CodeProblem(name, fid, f"code {code!r} must be 3 digits"))
    grid_code = col("grids", "code")
    problems += _grid_code_problems(col, grid_code)
    problems += _duplicates("grids", grid_code)
    micro, in_park = _micro_grids(col)
    problems += in_park
    problems += _micro_code_problems(col, grid_code, micro)
    problems += _repeated_micro_codes(micro)
    return problems


class _Columns:
    """``col(table, field)``: a table's field by feature id ({} when either is absent)."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables

    def __call__(self, name: str, field: str) -> dict[str, object]:
        frame = self.tables.get(name)
        if frame is None or field not in frame.columns:
            return {}
        return dict(zip(frame["id"], frame[field], strict=True))


def _grid_code_problems(col: _Columns, grid_code: dict[str, object]) -> list[CodeProblem]:
    """Grid codes: 15 digits, starting with county + street + community code of their own."""
    problems: list[CodeProblem] = []
    street_code = col("streets", "code")
    comm_street = col("communities", "street_id")
    comm_code = col("communities", "code")
    grid_comm = col("grids", "community_id")
    for fid, code in grid_code.items():
        cid = grid_comm.get(fid)
        sc, cc = street_code.get(comm_street.get(cid)), comm_code.get(cid)
        expected = f"{COUNTY_CODE}{sc}{cc}" if _digits(sc, 3) and _digits(cc, 3) else None
        if not _digits(code, GRID_CODE_LEN):
            problems.append(
                CodeProblem(
                    "grids",
                    fid,
                    f"code {code!r} must be {GRID_CODE_LEN} digits: county {COUNTY_CODE} + "
                    f"street (3) + community (3) + grid sequence (3)"
                    + (f", e.g. {expected}001" if expected else ""),
                )
            )
        elif expected and not code.startswith(expected):
            problems.append(
                CodeProblem(
                    "grids",
                    fid,
                    f"code {code} does not start with {expected} (county + street {sc} + "
                    f"community {cc} of community {cid!r})",
                )
            )
    return problems


def _micro_grids(col: _Columns) -> tuple[dict[str, tuple[str, object]], list[CodeProblem]]:
    """The micro-grids (parks, buildings outside parks) as id → (table, code), and a problem
    for each building inside a park that carries a code of its own."""
    problems: list[CodeProblem] = []
    micro: dict[str, tuple[str, object]] = {}
    for fid, code in col("parks", "code").items():
        micro[fid] = ("parks", code)
    park_of = col("buildings", "park_id")
    for fid, code in col("buildings", "code").items():
        in_park = isinstance(park_of.get(fid), str) and park_of[fid] != ""
        if not in_park:
            micro[fid] = ("buildings", code)
        elif isinstance(code, str) and code:
            problems.append(
                CodeProblem(
                    "buildings",
                    fid,
                    f"code {code!r} is ignored: a building inside park {park_of[fid]!r} "
                    "belongs to the park's micro-grid; leave its code empty",
                )
            )
    return micro, problems


def _micro_code_problems(
    col: _Columns, grid_code: dict[str, object], micro: dict[str, tuple[str, object]]
) -> list[CodeProblem]:
    """Micro-grid codes: 18 digits starting with their grid's code (none yet: not split)."""
    problems: list[CodeProblem] = []
    grid_of = {**col("parks", "grid_id"), **col("buildings", "grid_id")}
    for fid, (table, code) in micro.items():
        gcode = grid_code.get(grid_of.get(fid))
        if _blank(code) and _blank(grid_of.get(fid)):
            continue  # in no grid yet (an imported map): `geo grids split` codes it
        if not _digits(code, MICRO_CODE_LEN):
            hint = f", e.g. {gcode}001" if _digits(gcode, GRID_CODE_LEN) else ""
            problems.append(
                CodeProblem(
                    table,
                    fid,
                    f"micro-grid code {code!r} must be {MICRO_CODE_LEN} digits: its grid's code "
                    f"+ a 3-digit sequence{hint}",
                )
            )
        elif isinstance(gcode, str) and not code.startswith(gcode):
            problems.append(
                CodeProblem(
                    table,
                    fid,
                    f"micro-grid code {code} does not start with the code {gcode} of its grid "
                    f"{grid_of.get(fid)!r}",
                )
            )
    return problems


def _repeated_micro_codes(micro: dict[str, tuple[str, object]]) -> list[CodeProblem]:
    """A problem for each micro-grid whose code an earlier one (parks first) already uses."""
    problems: list[CodeProblem] = []
    by_code: dict[str, list[tuple[str, str]]] = {}
    for fid, (table, code) in micro.items():
        if isinstance(code, str) and code:
            by_code.setdefault(code, []).append((table, fid))
    for code, owners in by_code.items():
        first = f"{owners[0][0]} {owners[0][1]!r}"
        problems += [
            CodeProblem(table, fid, f"micro-grid code {code} is already used by {first}")
            for table, fid in owners[1:]
        ]
    return problems


def _blank(value: object) -> bool:
    return not isinstance(value, str) or value == ""


def _duplicates(table: str, codes: Mapping[str, object]) -> list[CodeProblem]:
    seen: dict[object, str] = {}
    out = []
    for fid, code in codes.items():
        if not isinstance(code, str) or not code:
            continue
        if code in seen:
            out.append(CodeProblem(table, fid, f"code {code} is already used by {seen[code]!r}"))
        else:
            seen[code] = fid
    return out
