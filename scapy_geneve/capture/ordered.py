"""One output file written by several processes, piece after piece, in order.

``filter --jobs N`` writes the matches of file 0, then of file 1, ... into one
output, while N processes filter N files at once.  Nobody knows where piece K
starts until pieces 0 to K-1 are written, so each piece takes a turn:

- :class:`Turns` (shared memory, inherited by the workers) holds whose turn it
  is to write, where the output ends, and where each written piece ended;
- a worker writes its piece through a :class:`TurnWriter`: in place in the
  output (``pwrite`` on the inherited descriptor) once its turn has come, held
  until then (in memory up to :data:`HOLD_LIMIT` bytes, beyond that in a
  temporary file), and at its turn the held bytes go first;
- a worker that finishes its piece before its turn leaves a thread to write
  it when the turn comes and goes on to its next file (the parent settles every
  piece before the pool ends, so no such thread is cut short but after a stop);
- :func:`in_turns` runs it all: the pool, the settling, and the clean-up;
- the parent takes the results in order and waits (:func:`settle`) until each
  piece is written, so what it counts is in the output: a worker's result is an
  :class:`Outcome`, the piece's end, or -1 and the pid of the worker whose thread
  writes it (polling shared memory, as the parent does: :data:`POLL`).

Each byte of the output is written once, by the process that filtered it: no
piece is written to a file of its own and copied again, and none travels back
to the parent (either cost as much as the filtering: writes through the page
cache are dear).
"""

import errno
import io
import os
import shutil
import tempfile
import threading
import time
from typing import IO, Any, Callable, Generator, List, NamedTuple, Optional, Sequence, Tuple

from scapy_geneve.capture.interrupt import shielded
from scapy_geneve.capture.parallel import inherited, map_files, pool_context

__all__ = ["in_turns", "turn_writer", "Turns", "TurnWriter", "Outcome", "settle", "HOLD_LIMIT", "Abandoned"]

#: bytes of a piece a worker holds in memory before its turn; the rest waits in a file
HOLD_LIMIT = 128 << 20
#: seconds between two looks at whose turn it is (a waiting writer, the parent): from
#: the first to the last, doubling (a thread that waits wakes its worker's main thread)
POLL = (0.0005, 0.008)


class Abandoned(Exception):
    """The pieces before this one will never be written (the work was stopped)."""


class Turns:
    """(shared) The piece whose turn it is to write onto the output file FD, where
    the output ends, where each of the COUNT pieces ended, and whether the work was
    abandoned (waiting writers then give up)."""

    def __init__(self, context: Any, fd: int, start: int, count: int) -> None:
        self.fd = fd
        self.start = start
        self._lock = context.Lock()
        self._turn = context.RawValue("q", 0)
        self._end = context.RawValue("q", start)
        self._ends = context.RawArray("q", max(count, 1))
        self._abandoned = context.RawValue("b", 0)
        self._failed = context.RawValue("i", 0)  # the errno a waiting writer's write failed with

    def position(self, index: int) -> Optional[int]:
        """Where piece INDEX starts, once its turn has come (None before)."""
        if self._abandoned.value:
            raise Abandoned()
        if self._turn.value != index:
            return None
        with self._lock:
            return int(self._end.value)

    def advance(self, index: int, end: int) -> None:
        """Piece INDEX is written and ends at END: the next piece's turn."""
        with self._lock:
            if self._turn.value != index:
                raise RuntimeError("piece %d ended out of turn (turn %d)" % (index, self._turn.value))
            self._ends[index] = end
            self._end.value = end
            self._turn.value = index + 1

    def ended(self, index: int) -> Optional[int]:
        """Where piece INDEX ended, once written (None before)."""
        return int(self._ends[index]) if self._turn.value > index else None

    def abandoned(self) -> bool:
        return bool(self._abandoned.value)

    def abandon(self) -> None:
        """(parent) No more turns: writers still waiting give up."""
        self._abandoned.value = 1

    def fail(self, error: BaseException) -> None:
        """(a writer's thread) Its write failed: the parent raises its errno (EIO for
        what is not an OSError)."""
        self._failed.value = getattr(error, "errno", None) or errno.EIO

    def check(self) -> None:
        """(parent) Raise the OSError a writer's thread met, if any."""
        if self._failed.value:
            code = int(self._failed.value)
            raise OSError(code, os.strerror(code))


class Outcome(NamedTuple):
    """What a worker gives back: where its piece ends when written (``end``), or -1
    when a thread of worker ``pid`` writes it in its turn."""

    end: int
    pid: int = 0


class TurnWriter(io.RawIOBase):
    """(worker) Piece INDEX of the output, as a raw binary stream: written in place
    from its turn on, held before it.  Wrap it in an ``io.BufferedWriter`` (small
    writes are gathered); call :meth:`finish` after the last write."""

    def __init__(self, turns: Turns, index: int, directory: str, limit: Optional[int] = None) -> None:
        self.turns, self.index, self.directory = turns, index, directory
        self.limit = HOLD_LIMIT if limit is None else limit
        self.pos: Optional[int] = None  # where the next byte goes, from our turn on
        self.held: List[bytes] = []
        self.held_len = 0
        self.spill: Optional[int] = None  # the file holding what is held beyond LIMIT
        self.spill_path = ""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.turns.abandoned():  # in our turn too: a stopped run ends quickly
            raise Abandoned()
        view = memoryview(data).cast("B")
        if self.pos is None:
            start = self.turns.position(self.index)
            if start is None:
                self._hold(view)
                return len(view)
            self._take_turn(start)
        assert self.pos is not None
        _pwrite_all(self.turns.fd, view, self.pos)
        self.pos += len(view)
        return len(view)

    def finish(self) -> Outcome:
        """After the last write: the piece written and the turn passed on, or (before
        its turn) a thread started that will do both when the turn comes."""
        if self.pos is None and self.turns.position(self.index) is None:
            # a daemon: when the work stops, a worker exits without waiting for a turn
            threading.Thread(target=self._later, name="piece-%d" % self.index, daemon=True).start()
            return Outcome(-1, os.getpid())
        end = self._in_turn()
        return Outcome(end, os.getpid())

    def _in_turn(self) -> int:
        """Wait for the turn (unless it came), write what is held, pass the turn on."""
        pause = POLL[0]
        while self.pos is None:
            start = self.turns.position(self.index)
            if start is not None:
                self._take_turn(start)
            else:
                time.sleep(pause)
                pause = min(pause * 2, POLL[1])
        self.turns.advance(self.index, self.pos)
        return self.pos

    def _later(self) -> None:
        """(thread) :meth:`_in_turn`, its errors told to the parent through TURNS."""
        try:
            self._in_turn()
        except Abandoned:
            self._drop_spill()
        except BaseException as exc:  # nobody to raise to: the parent's settle raises it
            self.turns.fail(exc)
            self._drop_spill()

    def _hold(self, view: memoryview) -> None:
        if self.spill is None and self.held_len + len(view) <= self.limit:
            self.held.append(bytes(view))  # the caller's buffer is reused: keep a copy
            self.held_len += len(view)
            return
        if self.spill is None:
            self.spill, self.spill_path = tempfile.mkstemp(prefix="held.", dir=self.directory)
            for chunk in self.held:
                _write_all(self.spill, memoryview(chunk))
            self.held, self.held_len = [], 0
        _write_all(self.spill, view)

    def _take_turn(self, start: int) -> None:
        """Our turn: what is held goes first, in order."""
        pos = start
        for chunk in self.held:
            _pwrite_all(self.turns.fd, memoryview(chunk), pos)
            pos += len(chunk)
        if self.spill is not None:
            pos += copy_range(self.spill, self.turns.fd, pos)
            self._drop_spill()
        self.held, self.held_len, self.pos = [], 0, pos

    def _drop_spill(self) -> None:
        if self.spill is not None:
            os.close(self.spill)
            os.unlink(self.spill_path)
            self.spill = None
        self.held, self.held_len = [], 0


def in_turns(
    func: Callable[..., Tuple[Any, ...]],
    items: Sequence[Any],
    jobs: int,
    args: Tuple[Any, ...],
    out: IO[bytes],
    near: str,
    ahead: int,
) -> Generator[Tuple[int, Tuple[Any, ...]], None, None]:
    """``func((index, item), *args, directory)`` for each of ITEMS in JOBS workers
    (:func:`~scapy_geneve.capture.parallel.map_files`), each writing its piece into
    OUT (our temporary output file, from its position on) in place, in its turn,
    through :func:`turn_writer` (DIRECTORY, beside NEAR, takes what is held in
    files); FUNC returns its :class:`Outcome` first.  Yields, in order, where OUT
    ends after each piece and the rest of FUNC's result.  However it is left (at
    the end, by the caller, by a stop or an error), the workers are done, OUT ends
    after the last piece yielded, and the held files are gone; a second signal
    waits for that.  AHEAD: map_files' bound on the items handed out."""
    out.flush()
    turns = Turns(pool_context(), out.fileno(), out.tell(), len(items))
    end = turns.start
    directory = tempfile.mkdtemp(prefix=".held.", dir=near)
    work = map_files(
        func, list(enumerate(items)), jobs, (*args, directory), inherit=turns, ahead=ahead, stop=turns.abandon
    )
    try:
        for index, (outcome, *rest) in enumerate(work):
            end = settle(turns, index, outcome)
            yield end, tuple(rest)
    finally:
        with shielded():
            turns.abandon()  # a piece still being written stops at its next write
            work.close()  # the workers are done: nothing writes after this
            shutil.rmtree(directory, ignore_errors=True)
            out.seek(end)
            out.truncate()


def turn_writer(index: int, directory: str) -> Tuple["TurnWriter", IO[bytes]]:
    """(worker, under :func:`in_turns`) Piece INDEX's raw writer and a 1 MiB buffer
    over it: write to the buffer, flush it, then return ``raw.finish()`` first."""
    raw = TurnWriter(inherited(), index, directory)
    return raw, io.BufferedWriter(raw, 1 << 20)


def settle(turns: Turns, index: int, outcome: Outcome) -> int:
    """(parent, results in order) Where piece INDEX ends in the output, once it is
    written: at once when its worker wrote it, else when the worker's thread has
    (its turn has come: the pieces before were settled).  A worker that dies
    first would leave the piece unwritten: that is an error, not a wait forever."""
    pause = POLL[0]
    while True:
        end = turns.ended(index)
        if end is not None:
            return end
        turns.check()
        if outcome.end >= 0 or not _alive(outcome.pid):
            raise OSError(errno.EIO, "piece %d was not written: its worker %d is gone" % (index, outcome.pid))
        time.sleep(pause)
        pause = min(pause * 2, POLL[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def copy_range(src: int, dst: int, pos: int) -> int:
    """The whole file SRC written into DST at POS (by the kernel where it can);
    returns the bytes copied."""
    size = os.fstat(src).st_size
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src, dst, size - done, done, pos + done)
            if not n:
                break
            done += n
    except (AttributeError, OSError) as exc:  # no copy_file_range here, or not between these
        if isinstance(exc, OSError) and exc.errno not in _NO_KERNEL_COPY:
            raise
    while done < size:
        chunk = os.pread(src, min(size - done, 1 << 20), done)
        if not chunk:
            raise OSError(errno.EIO, "the held piece ended early (%d of %d bytes)" % (done, size))
        _pwrite_all(dst, memoryview(chunk), pos + done)
        done += len(chunk)
    return done


_NO_KERNEL_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


def _pwrite_all(fd: int, view: memoryview, pos: int) -> None:
    while len(view):
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view) :]
