"""Process-wide logging setup."""

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO; Graph URLs carry mailbox ids and search terms.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))
