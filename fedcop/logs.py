"""Where fedcop's own log lines go: standard error, at FEDCOP_LOG_LEVEL, beside uvicorn's.

uvicorn configures only its own loggers. Without a handler for `fedcop`, Python's last-resort
handler printed fedcop's warnings and dropped everything below them, so FEDCOP_LOG_LEVEL changed
uvicorn's lines alone and an operator never saw, for instance, which process runs the workers.
"""

from __future__ import annotations

import copy
import logging.config
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with the `fedcop` loggers added at `level`.

    Given to uvicorn as `log_config`, it is applied in every process uvicorn starts (with
    `--processes N`, in each child too). fedcop's lines carry the logger's name, which says
    which part of the server speaks (`fedcop.federation.delivery: ...`).
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["fedcop"] = {
        **config["formatters"]["default"],
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
    }
    config["handlers"]["fedcop"] = {**config["handlers"]["default"], "formatter": "fedcop"}
    config["loggers"]["fedcop"] = {
        "handlers": ["fedcop"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def configure(level: str) -> None:
    """Apply `log_config(level)` to this process (for commands that run without uvicorn)."""
    logging.config.dictConfig(log_config(level))
