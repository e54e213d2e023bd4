"""Benchmark results: the shape every benchmark returns, the table, the JSON and the docs table."""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = ("scenario", "ratio", "absolute", "target", "met", "machine", "date")


class Result(TypedDict):
    """What a benchmark's `run(argv)` returns; the runner adds `machine` and `date`."""

    scenario: str  # one line, unique across benchmarks: the docs table is keyed on it
    ratio: float  # measured / same-run baseline
    absolute: str  # the measured figure with its baseline, for humans
    target: str  # e.g. "≥ 0.50"
    met: bool
    details: dict[str, Any]  # everything else, for the JSON file


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values sorted in ascending order (not empty)."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def machine() -> str:
    # platform.processor() is empty on many Linux builds; /proc/cpuinfo names the CPU there.
    name = platform.processor() or _cpuinfo_model() or platform.machine()
    return f"{name}, {os.cpu_count()} CPUs"


def _cpuinfo_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def stamp(result: Result) -> dict[str, Any]:
    return {**result, "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}


def row(stamped: dict[str, Any]) -> list[str]:
    return [
        stamped["scenario"],
        f"{stamped['ratio']:.2f}",
        stamped["absolute"],
        stamped["target"],
        "yes" if stamped["met"] else "no",
        stamped["machine"],
        stamped["date"],
    ]


def print_table(stamped: list[dict[str, Any]]) -> None:
    rows = [list(COLUMNS), *(row(s) for s in stamped)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for n, cells in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def write_json(name: str, stamped: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(stamped, indent=2, sort_keys=True) + "\n")
    return path


def update_docs(stamped: list[dict[str, Any]], docs: Path = DOCS) -> bool:
    """Rewrite the rows of the scenarios just run; rows of scenarios not run are kept.

    Returns False (and leaves the file alone) when the markers are missing.
    """
    text = docs.read_text() if docs.exists() else ""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return False
    rows = _existing_rows(text[start + len(START) : end])
    for result in stamped:
        rows[result["scenario"]] = row(result)
    table = _markdown_table(list(rows.values()))
    docs.write_text(text[: start + len(START)] + "\n" + table + text[end:])
    return True


def _existing_rows(section: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        # Skip blank lines, the header row and the |---| rule; keep one row per scenario.
        if len(cells) != len(COLUMNS) or cells[0] in ("", COLUMNS[0]) or set(cells[0]) == {"-"}:
            continue
        rows[cells[0]] = cells
    return rows


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"
