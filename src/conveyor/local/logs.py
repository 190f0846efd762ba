"""The local runtime's own log: JSON lines, like the functions' Powertools logs, so that
every log under the state directory can be read and merged the same way
(:mod:`conveyor.ops.logs`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "service": "runtime",
            "location": f"{record.module}:{record.lineno}",
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def attach(path: Path) -> logging.Handler:
    """Write the ``conveyor`` loggers of this process to ``path``; returns the handler so
    that it can be detached when the runtime stops."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("conveyor")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def detach(handler: logging.Handler) -> None:
    logging.getLogger("conveyor").removeHandler(handler)
    handler.close()
