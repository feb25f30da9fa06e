"""Weight and speed on the wire: the district map and an officer map over throttled 3G.

A real `geo serve` on the sample district (a new store in a temporary directory), headless
Chromium (``/usr/bin/chromium``, driven by Playwright) with Chrome's network throttling through
the DevTools protocol (``Network.emulateNetworkConditions``: 1.6 Mbit/s down, 750 kbit/s up,
300 ms latency — the "3G" of the issue). Each round opens each page in a new browser context
(an empty cache), twice: as Chromium asks (``Accept-Encoding: gzip, deflate, br, zstd``) and,
as the peer, with ``Accept-Encoding: identity`` (nothing compressed), interleaved.

Per page and mode it reports, over the rounds (min / median / max):

* **bytes**: the sum of every response's encoded size on the wire (headers and body, CDP
  ``Network.loadingFinished.encodedDataLength``) from navigation until the network is idle
  (500 ms without a request) after the page is interactive;
* **interactive**: the page's own mark ``window.GEO.interactiveAt`` (ms since navigation
  start, set by ``static/geo/maps.js`` once every overlay is drawn and every vector-tile layer
  has loaded its tiles; the search box exists by then) — and, for the district map, the first
  search answer: the time from typing a name in the search box to its results list showing.

Pages are opened with ``?basemap=none``: base-map tiles come from OpenStreetMap, not from this
service (with a base map, add its tiles to both figures). The officer map is the officer with
the most enterprises in their buildings (the heaviest officer map), unless ``--officer``.

    python benchmarks/bench_wire.py --rounds 3

Timings on a shared 2-core machine are noisy; the byte counts are deterministic.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

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
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from geo.settings import SAMPLE_DIR

    env = {**os.environ, "GEO_DATA": str(SAMPLE_DIR)}
    cmd = [sys.executable, "-m", "geo.cli", "serve", "--db", str(tmp / "wire.gpkg")]
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError((tmp / "serve.log").read_text())
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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


def summary(values: list[float]) -> str:
    return f"{min(values):>9,.0f} {statistics.median(values):>9,.0f} {max(values):>9,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--officer", help="officer id (default: the one with most enterprises)")
    ap.add_argument("--no-identity", action="store_true", help="skip the uncompressed peer")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as base:
        officer = args.officer or officer_of(Path(tmp) / "wire.gpkg")
        ent = httpx.get(f"{base}/search", params={"q": "海康", "kind": "enterprise"}, timeout=300)
        ent = ent.json()
        name = ent["results"][0]["name"]
        pages = {
            "district": (f"{base}/maps/?basemap=none", name),
            "officer": (f"{base}/maps/officer/{officer}?basemap=none", None),
        }
        modes = ["br"] if args.no_identity else ["br", "identity"]
        results: dict[tuple[str, str], list[dict]] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for url, search in pages.values():  # a round unmeasured: tiles made, index built
                for mode in modes:
                    Probe(browser, url, mode == "identity", search).run()
            for r in range(args.rounds):
                for key, (url, search) in pages.items():
                    for mode in modes:
                        out = Probe(browser, url, mode == "identity", search).run()
                        results.setdefault((key, mode), []).append(out)
                        print(f"round {r + 1} {key:<8} {mode:<8} {out}", flush=True)
            browser.close()
    report(results, officer, modes)


def report(results: dict[tuple[str, str], list[dict]], officer: str, modes: list[str]) -> None:
    print(f"\n3G (1.6 Mbit/s down, 750 kbit/s up, 300 ms); officer map: {officer}")
    print(f"{'page':<9}{'mode':<9}{'measure':<20}{'min':>9} {'median':>9} {'max':>9}  goal")
    for (page, mode), runs in results.items():
        b = [x["bytes"] for x in runs]
        t = [x["interactive_ms"] for x in runs]
        goal = BUDGET[page] if mode == "br" else ""
        print(f"{page:<9}{mode:<9}{'bytes':<20}{summary(b)}  {goal and f'< {goal:,}'}")
        tgoal = GOAL_MS[page] if mode == "br" else ""
        print(f"{page:<9}{mode:<9}{'interactive ms':<20}{summary(t)}  {tgoal and f'< {tgoal:,}'}")
        if "search_ms" in runs[0]:
            s = [x["search_ms"] for x in runs]
            print(f"{page:<9}{mode:<9}{'first search ms':<20}{summary(s)}")
            w = [x["bytes_with_search"] for x in runs]
            print(f"{page:<9}{mode:<9}{'bytes after search':<20}{summary(w)}")
    if "identity" in modes:
        print("\nratio compressed / identity (per round)")
        for page in {p for p, _ in results}:
            br, idn = results[(page, "br")], results[(page, "identity")]
            rb = [a["bytes"] / b["bytes"] for a, b in zip(br, idn, strict=True)]
            rt = [a["interactive_ms"] / b["interactive_ms"] for a, b in zip(br, idn, strict=True)]
            print(
                f"{page:<9}bytes {min(rb):.3f} {statistics.median(rb):.3f} {max(rb):.3f}   "
                f"interactive {min(rt):.3f} {statistics.median(rt):.3f} {max(rt):.3f}"
            )


if __name__ == "__main__":
    main()
