"""`fedcop serve` as a real process: Mastodon's request gets AS2, and keys survive restarts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.support.processes import fedcop_command, free_loopback_port, running_server

MASTODON_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams", text/html;q=0.1'
)


def test_serve_demo_then_restart_keeps_the_group_key(
    empty_database_url: str, tmp_path: Path
) -> None:
    port = free_loopback_port()
    env = {
        "FEDCOP_DOMAIN": f"localhost:{port}",
        "FEDCOP_SCHEME": "http",
        "FEDCOP_DATABASE_URL": empty_database_url,
        "FEDCOP_SECRET_KEY": TEST_SECRET,
    }
    if not empty_database_url.startswith("sqlite"):
        # PostgreSQL is migrated explicitly, never by `serve`.
        migrated = subprocess.run(
            fedcop_command("migrate"), env={**os.environ, **env}, cwd=tmp_path,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stderr
    keys = []
    for _ in range(2):
        with running_server(env, port, "--demo") as base_url:
            response = httpx.get(
                f"{base_url}/groups/frailty_practice", headers={"accept": MASTODON_ACCEPT}
            )
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/activity+json"
            document = response.json()
            assert document["type"] == "Group"
            assert document["id"] == f"http://localhost:{port}/groups/frailty_practice"
            keys.append(document["publicKey"]["publicKeyPem"])
            page = httpx.get(f"{base_url}/groups/frailty_practice", headers={"accept": "text/html"})
            assert "What is a community of practice?" in page.text  # the demo's first story
    assert keys[0] == keys[1]
    assert keys[0].startswith("-----BEGIN PUBLIC KEY-----")
