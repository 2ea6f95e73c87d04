"""A gzip stream decompressed as it is read (``capture.pcap.gz``, or a gzip
stream on standard input), like ``gzip -dc``."""

import zlib
from typing import IO, Any, Optional

from scapy_geneve.capture.formats import GZIP_MAGIC

__all__ = ["Gunzip"]


class Gunzip:
    """A gzip stream (several members, like gzip -d) decompressed as it is read.

    Unlike :class:`gzip.GzipFile`, a cut or corrupt stream first hands out
    every byte decompressed before the damage, then raises (EOFError,
    zlib.error or OSError) on the next read: ``gzip -dc`` writes the same
    bytes.  ``head`` holds compressed bytes already read from RAW (the magic
    sniffed by the caller).  With ``live`` (a pipe), :meth:`readinto1` returns
    as soon as some bytes are decompressed instead of filling the buffer.
    """

    READ = 1 << 16  # compressed bytes per raw read
    MAX_OUT = 1 << 22  # decompressed bytes per step (bounds a zip bomb's step)

    def __init__(self, raw: IO[bytes], head: bytes = b"", live: bool = False) -> None:
        self.raw = raw
        self.live = live
        self._d: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._in = head  # compressed bytes zlib has not taken yet
        self._out = b""  # decompressed bytes not handed out yet
        self._pos = 0
        self._error: Optional[BaseException] = None

    def _raw_read(self) -> bytes:
        read1 = getattr(self.raw, "read1", None) if self.live else None
        return read1(self.READ) if read1 is not None else self.raw.read(self.READ)

    def _next_member(self) -> bool:
        """Between members: start the next one; False when the stream is over."""
        if not self._in.strip(b"\0"):
            self._in = b""  # zero padding after the last member
            return False
        if self._in[:2] != GZIP_MAGIC[: len(self._in[:2])]:
            self._error = OSError("data after the end of the gzip stream is not another gzip member")
            return False
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return True

    def _fill(self) -> None:
        """Decompress until some output is ready, the stream ends, or it breaks."""
        while self._error is None:
            if not self._in:
                self._in = self._raw_read()
                if not self._in:
                    if self._d is not None:  # inside a member: cut short
                        self._error = EOFError(
                            "compressed file ended before the end-of-stream marker was reached"
                        )
                    return
            if self._d is None and not self._next_member():
                continue
            try:
                out = self._d.decompress(self._in, self.MAX_OUT)
            except zlib.error as exc:
                self._error = exc
                return
            self._in = self._d.unconsumed_tail
            if self._d.eof:
                self._in = self._d.unused_data + self._in
                self._d = None
            if out:
                self._out, self._pos = out, 0
                return

    def _readinto(self, buf: Any, partial: bool) -> int:
        view = memoryview(buf).cast("B")
        size, got = len(view), 0
        while got < size and not (partial and got):
            if self._pos >= len(self._out):
                self._fill()
                if self._pos >= len(self._out):
                    break
            n = min(size - got, len(self._out) - self._pos)
            view[got : got + n] = self._out[self._pos : self._pos + n]
            self._pos += n
            got += n
        if not got and size and self._error is not None:
            raise self._error
        return got

    def readinto(self, buf: Any) -> int:
        """Fill BUF as far as the stream goes; raise only when nothing is left."""
        return self._readinto(buf, partial=False)

    def readinto1(self, buf: Any) -> int:
        """Like :meth:`readinto`, but return once some bytes are ready."""
        return self._readinto(buf, partial=True)

    def read(self, size: int) -> bytes:
        """Up to SIZE bytes (fewer only at the end or before the damage)."""
        buf = bytearray(size)
        return bytes(buf[: self.readinto(buf)])

    def tell_raw(self) -> int:
        """Compressed bytes consumed so far (for progress); 0 if unknown."""
        try:
            return int(self.raw.tell())
        except (OSError, ValueError, AttributeError):
            return 0

    def close(self) -> None:
        """Nothing to release: the caller closes the raw file."""
