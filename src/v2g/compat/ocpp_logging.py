"""A logger for the ``ocpp`` library's ChargePoint that keeps frames (and the idTokens in them) at DEBUG.

The library logs every frame received and sent at INFO, and the whole frame of a failed request at
ERROR. Frames carry idTokens and meter data, so the platform logs them at DEBUG only; a failure
is reported at WARNING with the charger, the action and the error type, never the payload.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LIBRARY_LOG = logging.getLogger("ocpp")


class FrameLogger:
    """Stands in for the library's logger on one connection."""

    def __init__(self, charger_id: str, logger: logging.Logger = LIBRARY_LOG) -> None:
        self.charger_id = charger_id
        self._log = logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log.debug(msg, *args, **kwargs)

    info = debug  # "receive message ...", "send ..."
    warning = debug  # "Received a CALLError: <frame>"
    error = debug  # "Ignoring response with unknown unique id: <frame>"

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log.debug(msg, *args, exc_info=True)
        exc = sys.exc_info()[1]
        action = next((getattr(a, "action", None) for a in args if getattr(a, "action", None)), None)
        self._log.warning(
            "charger[%s]: %s failed: %s (frame at DEBUG)",
            self.charger_id,
            action or "a frame",
            type(exc).__name__ if exc is not None else "error",
        )
