"""Interop tests reuse the federation fixtures: an in-process network, `home` and `peer`."""

from __future__ import annotations

from tests.federation.conftest import home, net, peer

__all__ = ["home", "net", "peer"]
