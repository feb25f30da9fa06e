"""What a four-to build returns (`BuildResult` with its `SideReport` and `ExceptionReport`),
the `BuildError` it raises, and the resolved reference (`_Ref`) its steps pass along.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from geo.boundaries.fourto import (
    CHINESE,
    Ref,
)
from geo.boundaries.roads import (
    Extension,
)
from geo.errors import InvalidInput

LABEL_EPS = 0.01  # m: an edge lies on a ref when its midpoint is this close to it
MIN_STRETCH_M = 1.0  # m of ring a ref must contribute
WITHIN = "within"  # the label of a side closed by the ``within`` polygon


class BuildError(InvalidInput):
    """A four-to spec that cannot be turned into a polygon; the message says what and where."""


@dataclass(frozen=True)
class SideReport:
    """One side of the built boundary: the roads (or areas) it runs along and its length."""

    roads: list[str]
    length_m: float


@dataclass(frozen=True)
class BuildResult:
    """The polygon a four-to text encloses, with what each side ran along and what was done."""

    polygon: BaseGeometry  # WGS84 Polygon or MultiPolygon
    sides: dict[str, SideReport]
    area_m2: float
    metric: BaseGeometry = field(repr=False, compare=False, default=None)  # the EPSG:4549 polygon
    extensions: list[Extension] = field(default_factory=list)  # roads extended to meet a side
    exceptions: tuple[ExceptionReport, ...] = ()  # the text's provisos, applied or not
    notes: tuple[str, ...] = ()  # text that is not a side (lead-in, trailing), never applied
    within: tuple[str, ...] = ()  # the sides the ``within`` polygon closed
    resolved: dict[str, str] = field(default_factory=dict)  # name as written → name in the data

    def to_feature(self) -> dict:
        """A GeoJSON Feature: the polygon, ``area_m2`` and ``sides`` {dir: {roads, length_m}};
        when the build has them, ``extensions`` [{road, length_m, lon, lat, reached}],
        ``exceptions`` [{text, kind, side, applied, reason}], ``notes``, ``within`` (the sides
        the within polygon closed) and ``resolved`` {written: data name}."""
        props: dict = {
            "area_m2": round(self.area_m2, 1),
            "sides": {
                d: {"roads": list(s.roads), "length_m": round(s.length_m, 1)}
                for d, s in self.sides.items()
            },
        }
        extra = {
            "extensions": [e.as_dict() for e in self.extensions],
            "exceptions": [dataclasses.asdict(e) for e in self.exceptions],
            "notes": list(self.notes),
            "within": list(self.within),
            "resolved": dict(self.resolved),
        }
        props.update({k: v for k, v in extra.items() if v})
        return {"type": "Feature", "geometry": mapping(self.polygon), "properties": props}


@dataclass(frozen=True)
class ExceptionReport:
    """A proviso of the text (``(另含白马湖地块)``) and what the build did with it."""

    text: str
    kind: str  # include | exclude | remark
    side: str | None
    applied: bool
    reason: str  # what was done, or why not


@dataclass
class _Ref:
    side: str
    index: int  # position in the side's chain
    ref: Ref
    geom: BaseGeometry  # metric lines (+ connectors once bridged)
    area: BaseGeometry | None = None  # the area polygon for area refs
    closing: bool = False  # the within polygon's boundary standing in for a missing side

    @property
    def label(self) -> str:
        if self.closing:
            return WITHIN
        return f"{self.ref.name}地界" if self.ref.kind == "area" else self.ref.name

    @property
    def shown(self) -> str:
        return f"{CHINESE[self.side]} ({self.label})"
