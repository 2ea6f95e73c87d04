"""Stopping a capture pass on SIGINT, SIGTERM or SIGHUP without losing what was done.

tcpdump and tshark keep everything processed before Ctrl-C; so do we.  While
:func:`graceful_signals` is active (the CLI's ``main()`` turns it on), the
first SIGINT, SIGTERM or SIGHUP is handled in one of two ways:

- while a capture reader is active (:func:`deferring`: the caller processes
  the records it was handed, or the reader walks what it read), the signal is
  only *noted*; it is acted on (:class:`Interrupted` raised) when the reader is
  about to read again or the caller asks for the next record, so every record
  handed out before has been fully processed and written, and nothing read
  is dropped unseen.  A reader waiting for live input waits in
  :func:`wait_readable` (``select`` on the input and on the signal wake-up
  pipe): a signal ends the wait, before any byte is taken from the input;
- anywhere outside a reader (a lab run waiting for a daemon),
  :class:`Interrupted` is raised at once.

A teardown (:func:`shielded`: a lab's namespaces and daemons) notes every
signal and acts on it when the teardown is done.  Elsewhere a second signal
raises at once (a consumer stuck writing to a stopped
pipe can still be stopped).  Without :func:`graceful_signals` nothing changes:
Python's own SIGINT handling applies and :func:`checkpoint` is free.

:class:`Interrupted` is a :class:`KeyboardInterrupt`, so every ``except
KeyboardInterrupt`` and ``finally`` clean-up that already handles Ctrl-C
handles SIGTERM and SIGHUP too; its ``exit_code`` is 128 + the signal number
(130, 143, 129), as shells report a process killed by that signal.
"""

import contextlib
import os
import select
import signal
import threading
from types import FrameType
from typing import Iterator, Optional, Tuple

__all__ = [
    "Interrupted",
    "Stopped",
    "graceful_signals",
    "checkpoint",
    "deferring",
    "pending",
    "shielded",
    "wait_readable",
]

SIGNALS: Tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The pass was stopped by signal ``signum``; ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__("stopped by %s" % signal.Signals(signum).name)


class Stopped(Exception):
    """:class:`Interrupted` as an ordinary exception: it pickles (a worker process sends
    it back to its parent, which raises Interrupted again), and a clean-up that keeps
    partial work on Interrupted (:func:`~scapy_geneve.cli._common.atomic_output`)
    discards it on this."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _State:
    active = False  # graceful_signals() installed the handlers
    defer = 0  # depth of deferring() regions (a reader is active)
    wakeup = -1  # read end of the signal wake-up pipe (set_wakeup_fd)
    shield = 0  # depth of shielded() regions (a teardown that must finish)
    pending: Optional[int] = None


_STATE = _State()


def _handler(signum: int, _frame: Optional[FrameType]) -> None:
    if _STATE.shield:
        _STATE.pending = _STATE.pending or signum
        return
    if _STATE.defer and _STATE.pending is None:
        _STATE.pending = signum
        return
    _STATE.pending = None
    raise Interrupted(signum)


def pending() -> Optional[int]:
    """The signal noted but not acted on yet, if any."""
    return _STATE.pending


def checkpoint() -> None:
    """Raise :class:`Interrupted` if a signal was noted; a safe point to stop."""
    signum = _STATE.pending
    if signum is not None:
        _STATE.pending = None
        raise Interrupted(signum)


@contextlib.contextmanager
def deferring() -> Iterator[None]:
    """While inside, a first signal is noted rather than raised (see the module
    docstring); leaving the outermost region normally acts on a noted signal."""
    _STATE.defer += 1
    try:
        yield
    finally:
        _STATE.defer -= 1
    if not _STATE.defer:
        checkpoint()


def wait_readable(fd: int) -> None:
    """Wait until FD has bytes (or its end) to read, acting on a signal that
    comes meanwhile: raise :class:`Interrupted` without taking a byte."""
    while True:
        checkpoint()
        if not _STATE.active:
            return  # no handlers: the read itself may block
        ready, _, _ = select.select([fd, _STATE.wakeup], [], [])
        if _STATE.wakeup in ready:
            _drain(_STATE.wakeup)
            continue  # the handler noted the signal: checkpoint() acts
        if fd in ready:
            return


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 512):
            pass


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A clean-up that must run to its end (tearing down a lab): every signal
    that comes meanwhile is noted and acted on when the outermost region ends."""
    _STATE.shield += 1
    try:
        yield
    finally:
        _STATE.shield -= 1
    if not _STATE.shield and not _STATE.defer:
        checkpoint()


@contextlib.contextmanager
def graceful_signals() -> Iterator[None]:
    """Handle SIGINT, SIGTERM and SIGHUP as described in the module docstring.

    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or _STATE.active:
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    _STATE.active, _STATE.pending, _STATE.defer, _STATE.shield = True, None, 0, 0
    _STATE.wakeup = rfd
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, old in previous.items():
            signal.signal(sig, old)
        os.close(rfd)
        os.close(wfd)
        _STATE.active, _STATE.pending, _STATE.defer, _STATE.shield = False, None, 0, 0
        _STATE.wakeup = -1
