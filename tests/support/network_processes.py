"""A network of real OS processes on loopback: fedcop instances (web + worker) and small peers.

    with contextlib.ExitStack() as stack:
        a = stack.enter_context(fedcop_instance("a", "127.0.0.11", database_url))
        a.cli("user", "create", "anna")

Each instance is `fedcop serve --no-workers` plus a separate worker process (`fedcop worker`,
or `tests/support/clocked_worker.py` when the test must move the worker's clock), on its own
loopback address, with the domain `host:port`. Every process is bounded in time and always
stopped at the end of its block; output goes to a log file that failures quote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fedcop.security.keys import generate_key_pair
from tests.support.processes import fedcop_command, free_loopback_port, run_fedcop
from tests.support.settings import TEST_SECRET

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
AS2 = {"accept": "application/activity+json"}


def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not met in {timeout}s: {what or check}")
        time.sleep(0.1)


class Process:
    """One OS process with its output in a log file; stopped (or killed) at the end."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_dir: Path,
        cwd: Path = REPO,
    ) -> None:  # fmt: skip
        self.name = name
        self.cwd = cwd
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command, env={**os.environ, **self.env}, cwd=self.cwd,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send `signum` (SIGKILL by default: no clean-up at all) and reap the process."""
        assert self.popen is not None
        self.popen.send_signal(signum)
        self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)

    def output(self, last: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-last:]
        return ""


def wait_for_http(process: Process, url: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running:
            raise RuntimeError(f"{process.name} exited:\n{process.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} did not answer {url} in {timeout}s:\n{process.output()}")


@dataclass
class FedcopInstance:
    """A fedcop instance run as two processes: `serve --no-workers` and a worker."""

    name: str
    host: str
    port: int
    database_url: str
    log_dir: Path
    clock_file: Path | None = None  # set: the worker is the clocked one
    web: Process = field(init=False)
    worker: Process = field(init=False)

    def __post_init__(self) -> None:
        assert self.host.startswith("127."), "test servers bind loopback addresses only"
        self.web = Process(
            f"{self.name}-web",
            fedcop_command("serve", "--host", self.host, "--port", str(self.port),
                           "--no-workers"),
            self.env, self.log_dir,
        )  # fmt: skip
        self.worker = Process(f"{self.name}-worker", self._worker_command(), self.env, self.log_dir)

    def _worker_command(self) -> list[str]:
        if self.clock_file is None:
            return fedcop_command("worker")
        return [sys.executable, "-m", "tests.support.clocked_worker"]

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.domain}"

    @property
    def env(self) -> dict[str, str]:
        env = {
            "FEDCOP_DOMAIN": self.domain,
            "FEDCOP_SCHEME": "http",
            "FEDCOP_DATABASE_URL": self.database_url,
            "FEDCOP_SECRET_KEY": TEST_SECRET,
            "FEDCOP_ALLOW_PRIVATE_ADDRESSES": "true",
            "FEDCOP_MEDIA_DIR": str(self.log_dir / f"{self.name}-media"),
            "FEDCOP_LOG_LEVEL": "warning",
        }
        if self.clock_file is not None:
            env["FEDCOP_TEST_CLOCK_FILE"] = str(self.clock_file)
        return env

    def start(self) -> None:
        self.web.start()
        self.worker.start()

    def wait_until_up(self) -> None:
        wait_for_http(self.web, f"{self.base_url}/nodeinfo/2.1")
        if not self.worker.running:
            raise RuntimeError(f"{self.worker.name} exited:\n{self.worker.output()}")

    def stop(self) -> None:
        self.worker.stop()
        self.web.stop()

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker.start()

    def move_worker_clock(self, seconds: float) -> None:
        """Set the clocked worker's clock `seconds` ahead of real time."""
        assert self.clock_file is not None, "this instance runs the plain `fedcop worker`"
        self.clock_file.write_text(str(seconds))

    def cli(self, *args: str) -> str:
        """Run a `fedcop` command against this instance; its stdout (stripped), or raise."""
        result = run_fedcop(self.env, REPO, *args)
        if result.returncode != 0:
            raise RuntimeError(f"fedcop {' '.join(args)} on {self.name}: {result.stderr}")
        return result.stdout.strip()

    def token(self, username: str) -> str:
        """A fresh API token for a local person (the last word `token create` prints)."""
        return self.cli("token", "create", username).split()[-1]

    def api(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return httpx.request(
            method, f"{self.base_url}/api/v1{path}", json=body, timeout=30, trust_env=False,
            headers={"authorization": f"Bearer {token}"},
        )  # fmt: skip

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()}" for p in (self.web, self.worker))


@contextlib.contextmanager
def fedcop_instances(specs: list[tuple[str, str, str]], log_dir: Path, clocked: bool = False,
                     wait: bool = True) -> Iterator[list[FedcopInstance]]:  # fmt: skip
    """Start instances (name, loopback host, database URL) together; stop them all at the end.

    `wait=False` yields at once, to start other things meanwhile: call `wait_until_up()`."""
    instances = [
        FedcopInstance(
            name,
            host,
            free_loopback_port(host),
            url,
            log_dir,
            clock_file=log_dir / f"{name}.clock" if clocked else None,
        )
        for name, host, url in specs
    ]
    try:
        for instance in instances:
            instance.start()
        for instance in instances if wait else []:
            instance.wait_until_up()
        yield instances
    finally:
        for instance in instances:
            instance.stop()


@dataclass
class RecorderPeer:
    """tests/peers/recorder/server.py: records every inbox POST in a journal that outlives it."""

    host: str
    port: int
    directory: Path
    delay: float = 0.0
    process: Process = field(init=False)

    def __post_init__(self) -> None:
        assert self.host.startswith("127."), "test servers bind loopback addresses only"
        self.key_path = self.directory / f"recorder-{self.host}.pem"
        self.private_pem = generate_key_pair().private_pem
        self.key_path.write_text(self.private_pem)
        self.journal = self.directory / f"recorder-{self.host}.jsonl"
        self.journal.touch()
        command = [
            sys.executable, str(REPO / "tests" / "peers" / "recorder" / "server.py"),
            "--host", self.host, "--port", str(self.port), "--key", str(self.key_path),
            "--journal", str(self.journal), "--delay", str(self.delay),
        ]  # fmt: skip
        self.process = Process(f"recorder-{self.host}", command, {}, self.directory)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def actor_id(self) -> str:
        return f"{self.base_url}/users/rec"

    @property
    def key_id(self) -> str:
        return f"{self.actor_id}#main-key"

    def start(self) -> None:
        self.launch()
        self.wait_until_up()

    def launch(self) -> None:
        self.process.start()

    def wait_until_up(self) -> None:
        wait_for_http(self.process, f"{self.base_url}/_control/health")

    def stop(self) -> None:
        self.process.stop()

    def follow(self, target: str) -> None:
        answer = httpx.post(f"{self.base_url}/_control/follow", json={"target": target},
                            timeout=30, trust_env=False).json()  # fmt: skip
        assert answer["ok"], answer

    def accepted(self, target: str) -> bool:
        state = httpx.get(f"{self.base_url}/_control/state", timeout=5, trust_env=False).json()
        return bool(state["following"].get(target, {}).get("accepted"))

    def received(self) -> list[dict[str, Any]]:
        """Every inbox POST so far, across restarts, oldest first."""
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line]


@contextlib.contextmanager
def recorder_peer(
    host: str, directory: Path, delay: float = 0.0, wait: bool = True
) -> Iterator[RecorderPeer]:
    """Run a recorder until the block ends (`wait=False`: call `wait_until_up()` later)."""
    peer = RecorderPeer(host, free_loopback_port(host), directory, delay)
    try:
        peer.launch()
        if wait:
            peer.wait_until_up()
        yield peer
    finally:
        peer.stop()


@dataclass
class BovinePeer:
    """tests/peers/bovine/server.py (bovine-herd), driven as its actor's own C2S client."""

    host: str
    port: int
    directory: Path
    process: Process = field(init=False)
    info: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        assert self.host.startswith("127."), "test servers bind loopback addresses only"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, str(REPO / "tests" / "peers" / "bovine" / "server.py"),
            "--host", self.host, "--port", str(self.port), "--dir", str(self.directory),
        ]  # fmt: skip
        # cwd: bovine keeps a JSON-LD cache file (bovine_jsonld_cache.sqlite) in the cwd.
        env = {"PYTHONPATH": str(REPO)}
        self.process = Process("bovine", command, env, self.directory, cwd=self.directory)

    def launch(self) -> None:
        self.process.start()

    def wait_until_up(self) -> None:
        info_path = self.directory / "actor.json"
        eventually(
            lambda: info_path.exists() or not self.process.running,
            timeout=START_TIMEOUT_SECONDS,
            what="bovine-herd registered its actor",
        )
        if not self.process.running:
            raise RuntimeError(f"bovine-herd exited:\n{self.process.output()}")
        self.info = json.loads(info_path.read_text())

    @property
    def actor_id(self) -> str:
        return self.info["actor_id"]

    def _run(self, action: Callable[[Any], Any]) -> Any:
        """Run `action(actor)` with bovine's own signing client (HTTP Signatures, RSA key)."""
        import asyncio

        with contextlib.chdir(self.directory):  # its JSON-LD cache file opens on import
            from bovine import BovineActor

        async def go() -> Any:
            async with BovineActor(actor_id=self.actor_id, public_key_url=self.info["key_id"],
                                   secret=self.info["private_key"]) as actor:  # fmt: skip
                return await action(actor)

        return asyncio.run(go())

    def send(self, activity: dict[str, Any]) -> None:
        """POST an activity to the actor's outbox; bovine-herd stores and delivers it."""

        async def post(actor: Any) -> None:
            await actor.post(self.info["outbox"], activity)

        self._run(post)

    def lookup(self, object_id: str) -> dict[str, Any]:
        """`object_id` as bovine-herd has it, through its proxyUrl endpoint (its store first)."""

        async def read(_: Any) -> dict[str, Any]:
            with contextlib.chdir(self.directory):
                from bovine import BovineClient

            async with BovineClient(actor_id=self.actor_id, public_key_url=self.info["key_id"],
                                    secret=self.info["private_key"]) as client:  # fmt: skip
                return dict(await client.proxy(object_id))

        return dict(self._run(read))

    def lookup_status(self, url: str) -> int:
        """The status a GET of `url`, signed by bovine's client as its actor, is answered with."""

        async def get(actor: Any) -> int:
            response = await actor.client.get(url)
            return int(response.status)

        return int(self._run(get))

    def lookup_json(self, url: str) -> dict[str, Any]:
        """GET `url` as AS2, signed by bovine's client as its actor (bovine's own fetch code)."""

        async def get(actor: Any) -> dict[str, Any]:
            return dict(await actor.get(url))

        return dict(self._run(get))

    def inbox(self) -> list[dict[str, Any]]:
        """The actor's inbox as bovine-herd stored it (newest first), items resolved."""

        async def read(actor: Any) -> list[dict[str, Any]]:
            collection = await actor.get_ordered_collection(self.info["inbox"])
            return list(collection["items"])

        return list(self._run(read))


@contextlib.contextmanager
def bovine_peer(host: str, directory: Path, wait: bool = True) -> Iterator[BovinePeer]:
    """Run bovine-herd until the block ends (`wait=False`: call `wait_until_up()` later)."""
    peer = BovinePeer(host, free_loopback_port(host), directory)
    try:
        peer.launch()
        if wait:
            peer.wait_until_up()
        yield peer
    finally:
        peer.process.stop()
