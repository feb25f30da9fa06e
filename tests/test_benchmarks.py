"""The benchmarks' arithmetic: interleaved rounds, min/median/max of each side and of each
ratio, percentiles, and load.py's verdict on whether the server kept up (no timing here)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_edits
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
