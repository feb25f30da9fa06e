"""`geo assign` columnar: CSV, Parquet files and datasets, GeoParquet, Excel; --engine dask.

The same rows give the same owners whatever the format, the engine or the chunking; bad rows
stay ``invalid`` with their reason, ``outside`` rows say why; memory is bounded by reading and
processing block by block (checked structurally: batch sizes and Arrow's allocations).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from typer.testing import CliRunner

from geo import crs
from geo.cli import app

runner = CliRunner()
IDS = ["street_id", "community_id", "grid_id", "microgrid_id"]


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def registry(atlas, n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Enterprises' own points, random points over the district (many outside), bad rows."""
    rng = np.random.default_rng(seed)
    ent = atlas.enterprises
    minx, miny, maxx, maxy = atlas.bounds
    pick = rng.integers(0, len(ent), n // 2)
    lon = np.concatenate([ent["lon"].to_numpy()[pick], rng.uniform(minx, maxx, n - n // 2)])
    lat = np.concatenate([ent["lat"].to_numpy()[pick], rng.uniform(miny, maxy, n - n // 2)])
    lon_text = [f"{v:.7f}" for v in lon]
    lat_text = [f"{v:.7f}" for v in lat]
    lon_text[7] = "not a number"
    lat_text[11] = ""
    lon_text[13], lat_text[13] = lat_text[13], lon_text[13]  # swapped
    return pd.DataFrame(
        {
            "id": [f"E{i:06d}" for i in range(n)],
            "名称": [f"企业{i}, 有限公司" if i % 5 == 0 else f"企业{i}" for i in range(n)],
            "经度": lon_text,
            "纬度": lat_text,
        }
    )


def write_csv_rows(path: Path, frame: pd.DataFrame, encoding: str = "utf-8") -> None:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(frame.columns)
        w.writerows(frame.itertuples(index=False))


def write_dataset(folder: Path, frame: pd.DataFrame, files: int = 4) -> None:
    """``frame`` as ``files`` Parquet files (coordinates as numbers, bad ones null)."""
    folder.mkdir()
    typed = frame.assign(
        经度=pd.to_numeric(frame["经度"], errors="coerce"),
        纬度=pd.to_numeric(frame["纬度"], errors="coerce"),
    )
    for i, part in enumerate(np.array_split(np.arange(len(typed)), files)):
        table = pa.Table.from_pandas(typed.iloc[part], preserve_index=False)
        pq.write_table(table, folder / f"part-{i:02d}.parquet", row_group_size=700)


def owners(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [(r["id"], *(r[c] for c in IDS), r["status"]) for r in rows]


@pytest.fixture(scope="module")
def table(atlas) -> pd.DataFrame:
    return registry(atlas)


def test_dataset_gives_the_ids_of_the_same_rows_in_csv(
    sample_db: str, tmp_path: Path, atlas, table: pd.DataFrame
) -> None:
    src = tmp_path / "registry.csv"
    write_csv_rows(src, table)
    write_dataset(tmp_path / "registry", table)
    r = run("assign", src, "-o", tmp_path / "from_csv.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    r = run("assign", tmp_path / "registry", "-o", tmp_path / "from_ds.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    from_csv = read_rows(tmp_path / "from_csv.csv")
    from_ds = read_rows(tmp_path / "from_ds.csv")
    assert owners(from_ds) == owners(from_csv)
    numeric = [pd.to_numeric(table[c], errors="coerce").to_numpy() for c in ("经度", "纬度")]
    expected = atlas.locate(*numeric)
    ok = [r["status"] != "invalid" for r in from_csv]
    for col in IDS:
        got = [r[col] or None for r, good in zip(from_csv, ok, strict=True) if good]
        want = [v for v, good in zip(expected[col].tolist(), ok, strict=True) if good]
        assert got == want, col
    statuses = {r["status"] for r in from_csv}
    assert statuses == {"ok", "outside", "invalid"}


def test_dask_with_two_workers_gives_the_same_rows(
    sample_db: str, tmp_path: Path, table: pd.DataFrame
) -> None:
    write_dataset(tmp_path / "registry", table)
    local, dask = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    r = run("assign", tmp_path / "registry", "-o", local, "--db", sample_db)
    assert r.exit_code == 0, r.output
    r = run("assign", tmp_path / "registry", "-o", dask, "--engine", "dask", "--workers", "2",
            "--db", sample_db)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert pq.read_table(dask).equals(pq.read_table(local))
    assert pq.read_table(dask).column("id").to_pylist() == table["id"].tolist()  # in order


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, processes=False, threads_per_worker=1, protocol="tcp",
        dashboard_address=None,
    ) as running:  # fmt: skip
        yield running


def test_dask_scheduler_address_csv_with_ragged_rows_keeps_order(
    sample_db: str, tmp_path: Path, table: pd.DataFrame, cluster
) -> None:
    src = tmp_path / "ragged.csv"
    write_csv_rows(src, table.head(3000))
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[100] = "short,row\r\n"
    lines[2500] = lines[2500].rstrip("\r\n") + ",extra\r\n"
    src.write_text("".join(lines), encoding="utf-8")
    local, dask = tmp_path / "local.csv", tmp_path / "dask.csv"
    r = run("assign", src, "-o", local, "--chunk-rows", "400", "--db", sample_db)
    assert r.exit_code == 0, r.output
    r = run("assign", src, "-o", dask, "--chunk-rows", "400", "--engine", "dask",
            "--scheduler", cluster.scheduler_address, "--db", sample_db)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert dask.read_bytes() == local.read_bytes()
    rows = read_rows(local)
    assert len(rows) == 3000
    assert rows[99]["id"] == "short" and rows[99]["status"] == "invalid"
    assert rows[99]["reason"] == "row has 2 fields, the header 4"
    assert rows[2499]["status"] == "invalid" and "extra" in rows[2499]["reason"]
    assert [r["id"] for r in rows[:99]] == table["id"].head(99).tolist()


def test_dask_without_a_scheduler_exits_2(sample_db: str, tmp_path: Path, table) -> None:
    src = tmp_path / "in.csv"
    write_csv_rows(src, table.head(10))
    r = run("assign", src, "-o", tmp_path / "o.csv", "--engine", "dask",
            "--scheduler", "tcp://127.0.0.1:1", "--db", sample_db)  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "no Dask scheduler answers at tcp://127.0.0.1:1" in " ".join(r.output.split())
    assert not (tmp_path / "o.csv").exists()


def test_outside_rows_carry_a_reason(sample_db: str, tmp_path: Path, atlas, table) -> None:
    src = tmp_path / "in.csv"
    write_csv_rows(src, table)
    r = run("assign", src, "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    rows = read_rows(tmp_path / "o.csv")
    outside = [r for r in rows if r["status"] == "outside"]
    assert outside and all(r["reason"] == "outside every community" for r in outside)
    assert all(r["reason"] == "" for r in rows if r["status"] == "ok")
    bad = {r["id"]: r for r in rows if r["status"] == "invalid"}
    assert set(bad) == {"E000007", "E000011", "E000013"}
    assert bad["E000007"]["reason"] == "经度/纬度 are not numbers"
    assert "swapped" in bad["E000013"]["reason"]


def test_gbk_and_bom_csv_find_chinese_columns(sample_db: str, tmp_path: Path, atlas) -> None:
    e = atlas.enterprises.iloc[4]
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    frame = pd.DataFrame({"企业名称": ["杭州测试科技有限公司"], "经度": [gx[0]], "纬度": [gy[0]]})
    want = atlas.locate([e["lon"]], [e["lat"]]).iloc[0]["grid_id"] or ""
    for encoding in ("gbk", "gb18030", "utf-8-sig", "utf-8"):
        src = tmp_path / f"{encoding}.csv"
        write_csv_rows(src, frame, encoding=encoding)
        out = tmp_path / f"{encoding}.out.csv"
        r = run("assign", src, "-o", out, "--crs", "gcj02", "--db", sample_db)
        assert r.exit_code == 0, (encoding, r.output)
        (row,) = read_rows(out)
        assert list(row)[:3] == ["企业名称", "经度", "纬度"], encoding
        assert row["企业名称"] == "杭州测试科技有限公司" and row["grid_id"] == want, encoding


def test_crs_column_per_row(sample_db: str, tmp_path: Path, atlas) -> None:
    e = atlas.enterprises.iloc[6]
    gx, gy = crs.from_wgs84(e["lon"], e["lat"], "gcj02")
    bx, by = crs.from_wgs84(e["lon"], e["lat"], "bd09")
    src = tmp_path / "in.csv"
    src.write_text(
        "x,y,crs\n"
        f"{e['lon']},{e['lat']},\n{gx[0]},{gy[0]}, GCJ02 \n{bx[0]},{by[0]},bd09\n1,2,mars\n",
        encoding="utf-8",
    )
    r = run("assign", src, "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    rows = read_rows(tmp_path / "o.csv")
    want = atlas.locate([e["lon"]], [e["lat"]]).iloc[0]["microgrid_id"] or ""
    assert [r["microgrid_id"] for r in rows[:3]] == [want] * 3
    assert rows[3]["status"] == "invalid" and "unknown CRS 'mars'" in rows[3]["reason"]


def test_geoparquet_points_in_and_out(sample_db: str, tmp_path: Path, atlas) -> None:
    ent = atlas.enterprises.head(40)
    geoms = list(shapely.points(ent["lon"], ent["lat"]))
    geoms[3] = shapely.box(120.1, 30.1, 120.2, 30.2)
    geoms[5] = None
    frame = gpd.GeoDataFrame({"name": ent["name"].tolist()}, geometry=geoms, crs="EPSG:4326")
    src = tmp_path / "points.parquet"
    frame.to_parquet(src)
    out_csv, out_pq = tmp_path / "o.csv", tmp_path / "o.parquet"
    for out in (out_csv, out_pq):
        r = run("assign", src, "-o", out, "--db", sample_db)
        assert r.exit_code == 0, r.output
    rows = read_rows(out_csv)
    want = atlas.locate(ent["lon"], ent["lat"])["community_id"].tolist()
    got = [r["community_id"] or None for r in rows]
    assert [g for i, g in enumerate(got) if i not in (3, 5)] == [
        w for i, w in enumerate(want) if i not in (3, 5)
    ]
    assert (
        rows[3]["status"] == "invalid" and rows[3]["reason"] == "geometry is a Polygon, not a point"
    )
    assert rows[5]["status"] == "invalid" and "no geometry" in rows[5]["reason"]
    assert rows[0]["geometry"].startswith("POINT (")
    back = gpd.read_parquet(out_pq)  # still GeoParquet: geometry and CRS kept
    assert back.crs.to_epsg() == 4326 and back.geometry.iloc[0].equals(geoms[0])
    assert back["community_id"].tolist()[:3] == [w or "" for w in want[:3]]


def test_projected_geoparquet_uses_its_crs(sample_db: str, tmp_path: Path, atlas) -> None:
    ent = atlas.enterprises.head(10)
    frame = gpd.GeoDataFrame(
        {"n": range(10)}, geometry=shapely.points(ent["lon"], ent["lat"]), crs="EPSG:4326"
    ).to_crs(4549)
    src = tmp_path / "metres.parquet"
    frame.to_parquet(src)
    r = run("assign", src, "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    want = atlas.locate(ent["lon"], ent["lat"])["grid_id"].tolist()
    assert [r["grid_id"] or None for r in read_rows(tmp_path / "o.csv")] == want


def test_excel_sheet_in_parquet_out(sample_db: str, tmp_path: Path, atlas) -> None:
    ent = atlas.enterprises.head(20)
    frame = pd.DataFrame(
        {"名称": ent["name"], "经度": ent["lon"].astype(object), "纬度": ent["lat"]}
    )
    frame.loc[2, "经度"] = "东经120度"
    src = tmp_path / "list.xlsx"
    with pd.ExcelWriter(src) as book:
        pd.DataFrame({"a": [1]}).to_excel(book, sheet_name="说明", index=False)
        frame.to_excel(book, sheet_name="企业", index=False)
    out = tmp_path / "o.parquet"
    r = run("assign", src, "-o", out, "--layer", "企业", "--db", sample_db)
    assert r.exit_code == 0, r.output
    got = pq.read_table(out).to_pandas()
    assert got["名称"].tolist() == ent["name"].tolist()
    want = atlas.locate(ent["lon"], ent["lat"])["grid_id"].tolist()
    assert got.loc[2, "status"] == "invalid" and got.loc[2, "reason"] == "经度/纬度 are not numbers"
    assert [g or None for g in got["grid_id"]][3:] == want[3:]


def test_parquet_nulls_and_nan_are_invalid_with_reason(sample_db: str, tmp_path: Path) -> None:
    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"lon": [None, np.nan, 120.2], "lat": [30.2, 30.2, np.inf]}), src)
    r = run("assign", src, "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 0, r.output
    rows = read_rows(tmp_path / "o.csv")
    assert [r["status"] for r in rows] == ["invalid"] * 3
    assert all(r["reason"] == "lon/lat are not numbers" for r in rows)


def test_csv_cells_round_trip_quoted_and_defused(sample_db: str, tmp_path: Path, atlas) -> None:
    e = atlas.enterprises.iloc[0]
    cells = ["a,b", 'say "hi"', "two\nlines", "=HYPERLINK(1)", "-12.5", "+86 138", "@x", "普通"]
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["note", "lon", "lat"])
        w.writerows([c, e["lon"], e["lat"]] for c in cells)
    out = tmp_path / "o.csv"
    r = run("assign", src, "-o", out, "--db", sample_db)
    assert r.exit_code == 0, r.output
    got = [r["note"] for r in read_rows(out)]
    assert got == ['a,b', 'say "hi"', "two\nlines", "'=HYPERLINK(1)", "-12.5", "'+86 138",
                   "'@x", "普通"]  # fmt: skip
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfnote,lon,lat,street_id,")  # BOM, unquoted header
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["a,b", e["lon"], e["lat"]], ['say "hi"']])
    first, second = buffer.getvalue().encode().split(b"\r\n")[:2]
    assert b"\r\n" + first + b"," in raw and b"\r\n" + second + b"," in raw  # Python's quoting


def test_a_row_longer_than_the_block_is_read_with_a_larger_block(
    sample_db: str, tmp_path: Path, atlas
) -> None:
    from geo.service.assign import Options, assign_table

    e = atlas.enterprises.iloc[0]
    long = "长" * 400_000  # 1.2 MB, three times the block
    src = tmp_path / "in.csv"
    src.write_text(f"note,lon,lat\na,{e['lon']},{e['lat']}\n{long},{e['lon']},{e['lat']}\n")
    summary = assign_table(atlas, src, tmp_path / "o.csv", Options(block_bytes=1 << 18))
    assert summary.rows == 2
    assert read_rows(tmp_path / "o.csv")[1]["note"] == long


def test_memory_is_bounded_by_blocks_and_batches(
    tmp_path: Path, atlas, table: pd.DataFrame, monkeypatch
) -> None:
    import geo.service.assign as service

    big = pd.concat([table] * 20, ignore_index=True)  # 120,000 rows, ~5.5 MB
    src = tmp_path / "big.csv"
    write_csv_rows(src, big)
    size = src.stat().st_size
    seen: list[tuple[int, int]] = []
    real = service.assign_batch
    base = pa.total_allocated_bytes()

    def measured(atlas, batch, layout, ragged=()):
        seen.append((batch.num_rows, pa.total_allocated_bytes() - base))
        return real(atlas, batch, layout, ragged)

    monkeypatch.setattr(service, "assign_batch", measured)
    block = 1 << 16
    options = service.Options(chunk_rows=5000, block_bytes=block)
    summary = service.assign_table(atlas, src, tmp_path / "o.parquet", options)
    assert summary.rows == len(big)
    assert len(seen) >= size // block  # block by block, not the file at once
    assert max(rows for rows, _ in seen) <= 5000
    allocated = [a for _, a in seen]
    assert max(allocated) < size // 2  # Arrow holds a few blocks, not the file
    assert max(allocated[len(seen) // 2 :]) < 2 * max(allocated[: len(seen) // 4])  # no growth

    write_dataset(tmp_path / "ds", big)
    seen.clear()
    service.assign_table(atlas, tmp_path / "ds", tmp_path / "o.csv", options)
    assert sum(rows for rows, _ in seen) == len(big)
    assert max(rows for rows, _ in seen) <= 700  # a row group at most


def test_unwritable_extension_and_missing_input_exit_2(sample_db: str, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("lon,lat\n120.2,30.2\n", encoding="utf-8")
    r = run("assign", src, "-o", tmp_path / "o.json", "--db", sample_db)
    assert r.exit_code == 2 and "use .csv, .parquet, .xlsx" in r.output
    r = run("assign", tmp_path / "nowhere", "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 2 and "no such file or folder" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("assign", empty, "-o", tmp_path / "o.csv", "--db", sample_db)
    assert r.exit_code == 2 and "without .parquet files" in " ".join(r.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "in.csv"]


def test_geo_metadata_is_json(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(1, 2)], crs="EPSG:4326")
    frame.to_parquet(tmp_path / "g.parquet")
    meta = json.loads(pq.read_schema(tmp_path / "g.parquet").metadata[b"geo"])
    assert meta["columns"]["geometry"]["encoding"] == "WKB"  # what the reader relies on
