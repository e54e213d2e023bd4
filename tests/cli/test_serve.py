"""`fedcop serve` as a real process: Mastodon's request gets AS2, and keys survive restarts."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import httpx

from tests.support.network_processes import Process, eventually, recorder_peer, wait_for_http
from tests.support.processes import (
    fedcop_cli,
    fedcop_command,
    free_loopback_port,
    running_server,
)
from tests.support.settings import TEST_SECRET, loopback_env

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
        fedcop_cli(env, tmp_path, "migrate")  # PostgreSQL is migrated explicitly, not by `serve`
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


def test_serve_in_two_processes_answers_a_follow_once(
    empty_database_url: str, tmp_path: Path
) -> None:
    """`fedcop serve --processes 2`: two web processes share the port, both serve, and a
    remote Follow is accepted once, by the workers one process runs (SQLite) or both run on
    PostgreSQL, which never let two processes send one delivery."""
    host = "127.0.0.31"
    port = free_loopback_port(host)
    env = loopback_env(empty_database_url, host, port, FEDCOP_MEDIA_DIR=str(tmp_path / "media"))
    if not empty_database_url.startswith("sqlite"):
        fedcop_cli(env, tmp_path, "migrate")
    group = f"http://{host}:{port}/groups/practice"
    with contextlib.ExitStack() as stack:
        peer = stack.enter_context(recorder_peer("127.0.0.32", tmp_path))
        server = Process(
            "serve",
            fedcop_command("serve", "--host", host, "--port", str(port), "--processes", "2"),
            env, tmp_path,
        )  # fmt: skip
        stack.callback(server.stop)
        server.start()
        wait_for_http(server, f"http://{host}:{port}/nodeinfo/2.1")
        fedcop_cli(env, tmp_path, "user", "create", "convenor")
        fedcop_cli(env, tmp_path, "group", "create", "practice", "--name", "Practice",
                   "--owner", "convenor")  # fmt: skip
        peer.follow(group)
        eventually(lambda: peer.accepted(group), what="the peer's Follow accepted")
        time.sleep(1.5)  # time for a second Accept, were one to be sent
        accepts = [item for item in peer.received() if item["type"] == "Accept"]
        assert len(accepts) == 1
        as2 = {"accept": "application/activity+json"}
        followers = httpx.get(f"{group}/followers", headers=as2, trust_env=False).json()
        page = httpx.get(followers["first"], headers=as2, trust_env=False).json()
        assert peer.actor_id in page["orderedItems"]
        assert server.output().count("Started server process") == 2
