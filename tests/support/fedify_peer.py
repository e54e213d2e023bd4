"""A real, independently written ActivityPub server (Fedify) on loopback, for interop tests.

`tests/peers/fedify/server.mjs` is a small server built with @fedify/fedify 1.5.9 (Node), with
one actor, `probe`, and a plain-JSON control API under `/_control/`. Every activity that reaches
its inbox listeners was verified by Fedify first (HTTP Signature, LD signature or FEP-8b32
proof, else 401), so an entry in `received()` means "Fedify accepted and verified it"; refused
POSTs show up in `inbox_log()` with their status, and Fedify's reasons in `logs()`.

    with running_fedify_peer("127.0.0.3") as peer:
        peer.follow("http://127.0.0.2:8000/groups/cats")
        accept = peer.wait_for(lambda a: a["type"] == "Accept")

Needs `node` and `npm` (Node >= 20); `ensure_installed()` runs `npm ci` once.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

PEER_DIR = Path(__file__).resolve().parent.parent / "peers" / "fedify"
INSTALL_TIMEOUT_SECONDS = 300.0
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CONTROL_TIMEOUT_SECONDS = 30.0
# The node process exits by itself after this long, should the test run die without stopping it.
MAX_LIFETIME_SECONDS = 1800

ActivityRecord = dict[str, Any]


class FedifyPeerError(RuntimeError):
    """The Fedify peer could not be installed or started, or a control call failed."""


def _require_tools() -> tuple[str, str]:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        raise FedifyPeerError(
            f"{missing} not found on PATH: the Fedify interop peer needs Node.js >= 20 with npm "
            "(e.g. `apt-get install -y nodejs npm`)"
        )
    return node, npm


def _installed() -> bool:
    marker = PEER_DIR / "node_modules" / ".package-lock.json"  # npm writes it last
    lock = PEER_DIR / "package-lock.json"
    if not marker.is_file() or not (PEER_DIR / "node_modules" / "@fedify" / "fedify").is_dir():
        return False
    return not lock.is_file() or lock.stat().st_mtime <= marker.stat().st_mtime


def ensure_installed(timeout: float = INSTALL_TIMEOUT_SECONDS) -> Path:
    """Install the peer's npm dependencies once (`npm ci`); return the peer's directory."""
    _, npm = _require_tools()
    if _installed():
        return PEER_DIR
    with (PEER_DIR / ".install.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # one installer at a time
        if _installed():
            return PEER_DIR
        has_lock = (PEER_DIR / "package-lock.json").is_file()
        command = [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"]
        try:
            result = subprocess.run(
                command,
                cwd=PEER_DIR,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise FedifyPeerError(f"`{' '.join(command)}` took more than {timeout:.0f}s") from exc
        if result.returncode != 0:
            raise FedifyPeerError(
                f"`{' '.join(command)}` in {PEER_DIR} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
    return PEER_DIR


def _check_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise FedifyPeerError(f"{host!r} is not an IP address; use a 127.x.y.z one") from None
    if address.version != 4 or not address.is_loopback:
        raise FedifyPeerError(f"{host} is not in 127.0.0.0/8; the Fedify peer binds only there")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class FedifyPeer:
    """A running Fedify server with the actor `probe`, driven through `/_control/`."""

    host: str
    port: int
    client: httpx.Client = field(repr=False)
    output_path: Path | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base_url}/users/probe"

    @property
    def key_id(self) -> str:
        """The RSA key (draft-cavage signatures); the Ed25519 key is `#key-2`."""
        return f"{self.actor_id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.actor_id}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def handle(self) -> str:
        return f"probe@{self.host}:{self.port}"

    # -- actions ---------------------------------------------------------------------------

    def follow(self, target: str, *, signed_fetch: bool = True) -> dict[str, Any]:
        """Look `target` up (actor URL or `name@host:port` handle) and send it a Follow.

        Returns the control answer: `actor`, `inbox` and `sent` (the Follow's JSON). Raises
        FedifyPeerError if the lookup failed or the delivery was answered non-2xx.
        """
        return self._post("follow", {"target": target, "signed_fetch": signed_fetch})

    def unfollow(self, target: str, *, signed_fetch: bool = True) -> dict[str, Any]:
        """Send Undo(Follow) for the Follow that `follow(target)` sent."""
        return self._post("unfollow", {"target": target, "signed_fetch": signed_fetch})

    def post_note(
        self, target: str, content: str, *, in_reply_to: str | None = None
    ) -> dict[str, Any]:
        """Send a public Create(Note) that cc's (and is delivered to) `target`.

        The answer's `note` is the Note's id, which the peer serves.
        """
        body: dict[str, Any] = {"target": target, "content": content}
        if in_reply_to is not None:
            body["in_reply_to"] = in_reply_to
        return self._post("note", body)

    def like(self, target: str, object_id: str) -> dict[str, Any]:
        """Send a Like of `object_id` to `target`'s inbox."""
        return self._post("like", {"target": target, "object": object_id})

    def reset(self) -> None:
        """Forget what was received, logged and sent so far (follow state is kept)."""
        self._post("reset", {})

    # -- observations ----------------------------------------------------------------------

    def received(self) -> list[ActivityRecord]:
        """Activities that reached probe's inbox listeners, oldest first.

        Each: `type`, `id`, `actor`, `object_id`, `object_type`, `object_embedded`, `inbox`
        ("personal"/"shared"), `recipient`, `verified` (always True), `verified_by`, and `json`
        (the activity as received).
        """
        return cast(list[ActivityRecord], self._get("received"))

    def inbox_log(self) -> list[dict[str, Any]]:
        """Every POST to an inbox: `path`, `headers`, `body`, and Fedify's `status`."""
        return cast(list[dict[str, Any]], self._get("inbox_log"))

    def outbound(self) -> list[dict[str, Any]]:
        """Every request Fedify made: `method`, `url`, `headers`, `body`, `status`/`error`."""
        return cast(list[dict[str, Any]], self._get("outbound"))

    def logs(self) -> list[dict[str, Any]]:
        """Fedify's log records (debug and up): why a signature failed, etc."""
        return cast(list[dict[str, Any]], self._get("logs"))

    def delivery_errors(self) -> list[dict[str, Any]]:
        """Failed tries of background deliveries (the automatic Accept of a Follow; 4 tries)."""
        return cast(list[dict[str, Any]], self._get("delivery_errors"))

    def state(self) -> dict[str, Any]:
        """`following` (target -> follow_id/accepted/rejected) and `followers`."""
        return cast(dict[str, Any], self._get("state"))

    def wait_for(
        self,
        predicate: Callable[[ActivityRecord], bool],
        timeout: float = 10.0,
        interval: float = 0.1,
    ) -> ActivityRecord:
        """Poll `received()` until an activity matches; return it, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            for activity in self.received():
                if predicate(activity):
                    return activity
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no matching activity at {self.actor_id} in {timeout}s\n{self.diagnostics()}"
                )
            time.sleep(interval)

    def diagnostics(self, last: int = 20) -> str:
        """A readable summary of recent traffic and Fedify's warnings, for failure messages."""
        try:
            received = [(a["type"], a["actor"], a["id"]) for a in self.received()[-last:]]
            inbox = [
                (e["status"], e["path"], e["activity_type"], e["response"])
                for e in self.inbox_log()[-last:]
            ]
            sent = [
                (e["method"], e["url"], e["status"], e["error"]) for e in self.outbound()[-last:]
            ]
            logs = [
                f"{e['level']} {e['category']}: {e['message'][:500]}"
                for e in self.logs()
                if e["level"] in ("warning", "error", "fatal") or "Failed to verify" in e["message"]
            ][-last:]
        except (httpx.HTTPError, FedifyPeerError) as exc:
            return f"(diagnostics unavailable: {exc})"
        return "\n".join(
            [
                f"received: {json.dumps(received, indent=1)}",
                f"inbox POSTs: {json.dumps(inbox, indent=1)}",
                f"outbound: {json.dumps(sent, indent=1)}",
                "fedify log:",
                *logs,
            ]
        )

    # -- plumbing --------------------------------------------------------------------------

    def _get(self, name: str) -> Any:
        response = self.client.get(f"{self.base_url}/_control/{name}")
        if response.status_code != 200:
            raise FedifyPeerError(f"GET /_control/{name}: {response.status_code} {response.text}")
        return response.json()

    def _post(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"{self.base_url}/_control/{name}", json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = {"ok": False, "error": response.text}
        if response.status_code != 200 or not answer.get("ok"):
            raise FedifyPeerError(
                f"POST /_control/{name} {body}: {response.status_code} {answer.get('error')}"
            )
        return cast(dict[str, Any], answer)


@contextlib.contextmanager
def running_fedify_peer(host: str = "127.0.0.3", port: int | None = None) -> Iterator[FedifyPeer]:
    """Run the Fedify peer on `host:port` (a free port if None) until the block ends."""
    _check_loopback(host)
    node, _ = _require_tools()
    ensure_installed()
    port = port if port is not None else free_port(host)
    env = {
        **os.environ,
        "FEDIFY_PEER_HOST": host,
        "FEDIFY_PEER_PORT": str(port),
        "FEDIFY_PEER_MAX_SECONDS": str(MAX_LIFETIME_SECONDS),
        "FEDIFY_PEER_EXIT_ON_STDIN_EOF": "1",
        "NODE_NO_WARNINGS": "1",
    }
    with (
        tempfile.NamedTemporaryFile(
            "w+", prefix=f"fedify-peer-{host}-{port}-", suffix=".log", delete=False
        ) as output,
        httpx.Client(timeout=CONTROL_TIMEOUT_SECONDS, trust_env=False) as client,
    ):
        process = subprocess.Popen(
            [node, "server.mjs", "--host", host, "--port", str(port)],
            cwd=PEER_DIR,
            env=env,
            stdin=subprocess.PIPE,  # closed at exit: the server ends with us
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        output_path = Path(output.name)
        peer = FedifyPeer(host=host, port=port, client=client, output_path=output_path)
        try:
            _wait_until_up(process, peer, output_path)
            yield peer
        finally:
            _stop(process)
            with contextlib.suppress(OSError):
                output_path.unlink()


def _wait_until_up(process: subprocess.Popen[bytes], peer: FedifyPeer, output: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FedifyPeerError(
                f"the Fedify peer exited with {process.returncode}:\n{output.read_text()[-4000:]}"
            )
        with contextlib.suppress(httpx.TransportError):
            response = peer.client.get(f"{peer.base_url}/_control/health", timeout=1)
            if response.status_code == 200:
                return
        time.sleep(0.1)
    raise FedifyPeerError(
        f"the Fedify peer did not answer at {peer.base_url} in {START_TIMEOUT_SECONDS}s:\n"
        f"{output.read_text()[-4000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
