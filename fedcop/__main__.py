"""`python -m fedcop` runs the command line."""

from __future__ import annotations

from fedcop.cli import main

main()
