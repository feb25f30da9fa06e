"""deploy/nginx-geo.conf in front of two replicas sharing one PostGIS database.

nginx (Debian's) runs the very file of deploy/ with its upstream servers and listen port
replaced by free local ports. Requests are spread over both replicas, and a write through the
proxy is read back through it from either. Skips without nginx or PostGIS; fails when
``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from pg_support import fresh_database
from support import free_port
from test_replicas import PROBE, TORCH, WEST, _owner, _put, _registered, replica

from geo.service.load import load_into
from geo.settings import SAMPLE_DIR
from geo.store import open_store, users

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "nginx-geo.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _require_nginx() -> None:
    if not Path(NGINX).exists():
        reason = "no nginx (apt-get install -y nginx)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the deploy test cannot run on CI: {reason}")
        pytest.skip(reason)


def _config(tmp: Path, listen: int, upstreams: list[str]) -> Path:
    """deploy/nginx-geo.conf with these ports, wrapped in a minimal nginx.conf under ``tmp``."""
    site = CONFIG.read_text()
    servers = "".join(f"    server {u} max_fails=1 fail_timeout=10s;\n" for u in upstreams)
    site, n = re.subn(r"(?m)^    server 127\.0\.0\.1:\d+ .*\n", "", site)
    assert n == 2, "the upstream block of deploy/nginx-geo.conf changed: update this test"
    site = site.replace("upstream geo_replicas {\n", "upstream geo_replicas {\n" + servers, 1)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    site = site.replace("/var/log/nginx/geo-access.log", str(tmp / "access.log"))
    (tmp / "geo.conf").write_text(site)
    main = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
        f"  include {tmp}/geo.conf;\n}}\n"
    )
    return main


def test_nginx_balances_and_a_write_through_it_is_read_back(tmp_path: Path) -> None:
    _require_nginx()
    with fresh_database() as url:
        load_into(url, SAMPLE_DIR)
        with open_store(url) as store:
            token = users.add_user(store, "deploy-planner", "planner")
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with replica(url, tmp_path / "a") as (a, _), replica(url, tmp_path / "b") as (b, _):
            _registered(url, 2)
            listen = free_port()
            upstreams = [a.removeprefix("http://"), b.removeprefix("http://")]
            conf = _config(tmp_path, listen, upstreams)
            check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
            proxy = subprocess.Popen(
                [NGINX, "-c", str(conf), "-g", "daemon off;"], start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            base = f"http://127.0.0.1:{listen}"
            try:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        if httpx.get(f"{base}/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        assert time.monotonic() < deadline, "nginx never answered"
                        time.sleep(0.1)
                for _ in range(20):
                    assert httpx.get(f"{base}/communities/C01").status_code == 200
                log = (tmp_path / "access.log").read_text()
                used = {u: log.count(f"upstream={u} ") for u in upstreams}
                assert all(n >= 5 for n in used.values()), used  # round robin: both answer
                for text in (WEST, TORCH):
                    r = _put(base, token, text)
                    assert r.status_code == 200, r.text
                    owners = {_owner(base) for _ in range(6)}  # over both replicas
                    assert len(owners) == 1, owners
                    assert {httpx.get(f"{base}/communities/C01").json()["properties"]["four_to"]
                            for _ in range(4)} == {text}  # fmt: skip
                assert PROBE  # the probe moved with the edits (test_replicas checks the owner)
            finally:
                os.killpg(proxy.pid, signal.SIGTERM)
                proxy.wait(timeout=20)
