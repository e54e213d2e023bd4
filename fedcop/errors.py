"""The exceptions fedcop raises on purpose, each meaning one thing to its caller.

FedcopError
├── SettingsError      bad configuration; the message lists every problem
├── ValidationError    a user's input was refused (bad username, bad visibility, ...)
├── ConflictError      the thing already exists (duplicate username)
└── NotFoundError      the thing asked for does not exist
"""

from __future__ import annotations


class FedcopError(Exception):
    """Base of every error fedcop raises deliberately."""


class SettingsError(FedcopError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


class ValidationError(FedcopError):
    """Input refused; the message says why, in words a user can act on."""


class ConflictError(FedcopError):
    """The record already exists."""


class NotFoundError(FedcopError):
    """The record does not exist."""


class PermissionDeniedError(FedcopError):
    """Not allowed: not the author, not a moderator."""
