"""A copy of the sample district whose every name-like field is an XSS payload.

Used by the escaping tests (tests/test_maps_escape.py, tests/test_xss_browser.py): each text
field a map shows (names, addresses, four-to text, roles, phone numbers, industries) holds one of
`PAYLOADS` followed by a short suffix that keeps names unique.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from geo.settings import SAMPLE_DIR

PAYLOADS = (
    "<img src=x onerror=alert(1)>",
    "</title><script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "javascript:alert(4)",
    "'><iframe src=javascript:alert(5)>",
    "</script><script>alert(6)</script>",
    "<b onmouseover=alert(7)>x</b>&amp;",
)
# the layers' text fields (enterprises: the industry is the chain column); communities' type
# and officers' role are closed vocabularies that `geo load` enforces, so they cannot carry one
GEOJSON_FIELDS = {
    "communities.geojson": ("name", "four_to"),
    "grids.geojson": ("name",),
    "parks.geojson": ("name", "address"),
    "buildings.geojson": ("name", "address"),
    "streets.geojson": ("name",),
    "roads.geojson": ("name",),
}
CSV_FIELDS = {
    "enterprises.csv": ("name", "address", "chain"),
    "officers.csv": ("name", "phone"),
}
MAX_ENTERPRISES = 1500  # few enough to be drawn inline on every map (popups in the page)


def payload(i: int) -> str:
    """The i-th payload, made unique by a suffix."""
    return f"{PAYLOADS[i % len(PAYLOADS)]} {i}"


def _geojson(path: Path, fields: tuple[str, ...]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for i, f in enumerate(data["features"]):
        for k, field in enumerate(fields):
            if field in f["properties"] and (field != "name" or f["properties"][field]):
                f["properties"][field] = payload(i + k)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _csv(path: Path, fields: tuple[str, ...], limit: int | None) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    rows = rows[:limit] if limit else rows
    for i, r in enumerate(rows):
        for k, field in enumerate(fields):
            r[field] = payload(i + k)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(rows)


def hostile_sample(dest: Path) -> Path:
    """``dest`` filled with the sample district, every shown text replaced by a payload."""
    shutil.copytree(SAMPLE_DIR, dest, dirs_exist_ok=True)
    for name, fields in GEOJSON_FIELDS.items():
        _geojson(dest / name, fields)
    _csv(dest / "enterprises.csv", CSV_FIELDS["enterprises.csv"], MAX_ENTERPRISES)
    _csv(dest / "officers.csv", CSV_FIELDS["officers.csv"], None)
    return dest
