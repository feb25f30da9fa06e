"""No token, in any form, reaches a log: a real `geo serve` (two workers, access log on) is sent
tokens in the query (under every credential name, percent-encoded too), in the path, and in
headers; its whole stderr and stdout must not hold a single secret."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from support import geo_serve

from geo.api.access_log import REDACTED, redact
from geo.store import open_store, users


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, copy_sample) -> Path:
    return Path(copy_sample(tmp_path_factory.mktemp("logs") / "store.gpkg"))


def test_redact_query_values_headers_and_geo_tokens() -> None:
    token = "0123456789abcdef." + "S" * 43
    cases = {
        "/locate?lon=1&access_token=abc&lat=2": "/locate?lon=1&access_token=[redacted]&lat=2",
        "/x?TOKEN=a&Api_Key=b&apikey=c": "/x?TOKEN=[redacted]&Api_Key=[redacted]&apikey=[redacted]",
        "/health%3Btoken%3Dabc%26x=1": "/health%3Btoken%3D[redacted]%26x=1",
        "/x?access%5Ftoken=zz": "/x?access%5Ftoken=[redacted]",
        "/x;token=zz": "/x;token=[redacted]",
        "Authorization: Bearer abcdefgh": "Authorization: [redacted]",
        "sent bearer abcdefgh here": "sent bearer [redacted] here",
        f"/communities/{token}": "/communities/0123456789abcdef.[redacted]",
        "/search?q=keyword&monkey=1": "/search?q=keyword&monkey=1",  # nothing secret: unchanged
    }
    for text, want in cases.items():
        assert redact(text) == want, text


def test_no_token_reaches_the_server_logs(db: Path, tmp_path: Path) -> None:
    with open_store(db) as store:
        token = users.add_user(store, "log-planner", "planner")
    secrets = [token, token.split(".", 1)[1], "q-secret-1", "q-secret-2", "q-secret-3"]
    log = (tmp_path / "server.log").open("w+b")
    env = {"GEO_ACCESS_LOG": "true", "PYTHONUNBUFFERED": "1"}
    with geo_serve(db, "--workers", "2", "--access-log", servers=2, log=log, env=env) as base:
        urls = [
            f"/locate?lon=120.2&lat=30.2&access_token={token}",
            f"/health?token={token}&api_key=q-secret-1",
            f"/communities/C01?access%5Ftoken={token}",
            "/health?apikey=q-secret-2&x=1",
            f"/communities/{token}",
            f"/search?q={token}",
            "/health;token=q-secret-3",
        ]
        for _ in range(3):  # new connections: both workers answer some
            for url in urls:
                httpx.get(base + url)
            httpx.get(f"{base}/communities/C01", headers={"Authorization": f"Bearer {token}"})
            httpx.get(f"{base}/health", headers={"Authorization": "Bearer q-secret-3x"})
        time.sleep(1.0)
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    assert "/health?token=" + REDACTED in text, text[-3000:]  # the access log did run
    assert "access_token=" + REDACTED in text and "apikey=" + REDACTED in text
    pids = {line.split("[", 1)[1].split("]", 1)[0] for line in text.splitlines() if "[" in line}
    assert len(pids) >= 2  # both workers (and the parent) logged
    for secret in secrets:
        assert secret not in text, f"{secret!r} in the log"
