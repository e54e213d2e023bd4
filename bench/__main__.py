"""Run fedcop's benchmarks: `python -m bench [NAME ...] [benchmark options]`.

With no NAME every benchmark in BENCHMARKS runs, in order. Options the runner does not know
(`--posts 5000`, say) are passed to each benchmark, which parses its own.

To add a benchmark: write `bench/<name>.py` with `async def run(argv: list[str]) -> Result`
(see bench/report.py) and list it below.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

from bench.report import ROOT, Result, print_table, stamp, update_docs, write_json

# name -> module under bench/; run in this order.
BENCHMARKS = {
    "fanout": "bench.fanout",
    "verify": "bench.verify",
    "inbox": "bench.inbox",
    "followers": "bench.followers",
    "unknown_keys": "bench.unknown_keys",
    "idle": "bench.idle",
    "wakeup": "bench.wakeup",
    "reads": "bench.reads",
    "backlog": "bench.backlog",
    "soak": "bench.soak",
}
# Run only when named (`python -m bench instructions`): minutes under valgrind.
ON_REQUEST = {
    "instructions": "bench.instructions",
}

RunFunction = Callable[[list[str]], Coroutine[Any, Any, Result]]


def load(name: str) -> RunFunction:
    # Imported only when selected, so one benchmark's dependencies never slow another's start.
    module = importlib.import_module({**BENCHMARKS, **ON_REQUEST}[name])
    return cast(RunFunction, module.run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=", ".join([*BENCHMARKS, *ON_REQUEST])
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs table")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is not met")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop; auto (uvloop if installed) is what `fedcop serve` gets from uvicorn",
    )
    args, rest = parser.parse_known_args(argv)
    known = [*BENCHMARKS, *ON_REQUEST]
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(known)}")
    names = args.names or list(BENCHMARKS)
    stamped = []
    for name in names:
        print(f"== {name}", flush=True)
        result = _run(load(name)(rest), loop=args.loop)
        stamped.append(stamp(result))
        print(f"   results in {write_json(name, stamped[-1]).relative_to(ROOT)}")
    print()
    print_table(stamped)
    if not args.no_docs and not update_docs(stamped):
        print("docs/performance.md has no results markers; table not written", file=sys.stderr)
    return 1 if args.check and not all(s["met"] for s in stamped) else 0


def _run(coroutine: Coroutine[Any, Any, Result], *, loop: str) -> Result:
    # "auto" mirrors uvicorn's loop="auto", so the figures are those of the loop fedcop serves on.
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            return uvloop.run(coroutine)
    return asyncio.run(coroutine)


if __name__ == "__main__":
    sys.exit(main())
