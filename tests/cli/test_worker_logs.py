"""An operator sees fedcop's own log lines, at FEDCOP_LOG_LEVEL, from a real `fedcop worker`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import TEST_SECRET
from tests.support.network_processes import Process, eventually
from tests.support.processes import fedcop_cli, fedcop_command

STANDING_BY = "INFO:     fedcop.worker_turn: another process runs the workers for"
TAKING_OVER = "INFO:     fedcop.worker_turn: this process now runs the workers for"


def test_a_second_worker_says_it_stands_by_then_that_it_took_over(tmp_path: Path) -> None:
    with worker_while_another_holds_the_turn(tmp_path, "info") as (worker, let_go):
        eventually(lambda: STANDING_BY in worker.output(), what="the stand-by line")
        assert TAKING_OVER not in worker.output()
        let_go()
        eventually(lambda: TAKING_OVER in worker.output(), what="the take-over line")
    assert worker.popen is not None
    assert worker.popen.returncode == 0, worker.output()


def test_at_warning_level_the_workers_info_lines_are_not_shown(tmp_path: Path) -> None:
    with worker_while_another_holds_the_turn(tmp_path, "warning") as (worker, _):
        # The banner is printed just before the worker asks for its turn; at "info" the
        # stand-by line follows within milliseconds (the test above).
        eventually(lambda: "deliveries in flight" in worker.output(), what="the banner")
        time.sleep(1.0)
        assert worker.running, worker.output()
    assert "fedcop.worker_turn" not in worker.output()


@contextlib.contextmanager
def worker_while_another_holds_the_turn(
    tmp_path: Path, level: str
) -> Iterator[tuple[Process, Callable[[], None]]]:
    """A `fedcop worker` on a migrated SQLite file whose workers' lock this test holds, as
    another process running the workers would; yields it and a function that lets go."""
    database = tmp_path / "fedcop.db"
    env = {
        "FEDCOP_DOMAIN": "localhost:8000",
        "FEDCOP_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "FEDCOP_SECRET_KEY": TEST_SECRET,
        "FEDCOP_MEDIA_DIR": str(tmp_path / "media"),
        "FEDCOP_LOG_LEVEL": level,
    }
    fedcop_cli(env, tmp_path, "migrate")
    with contextlib.ExitStack() as stack:
        holder = os.open(f"{database}-workers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        stack.callback(os.close, holder)
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        worker = Process("worker", fedcop_command("worker"), env, tmp_path)
        stack.callback(worker.stop)
        worker.start()
        yield worker, lambda: fcntl.flock(holder, fcntl.LOCK_UN)
