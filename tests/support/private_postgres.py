"""A private PostgreSQL cluster for one test module: ours to stop and start.

The machine's shared PostgreSQL (127.0.0.1:5432) serves every other test and engineer, so a
test that restarts the database makes its own cluster: `initdb` in a temporary directory, then
`pg_ctl` on a free loopback port with trust auth. PostgreSQL refuses to run as root, so as root
the cluster belongs to the `postgres` OS user and the commands run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_loopback_port

HOST = "127.0.0.1"
COMMAND_TIMEOUT_SECONDS = 60


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"{name} not found (PATH or /usr/lib/postgresql/*/bin): install the PostgreSQL "
            "server package to run the database fault test"
        )
    return found


@dataclass
class PrivateCluster:
    directory: Path
    port: int
    run_as: str | None  # an OS user to run the server as (we are root), or None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `fedcop` database on this cluster."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/fedcop"

    def _run(self, *command: str) -> None:
        full = ["su", self.run_as, "-s", "/bin/sh", "-c", " ".join(command)] if self.run_as else [
            *command
        ]  # fmt: skip
        result = subprocess.run(full, capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT_SECONDS, check=False)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses={HOST} -c fsync=off"
        log = str(self.directory / "server.log")
        data = str(self.directory / "data")
        self._run(_binary("pg_ctl"), "-D", data, "-l", log, "-o", f"'{options}'", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash (no shutdown checkpoint)."""
        self._run(_binary("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w",
                  "stop")  # fmt: skip

    def create_database(self) -> None:
        self._run(_binary("createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
                  "fedcop")  # fmt: skip


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    run_as = "postgres" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="fedcop-pg-") as name:
        directory = Path(name)
        if run_as is not None:
            user = pwd.getpwnam(run_as)
            os.chown(directory, user.pw_uid, user.pw_gid)
        cluster = PrivateCluster(directory, free_loopback_port(HOST), run_as)
        cluster._run(_binary("initdb"), "-D", str(directory / "data"), "-U", "postgres",
                     "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        cluster.start()
        try:
            cluster.create_database()
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
