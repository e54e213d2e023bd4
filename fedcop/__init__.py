"""fedcop: a federated ActivityPub server for communities of practice in health and care."""

from __future__ import annotations

__version__ = "0.1.0"
