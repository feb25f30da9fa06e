"""The benchmarks' arithmetic: interleaved rounds, min/median/max of each side and of each
ratio, percentiles, and load.py's verdict on whether the server kept up (no timing here); and
that every benchmark's report prints those spreads."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_edits
import bench_guard
import bench_scale
import bench_shedding
import bench_split
import bench_wire
import common
import load


def test_spread_is_min_median_max() -> None:
    assert common.Spread.of([3.0, 1.0, 2.0]) == common.Spread(1.0, 2.0, 3.0)
    assert common.Spread.of([4.0, 1.0, 2.0, 10.0]) == common.Spread(1.0, 3.0, 10.0)
    assert common.Spread.of([5.0]) == common.Spread(5.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="no figures"):
        common.Spread.of([])


def test_spread_line_prints_all_three() -> None:
    line = common.Spread(1.5, 2.25, 1234.0).line("ratio", ",.2f")
    assert "ratio" in line
    assert "min         1.50" in line and "median         2.25" in line
    assert "max     1,234.00" in line


def test_ratios_are_per_round_peer_time_over_ours() -> None:
    took = {"ours": [1.0, 2.0, 4.0], "sjoin": [3.0, 3.0, 2.0], "postgis": [10.0, 20.0, 40.0]}
    got = common.ratios(took, "ours")
    assert got == {"sjoin": [3.0, 1.5, 0.5], "postgis": [10.0, 10.0, 10.0]}
    # the spread of the ratio is of the per-round ratios, not the ratio of the medians
    assert common.Spread.of(got["sjoin"]) == common.Spread(0.5, 1.5, 3.0)
    assert common.rates([2.0, 0.5], 1000) == [500.0, 2000.0]


def test_interleave_rotates_the_order_each_round() -> None:
    calls: list[str] = []
    runs = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    took = common.interleave(runs, 4)
    assert calls == list("abcbcacababc")
    assert {k: len(v) for k, v in took.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(t >= 0 for v in took.values() for t in v)
    calls.clear()
    common.interleave({"ours": lambda: calls.append("o"), "peer": lambda: calls.append("p")}, 3)
    assert calls == list("oppoop")  # two sides: alternating who goes first


def test_percentile_is_nearest_rank() -> None:
    xs = [float(v) for v in range(100, 0, -1)]  # 1 … 100, unordered
    assert common.percentile(xs, 0.5) == 50.0
    assert common.percentile(xs, 0.99) == 99.0
    assert common.percentile(xs, 1.0) == 100.0
    assert common.percentile(xs, 0.0) == 1.0
    assert common.percentile([0.2, 0.9], 0.5) == 0.2
    assert common.percentile([0.2, 0.9], 0.99) == 0.9  # 20 edits: p99 is the worst
    assert math.isnan(common.percentile([], 0.5))
    assert load._pct([0.010, 0.020, 0.030], 0.5) == pytest.approx(20.0)  # ms


def test_keep_up_verdict() -> None:
    rule = common.KeepUp(share=0.95, p50_limit_ms=250)
    assert rule.verdict(1500, 1500, 4.0) is None
    assert rule.verdict(1500, 1425, 4.0) is None  # exactly 95 %
    short = rule.verdict(1500, 1400, 4.0)
    assert short is not None and short.startswith("THE SERVER COULD NOT KEEP UP")
    assert "1,400 requests/s of the 1,500 offered (93%" in short
    slow = rule.verdict(1500, 1500, 11_000.0)
    assert slow is not None and "11,000 ms is above 250 ms" in slow
    both = rule.verdict(1500, 300, 11_000.0)
    assert both is not None and "offered" in both and "median" in both
    assert rule.verdict(1500, 0, math.nan) is not None  # nothing came back


def _client_result(latencies: dict[str, list[float]], completed: dict[str, int], cpu: float):
    stats = {k: latencies.get(k, []) for k in load.KINDS}
    return stats, {"locate 503": 1} if not completed else {}, cpu, completed


def test_load_reports_completed_beside_offered() -> None:
    a = _client_result({"locate": [0.004, 0.006]}, {"locate": 600, "tile": 0, "owner": 0}, 1.0)
    b = _client_result({"tile": [0.002]}, {"locate": 100, "tile": 200, "owner": 100}, 2.0)
    stats, errors, cpu, completed = load.merge([a, b])
    assert stats["locate"] == [0.004, 0.006] and stats["tile"] == [0.002]
    assert completed == {"locate": 700, "tile": 200, "owner": 100}
    assert cpu == 3.0 and errors == {}
    # 1,000 answers in 2 s against 1,500/s offered: 33 %, not keeping up
    line, verdict = load.throughput(stats, completed, 2.0, 1500, common.KeepUp())
    assert "1,500 req/s offered, 500 req/s completed (33%)" in line
    assert "p50 4.0 ms" in line
    assert verdict is not None and "COULD NOT KEEP UP" in verdict
    line, verdict = load.throughput(stats, completed, 2.0, 500, common.KeepUp())
    assert verdict is None and "(100%)" in line
    empty = {k: [] for k in load.KINDS}
    line, verdict = load.throughput(
        empty, dict.fromkeys(load.KINDS, 10), 2.0, 1500, common.KeepUp()
    )
    assert "15 req/s completed (1%), p50 n/a" in line and verdict is not None
    line, verdict = load.throughput(stats, completed, 2.0, 0, common.KeepUp())
    assert line.startswith("closed loop: 500 req/s completed") and verdict is None


def test_bench_edits_report(capsys: pytest.CaptureFixture[str]) -> None:
    fast = [bench_edits.Timing("C01", 0.5, 0.01, 0.02) for _ in range(19)]
    bench_edits.report([*fast, bench_edits.Timing("C01x2", 0.6, 0.3, 1.4)], 12.0)
    out = capsys.readouterr().out
    assert "over 20 edits: 1400 ms, MISSED" in out  # p99 of 20 is the worst
    bench_edits.report(fast, 12.0)
    assert "20 ms, met" in capsys.readouterr().out
    assert bench_edits.Timing("C01", 0.5, 0.2, 0.1).both == 0.2
    assert bench_edits.tile_of(0.0, 0.0, 1) == (1, 1)
    assert bench_edits.tile_of(-179.9, 85.0, 2) == (0, 0)


# ------------------------------------------------------ each benchmark prints every spread
# (issue 16 §1: ours and the peer interleaved in rounds; min/median/max of each and of the
# ratio). The report functions get figures made up here; bench_split runs for real on two
# sample communities (about 4 s, geo only when spopt is not installed).

SPREAD = re.compile(r"min +[-\d.,]+ +median +[-\d.,]+ +max +[-\d.,]+")


def _spread_line(out: str, label: str) -> str:
    """The line of ``out`` naming ``label``, checked to carry min, median and max."""
    lines = [line for line in out.splitlines() if label in line]
    assert lines, f"no line names {label!r} in:\n{out}"
    assert SPREAD.search(lines[0]), lines[0]
    return lines[0]


def test_bench_split_runs_rounds_and_prints_spreads(capsys: pytest.CaptureFixture[str]) -> None:
    bench_split.main(["--rounds", "2", "--communities", "C03,C07"])
    out = capsys.readouterr().out
    for cid in ("C03", "C07"):
        assert f"\n{cid}: K " in out
    assert out.count("seconds over 2 interleaved rounds") == 3  # two communities, all of them
    assert "all communities every method answered (C03, C07)" in out
    _spread_line(out, "geo s")
    rows = [line for line in out.splitlines() if line.startswith("  geo ") and "yes" in line]
    assert len(rows) == 2 and all(line.rstrip().endswith("yes") for line in rows)
    if bench_split.peers_installed():
        for peer in bench_split.PEERS:
            _spread_line(out, f"ratio ({peer} time / geo)")
    else:
        assert "spopt/libpysal not installed" in out and "only geo runs" in out
        assert "time / geo" not in out


def test_bench_split_seconds_ratio_is_per_round(capsys: pytest.CaptureFixture[str]) -> None:
    bench_split._seconds({"geo": [1.0, 2.0, 4.0], "maxp": [3.0, 3.0, 2.0]}, 3)
    out = capsys.readouterr().out
    assert "min       1.0000  median       2.0000  max       4.0000" in _spread_line(out, "geo s")
    line = _spread_line(out, "ratio (maxp time / geo)")
    assert "min         0.50  median         1.50  max         3.00" in line


def test_bench_guard_report(capsys: pytest.CaptureFixture[str]) -> None:
    ours = [{"replace_all": 0.2, "edit": 0.01, "heartbeat": 2e-4} for _ in range(2)]
    peer = [{"replace_all": 0.1, "edit": 0.01, "heartbeat": 1e-4}, {**ours[0], "replace_all": 0.4}]
    bench_guard.report(ours, peer)
    out = capsys.readouterr().out
    assert "2 rounds: min / median / max" in out
    line = next(x for x in out.splitlines() if x.startswith("replace_all"))
    assert "peer   100.00 /   250.00 /   400.00 ms" in line
    assert "ours/peer     0.50 /     1.25 /     2.00" in line


def test_bench_wire_report(capsys: pytest.CaptureFixture[str]) -> None:
    def load(n: int, ms: float, search: bool) -> dict:
        out = {"bytes": n, "interactive_ms": ms}
        return {**out, "search_ms": ms / 4, "bytes_with_search": n + 10} if search else out

    results = {
        ("district", "br"): [load(300, 4000, True), load(300, 3000, True)],
        ("district", "identity"): [load(1500, 10000, True), load(1500, 12000, True)],
        ("officer", "br"): [load(100, 1000, False), load(100, 1200, False)],
        ("officer", "identity"): [load(500, 3000, False), load(500, 2000, False)],
    }
    bench_wire.report(results, "O001", ["br", "identity"])
    out = capsys.readouterr().out
    assert "goal < 1,200,000" in _spread_line(out, "bytes ")
    assert "ratio compressed / identity, per round" in out
    assert "min        0.200  median        0.200  max        0.200" in _spread_line(
        out, "district bytes "
    )
    line = _spread_line(out, "district interactive ms")
    assert "min        0.250  median        0.325  max        0.400" in line
    _spread_line(out, "district first search ms")
    assert "min        0.333  median        0.467  max        0.600" in _spread_line(
        out, "officer interactive ms"
    )


def _scale_round(k: float) -> dict:
    rows = {"communities": 10 * k}
    return {"rows": rows, "atlas": 0.5 * k, "locate_p50": 2.0, "generate": 3.0}


def test_bench_scale_report_one_round_and_several(capsys: pytest.CaptureFixture[str]) -> None:
    bench_scale.report([1, 3], {1: [_scale_round(1)], 3: [_scale_round(3)]})
    one = capsys.readouterr().out
    assert "rounds" not in one and "min" not in one  # one round: today's table
    atlas = next(x for x in one.splitlines() if x.startswith("atlas: build"))
    assert atlas.split()[-3:] == ["0.5", "1.5", "1.00"]
    twice = {
        1: [_scale_round(1), {**_scale_round(1), "atlas": 1.0}],
        3: [_scale_round(3), {**_scale_round(3), "atlas": 6.0}],
    }
    for results in twice.values():
        del results[1]["generate"]  # generate and load: measured once
    bench_scale.report([1, 3], twice)
    out = capsys.readouterr().out
    assert "2 interleaved rounds; each cell: min, median, max" in out
    atlas = next(x for x in out.splitlines() if x.startswith("atlas: build"))
    # per scale min, median, max; per step the per-round growth: 1.0 and 2.0
    assert atlas.split()[-9:] == ["0.5", "0.75", "1", "1.5", "3.75", "6", "1.00", "1.50", "2.00!"]
    generate = next(x for x in out.splitlines() if x.startswith("generate"))
    assert generate.split()[-9:] == ["3", "3", "3", "3", "3", "3", "0.33", "0.33", "0.33"]


def test_bench_shedding_report_ratio_on_over_off(capsys: pytest.CaptureFixture[str]) -> None:
    def phase(ms: float, ok: int) -> tuple:
        return [ms / 1000] * 10, {}, ({"200": ok, "429": 3} if ok else {})

    results = {
        ("off", "alone"): [phase(2, 0), phase(4, 0)],
        ("off", "loaded"): [phase(100, 5), phase(200, 7)],
        ("on", "alone"): [phase(2, 0), phase(2, 0)],
        ("on", "loaded"): [phase(10, 2), phase(40, 4)],
    }
    args = argparse.Namespace(rate=50, seconds=8, rounds=2, warmup=2)
    bench_shedding._report(results, args)
    out = capsys.readouterr().out
    _spread_line(out, "limits off loaded p95 ms")
    assert "min          0.5  median         0.75  max            1" in _spread_line(
        out, "alone p50 on/off"
    )
    assert "min          0.1  median         0.15  max          0.2" in _spread_line(
        out, "loaded p95 on/off"
    )
    line = _spread_line(out, "limits on: heavy points/s")
    assert "min       20,000  median       30,000  max       40,000" in line


def test_bench_edits_report_has_min(capsys: pytest.CaptureFixture[str]) -> None:
    timings = [bench_edits.Timing("C01", 0.1 * i, 0.1 * i, 0.2 * i) for i in range(1, 5)]
    bench_edits.report(timings, 1.0)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["min", "ms", "p50", "ms", "p99", "ms", "max", "ms"]
    both = next(x for x in out.splitlines() if x.startswith("both show it, after the 2xx"))
    assert both.split()[-4:] == ["200", "400", "800", "800"]


def test_load_spreads_over_rounds() -> None:
    def one_round(done: int, ms: float) -> tuple:
        client = ({"locate": [ms / 1000] * 4, "tile": [], "owner": []}, {}, 1.0,
                  {"locate": done, "tile": 0, "owner": 0})  # fmt: skip
        edits = {"edits": 1, "edit_latency": [0.1], "probes": 5, "torn": [], "stale": [0.2],
                 "lag": 0.3}  # fmt: skip
        return [client], edits

    args = argparse.Namespace(seconds=10, rate=100, p50_limit_ms=250)
    rounds = [one_round(1000, 5), one_round(500, 300), one_round(950, 10)]
    lines = load.spreads(args, rounds)
    assert lines[0].startswith("round 1: 100 req/s offered, 100 req/s completed (100%)")
    assert lines[0].endswith("the server kept up")
    assert "COULD NOT KEEP UP" in lines[1] and "300 ms is above 250 ms" in lines[1]
    assert lines[3] == "THE SERVER COULD NOT KEEP UP in 1 of 3 rounds."
    assert lines[4] == "over 3 rounds (one after the other, same server):"
    assert "min           50  median           95  max          100" in lines[5]
    assert "p50 ms" in lines[6] and SPREAD.search(lines[6]) and SPREAD.search(lines[7])
    assert len(load.spreads(args, rounds[:1])) == 1  # one round: its headline only
    kept = load.spreads(args, [rounds[0], rounds[2]])
    assert kept[2] == "the server kept up with the offered rate in all 2 rounds"
    merged = load.merge_edits([e for _, e in rounds])
    assert merged["edits"] == 3 and merged["stale"] == [0.2] * 3 and merged["lag"] == 0.3
