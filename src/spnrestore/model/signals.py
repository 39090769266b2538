"""Stopping training on a signal: SIGINT (Ctrl-C in a terminal) and SIGTERM (Snakemake stopping its jobs)
end :func:`spnrestore.model.train.train` at a step boundary with a resumable ``last.pt``; DataLoader workers
leave the signals to the training process."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator


class Interrupted(BaseException):
    """Raised by the signal handler inside a phase that writes nothing (setup, validation): the phase is
    abandoned at once instead of finishing first."""


class StopSignals:
    """SIGINT and SIGTERM during :func:`train` (Ctrl-C in a terminal; Snakemake stopping its jobs): the first
    one is recorded in :attr:`signum` and the loop stops at the next step boundary (a step is never cut
    half-way), saves ``last.pt`` and calls :meth:`exit`. Inside :meth:`abortable` (phases that write nothing)
    a signal abandons the phase at once. Handlers are installed only in the main thread (elsewhere nothing
    changes) and the previous ones are restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._abortable = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self._abortable:
            self._abortable = False
            raise Interrupted

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        """A phase a signal abandons at once (raising :class:`Interrupted`); also when one came before."""
        if self.signum is not None:
            raise Interrupted
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def exit(self) -> None:
        """Leave as interrupted: KeyboardInterrupt for SIGINT, ``SystemExit(128 + signum)`` otherwise (the
        exit status of a process killed by that signal), so the job fails and its output is not marked done."""
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + (self.signum or signal.SIGTERM))


def worker_init(worker_id: int) -> None:
    """DataLoader workers leave SIGINT and SIGTERM to the training process: a process group of their own (a
    Ctrl-C in the terminal, or a signal sent to the job's group, reaches the trainer, which stops them in
    order instead of finding them dead), and Python's default handlers instead of the trainer's handlers
    inherited through fork (so the trainer can still terminate them)."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
