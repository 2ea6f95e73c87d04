"""Streaming pcap and pcapng reading and writing at the bytes level.

No Scapy here: this module walks capture files record by record (or block by
block) and hands out the original bytes.  It is the I/O half of the fast path
(:mod:`scapy_geneve.capture.scan` is the parsing half) and is fast because it reads a
large chunk with one ``read()`` and walks the record headers inside it.

Formats:

- pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html):
  both byte orders, micro- and nanosecond timestamps (magic ``a1b2c3d4`` /
  ``a1b23c4d``).
- pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html):
  several sections (each with its own byte order), several interfaces with
  their own link type and ``if_tsresol``/``if_tsoffset``, Enhanced, Simple and
  obsolete Packet Blocks, any other block skipped (and kept for copying).
- either one gzip-compressed (``capture.pcap.gz``), read as it streams
  (every byte before a cut or corrupt spot is read; error offsets then count
  decompressed bytes, as ``zcat capture.pcap.gz | ...`` would);
  ``-`` reads standard input (nothing ever seeks).

Every problem raises :class:`scapy_geneve.errors.CaptureError` naming the
file, the byte offset and the packet number; the records before it have
already been yielded.
"""

import os
import struct
import sys
import zlib
from array import array
from typing import IO, Any, Iterator, List, NamedTuple, Optional, Tuple, Union

from scapy_geneve.errors import CaptureError

__all__ = [
    "Record", "Batch", "CaptureReader", "open_capture", "iter_records",
    "PcapWriter", "PcapngWriter",
    "LINKTYPE_NULL", "LINKTYPE_ETHERNET", "LINKTYPE_RAW", "LINKTYPE_LOOP",
    "LINKTYPE_LINUX_SLL", "LINKTYPE_IPV4", "LINKTYPE_IPV6", "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NAMES",
]

# -- link types (https://www.tcpdump.org/linktypes.html) ------------------------
LINKTYPE_NULL = 0          # BSD loopback: 4-byte address family, host byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101         # raw IPv4 or IPv6 (version nibble)
LINKTYPE_LOOP = 108        # OpenBSD loopback: 4-byte address family, big endian
LINKTYPE_LINUX_SLL = 113   # Linux cooked v1, 16-byte header
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276  # Linux cooked v2, 20-byte header

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL", LINKTYPE_ETHERNET: "EN10MB", LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP", LINKTYPE_LINUX_SLL: "LINUX_SLL", LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6", LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

# -- pcap ---------------------------------------------------------------------
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_HDR_LEN = 24
PCAP_REC_HDR_LEN = 16
# libpcap's MAXIMUM_SNAPLEN: a larger record length means a corrupt file.
MAX_SNAPLEN = 262144

# -- pcapng -------------------------------------------------------------------
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002         # obsolete Packet Block
BT_SPB = 0x00000003
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
# Wireshark's MAX_BLOCK_SIZE: a longer block is a corrupt file.
MAX_BLOCK_LEN = 16 * 1024 * 1024 + 4096
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

GZIP_MAGIC = b"\x1f\x8b"

CHUNK_SIZE = 4 * 1024 * 1024   # measured best on 2 cores: larger chunks page-fault more


class Record(NamedTuple):
    """One packet as stored in the file (no parsing beyond the record header)."""

    number: int                 # 1-based packet number (blocks that are not packets don't count)
    offset: int                 # file offset of the record header / block
    ts_ns: Optional[int]        # nanoseconds since the epoch; None for a Simple Packet Block
    caplen: int                 # bytes captured (len(data))
    wirelen: int                # bytes on the wire
    linktype: int
    interface: int              # pcapng interface ID (0 for pcap)
    data: bytes

    @property
    def time(self) -> Optional[float]:
        """Timestamp in seconds (float, like Scapy's ``pkt.time``)."""
        return None if self.ts_ns is None else self.ts_ns / 1e9


class Batch:
    """The packets found in one ``read()``: a buffer and where each record is.

    ``starts[i]``/``ends[i]`` delimit packet i's record (header included) in
    ``buf``; ``data_off[i]``, ``caplen[i]``, ``wirelen[i]``, ``ts_ns[i]``,
    ``linktype[i]`` and ``iface[i]`` describe it.  For classic pcap only
    ``starts`` is filled by the walk and the rest is computed on first use (the
    fast path reads them with numpy instead).  ``blocks`` lists the pcapng
    blocks that are not packets as ``(k, start, end)``: that block came just
    before packet k of this batch (k == len(self) means after the last).
    """

    __slots__ = ("reader", "buf", "base", "first", "starts", "_fields", "blocks",
                 "endian", "pcap_linktype", "ts_mult")

    def __init__(self, reader: "CaptureReader", buf: bytes, base: int, first: int,
                 starts: "array[int]", endian: str) -> None:
        self.reader = reader
        self.buf = buf
        self.base = base
        self.first = first
        self.starts = starts
        self.endian = endian
        self._fields: Optional[Tuple["array[int]", ...]] = None
        self.blocks: List[Tuple[int, int, int]] = []
        self.pcap_linktype = -1
        self.ts_mult = 1

    def __len__(self) -> int:
        return len(self.starts)

    def _pcap_fields(self) -> Tuple["array[int]", ...]:
        hdr = struct.Struct(self.endian + "IIII").unpack_from
        buf = self.buf
        ts_ns, caplen, wirelen, data_off, ends = (array("q") for _ in range(5))
        mult = self.ts_mult
        for start in self.starts:
            sec, frac, incl, orig = hdr(buf, start)
            ts_ns.append(sec * 1000000000 + frac * mult)
            caplen.append(incl)
            wirelen.append(orig)
            data_off.append(start + PCAP_REC_HDR_LEN)
            ends.append(start + PCAP_REC_HDR_LEN + incl)
        n = len(self.starts)
        linktype = array("q", [self.pcap_linktype]) * n
        iface = array("q", [0]) * n
        return data_off, ends, caplen, wirelen, ts_ns, linktype, iface

    @property
    def fields(self) -> Tuple["array[int]", ...]:
        """(data_off, ends, caplen, wirelen, ts_ns, linktype, iface) arrays."""
        if self._fields is None:
            self._fields = self._pcap_fields()
        return self._fields

    def records(self) -> Iterator[Record]:
        """The batch's packets as :class:`Record` tuples."""
        data_off, _ends, caplen, wirelen, ts_ns, linktype, iface = self.fields
        buf, base, first, starts = self.buf, self.base, self.first, self.starts
        for i in range(len(starts)):
            d = data_off[i]
            ts = ts_ns[i]
            yield Record(first + i, base + starts[i], None if ts == _NO_TS else ts,
                         caplen[i], wirelen[i], linktype[i], iface[i],
                         bytes(buf[d:d + caplen[i]]))


_NO_TS = -(1 << 63)   # ts_ns marker for "no timestamp" (Simple Packet Block)
_TS_MIN, _TS_MAX = -(1 << 63), 1 << 63


class _Gunzip:
    """A gzip stream decompressed as it is read (several members, like gzip -d).

    Unlike :class:`gzip.GzipFile`, a cut or corrupt stream first hands out
    every byte decompressed before the damage, then raises (EOFError or
    zlib.error) on the next read: ``gzip -dc`` writes the same bytes.
    """

    READ = 1 << 16          # compressed bytes per raw read
    MAX_OUT = 1 << 22       # decompressed bytes per step (bounds a zip bomb's step)

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self._d: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._in = b""                      # compressed bytes zlib has not taken yet
        self._out = b""                     # decompressed bytes not handed out yet
        self._pos = 0
        self._error: Optional[BaseException] = None

    def _fill(self) -> None:
        """Decompress until some output is ready, the stream ends, or it breaks."""
        while self._error is None:
            if not self._in:
                self._in = self.raw.read(self.READ)
                if not self._in:
                    if self._d is not None:   # inside a member: cut short
                        self._error = EOFError("compressed file ended before the "
                                               "end-of-stream marker was reached")
                    return
            if self._d is None:               # between members
                if not self._in.strip(b"\0"):
                    self._in = b""            # zero padding after the last member
                    continue
                if self._in[:2] != GZIP_MAGIC[:len(self._in[:2])]:
                    self._error = OSError("data after the end of the gzip stream is not "
                                          "another gzip member")
                    return
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
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

    def readinto(self, buf: Any) -> int:
        """Fill BUF as far as the stream goes; raise only when nothing is left."""
        view = memoryview(buf).cast("B")
        size, got = len(view), 0
        while got < size:
            if self._pos >= len(self._out):
                self._fill()
                if self._pos >= len(self._out):
                    break
            n = min(size - got, len(self._out) - self._pos)
            view[got:got + n] = self._out[self._pos:self._pos + n]
            self._pos += n
            got += n
        if not got and size and self._error is not None:
            raise self._error
        return got

    def read(self, size: int) -> bytes:
        """Up to SIZE bytes (fewer only at the end or before the damage)."""
        buf = bytearray(size)
        return bytes(buf[:self.readinto(buf)])

    def close(self) -> None:
        """Nothing to release: the caller closes the raw file."""


class _Interface:
    __slots__ = ("linktype", "snaplen", "tsresol_num", "tsresol_den", "tsoffset_ns",
                 "offset")

    def __init__(self, linktype: int, snaplen: int, offset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.offset = offset
        # ts_ns = units * num // den (+ offset); default resolution 10^-6 s
        self.tsresol_num = 1000
        self.tsresol_den = 1
        self.tsoffset_ns = 0

    def ts_ns(self, units: int) -> int:
        return units * self.tsresol_num // self.tsresol_den + self.tsoffset_ns


class CaptureReader:
    """A pcap or pcapng file opened for streaming.

    Use :meth:`batches` for the fast path (one ``read()`` per batch, the
    original record bytes available for copying) or :meth:`records` for one
    :class:`Record` per packet.  ``header`` holds the pcap global header (for
    pcapng, blocks that are not packets are listed in each batch's ``blocks``).
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], chunk_size: int = CHUNK_SIZE,
                 vectorised: bool = True) -> None:
        self.path = str(path)
        self.chunk_size = chunk_size
        # pcapng: walk runs of Enhanced Packet Blocks in a tight loop and read
        # their fields with numpy (same results as the plain walk; tests compare).
        self.vectorised = vectorised
        self.format = ""
        self.endian = "<"
        self.header = b""
        self.linktype = -1          # pcap: the file's link type; pcapng: first interface's
        self.snaplen = 0
        self.nanosecond = False
        self.version = (0, 0)
        self.packets_read = 0       # packets handed out so far
        self.bytes_read = 0         # file bytes consumed so far (for progress)
        self.file_size = 0
        self._handle: Optional[IO[bytes]] = None
        self._spare: Optional[bytearray] = None
        self._owned = True
        self.compressed = False             # a gzip-compressed capture
        self._raw: Optional[IO[bytes]] = None
        self._consumed = 0
        self._head = b""
        self._open()

    # -- opening ----------------------------------------------------------------
    def _error(self, message: str, offset: Optional[int], packet: Optional[int] = None) -> CaptureError:
        if self.compressed and offset is not None:
            message += " (gzip input: the offset counts decompressed bytes)"
        return CaptureError(message, path=self.path, offset=offset, packet=packet)

    def _open(self) -> None:
        if self.path == "-":            # a pipe: `tcpdump -w - | scapy-geneve stats -`
            handle: IO[bytes] = sys.stdin.buffer
            self.path = "<stdin>"
            self._owned = False
        else:
            handle = open(self.path, "rb")
        self._handle = handle
        try:
            self.file_size = os.fstat(handle.fileno()).st_size
        except (OSError, ValueError):
            self.file_size = 0
        peek = getattr(handle, "peek", None)
        if peek is not None and peek(2)[:2] == GZIP_MAGIC:
            # capture.pcap.gz: decompressed as it streams; offsets in errors
            # count decompressed bytes, progress counts compressed ones.
            self._raw = handle
            handle = self._handle = _Gunzip(handle)  # type: ignore[assignment]
            self.compressed = True
        head = self._guarded(handle.read, PCAP_HDR_LEN, offset=0)
        if len(head) < 4:
            self.close()
            raise self._error("not a capture file: %d bytes, too short for a magic number"
                              % len(head), 0)
        magic_le = struct.unpack("<I", head[:4])[0]
        magic_be = struct.unpack(">I", head[:4])[0]
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            self.format = "pcap"
            self.endian = "<" if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
            magic = magic_le if self.endian == "<" else magic_be
            self.nanosecond = magic == PCAP_MAGIC_NS
            if len(head) < PCAP_HDR_LEN:
                self.close()
                raise self._error("truncated pcap file header: %d of 24 bytes" % len(head), 0)
            vmaj, vmin, _zone, _sigfigs, snaplen, linktype = struct.unpack(
                self.endian + "HHiIII", head[4:])
            self.version = (vmaj, vmin)
            if vmaj != 2:
                self.close()
                raise self._error("unsupported pcap version %d.%d (only 2.x exists)"
                                  % (vmaj, vmin), 4)
            self.snaplen = snaplen
            # The upper bits of the link-type word carry the FCS length and flags.
            self.linktype = linktype & 0x0FFFFFFF
            self.header = head
        elif magic_le == BT_SHB:
            self.format = "pcapng"
            self._head = head       # no seek back: the input may be a pipe
        else:
            self.close()
            raise self._error("not a pcap or pcapng file: magic 0x%08x" % magic_be, 0)

    def close(self) -> None:
        if self._handle is not None:
            if self._owned:
                self._handle.close()
                if self._raw is not None:
                    self._raw.close()
            self._handle = None

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public iteration -----------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Yield :class:`Batch` objects, in file order, until the end of the file."""
        if self.format == "pcap":
            return self._pcap_batches()
        return self._pcapng_batches()

    def records(self) -> Iterator[Record]:
        """Yield one :class:`Record` per packet, in file order."""
        for batch in self.batches():
            yield from batch.records()

    # -- pcap ---------------------------------------------------------------------
    def _guarded(self, read: Any, *args: Any, offset: int = 0) -> Any:
        """Call READ; a broken gzip stream becomes a CaptureError at OFFSET."""
        if not self.compressed:
            return read(*args)
        try:
            return read(*args)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._error("gzip stream: %s" % (exc,), offset,
                              self.packets_read + 1) from None

    def _progress_bytes(self, consumed: int) -> int:
        if self.compressed and self._raw is not None:
            try:
                return self._raw.tell()
            except (OSError, ValueError):
                return 0
        return consumed

    def _read(self, buf: bytes, need: int) -> Tuple[bytes, bool]:
        """BUF plus the next chunk (at least NEED bytes in all if the file has them).

        One copy only: the chunk is read straight in after the carried-over
        tail, into the previous buffer when nobody holds it any more.
        """
        assert self._handle is not None
        tail = len(buf)
        size = max(self.chunk_size, need - tail)
        joined = self._spare
        self._spare = None
        # 2 references = `joined` and getrefcount's argument: no Batch, record
        # or numpy view still uses the old buffer, so it can be refilled.
        if joined is None or sys.getrefcount(joined) > 2:
            joined = bytearray(tail + size)
        elif len(joined) > tail + size:
            del joined[tail + size:]
        elif len(joined) < tail + size:
            joined.extend(bytes(tail + size - len(joined)))
        joined[:tail] = buf
        # A broken stream is reported at the first record not yet handed out
        # (the one it cuts), as a truncated plain file would be.
        got = self._guarded(self._handle.readinto,  # type: ignore[attr-defined]
                            memoryview(joined)[tail:],
                            offset=self._consumed)
        if not got:
            return buf, False
        if got < size:
            del joined[tail + got:]
        self._spare = joined
        return joined, True  # type: ignore[return-value]  # bytes-like

    def _pcap_batches(self) -> Iterator[Batch]:
        import numpy as np
        endian = self.endian
        incl_at = struct.Struct(endian + "I").unpack_from
        limit = max(MAX_SNAPLEN, self.snaplen if self.snaplen < (1 << 28) else 0)
        mult = 1 if self.nanosecond else 1000
        base = PCAP_HDR_LEN           # file offset of buf[0]
        buf = b""
        number = 1
        need = PCAP_REC_HDR_LEN
        while True:
            self._consumed = base
            buf, got = self._read(buf, need)
            if not got:
                if not buf:
                    return  # clean end of file
                if len(buf) < PCAP_REC_HDR_LEN:
                    raise self._error("truncated record header: %d of 16 bytes"
                                      % len(buf), base, number)
                raise self._error("truncated record: header says %d captured bytes, only %d "
                                  "left in the file" % (incl_at(buf, 8)[0],
                                                        len(buf) - PCAP_REC_HDR_LEN),
                                  base, number)
            n = len(buf)
            starts = array("q")
            append = starts.append
            pos = 0
            last = n - PCAP_REC_HDR_LEN
            bad = -1
            # The hot loop: one unpack and one append per record.  The last
            # record may run past the buffer and a length may be absurd: both
            # are checked once, after the loop.
            while pos <= last:
                append(pos)
                pos += PCAP_REC_HDR_LEN + incl_at(buf, pos + 8)[0]
            if pos > n:
                pos = starts.pop()
            if starts:
                widest = pos - starts[-1]
                if len(starts) > 1:   # the widest record, read off the start offsets
                    widest = max(widest, int(np.diff(np.frombuffer(starts, np.int64)).max()))
                if widest > limit + PCAP_REC_HDR_LEN:
                    for k, start in enumerate(starts):
                        if incl_at(buf, start + 8)[0] > limit:
                            del starts[k:]
                            pos = start
                            break
            if pos <= last and incl_at(buf, pos + 8)[0] > limit:
                bad = incl_at(buf, pos + 8)[0]
            if starts:
                batch = Batch(self, buf, base, number, starts, endian)
                batch.pcap_linktype = self.linktype
                batch.ts_mult = mult
                number += len(starts)
                self.packets_read = number - 1
                self.bytes_read = self._progress_bytes(base + pos)
                yield batch
                del batch   # let the next read reuse the buffer if the caller is done
            if bad >= 0:
                raise self._error("record length %d is absurd (snaplen %d, limit %d): "
                                  "corrupt record header" % (bad, self.snaplen, limit),
                                  base + pos, number)
            base += pos
            buf = buf[pos:]
            need = PCAP_REC_HDR_LEN
            if len(buf) >= PCAP_REC_HDR_LEN:
                need += incl_at(buf, 8)[0]

    # -- pcapng -------------------------------------------------------------------
    def _pcapng_batches(self) -> Iterator[Batch]:
        # Walk block by block.  Packet blocks fill the batch arrays; every other
        # block is parsed if it matters (SHB, IDB) and remembered for copying.
        base = 0
        buf = self._head
        number = 1
        endian = "<"
        interfaces: List[_Interface] = []
        need = 12
        section_seen = False
        while True:
            self._consumed = base
            buf, got = self._read(buf, need)
            if not got and not buf:
                return
            n = len(buf)
            starts, ends, data_off, caplen, wirelen, ts_ns, linktype, iface = (
                array("q") for _ in range(8))
            blocks: List[Tuple[int, int, int]] = []
            pos = 0
            error: Optional[CaptureError] = None
            batch_endian = endian
            need = 12
            fast = self.vectorised
            special: List[int] = []            # packets the plain walk filled in
            marks: List[Tuple[int, int]] = []  # (packet index, interfaces from there on)
            if_start = len(interfaces)
            head = struct.Struct(endian + "II").unpack_from
            while pos + 12 <= n:
                if fast:
                    # The hot loop: a run of complete Enhanced Packet Blocks.
                    btype, blen = head(buf, pos)
                    if btype == BT_EPB and 32 <= blen <= MAX_BLOCK_LEN and not blen & 3 \
                            and pos + blen <= n:
                        starts.append(pos)
                        pos += blen
                        continue
                where = base + pos
                btype = struct.unpack_from(endian + "I", buf, pos)[0]
                if btype == BT_SHB and len(starts):
                    break  # a new section: new interfaces (maybe a new byte order)
                if btype == BT_SHB:
                    if struct.unpack_from("<I", buf, pos + 8)[0] == BYTE_ORDER_MAGIC:
                        new_endian = "<"
                    elif struct.unpack_from(">I", buf, pos + 8)[0] == BYTE_ORDER_MAGIC:
                        new_endian = ">"
                    else:
                        error = self._error("bad byte-order magic 0x%08x in Section Header "
                                            "Block" % struct.unpack_from(">I", buf, pos + 8)[0],
                                            where, number + len(starts))
                        break
                    endian = batch_endian = new_endian
                    head = struct.Struct(endian + "II").unpack_from
                elif not section_seen:
                    error = self._error("pcapng file does not start with a Section Header "
                                        "Block", where, number + len(starts))
                    break
                blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
                if blen < 12 or blen % 4 or blen > MAX_BLOCK_LEN:
                    error = self._error("block type 0x%08x has an invalid total length %d"
                                        % (btype, blen), where, number + len(starts))
                    break
                end = pos + blen
                if end > n:
                    need = blen
                    break
                trail = struct.unpack_from(endian + "I", buf, end - 4)[0]
                if trail != blen:
                    error = self._error("block type 0x%08x: trailing length %d does not "
                                        "match leading length %d" % (btype, trail, blen),
                                        where, number + len(starts))
                    break
                if btype == BT_EPB or btype == BT_PB:
                    if blen < 32:
                        error = self._error("packet block too short (%d bytes)" % blen,
                                            where, number + len(starts))
                        break
                    if btype == BT_EPB:
                        if_id, ts_hi, ts_lo, incl, orig = struct.unpack_from(
                            endian + "IIIII", buf, pos + 8)
                    else:
                        if_id, _drops, ts_hi, ts_lo, incl, orig = struct.unpack_from(
                            endian + "HHIIII", buf, pos + 8)
                    if if_id >= len(interfaces):
                        error = self._error("packet refers to interface %d, but only %d "
                                            "Interface Description Block(s) came before it"
                                            % (if_id, len(interfaces)), where, number + len(starts))
                        break
                    if 28 + incl > blen - 4:
                        error = self._error("captured length %d runs past the end of its "
                                            "%d-byte block" % (incl, blen), where, number + len(starts))
                        break
                    intf = interfaces[if_id]
                    special.append(len(starts))
                    starts.append(pos)
                    ends.append(end)
                    data_off.append(pos + 28)
                    caplen.append(incl)
                    wirelen.append(orig)
                    stamp = intf.ts_ns((ts_hi << 32) | ts_lo)
                    # Past year 2262 in ns (a corrupt stamp or resolution): no timestamp.
                    ts_ns.append(stamp if _TS_MIN < stamp < _TS_MAX else _NO_TS)
                    linktype.append(intf.linktype)
                    iface.append(if_id)
                elif btype == BT_SPB:
                    if not interfaces:
                        error = self._error("Simple Packet Block before any Interface "
                                            "Description Block", where, number + len(starts))
                        break
                    if blen < 16:
                        error = self._error("Simple Packet Block too short (%d bytes)" % blen,
                                            where, number + len(starts))
                        break
                    orig = struct.unpack_from(endian + "I", buf, pos + 8)[0]
                    incl = min(orig, blen - 16)
                    if interfaces[0].snaplen:
                        incl = min(incl, interfaces[0].snaplen)
                    special.append(len(starts))
                    starts.append(pos)
                    ends.append(end)
                    data_off.append(pos + 12)
                    caplen.append(incl)
                    wirelen.append(orig)
                    ts_ns.append(_NO_TS)
                    linktype.append(interfaces[0].linktype)
                    iface.append(0)
                else:
                    if btype == BT_SHB:
                        if blen < 28:
                            error = self._error("Section Header Block too short (%d bytes)"
                                                % blen, where, number + len(starts))
                            break
                        major = struct.unpack_from(endian + "H", buf, pos + 12)[0]
                        if major != 1:
                            error = self._error("unsupported pcapng version %d" % major,
                                                where, number + len(starts))
                            break
                        section_seen = True
                        interfaces = []
                        marks.append((len(starts), 0))
                    elif btype == BT_IDB:
                        if blen < 20:
                            error = self._error("Interface Description Block too short "
                                                "(%d bytes)" % blen, where, number + len(starts))
                            break
                        try:
                            interfaces.append(self._parse_idb(buf, pos, end, endian))
                        except ValueError as exc:
                            error = self._error(str(exc), where, number + len(starts))
                            break
                        marks.append((len(starts), len(interfaces)))
                        if self.linktype < 0:
                            self.linktype = interfaces[-1].linktype
                            self.snaplen = interfaces[-1].snaplen
                    blocks.append((len(starts), pos, end))
                pos = end
            fields: Tuple["array[int]", ...] = (data_off, ends, caplen, wirelen, ts_ns,
                                                linktype, iface)
            if len(special) < len(starts):
                fields, bad, bad_error = self._epb_fields(
                    buf, starts, special, fields, interfaces, if_start, marks, batch_endian,
                    base, number)
                if bad_error is not None:   # before anything the plain walk found
                    error = bad_error
                    pos = starts[bad]
                    del starts[bad:]
                    fields = tuple(f[:bad] for f in fields)  # type: ignore[assignment]
                    blocks = [b for b in blocks if b[0] <= bad]
            if starts or blocks:
                batch = Batch(self, buf, base, number, starts, batch_endian)
                batch._fields = fields
                batch.blocks = blocks
                number += len(starts)
                self.packets_read = number - 1
                self.bytes_read = self._progress_bytes(base + pos)
                yield batch
                del batch
            if error is not None:
                raise error
            if not got and pos == 0:
                if n < 12:
                    raise self._error("truncated block header: %d of 12 bytes" % n,
                                      base, number)
                raise self._error("truncated block: total length %d, only %d bytes left "
                                  "in the file" % (need, n), base, number)
            base += pos
            buf = buf[pos:]

    def _epb_fields(self, buf: bytes, starts: "array[int]", special: List[int],
                    plain: Tuple["array[int]", ...], interfaces: List[_Interface],
                    if_start: int, marks: List[Tuple[int, int]], endian: str, base: int,
                    number: int) -> Tuple[Tuple["array[int]", ...], int,
                                          Optional[CaptureError]]:
        """Fields of the Enhanced Packet Blocks the hot loop collected, checked
        as the plain walk checks them; merged with the packets in PLAIN.

        Returns (fields, index of the first bad packet, its error or None).
        """
        import numpy as np
        n = len(starts)
        st = np.frombuffer(starts, dtype=np.int64)
        fast = np.ones(n, bool)
        if special:
            fast[special] = False
        idx = np.nonzero(fast)[0]
        F = st[idx]
        B = np.frombuffer(buf, dtype=np.uint8)
        word = np.dtype(endian + "u4")
        hdr = B.take(F[:, None] + np.arange(28, dtype=np.int64)).view(word).astype(np.int64)
        blen, ifid, hi, lo, incl, orig = (hdr[:, k] for k in range(1, 7))
        trail = B.take((F + blen - 4)[:, None] + np.arange(4, dtype=np.int64)
                       ).view(word).astype(np.int64)[:, 0]
        if marks:
            at = np.array([m[0] for m in marks], dtype=np.int64)
            cnt = np.array([m[1] for m in marks], dtype=np.int64)
            j = np.searchsorted(at, idx, side="right")
            known = np.where(j > 0, cnt[np.maximum(j - 1, 0)], if_start)
        else:
            known = np.full(len(idx), if_start, dtype=np.int64)
        bad_trail = trail != blen
        bad_if = ifid >= known
        bad_len = 28 + incl > blen - 4
        bad = bad_trail | bad_if | bad_len
        first_bad, error = n, None
        if bad.any():
            k = int(np.argmax(bad))
            first_bad = int(idx[k])
            where = base + starts[first_bad]
            if bad_trail[k]:
                msg = ("block type 0x%08x: trailing length %d does not match leading length %d"
                       % (BT_EPB, trail[k], blen[k]))
            elif bad_if[k]:
                msg = ("packet refers to interface %d, but only %d Interface Description "
                       "Block(s) came before it" % (ifid[k], known[k]))
            else:
                msg = ("captured length %d runs past the end of its %d-byte block"
                       % (incl[k], blen[k]))
            error = self._error(msg, where, number + first_bad)
            ifid = np.where(bad, 0, ifid)
        # Timestamps: units of each interface's resolution, plus its offset.
        num = np.array([i.tsresol_num for i in interfaces] or [1], dtype=object)
        den = np.array([i.tsresol_den for i in interfaces] or [1], dtype=object)
        off = np.array([i.tsoffset_ns for i in interfaces] or [0], dtype=object)
        linktypes = np.array([i.linktype for i in interfaces] or [0], dtype=np.int64)
        safe_if = np.minimum(ifid, len(interfaces) - 1) if interfaces else np.zeros_like(ifid)
        if len(idx) and all(d == 1 for d in den) and hi.max() < (1 << 30) and \
                max(num) * int(((hi.max() << 32) | 0xFFFFFFFF)) + max(abs(int(o)) for o in off) \
                < (1 << 62):
            units = (hi << 32) | lo
            ts = units * np.array(list(num), dtype=np.int64)[safe_if] + \
                np.array(list(off), dtype=np.int64)[safe_if]
        else:   # unusual resolutions or far-off stamps: exact Python integers
            ts = np.empty(len(idx), dtype=np.int64)
            for k, (h, low, i) in enumerate(zip(hi.tolist(), lo.tolist(), safe_if.tolist())):
                stamp = interfaces[i].ts_ns((h << 32) | low) if interfaces else _NO_TS
                ts[k] = stamp if _TS_MIN < stamp < _TS_MAX else _NO_TS
        out = []
        fast_values = (F + 28, F + blen, incl, orig, ts, linktypes[safe_if], ifid)
        for values, plain_values in zip(fast_values, plain):
            full = np.empty(n, dtype=np.int64)
            full[idx] = values
            if special:
                full[special] = np.frombuffer(plain_values, dtype=np.int64)
            merged = array("q")
            merged.frombytes(full.tobytes())
            out.append(merged)
        return tuple(out), first_bad, error

    def _parse_idb(self, buf: bytes, pos: int, end: int, endian: str) -> _Interface:
        linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
        intf = _Interface(linktype, snaplen, pos)
        opt = pos + 16
        stop = end - 4
        while opt + 4 <= stop:
            code, olen = struct.unpack_from(endian + "HH", buf, opt)
            if code == 0:
                break
            value = buf[opt + 4:opt + 4 + olen]
            if opt + 4 + olen > stop:
                raise ValueError("Interface Description Block option %d runs past the "
                                 "end of the block" % code)
            if code == OPT_IF_TSRESOL and olen >= 1:
                res = value[0]
                if res & 0x80:
                    power = res & 0x7F
                    if power > 64:
                        raise ValueError("if_tsresol 2^-%d is absurd" % power)
                    intf.tsresol_num, intf.tsresol_den = 1000000000, 1 << power
                else:
                    if res > 19:
                        raise ValueError("if_tsresol 10^-%d is absurd" % res)
                    if res <= 9:
                        intf.tsresol_num, intf.tsresol_den = 10 ** (9 - res), 1
                    else:
                        intf.tsresol_num, intf.tsresol_den = 1, 10 ** (res - 9)
            elif code == OPT_IF_TSOFFSET and olen >= 8:
                intf.tsoffset_ns = struct.unpack(endian + "q", value[:8])[0] * 1000000000
            opt += 4 + ((olen + 3) & ~3)
        return intf


def open_capture(path: Union[str, "os.PathLike[str]"], chunk_size: int = CHUNK_SIZE) -> CaptureReader:
    """Open a pcap or pcapng file (sniffed from its magic number) for streaming.

    Raises :class:`CaptureError` for a file that is neither.
    """
    return CaptureReader(path, chunk_size)


def iter_records(path: Union[str, "os.PathLike[str]"]) -> Iterator[Record]:
    """Every packet of a pcap/pcapng file as a :class:`Record`, in file order."""
    with open_capture(path) as reader:
        yield from reader.records()


# -- writers ----------------------------------------------------------------------
class PcapWriter:
    """Write a classic pcap file record by record (little endian).

    >>> with open("out.pcap", "wb") as f:          # doctest: +SKIP
    ...     w = PcapWriter(f, LINKTYPE_ETHERNET, nanosecond=True)
    ...     w.write(frame, ts_ns=1_700_000_000_000_000_000)
    """

    def __init__(self, handle: IO[bytes], linktype: int = LINKTYPE_ETHERNET,
                 nanosecond: bool = False, snaplen: int = MAX_SNAPLEN,
                 endian: str = "<") -> None:
        self.handle = handle
        self.endian = endian
        self.nanosecond = nanosecond
        self._rec = struct.Struct(endian + "IIII")
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        handle.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, ts_ns: int = 0, wirelen: Optional[int] = None) -> None:
        """Append one packet: its bytes, timestamp (ns) and wire length."""
        sec, nsec = divmod(ts_ns, 1000000000)
        frac = nsec if self.nanosecond else nsec // 1000
        self.handle.write(self._rec.pack(sec, frac, len(data),
                                         len(data) if wirelen is None else wirelen))
        self.handle.write(data)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


class PcapngWriter:
    """Write a pcapng file: one section, any number of interfaces, EPB or SPB.

    ``add_interface`` returns the interface ID to pass to ``write``.
    ``tsresol`` is the if_tsresol option byte (6 = microseconds, 9 =
    nanoseconds, 0x80|n = 2^-n seconds).
    """

    def __init__(self, handle: IO[bytes], endian: str = "<") -> None:
        self.handle = handle
        self.endian = endian
        self.interfaces: List[Tuple[int, int, int]] = []   # (tsresol byte, snaplen, tsoffset s)
        body = struct.pack(endian + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        self._block(BT_SHB, body)

    def _block(self, btype: int, body: bytes) -> None:
        body = _pad4(body)
        blen = 12 + len(body)
        self.handle.write(struct.pack(self.endian + "II", btype, blen) + body
                          + struct.pack(self.endian + "I", blen))

    def add_interface(self, linktype: int = LINKTYPE_ETHERNET, snaplen: int = MAX_SNAPLEN,
                      tsresol: int = 6, tsoffset: int = 0) -> int:
        """Write an Interface Description Block; returns its interface ID."""
        opts = b""
        if tsresol != 6:
            opts += struct.pack(self.endian + "HH", OPT_IF_TSRESOL, 1) + _pad4(bytes([tsresol]))
        if tsoffset:
            opts += struct.pack(self.endian + "HHq", OPT_IF_TSOFFSET, 8, tsoffset)
        if opts:
            opts += struct.pack(self.endian + "HH", 0, 0)
        self._block(BT_IDB, struct.pack(self.endian + "HHI", linktype, 0, snaplen) + opts)
        self.interfaces.append((tsresol, snaplen, tsoffset))
        return len(self.interfaces) - 1

    def _units(self, interface: int, ts_ns: int) -> int:
        res, _snaplen, tsoffset = self.interfaces[interface]
        ts_ns -= tsoffset * 1000000000
        if res & 0x80:
            return (ts_ns << (res & 0x7F)) // 1000000000
        if res <= 9:
            return ts_ns // 10 ** (9 - res)
        return ts_ns * 10 ** (res - 9)

    def write(self, data: bytes, ts_ns: int = 0, interface: int = 0,
              wirelen: Optional[int] = None) -> None:
        """Append an Enhanced Packet Block."""
        units = self._units(interface, ts_ns)
        body = struct.pack(self.endian + "IIIII", interface, units >> 32, units & 0xFFFFFFFF,
                           len(data), len(data) if wirelen is None else wirelen) + data
        self._block(BT_EPB, body)

    def write_simple(self, data: bytes, wirelen: Optional[int] = None) -> None:
        """Append a Simple Packet Block (interface 0, no timestamp)."""
        self._block(BT_SPB, struct.pack(self.endian + "I",
                                        len(data) if wirelen is None else wirelen) + data)

    def write_block(self, btype: int, body: bytes) -> None:
        """Append any other block (e.g. a Name Resolution Block), padded to 4 bytes."""
        self._block(btype, body)

