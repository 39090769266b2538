"""Where the package's messages go.

Every module that reports something logs it to its own ``logging.getLogger(__name__)``: level INFO for
progress, WARNING for something skipped, refused or wrong. These loggers hang under the ``spnrestore``
logger, which holds only a NullHandler: the library prints nothing by itself. The programs that run it
choose where the lines go, as bare text (:data:`MESSAGE_FORMAT`): a workflow job sends them to its rule's
log file (:func:`spnrestore.jobs.start_job`), the command line to stdout where it shows them
(:mod:`spnrestore.cli`), the Snakefile's planning to the function it gives
(:func:`spnrestore.stages.plan.workflow_plan`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator, TextIO

__all__ = ["PACKAGE_LOGGER", "MESSAGE_FORMAT", "CallbackHandler", "stream_handler", "add_handler", "messages_to"]

#: The logger every module's logger hangs under.
PACKAGE_LOGGER = "spnrestore"
#: The lines as the package words them, nothing added (the log files read as the messages).
MESSAGE_FORMAT = "%(message)s"


class CallbackHandler(logging.Handler):
    """Hands the text of each message to ``write`` (a function taking one line); what ``write`` raises
    reaches the code that logged."""

    def __init__(self, write: Callable[[str], None], level: int = logging.INFO):
        super().__init__(level)
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        self.write(record.getMessage())


def stream_handler(stream: TextIO, fmt: str = MESSAGE_FORMAT, level: int = logging.INFO) -> logging.Handler:
    """A handler writing each message of ``level`` and above to ``stream`` as ``fmt`` says, flushed."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    handler.setLevel(level)
    return handler


def add_handler(handler: logging.Handler, level: int = logging.INFO) -> None:
    """Send the messages of the ``spnrestore`` loggers of ``level`` and above to ``handler`` from now on."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


@contextlib.contextmanager
def messages_to(handler: logging.Handler, level: int = logging.INFO) -> Iterator[logging.Handler]:
    """:func:`add_handler` while the block runs; afterwards the ``spnrestore`` logger is as it was."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    before = logger.level
    add_handler(handler, level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
