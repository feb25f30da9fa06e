"""The `geo` command: load, locate, assign, export; bad input exits with code 2."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geo import crs
from geo.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "geo.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert shutil.which("geo") is not None


def test_load_reports_rejections_and_strict_loads_nothing(tmp_path: Path, sample_dir: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    roads = json.loads((data / "roads.geojson").read_text(encoding="utf-8"))
    roads["features"][0]["geometry"]["coordinates"] = [[120.1, "x"], [120.2, 30.2]]
    (data / "roads.geojson").write_text(json.dumps(roads, ensure_ascii=False), encoding="utf-8")
    db = str(tmp_path / "s.gpkg")

    strict = run("load", str(data), "--db", db, "--strict")
    assert strict.exit_code == 2
    assert "rejected" in strict.output
    assert not Path(db).exists() or run("locate", "120.17", "30.18", "--db", db).exit_code == 2

    done = run("load", str(data), "--db", db)
    assert done.exit_code == 0, done.output
    assert "1 rejected" in done.output


def test_load_missing_folder_is_exit_2(tmp_path: Path) -> None:
    r = run("load", str(tmp_path / "nowhere"), "--db", str(tmp_path / "x.gpkg"))
    assert r.exit_code == 2


def test_locate(sample_db: str, atlas) -> None:
    e = atlas.enterprises.iloc[0]
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    r = run("locate", str(gx[0]), str(gy[0]), "--crs", "gcj02", "--db", sample_db)
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    expected = atlas.locate([e["lon"]], [e["lat"]]).iloc[0]
    assert (body["community"] or {}).get("id") == expected["community_id"]


@pytest.mark.parametrize(
    "args",
    [["30.18", "120.17"], ["120.17", "30.18", "--crs", "mars"], ["nan", "30.18"]],
)
def test_locate_bad_input_exit_2(sample_db: str, args: list[str]) -> None:
    r = run("locate", *args, "--db", sample_db)
    assert r.exit_code == 2


def test_locate_without_store_exit_2(tmp_path: Path) -> None:
    r = run("locate", "120.17", "30.18", "--db", str(tmp_path / "none.gpkg"))
    assert r.exit_code == 2
    assert "geo load" in r.output


def write_rows(path: Path, header: list[str], rows: list[list[str]], encoding="utf-8") -> None:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_assign_sample_enterprises(sample_db: str, sample_dir: Path, tmp_path: Path, atlas) -> None:
    out = tmp_path / "owned.csv"
    r = run(
        "assign",
        str(sample_dir / "enterprises.csv"),
        "-o",
        str(out),
        "--db",
        sample_db,
        "--chunk-rows",
        "997",
    )
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    assert len(rows) == len(atlas.enterprises)
    got = {row["id"]: row["community_id"] or None for row in rows}
    ent = atlas.enterprises
    expected = dict(
        zip(ent["id"], atlas.ids_of("community", ent["_community"].to_numpy()), strict=True)
    )
    assert got == expected
    statuses = {row["status"] for row in rows}
    assert statuses <= {"ok", "outside"} and "outside" in statuses


def test_assign_marks_bad_rows_invalid_and_keeps_going(
    sample_db: str, tmp_path: Path, atlas
) -> None:
    e = atlas.enterprises.iloc[0]
    good = [str(e["lon"]), str(e["lat"])]
    rows = [
        ["a", *good, "wgs84"],
        ["b", "x", "30.18", "wgs84"],
        ["c", "nan", "30.18", "wgs84"],
        ["d", good[1], good[0], "wgs84"],  # swapped
        ["e", *good, "mars"],
        ["f", *good],  # too few fields
        ["g", *good, "wgs84", "extra"],
        ["h", "", "", "wgs84"],
        ["i", str(float(e["lon"]) - 0.3), good[1], "wgs84"],  # in range, outside communities
    ]
    src = tmp_path / "in.csv"
    write_rows(src, ["name", "lon", "lat", "crs"], rows)
    out = tmp_path / "out.csv"
    r = run("assign", str(src), "-o", str(out), "--db", sample_db)
    assert r.exit_code == 0, r.output
    result = {row["name"]: row for row in read_rows(out)}
    assert result["a"]["status"] == "ok"
    for name in "bcdefgh":
        assert result[name]["status"] == "invalid", name
        assert result[name]["reason"], name
    assert "swapped" in result["d"]["reason"]
    assert "unknown CRS" in result["e"]["reason"]
    assert result["i"]["status"] == "outside"


def test_assign_reads_gbk_and_takes_crs_flag(sample_db: str, tmp_path: Path, atlas) -> None:
    e = atlas.enterprises.iloc[5]
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    src = tmp_path / "gbk.csv"
    write_rows(
        src,
        ["企业名称", "经度", "纬度"],
        [["杭州测试科技有限公司", str(gx[0]), str(gy[0])]],
        encoding="gbk",
    )
    out = tmp_path / "out.csv"
    r = run(
        "assign",
        str(src),
        "-o",
        str(out),
        "--crs",
        "gcj02",
        "--lon-col",
        "经度",
        "--lat-col",
        "纬度",
        "--db",
        sample_db,
    )
    assert r.exit_code == 0, r.output
    row = read_rows(out)[0]
    assert row["企业名称"] == "杭州测试科技有限公司"
    expected = atlas.locate([e["lon"]], [e["lat"]]).iloc[0]
    assert (row["microgrid_id"] or None) == expected["microgrid_id"]


def test_assign_missing_columns_exit_2(sample_db: str, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    write_rows(src, ["east", "north"], [["1", "2"]])  # x/y would be found as lon/lat
    r = run("assign", str(src), "-o", str(tmp_path / "o.csv"), "--db", sample_db)
    assert r.exit_code == 2
    assert "--lon-col" in r.output


def test_assign_streams_many_rows(sample_db: str, tmp_path: Path, atlas) -> None:
    minx, miny, maxx, maxy = atlas.bounds
    rng = np.random.default_rng(5)
    n = 50_000
    src = tmp_path / "many.csv"
    lon = rng.uniform(minx, maxx, n)
    lat = rng.uniform(miny, maxy, n)
    src.write_text(
        "lon,lat\n" + "\n".join(f"{a},{b}" for a, b in zip(lon, lat, strict=True)) + "\n"
    )
    out = tmp_path / "o.csv"
    r = run("assign", str(src), "-o", str(out), "--db", sample_db, "--chunk-rows", "8000")
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    expected = atlas.locate(lon, lat)
    assert [row["grid_id"] or None for row in rows] == expected["grid_id"].tolist()


@pytest.mark.parametrize(
    "layer", ["roads", "streets", "communities", "grids", "parks", "buildings", "enterprises"]
)
def test_export_every_layer(sample_db: str, tmp_path: Path, atlas, layer: str) -> None:
    out = tmp_path / f"{layer}.geojson"
    r = run("export", layer, "-o", str(out), "--db", sample_db)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["features"]) == len(atlas.tables[layer])
    assert doc["features"][0]["id"] == atlas.tables[layer]["id"].iloc[0]


def test_export_officers_csv_and_errors(sample_db: str, tmp_path: Path) -> None:
    assert (
        run("export", "officers", "-o", str(tmp_path / "o.csv"), "--db", sample_db).exit_code == 0
    )
    assert len(read_rows(tmp_path / "o.csv")) == 453
    assert (
        run("export", "nope", "-o", str(tmp_path / "x.geojson"), "--db", sample_db).exit_code == 2
    )
    assert (
        run("export", "officers", "-o", str(tmp_path / "x.geojson"), "--db", sample_db).exit_code
        == 2
    )


def test_export_tiles_writes_a_pmtiles_archive(sample_db: str, tmp_path: Path) -> None:
    from pmtiles.reader import MmapSource, Reader

    out = tmp_path / "district.pmtiles"
    r = run(
        "export", "tiles", "-o", str(out), "--minzoom", "12", "--maxzoom", "13", "--db", sample_db
    )
    assert r.exit_code == 0, r.output
    with out.open("rb") as f:
        header = Reader(MmapSource(f)).header()
    assert (header["min_zoom"], header["max_zoom"]) == (12, 13)
    bad = run("export", "tiles", "-o", str(out), "--layers", "nope", "--db", sample_db)
    assert bad.exit_code == 2
