"""One output file written by several processes, piece after piece, in order.

``filter --jobs N`` writes the matches of file 0, then of file 1, ... into one
output, while N processes filter N files at once.  Nobody knows where piece K
starts until pieces 0 to K-1 are written, so each piece takes a turn:

- :class:`Turns` (shared memory, inherited by the workers) holds whose turn it
  is to write and where the output ends;
- a worker writes its piece through a :class:`TurnWriter`: in place in the
  output (``pwrite`` on the inherited descriptor) once its turn has come, held
  until then (in memory up to ``limit`` bytes, beyond that in a temporary file),
  and at its turn the held bytes go first;
- a worker that finishes before its turn hands what it holds back
  (:class:`Outcome`), and the parent writes it in turn (:func:`settle`).

Each byte of the output is written once, by whoever has it when its turn
comes: no piece is written to a file of its own and copied again (that copy
cost as much as the filtering, writes through the page cache being dear).
"""

import errno
import io
import os
import tempfile
from typing import Any, List, NamedTuple, Optional

__all__ = ["Turns", "TurnWriter", "Outcome", "settle", "HOLD_LIMIT"]

#: bytes a worker holds in memory before its turn; the rest of the piece waits in a file
HOLD_LIMIT = 128 << 20


class Turns:
    """(shared) The piece whose turn it is to write onto the output file FD, and where
    the output ends: pieces before it are written, it writes from there."""

    def __init__(self, context: Any, fd: int, start: int) -> None:
        self.fd = fd
        self.start = start
        self._lock = context.Lock()
        self._turn = context.RawValue("q", 0)
        self._end = context.RawValue("q", start)

    def position(self, index: int) -> Optional[int]:
        """Where piece INDEX starts, once its turn has come (None before)."""
        if self._turn.value != index:
            return None
        with self._lock:
            return int(self._end.value)

    def advance(self, index: int, end: int) -> None:
        """Piece INDEX is written and ends at END: the next piece's turn."""
        with self._lock:
            if self._turn.value != index:
                raise RuntimeError("piece %d ended out of turn (turn %d)" % (index, self._turn.value))
            self._end.value = end
            self._turn.value = index + 1


class Outcome(NamedTuple):
    """What a worker gives back: where its piece ends when it wrote it (``end``), or
    the bytes it holds (``held``, and ``path``: a file holding the rest) for the
    parent to write in turn."""

    end: int
    held: bytes = b""
    path: Optional[str] = None


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
        """After the last write: the piece written (and the turn passed on), or what is
        held, for the parent to write when the turn comes."""
        if self.pos is None:
            start = self.turns.position(self.index)
            if start is None:
                return self._hand_back()
            self._take_turn(start)
        assert self.pos is not None
        self.turns.advance(self.index, self.pos)
        return Outcome(self.pos)

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
            os.close(self.spill)
            os.unlink(self.spill_path)
            self.spill = None
        self.held, self.held_len, self.pos = [], 0, pos

    def _hand_back(self) -> Outcome:
        if self.spill is None:
            return Outcome(-1, b"".join(self.held))
        os.close(self.spill)
        self.spill = None
        return Outcome(-1, b"", self.spill_path)


def settle(turns: Turns, index: int, piece: Outcome) -> int:
    """(parent, results in order) Piece INDEX onto the output: nothing to do when its
    worker wrote it, else what it handed back, written now (its turn has come: the
    pieces before were settled).  Returns where the output now ends."""
    if piece.end >= 0:
        return piece.end
    start = turns.position(index)
    if start is None:
        raise RuntimeError("piece %d settled out of turn" % index)
    pos = start
    if piece.path is None:
        _pwrite_all(turns.fd, memoryview(piece.held), pos)
        pos += len(piece.held)
    else:
        fd = os.open(piece.path, os.O_RDONLY)
        try:
            pos += copy_range(fd, turns.fd, pos)
        finally:
            os.close(fd)
            os.unlink(piece.path)
    turns.advance(index, pos)
    return pos


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
