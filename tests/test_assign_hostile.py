"""`geo assign` on hostile files: GBK after megabytes of ASCII, huge fields, formula headers.

Each ends either handled correctly or in one clear exit-2 line, and never leaves ``OUT.part``
(or any other file) beside the output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pandas as pd
from typer.testing import CliRunner

from geo.cli import app
from geo.service.assign_read import FIELD_LIMIT

runner = CliRunner()
NAME = "杭州测试科技有限公司"


def _assign(src: Path, out: Path, db: str):
    return runner.invoke(app, ["assign", str(src), "-o", str(out), "--db", db])


def _only(folder: Path, *names: str) -> None:
    """Nothing but ``names`` in ``folder``: no ``.part`` or temporary file left behind."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def _point(atlas) -> tuple[str, str]:
    e = atlas.enterprises.iloc[3]
    return str(e["lon"]), str(e["lat"])


def test_gbk_after_megabytes_of_ascii_is_read_as_gbk(sample_db: str, tmp_path: Path, atlas):
    lon, lat = _point(atlas)
    ascii_rows = [f"plain{i},{lon},{lat}" for i in range(150_000)]  # ~4 MB of ASCII first
    text = "\n".join(["name,lon,lat", *ascii_rows, f"{NAME},{lon},{lat}"]) + "\n"
    src = tmp_path / "in" / "gbk.csv"
    src.parent.mkdir()
    src.write_bytes(text.encode("gbk"))
    assert len(text) > 3 << 20
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    r = _assign(src, out, sample_db)
    assert r.exit_code == 0, r.output
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 150_001
    assert rows[-1]["name"] == NAME and rows[-1]["status"] == "ok"
    assert rows[0]["name"] == "plain0"
    _only(out.parent, "o.csv")


def test_neither_utf8_nor_gb18030_exits_2_and_leaves_nothing(sample_db: str, tmp_path: Path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"name,lon,lat\n" + b"a,120.2,30.2\n" * 200_000 + b"\xff\xfe,1,2\n")
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    r = _assign(src, out, sample_db)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "UTF-8" in r.output and "Traceback" not in r.output
    _only(out.parent)


def test_a_field_over_python_csv_limit_is_kept(sample_db: str, tmp_path: Path, atlas):
    lon, lat = _point(atlas)
    long = "长" * 200_000  # > 131,072: Python csv's default field_size_limit
    src = tmp_path / "in.csv"
    src.write_text(f"name,note,lon,lat\na,{long},{lon},{lat}\n", encoding="utf-8")
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    r = _assign(src, out, sample_db)
    assert r.exit_code == 0, r.output
    with out.open(encoding="utf-8-sig", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["note"] == long and row["status"] == "ok"
    _only(out.parent, "o.csv")


def test_a_field_over_our_limit_exits_2_and_leaves_nothing(sample_db: str, tmp_path: Path):
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8") as f:
        f.write("name,lon,lat\n" + "a,120.2,30.2\n" * 1000)
        f.write("x" * (FIELD_LIMIT + 10) + ",120.2,30.2\n")
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    r = _assign(src, out, sample_db)
    assert r.exit_code == 2, r.output
    assert "field" in r.output and f"{FIELD_LIMIT:,}" in r.output
    assert "Traceback" not in r.output
    _only(out.parent)


def test_a_failure_mid_stream_leaves_no_part_file(sample_db: str, tmp_path: Path, monkeypatch):
    import geo.service.assign

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(geo.service.assign, "assign_batch", boom)
    src = tmp_path / "in.csv"
    src.write_text("name,lon,lat\na,120.2,30.2\n", encoding="utf-8")
    out = tmp_path / "out" / "o.csv"
    out.parent.mkdir()
    r = _assign(src, out, sample_db)
    assert r.exit_code != 0
    _only(out.parent)


HEADER = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "lon", "lat"]


def test_header_cells_are_formula_escaped_in_csv_and_xlsx(sample_db: str, tmp_path: Path, atlas):
    lon, lat = _point(atlas)
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([HEADER, ["a", "b", "c", "d", lon, lat]])
    escaped = ["'" + h for h in HEADER[:4]] + ["lon", "lat"]
    for name in ("o.csv", "o.xlsx"):
        out = tmp_path / name
        r = _assign(src, out, sample_db)
        assert r.exit_code == 0, r.output
        if name.endswith(".csv"):
            with out.open(encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f))
        else:
            sheet = openpyxl.load_workbook(out).active
            header = [c.value for c in next(sheet.iter_rows(max_row=1))]
        assert header[:6] == escaped, (name, header)
    table = tmp_path / "in.parquet"  # the whole-table path: Parquet in, CSV out
    pd.DataFrame([["a", "b", "c", "d", float(lon), float(lat)]], columns=HEADER).to_parquet(table)
    out = tmp_path / "w.csv"
    r = _assign(table, out, sample_db)
    assert r.exit_code == 0, r.output
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert next(csv.reader(f))[:6] == escaped
