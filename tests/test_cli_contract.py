"""The `geo` command keeps its word (issue 15): one-line errors that never wrap, --version,
help without ``<bool>``, export's message and file mode, the grid cap said, serve's checks
before any work, restore's true report."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo import __version__
from geo.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def geo(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    """A real `geo` process, its output a pipe (not a terminal), 80 columns as on a fresh CI."""
    env = {**os.environ, "COLUMNS": "80", **kw.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "geo.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, **kw,
    )  # fmt: skip


def long_dir(tmp_path: Path, length: int = 200) -> Path:
    """A folder whose path is ``length`` characters (or more) long."""
    name = "d" * max(1, length - len(str(tmp_path)) - 1)
    folder = tmp_path / name
    folder.mkdir()
    assert len(str(folder)) >= length
    return folder


# -- messages on one line, whatever the path's length ----------------------------------------------
def test_error_with_a_200_character_path_is_one_line(tmp_path: Path) -> None:
    db = long_dir(tmp_path) / "none.gpkg"
    wanted = f"error: no store at {db}: run `geo load DIR --db {db}` (or `geo serve`) first"
    r = run("locate", "120.17", "30.18", "--db", str(db))
    assert r.exit_code == 2
    assert wanted in r.output.splitlines()
    done = geo("locate", "120.17", "30.18", "--db", str(db))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [wanted]


def test_usage_errors_are_plain_lines_not_a_wrapped_panel(tmp_path: Path) -> None:
    value = "x" * 200
    done = geo("export", "tiles", "-o", str(tmp_path / "t.pmtiles"), "--role", value)
    assert done.returncode == 2
    assert f"error: unknown role {value!r}" in done.stderr.splitlines()[0]
    done = geo("locate", "abc", "30.18")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Usage: ") and " locate [OPTIONS]" in lines[0]
    assert lines[-1].startswith("error: Invalid value for 'lon'")
    assert "╭" not in done.stderr and "│" not in done.stderr
    done = geo("--no-such-option")
    assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith("error: No such option")


# -- --version, --help -------------------------------------------------------------------------
def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0
    assert r.output.strip() == f"geo {__version__}"


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        (["serve"], ["[default: 1]", "default 127.0.0.1", "default 8000"]),
        (["export"], ["[default: 10]", "[default: 16]", "[default: anonymous]"]),
        (["locate"], ["[default: wgs84]"]),
        (["grids", "split"], ["[default: enterprises]"]),
    ],
)
def test_help_shows_defaults_and_no_bool_metavar(command: list[str], defaults: list[str]) -> None:
    r = run(*command, "--help")
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output
    for default in defaults:
        assert default in r.output, (default, r.output)


# -- geo export --------------------------------------------------------------------------------
def test_export_areas_as_geojson_and_a_clear_message_otherwise(sample_db, tmp_path) -> None:
    out = tmp_path / "areas.geojson"
    r = run("export", "areas", "-o", str(out), "--db", sample_db)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text(encoding="utf-8"))["type"] == "FeatureCollection"
    r = run("export", "officers", "-o", str(tmp_path / "o.geojson"), "--db", sample_db)
    assert r.exit_code == 2
    assert "officers has no geometry" in r.output and ".csv" in r.output
    r = run("export", "areas", "-o", str(tmp_path / "a.shp"), "--db", sample_db)
    assert r.exit_code == 2
    message = r.output.strip()
    assert "use .csv (any table) or .geojson (" in message and "areas" in message
    assert "officers" not in message.split(".geojson (")[1]  # the layers .geojson takes


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_export_files_get_the_mode_of_the_umask(sample_db, tmp_path, mask, mode) -> None:
    old = os.umask(mask)
    try:
        for name in ("streets.geojson", "streets.csv"):
            r = run("export", "streets", "-o", str(tmp_path / name), "--db", sample_db)
            assert r.exit_code == 0, r.output
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, atomically


def test_export_over_a_file_keeps_its_mode(sample_db, tmp_path) -> None:
    out = tmp_path / "streets.geojson"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o664)
    assert run("export", "streets", "-o", str(out), "--db", sample_db).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o664
    assert out.read_text(encoding="utf-8").startswith('{"type": "FeatureCollection"')


# -- geo grids split: the cap said, the option named for what it counts --------------------------
def test_grid_split_says_when_it_caps_the_count(sample_db) -> None:
    r = run("grids", "split", "C01", "--per-grid", "400", "--weight", "employees", "--json",
            "--db", sample_db)  # fmt: skip
    assert r.exit_code == 0, r.output
    [warning] = [line for line in r.stderr.splitlines() if line.startswith("warning")]
    assert "capped at" in warning and "units" in warning and "400 per grid" in warning
    summary = json.loads(r.stdout)
    assert summary["notes"] == [warning.removeprefix("warning ")]
    assert f"capped at {summary['count']} grids" in warning


def test_grid_split_old_option_name_still_works_hidden(sample_db) -> None:
    r = run("grids", "split", "C01", "--enterprises-per-grid", "100", "--json", "--db", sample_db)
    assert r.exit_code == 0, r.output
    help_text = run("grids", "split", "--help").output
    assert "--per-grid" in help_text and "--enterprises-per-grid" not in help_text
    r = run("grids", "split", "C01", "--per-grid", "1", "--enterprises-per-grid", "1",
            "--db", sample_db)  # fmt: skip
    assert r.exit_code == 2 and "--per-grid once" in r.output


# -- geo serve: one line, before any work ----------------------------------------------------------
def test_serve_in_a_missing_folder_is_one_line_before_loading(tmp_path) -> None:
    db = tmp_path / "missing" / "dir" / "x.gpkg"
    done = geo("serve", "--db", str(db), "--port", "1")
    assert done.returncode == 2
    done = geo("serve", "--db", str(db))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no "loading …": nothing was read
    assert done.stderr.splitlines() == [
        f"error: no store at {db} and its folder {db.parent} does not exist: create the folder "
        "(mkdir -p) or give --db a path in an existing one"
    ]


def test_serve_on_a_port_in_use_is_one_line_before_loading(tmp_path) -> None:
    db = tmp_path / "new.gpkg"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        done = geo("serve", "--db", str(db), "--port", str(port))
        seconds = time.monotonic() - start
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another geo serve?): stop that server or "
        "give --port another port (env GEO_PORT)"
    ]
    assert not db.exists() and done.stdout == ""  # the sample was not loaded
    assert seconds < 60  # (a loose bound: no data was read, only the interpreter started)


# -- geo restore: what it says is true ---------------------------------------------------------
@pytest.mark.slow  # a real `geo serve`
def test_restore_reports_when_the_servers_answer_from_it(sample_db, tmp_path) -> None:
    import httpx
    from support import geo_serve, store_version

    from geo.service.backup import backup

    live, saved = tmp_path / "live.gpkg", tmp_path / "saved.gpkg"
    backup(sample_db, live)
    backup(sample_db, saved)
    with geo_serve(live) as base:
        done = geo("restore", str(saved), "--db", str(live))
        assert done.returncode == 0, done.stderr
        version = store_version(live)
        assert httpx.get(f"{base}/health").json()["data_version"] == version  # already
    lines = done.stdout.splitlines()
    assert lines[0].endswith(f"as version {version}")
    assert lines[1].startswith(f"1 running server process(es) answer from version {version} (")
    assert "GEO_REFRESH_SECONDS" not in done.stdout and "within" not in done.stdout


def test_restore_without_servers_claims_nothing(sample_db, tmp_path) -> None:
    from geo.service.backup import backup

    live, saved = tmp_path / "live.gpkg", tmp_path / "saved.gpkg"
    backup(sample_db, live)
    backup(sample_db, saved)
    r = run("restore", str(saved), "--db", str(live))
    assert r.exit_code == 0, r.output
    assert len(r.output.strip().splitlines()) == 1 and "running server" not in r.output
