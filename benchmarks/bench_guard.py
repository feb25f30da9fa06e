"""What the live GeoPackage's write guard (`geo.store.gpkg_guard`) costs geo's own writes.

Every write of the guarded store fires a BEFORE trigger per row (and SQLite no longer empties a
table in one step), and each write transaction checks the guard first. This times the store's
writes on the sample district, in CPU seconds of a fresh process each:

- ``replace_all``: every table rewritten (what `geo load`, `geo import` and a grid commit do);
- ``edit``: one community boundary edit (`SQLiteStore.edit_community`);
- ``heartbeat``: one `SQLiteStore.serving_mark` (every server, three times per TTL).

Ours is this checkout; the peer is a checkout from before the guard (``--peer``, e.g. a
``git worktree add /tmp/before <commit>``). They alternate in ``--rounds`` rounds (who goes
first alternating too: `common.interleave`); min, median and max of each and of the per-round
ratio (ours / peer) are printed.

    python benchmarks/bench_guard.py --peer /work/main --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import Spread, interleave  # noqa: E402

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from geo.service.load import load_into
    from geo.settings import SAMPLE_DIR
    from geo.store import SQLiteStore

    path = Path(sys.argv[1])
    load_into(path, SAMPLE_DIR)
    s = SQLiteStore(path)
    snap = s.snapshot()
    geom = snap.tables["communities"].geometry.iloc[0]
    cid = snap.tables["communities"]["id"].iloc[0]
    out = {}
    t = time.process_time()
    for _ in range(5):
        s.replace_all(snap.tables, author="bench", reason="r")
    out["replace_all"] = (time.process_time() - t) / 5
    t = time.process_time()
    for _ in range(20):
        s.edit_community(cid, geom, author="bench", reason="r", expected_version=None)
    out["edit"] = (time.process_time() - t) / 20
    t = time.process_time()
    for _ in range(500):
        s.serving_mark("bench", 1)
    out["heartbeat"] = (time.process_time() - t) / 500
    s.close()
    print(json.dumps(out))
    """
)


def run(checkout: Path, work: Path) -> dict[str, float]:
    """One fresh process of ``checkout``'s geo: the CPU seconds of each write."""
    path = work / f"{checkout.name}-{os.urandom(4).hex()}.gpkg"
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spread(values: list[float], scale: float) -> str:
    """min / median / max, scaled."""
    spread = Spread.of([v * scale for v in values])
    return " / ".join(f"{v:8.2f}" for v in (spread.min, spread.median, spread.max))


UNITS = {"replace_all": ("ms", 1e3), "edit": ("ms", 1e3), "heartbeat": ("µs", 1e6)}


def report(ours: list[dict[str, float]], peer: list[dict[str, float]]) -> None:
    """Per write: min / median / max of ours, the peer's and the per-round ratio."""
    print(f"CPU per write, {len(ours)} rounds: min / median / max")
    for key, (unit, scale) in UNITS.items():
        a, b = [r[key] for r in ours], [r[key] for r in peer]
        ratio = [x / y for x, y in zip(a, b, strict=True)]
        print(f"{key:12} ours {_spread(a, scale)} {unit}   peer {_spread(b, scale)} {unit}   "
              f"ours/peer {_spread(ratio, 1)}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Alternate ours and the peer, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, required=True, help="a checkout before the guard")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    ours: list[dict[str, float]] = []
    peer: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        interleave(
            {
                "ours": lambda: ours.append(run(ROOT, Path(tmp))),
                "peer": lambda: peer.append(run(args.peer.resolve(), Path(tmp))),
            },
            args.rounds,
        )
    report(ours, peer)


if __name__ == "__main__":
    main()
