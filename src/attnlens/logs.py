"""Logging, configured in one place (entry points call `configure_logging`)."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send attnlens logs to stderr at `level`; quiet the chattiest third-party loggers."""
    logging.basicConfig(level=level.upper(), format=_FORMAT, force=True)
    for noisy in ("httpx", "urllib3", "numba", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
