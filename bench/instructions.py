"""The inbox verify path counted in CPU instructions: a figure no neighbour on the machine moves.

`verify` compares requests per second, which on a shared 2-core machine swing 2x from run to
run (other processes steal time, and the same instruction runs slower with a busy neighbour
core). Here the same in-process drive (bench/verify.py: pre-signed POSTs through the real app
by a raw ASGI driver, 32 in flight, SQLite) runs under valgrind's callgrind, which counts the
instructions the process executes, the same whatever else the machine does.

Per request = (instructions for 2N requests - for N) / N: everything both runs share (start-up,
imports, migrations, the warm-up request) cancels. The baseline is the bare Starlette app of
bench/verify.py (parse JSON, digest, one RSA verify) counted the same way, so the ratio
bare / fedcop is the issue's "≥ 50% of the bare verify path" in instructions rather than time.
What instructions do not see: cache misses, system calls and the kernel's time, so this
complements the wall-clock `verify` and `inbox` figures, it does not replace them.

Key generation (a random prime search) would differ between the N and 2N runs, so fedcop's
local keys are fixed for these runs. Needs `valgrind` (Debian: apt install valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.report import Result

TARGET = 0.50


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench instructions")
    parser.add_argument("--requests", type=int, default=500, help="N: runs drive N and 2N")
    return parser.parse_args(argv)


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (Debian: apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="fedcop-bench-instr-") as tmp:
        inputs = Path(tmp) / "inputs.pickle"
        _write_inputs(inputs, 2 * args.requests + 1)
        counts: dict[tuple[str, int], int] = {}
        for app in ("bare", "fedcop"):
            # The N and 2N runs of one app side by side: one per core.
            runs = [(app, n) for n in (args.requests, 2 * args.requests)]
            found = await asyncio.gather(*(_count(app, n, inputs) for app, n in runs))
            counts.update(zip(runs, found, strict=True))
    per_request = {
        app: (counts[(app, 2 * args.requests)] - counts[(app, args.requests)]) / args.requests
        for app in ("bare", "fedcop")
    }
    ratio = per_request["bare"] / per_request["fedcop"]
    print(
        f"   instructions per request: fedcop {per_request['fedcop'] / 1e3:,.0f}k, "
        f"bare Starlette {per_request['bare'] / 1e3:,.0f}k; ratio {ratio:.3f}"
    )
    return Result(
        scenario="verify path in process, CPU instructions (callgrind), SQLite",
        ratio=ratio,
        absolute=(
            f"{per_request['fedcop'] / 1e3:,.0f}k instructions/request vs bare Starlette "
            f"{per_request['bare'] / 1e3:,.0f}k (N={args.requests})"
        ),
        target=f"≥ {TARGET:.2f}",
        met=ratio >= TARGET,
        details={
            "per_request": per_request,
            "counts": {f"{a}:{n}": c for (a, n), c in counts.items()},
        },
    )


def _write_inputs(path: Path, posts: int) -> None:
    from bench.verify import make_peer, sign_posts
    from fedcop.security.keys import generate_key_pair

    peer = make_peer()
    signed = sign_posts(peer, range(1, posts + 1))
    path.write_bytes(pickle.dumps((peer, signed, generate_key_pair())))


async def _count(app: str, requests: int, inputs: Path) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "bench.instructions", app, str(requests), str(inputs),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    collected = re.search(rb"Collected : (\d+)", err)
    if process.returncode != 0 or collected is None:
        raise RuntimeError(f"{app} x{requests} under callgrind failed:\n{(out + err).decode()}")
    return int(collected.group(1))


async def _drive(app_name: str, requests: int, saved: bytes) -> None:
    """The measured program: one warm-up request, then `requests` through the app."""
    from bench import verify
    from fedcop.services import actors as actors_service

    peer, posts, keys = pickle.loads(saved)  # noqa: S301 (our own temp file)
    fixed: Any = keys
    actors_service.generate_key_pair = lambda: fixed  # type: ignore[attr-defined]
    warm, measured = posts[:1], posts[1 : requests + 1]
    with tempfile.TemporaryDirectory(prefix="fedcop-bench-instr-") as tmp:
        if app_name == "bare":
            bare = verify.bare_app(peer.keys.public_pem)
            await verify.drive(bare, warm, 1)
            done = await verify.drive(bare, measured, 32)
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'instructions.db'}"
            async with verify.in_process_app(url, peer) as app:
                await verify.drive(app, warm, 1)
                done = await verify.drive(app, measured, 32)
    if done.statuses != {202: requests}:
        raise SystemExit(f"not every request was accepted: {done.statuses}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(_drive(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).read_bytes()))
