"""The `fedcop` command line (click). Each module adds its commands to `main`."""

from __future__ import annotations

from fedcop.cli import content, federation, groups, instance, moderation, tokens
from fedcop.cli.base import main

__all__ = ["content", "federation", "groups", "instance", "main", "moderation", "tokens"]
