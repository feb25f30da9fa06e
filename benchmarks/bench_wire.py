"""Weight and speed on the wire: the district map and an officer map over throttled 3G.

A real `geo serve` on the sample district (a new store in a temporary directory), headless
Chromium (``/usr/bin/chromium``, driven by Playwright) with Chrome's network throttling through
the DevTools protocol (``Network.emulateNetworkConditions``: 1.6 Mbit/s down, 750 kbit/s up,
300 ms latency — the "3G" of the issue). Each round opens each page in a new browser context
(an empty cache), twice: as Chromium asks (``Accept-Encoding: gzip, deflate, br, zstd``) and,
as the peer, with ``Accept-Encoding: identity`` (nothing compressed), interleaved: each round
opens every (page, mode) once, the order rotating from round to round (`common.interleave`).

Per page and mode it reports, over the rounds (min / median / max):

* **bytes**: the sum of every response's encoded size on the wire (headers and body, CDP
  ``Network.loadingFinished.encodedDataLength``) from navigation until the network is idle
  (500 ms without a request) after the page is interactive;
* **interactive**: the page's own mark ``window.GEO.interactiveAt`` (ms since navigation
  start, set by ``static/geo/maps.js`` once every overlay is drawn and every vector-tile layer
  has loaded its tiles; the search box exists by then) — and, for the district map, the first
  search answer: the time from typing a name in the search box to its results list showing.

Pages are opened with ``?basemap=none``: base-map tiles come from OpenStreetMap, not from this
service (with a base map, add its tiles to both figures). Then, per page, min / median / max
of the per-round ratio compressed ÷ identity of the bytes, the interactive time and the first
search. The officer map is the officer with
the most enterprises in their buildings (the heaviest officer map), unless ``--officer``.

    python benchmarks/bench_wire.py --rounds 3

Timings on a shared 2-core machine are noisy; the byte counts are deterministic.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Spread, interleave
from common import serve as geo_serve

CHROMIUM = os.environ.get("GEO_CHROMIUM", "/usr/bin/chromium")
THREE_G = {
    "offline": False,
    "latency": 300,  # ms
    "downloadThroughput": 1_600_000 / 8,  # bytes/s
    "uploadThroughput": 750_000 / 8,
}
BUDGET = {"district": 1_200_000, "officer": 250_000}  # bytes (issue 15)
GOAL_MS = {"district": 5000, "officer": 3000}


@contextlib.contextmanager
def serve(tmp: Path) -> Iterator[str]:
    """`geo serve` on a new store of the sample district; yields its base URL."""
    from geo.settings import SAMPLE_DIR

    with (
        open(tmp / "serve.log", "wb") as log,
        geo_serve(tmp / "wire.gpkg", env={"GEO_DATA": str(SAMPLE_DIR)}, log=log, timeout=180) as s,
    ):
        yield s.base


def officer_of(db: Path) -> str:
    """The officer with the most enterprises in their buildings (ties: smallest id)."""
    from geo.atlas import Atlas
    from geo.maps.data import derived
    from geo.store import open_store

    store = open_store(db)
    try:
        atlas = Atlas(store.snapshot())
    finally:
        store.close()
    per_building = derived(atlas).ent["building_id"].value_counts()
    best, best_n = "", -1
    for o in atlas.tables["officers"].sort_values("id").itertuples(index=False):
        ids = [b.strip() for b in str(o.building_ids or "").split(";") if b.strip()]
        n = int(sum(per_building.get(b, 0) for b in ids))
        if n > best_n:
            best, best_n = o.id, n
    return best


class Probe:
    """One page load in a fresh context, throttled; bytes and times."""

    def __init__(self, browser, url: str, identity: bool, search: str | None) -> None:
        self.browser, self.url, self.identity, self.search = browser, url, identity, search
        self.bytes = 0
        self.requests: dict[str, dict] = {}
        self.last_activity = time.monotonic()

    def _finished(self, ev: dict) -> None:
        self.bytes += int(ev.get("encodedDataLength", 0))
        self.last_activity = time.monotonic()

    def _response(self, ev: dict) -> None:
        r = ev["response"]
        headers = {k.lower(): v for k, v in r.get("headers", {}).items()}
        self.requests[ev["requestId"]] = {
            "url": r["url"],
            "encoding": headers.get("content-encoding", "identity"),
        }
        self.last_activity = time.monotonic()

    def run(self) -> dict:
        context = self.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        try:
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            cdp.send("Network.emulateNetworkConditions", THREE_G)
            if self.identity:
                cdp.send(
                    "Network.setExtraHTTPHeaders", {"headers": {"Accept-Encoding": "identity"}}
                )
            cdp.on("Network.loadingFinished", self._finished)
            cdp.on("Network.responseReceived", self._response)
            cdp.on("Network.requestWillBeSent", lambda _e: self._touch())
            page.goto(self.url, wait_until="commit", timeout=120_000)
            page.wait_for_function(
                "() => window.GEO && window.GEO.ready === true"
                " && (!document.querySelector('.geo-search') ||"
                " !!document.querySelector('.geo-search input'))",
                timeout=120_000,
                polling=50,
            )
            interactive = page.evaluate("() => window.GEO.interactiveAt")
            self._idle(page)
            out = {"bytes": self.bytes, "interactive_ms": interactive}
            if self.search:
                out["search_ms"] = self._search(page)
                self._idle(page)
                out["bytes_with_search"] = self.bytes
            out["encodings"] = sorted({r["encoding"] for r in self.requests.values()})
            return out
        finally:
            context.close()

    def _touch(self) -> None:
        self.last_activity = time.monotonic()

    def _idle(self, page, quiet: float = 0.5, cap: float = 60) -> None:
        end = time.monotonic() + cap
        while time.monotonic() < end and time.monotonic() - self.last_activity < quiet:
            page.wait_for_timeout(100)

    def _search(self, page) -> float:
        """ms from typing ``self.search`` to a result naming it."""
        box = page.locator(".geo-search input")
        t0 = time.perf_counter()
        box.fill(self.search)
        page.locator(".geo-results li", has_text=self.search).first.wait_for(timeout=60_000)
        return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> None:
    """Start the server and the browser, warm up, run the rounds, print the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--officer", help="officer id (default: the one with most enterprises)")
    ap.add_argument("--no-identity", action="store_true", help="skip the uncompressed peer")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as base:
        officer = args.officer or officer_of(Path(tmp) / "wire.gpkg")
        ent = httpx.get(f"{base}/search", params={"q": "海康", "kind": "enterprise"}, timeout=300)
        name = ent.json()["results"][0]["name"]
        pages = {
            "district": (f"{base}/maps/?basemap=none", name),
            "officer": (f"{base}/maps/officer/{officer}?basemap=none", None),
        }
        modes = ["br"] if args.no_identity else ["br", "identity"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for url, search in pages.values():  # a round unmeasured: tiles made, index built
                for mode in modes:
                    Probe(browser, url, mode == "identity", search).run()
            results = measure(browser, pages, modes, args.rounds)
            browser.close()
    report(results, officer, modes)


def measure(
    browser, pages: dict[str, tuple[str, str | None]], modes: list[str], rounds: int
) -> dict[tuple[str, str], list[dict]]:
    """Every (page, mode) once per round, the order rotating; each load's figures."""
    results: dict[tuple[str, str], list[dict]] = {(p, m): [] for p in pages for m in modes}

    def probe(page: str, mode: str) -> None:
        url, search = pages[page]
        out = Probe(browser, url, mode == "identity", search).run()
        results[(page, mode)].append(out)
        n = len(results[(page, mode)])
        print(f"round {n} {page:<8} {mode:<8} {out}", flush=True)

    interleave(
        {f"{p} {m}": (lambda p=p, m=m: probe(p, m)) for p, m in results},
        rounds,
    )
    return results


MEASURES = (
    ("bytes", "bytes", ",.0f"),
    ("interactive_ms", "interactive ms", ",.0f"),
    ("search_ms", "first search ms", ",.0f"),
    ("bytes_with_search", "bytes after search", ",.0f"),
)


def report(results: dict[tuple[str, str], list[dict]], officer: str, modes: list[str]) -> None:
    """min / median / max per page, mode and measure; then the per-round ratios."""
    print(f"\n3G (1.6 Mbit/s down, 750 kbit/s up, 300 ms); officer map: {officer}")
    for (page, mode), runs in results.items():
        print(f"{page} map, {mode}, {len(runs)} rounds:")
        for key, label, fmt in MEASURES:
            if key not in runs[0]:
                continue
            line = Spread.of([x[key] for x in runs]).line(label, fmt)
            goal = {"bytes": BUDGET, "interactive_ms": GOAL_MS}.get(key)
            print(line + (f"  goal < {goal[page]:,}" if goal and mode == "br" else ""))
    if "identity" not in modes:
        return
    print("\nratio compressed / identity, per round:")
    for page in dict.fromkeys(p for p, _ in results):
        br, idn = results[(page, "br")], results[(page, "identity")]
        for key, label, _ in MEASURES:
            if key in br[0]:
                ratio = [a[key] / b[key] for a, b in zip(br, idn, strict=True)]
                print(Spread.of(ratio).line(f"{page} {label}", ".3f"))


if __name__ == "__main__":
    main()
