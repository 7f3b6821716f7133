"""Structured logging (structlog): key=value lines for people, JSON lines for machines."""

from __future__ import annotations

import logging

import structlog

NOISY_LOGGERS = ("ocpp", "websockets", "websockets.server", "websockets.client", "httpx", "highspy")


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure stdlib logging and structlog once per process."""
    logging.basicConfig(level=level.upper(), format="%(message)s")
    if logging.getLevelName(level.upper()) > logging.DEBUG:
        # OCPP frames and websocket handshakes are for debugging; the console shows what the platform did
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
