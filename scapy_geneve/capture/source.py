"""The bytes of a capture: a file, standard input, a pipe or a gzip stream,
read in bounded steps.

- A regular file is read in large chunks (one ``readinto`` fills
  ``chunk_size`` bytes): the batch path's speed.
- Anything else (a pipe, FIFO, terminal or socket: ``tcpdump -w - | ...``)
  is *live*: each read returns as soon as some bytes arrived, so the records
  they complete are handed out at once instead of after 4 MiB or the end.
- A length read from the file never allocates memory before the bytes exist:
  a record claimed to be 256 MB in a 238-byte file is refused at the first
  short read, having allocated about one chunk.
- gzip is recognised by its magic in the first bytes (however the first read
  splits them) and decompressed as it streams (:mod:`.gzipio`).
"""

import fcntl
import os
import stat
import sys
import zlib
from typing import IO, Any, Callable, List, Optional, Tuple, Union

from scapy_geneve.capture.formats import CHUNK_SIZE, GZIP_MAGIC, PCAP_HDR_LEN, PIPE_SIZE
from scapy_geneve.capture.gzipio import Gunzip
from scapy_geneve.capture.interrupt import checkpoint, wait_readable
from scapy_geneve.errors import CaptureError

__all__ = ["ByteSource"]

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPARES = 2  # buffers kept for refilling: the one the caller still holds, and one free


def _is_regular(handle: IO[bytes]) -> Tuple[bool, int]:
    """(is a regular file, its size) for HANDLE."""
    try:
        st = os.fstat(handle.fileno())
    except (OSError, ValueError, AttributeError):
        return False, 0
    return stat.S_ISREG(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0


def _enlarge_pipe(handle: IO[bytes]) -> None:
    """Ask for a larger pipe buffer: a fast producer then fills larger reads."""
    try:
        if stat.S_ISFIFO(os.fstat(handle.fileno()).st_mode):
            fcntl.fcntl(handle.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, ValueError, AttributeError):
        pass  # not allowed (pipe-max-size) or not a pipe: the default works too


class _Waiting:
    """An unbuffered live input whose reads first wait (select) until bytes are
    there, so a signal never interrupts a read that has taken bytes: see
    :func:`scapy_geneve.capture.interrupt.wait_readable`."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def read(self, size: int) -> bytes:
        wait_readable(self.raw.fileno())
        return bytes(self.raw.read(size) or b"")

    def readinto(self, buf: Any) -> int:
        wait_readable(self.raw.fileno())
        return int(self.raw.readinto(buf) or 0)

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def tell(self) -> int:
        return int(self.raw.tell())

    def close(self) -> None:
        self.raw.close()


class ByteSource:
    """The decompressed byte stream of one capture file, read forward only.

    ``head`` holds the first (up to 24) bytes; :meth:`fill` appends more.
    Errors name the file (``<stdin>`` for ``-``), the offset and the packet.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], chunk_size: int = CHUNK_SIZE) -> None:
        self.path = str(path)
        self.chunk_size = max(1, chunk_size)
        self.compressed = False
        self._owned = self.path != "-"
        raw: IO[bytes] = open(self.path, "rb") if self._owned else sys.stdin.buffer
        if not self._owned:
            self.path = "<stdin>"
        regular, self.file_size = _is_regular(raw)
        self.live = not regular
        if self.live:
            raw = self._unbuffered(raw)
            _enlarge_pipe(raw)
        self._raw = raw
        self._stream: Any = raw
        # The buffers handed out lately, refilled once nobody holds them (the reader's
        # caller usually still holds the last batch while the next one is read).
        self._spares: List[bytearray] = []
        self.head = self._open_stream()

    # -- opening ------------------------------------------------------------------
    def _unbuffered(self, raw: IO[bytes]) -> IO[bytes]:
        """Live input is read with one system call per read: a buffered reader
        asked for a large block makes one more blocking read even when it
        already holds bytes to hand out (the records they complete would wait
        for the next packet)."""
        if self._owned:  # nothing was read yet: keep the descriptor, drop the buffer
            unbuffered = raw.detach()  # type: ignore[attr-defined]
        else:
            unbuffered = open(raw.fileno(), "rb", buffering=0, closefd=False)
        return _Waiting(unbuffered)  # type: ignore[return-value]

    def _read_full(self, read: Callable[[int], bytes], size: int) -> bytes:
        """SIZE bytes from READ, fewer only at the end of the input."""
        data = read(size)
        while self.live and data and len(data) < size:
            more = read(size - len(data))
            if not more:
                break
            data += more
        return data

    def _open_stream(self) -> bytes:
        """Read the first bytes; switch to decompression if they are gzip's."""
        try:
            head = self._read_full(self._raw.read, PCAP_HDR_LEN)
        except OSError as exc:
            self.close()
            raise CaptureError("cannot read: %s" % (exc.strerror or exc), path=self.path, offset=0) from None
        if head[:2] != GZIP_MAGIC:
            return head
        self.compressed = True
        self._stream = Gunzip(self._raw, head=head, live=self.live)
        return self.guarded(self._read_full, self._stream.read, PCAP_HDR_LEN, offset=0, packet=1)

    def close(self) -> None:
        if self._owned:
            self._raw.close()
        self._owned = False

    # -- errors ---------------------------------------------------------------------
    def error(self, message: str, offset: Optional[int], packet: Optional[int] = None) -> CaptureError:
        """A :class:`CaptureError` naming this file, OFFSET and PACKET."""
        if self.compressed and offset is not None:
            message += " (gzip input: the offset counts decompressed bytes)"
        return CaptureError(message, path=self.path, offset=offset, packet=packet)

    def guarded(self, read: Callable[..., Any], *args: Any, offset: int, packet: int) -> Any:
        """Call READ; a broken gzip stream or an I/O error becomes a CaptureError
        at OFFSET (the first record not yet handed out, as a cut file would be)."""
        try:
            return read(*args)
        except (EOFError, zlib.error) as exc:
            raise self.error("gzip stream: %s" % (exc,), offset, packet) from None
        except OSError as exc:
            what = (
                "gzip stream: %s" % exc
                if self.compressed and exc.errno is None
                else "read error: %s" % (exc.strerror or exc)
            )
            raise self.error(what, offset, packet) from None

    # -- reading --------------------------------------------------------------------
    def progress(self, consumed: int) -> int:
        """Input bytes consumed so far, for a progress bar (compressed bytes for gzip)."""
        if isinstance(self._stream, Gunzip):
            return self._stream.tell_raw()
        return consumed

    def _buffer(self, tail: int, size: int) -> bytearray:
        """A buffer of TAIL + SIZE bytes: one handed out before if nobody holds it."""
        spares = self._spares
        for k in range(len(spares)):
            # 2 references = the list and getrefcount's argument: no Batch, record
            # or numpy view still uses this buffer, so it can be refilled.
            if sys.getrefcount(spares[k]) == 2:
                joined = spares.pop(k)
                break
        else:
            return bytearray(tail + size)
        if len(joined) > tail + size:
            del joined[tail + size :]
        elif len(joined) < tail + size:
            joined.extend(bytes(tail + size - len(joined)))
        return joined

    def _read_into(self, view: memoryview, offset: int, packet: int) -> int:
        # live: one system call (FileIO.readinto) or what is decompressed (Gunzip.readinto1)
        read = getattr(self._stream, "readinto1", None) if self.live else None
        read = read or self._stream.readinto
        return int(self.guarded(read, view, offset=offset, packet=packet))

    def fill(self, buf: bytes, need: int, offset: int, packet: int) -> Tuple[bytes, bool]:
        """BUF followed by the next bytes of the input, and False at its end.

        A regular file gives at least NEED bytes in all if it has them; live
        input gives what has arrived (call again for more).  One copy only: the
        bytes are read straight in after BUF.  OFFSET and PACKET say where an
        error is reported (the first record not yet handed out).
        """
        checkpoint()  # a signal noted while the last batch was processed
        tail = len(buf)
        if need - tail > self.chunk_size:
            return self._fill_long(buf, need, offset, packet)
        size = self.chunk_size
        joined = self._buffer(tail, size)
        joined[:tail] = buf
        got = self._read_into(memoryview(joined)[tail:], offset, packet)
        if not got:
            return buf, False
        if got < size:
            try:
                del joined[tail + got :]
            except BufferError:  # the stream kept a view of the buffer: hand out a copy
                joined = bytearray(memoryview(joined)[: tail + got])
        self._spares = [joined] + self._spares[: _SPARES - 1]
        return joined, True  # type: ignore[return-value]  # bytes-like

    def _fill_long(self, buf: bytes, need: int, offset: int, packet: int) -> Tuple[bytes, bool]:
        """A record longer than a chunk: read it in steps no larger than what
        is already there (at least a chunk), so memory follows the bytes that
        exist, not the length the file claims.  Stops at the first short read."""
        joined = bytearray(buf)
        read = self._stream.read
        while len(joined) < need:
            step = min(need - len(joined), max(self.chunk_size, len(joined)))
            data = self.guarded(self._read_full, read, step, offset=offset, packet=packet)
            joined += data
            if len(data) < step:  # the input ended inside the record
                break
        return joined, len(joined) > len(buf)  # type: ignore[return-value]
