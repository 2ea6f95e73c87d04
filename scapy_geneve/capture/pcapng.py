"""pcapng: the block walk behind :class:`~scapy_geneve.capture.pcapio.CaptureReader`.

Block by block: packet blocks (Enhanced, Simple, obsolete Packet) fill the
batch's arrays, every other block is parsed if it matters (Section Header,
Interface Description) and kept for copying.  Runs of complete Enhanced Packet
Blocks are walked in a tight loop and their fields read with numpy
(:func:`epb_fields`); the plain walk gives the same records, blocks and errors
(tests/test_scan_fuzz.py compares them).

A new section does not end the batch (a file with one section per packet is
read as fast as one section), unless it changes the byte order.
"""

import struct
from array import array
from typing import Any, Iterator, List, Optional, Tuple

from scapy_geneve.capture.accel import epb_run
from scapy_geneve.capture.formats import (
    BT_EPB,
    BT_IDB,
    BT_PB,
    BT_SHB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    MAX_BLOCK_LEN,
    NO_TIMESTAMP,
    OPT_IF_TSOFFSET,
    OPT_IF_TSRESOL,
    TS_MAX,
    TS_MIN,
)
from scapy_geneve.capture.recordbatch import Batch, Fields
from scapy_geneve.capture.source import ByteSource
from scapy_geneve.errors import CaptureError

__all__ = ["Interface", "PcapngWalker", "parse_idb", "epb_fields"]


class Interface:
    """One Interface Description Block: link type, snaplen, timestamp units."""

    __slots__ = ("linktype", "snaplen", "tsresol_num", "tsresol_den", "tsoffset_ns", "offset")

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

    def set_tsresol(self, res: int) -> None:
        """Apply an if_tsresol option byte (ValueError if it is absurd)."""
        if res & 0x80:
            power = res & 0x7F
            if power > 64:
                raise ValueError("if_tsresol 2^-%d is absurd" % power)
            self.tsresol_num, self.tsresol_den = 1000000000, 1 << power
        elif res > 19:
            raise ValueError("if_tsresol 10^-%d is absurd" % res)
        elif res <= 9:
            self.tsresol_num, self.tsresol_den = 10 ** (9 - res), 1
        else:
            self.tsresol_num, self.tsresol_den = 1, 10 ** (res - 9)


def parse_idb(buf: bytes, pos: int, end: int, endian: str) -> Interface:
    """The Interface Description Block at BUF[POS:END] (ValueError if malformed)."""
    linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
    intf = Interface(linktype, snaplen, pos)
    opt, stop = pos + 16, end - 4
    while opt + 4 <= stop:
        code, olen = struct.unpack_from(endian + "HH", buf, opt)
        if code == 0:
            break
        if opt + 4 + olen > stop:
            raise ValueError("Interface Description Block option %d runs past the end of the block" % code)
        value = buf[opt + 4 : opt + 4 + olen]
        if code == OPT_IF_TSRESOL and olen >= 1:
            intf.set_tsresol(value[0])
        elif code == OPT_IF_TSOFFSET and olen >= 8:
            intf.tsoffset_ns = struct.unpack(endian + "q", value[:8])[0] * 1000000000
        opt += 4 + ((olen + 3) & ~3)
    return intf


class _Walk:
    """One batch being collected from BUF (file offset BASE, first packet NUMBER)."""

    def __init__(
        self, buf: bytes, base: int, number: int, endian: str, fast: bool, interfaces: List[Interface]
    ) -> None:
        self.buf, self.base, self.number, self.endian = buf, base, number, endian
        self.fast = fast
        self.starts = array("q")
        # plain-walk fields: data_off, ends, caplen, wirelen, ts_ns, linktype, iface
        self.plain: Tuple["array[int]", ...] = tuple(array("q") for _ in range(7))
        self.special: List[int] = []  # packets the plain walk filled in
        self.marks: List[Tuple[int, int]] = []  # (packet index, interfaces from there on)
        self.blocks: List[Tuple[int, int, int]] = []
        self.if_start = len(interfaces)
        self.fast_interfaces = interfaces  # the interfaces the fast packets refer to
        self.error: Optional[CaptureError] = None
        self.pos = 0
        self.need = 12

    @property
    def packet(self) -> int:
        """The number the next packet found gets."""
        return self.number + len(self.starts)

    def add_plain(
        self, pos: int, end: int, data_off: int, incl: int, orig: int, ts: int, linktype: int, if_id: int
    ) -> None:
        self.special.append(len(self.starts))
        self.starts.append(pos)
        for arr, value in zip(self.plain, (data_off, end, incl, orig, ts, linktype, if_id)):
            arr.append(value)


class PcapngWalker:
    """Batches of pcapng packets from SOURCE, whose first bytes are ``source.head``."""

    def __init__(self, source: ByteSource, vectorised: bool = True, reader: Any = None) -> None:
        self.source = source
        self.vectorised = vectorised
        self.reader = reader
        self.endian = "<"
        self.interfaces: List[Interface] = []
        self.section_seen = False
        self.linktype = -1  # the first interface's
        self.snaplen = 0
        self.packets_read = 0
        self.bytes_read = 0

    # -- the batch loop -------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Yield :class:`Batch` objects in file order until the end of the input."""
        base, buf, number, need = 0, self.source.head, 1, 12
        while True:
            buf, got = self.source.fill(buf, need, base, number)
            if not got and not buf:
                return
            walk = _Walk(buf, base, number, self.endian, self.vectorised, self.interfaces)
            self._collect(walk)
            batch = self._batch(walk)
            if batch is not None:
                yield batch
                number += len(batch)
                del batch
            if walk.error is not None:
                raise walk.error
            if not got and walk.pos == 0:
                self._truncated(len(buf), walk.need, base, number)
            base += walk.pos
            buf = buf[walk.pos :]
            need = walk.need

    def _truncated(self, left: int, need: int, base: int, number: int) -> None:
        if left < 12:
            raise self.source.error("truncated block header: %d of 12 bytes" % left, base, number)
        raise self.source.error(
            "truncated block: total length %d, only %d bytes left in the file" % (need, left), base, number
        )

    def _collect(self, w: _Walk) -> None:
        """Walk W's buffer block by block until it ends, a block is incomplete,
        an error, or a byte-order change."""
        buf, n, pos = w.buf, len(w.buf), 0
        while pos + 12 <= n:
            if w.fast:  # the hot loop (compiled when built): a run of complete EPBs
                pos = epb_run(buf, pos, self.endian == ">", MAX_BLOCK_LEN, w.starts)
                if pos + 12 > n:
                    break
            end = self._block(w, pos)
            if end is None:
                break
            pos = end
        w.pos = pos

    # -- one block --------------------------------------------------------------------
    def _fail(self, w: _Walk, pos: int, message: str) -> None:
        w.error = self.source.error(message, w.base + pos, w.packet)

    def _block(self, w: _Walk, pos: int) -> Optional[int]:
        """Handle the block at POS; its end, or None to end the batch."""
        buf = w.buf
        btype = struct.unpack_from(self.endian + "I", buf, pos)[0]
        if btype == BT_SHB:
            if not self._byte_order(w, pos):
                return None
        elif not self.section_seen:
            self._fail(w, pos, "pcapng file does not start with a Section Header Block")
            return None
        blen = struct.unpack_from(self.endian + "I", buf, pos + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_BLOCK_LEN:
            self._fail(w, pos, "block type 0x%08x has an invalid total length %d" % (btype, blen))
            return None
        end = pos + blen
        if end > len(buf):
            w.need = blen
            return None
        trail = struct.unpack_from(self.endian + "I", buf, end - 4)[0]
        if trail != blen:
            self._fail(
                w,
                pos,
                "block type 0x%08x: trailing length %d does not match "
                "leading length %d" % (btype, trail, blen),
            )
            return None
        ok = self._dispatch(w, pos, btype, blen)
        return end if ok else None

    def _dispatch(self, w: _Walk, pos: int, btype: int, blen: int) -> bool:
        if btype == BT_EPB or btype == BT_PB:
            return self._packet(w, pos, btype, blen)
        if btype == BT_SPB:
            return self._simple(w, pos, blen)
        if btype == BT_SHB and not self._section(w, pos, blen):
            return False
        if btype == BT_IDB and not self._interface(w, pos, blen):
            return False
        w.blocks.append((len(w.starts), pos, pos + blen))
        return True

    def _byte_order(self, w: _Walk, pos: int) -> bool:
        """A Section Header Block's byte order; False ends the batch (an error,
        or a byte-order change after this batch's packets)."""
        magic_be = struct.unpack_from(">I", w.buf, pos + 8)[0]
        if struct.unpack_from("<I", w.buf, pos + 8)[0] == BYTE_ORDER_MAGIC:
            endian = "<"
        elif magic_be == BYTE_ORDER_MAGIC:
            endian = ">"
        else:
            self._fail(w, pos, "bad byte-order magic 0x%08x in Section Header Block" % magic_be)
            return False
        if w.starts and endian != w.endian:
            return False  # the next batch starts with this section
        if w.starts:  # later packets refer to the new section's interfaces
            w.fast = False
        self.endian = w.endian = endian
        return True

    def _section(self, w: _Walk, pos: int, blen: int) -> bool:
        if blen < 28:
            self._fail(w, pos, "Section Header Block too short (%d bytes)" % blen)
            return False
        major = struct.unpack_from(self.endian + "H", w.buf, pos + 12)[0]
        if major != 1:
            self._fail(w, pos, "unsupported pcapng version %d" % major)
            return False
        self.section_seen = True
        self.interfaces = []
        if not w.starts:  # the batch's fast packets will be this section's
            w.fast_interfaces = self.interfaces
        w.marks.append((len(w.starts), 0))
        return True

    def _interface(self, w: _Walk, pos: int, blen: int) -> bool:
        if blen < 20:
            self._fail(w, pos, "Interface Description Block too short (%d bytes)" % blen)
            return False
        try:
            self.interfaces.append(parse_idb(w.buf, pos, pos + blen, self.endian))
        except ValueError as exc:
            self._fail(w, pos, str(exc))
            return False
        w.marks.append((len(w.starts), len(self.interfaces)))
        if self.linktype < 0:
            self.linktype = self.interfaces[-1].linktype
            self.snaplen = self.interfaces[-1].snaplen
        return True

    def _packet(self, w: _Walk, pos: int, btype: int, blen: int) -> bool:
        """An Enhanced or obsolete Packet Block the hot loop did not take."""
        if blen < 32:
            self._fail(w, pos, "packet block too short (%d bytes)" % blen)
            return False
        if btype == BT_EPB:
            if_id, ts_hi, ts_lo, incl, orig = struct.unpack_from(self.endian + "IIIII", w.buf, pos + 8)
        else:
            if_id, _drops, ts_hi, ts_lo, incl, orig = struct.unpack_from(
                self.endian + "HHIIII", w.buf, pos + 8
            )
        if if_id >= len(self.interfaces):
            self._fail(
                w,
                pos,
                "packet refers to interface %d, but only %d Interface "
                "Description Block(s) came before it" % (if_id, len(self.interfaces)),
            )
            return False
        if 28 + incl > blen - 4:
            self._fail(w, pos, "captured length %d runs past the end of its %d-byte block" % (incl, blen))
            return False
        intf = self.interfaces[if_id]
        stamp = intf.ts_ns((ts_hi << 32) | ts_lo)
        # Past year 2262 in ns (a corrupt stamp or resolution): no timestamp.
        w.add_plain(
            pos,
            pos + blen,
            pos + 28,
            incl,
            orig,
            stamp if TS_MIN < stamp < TS_MAX else NO_TIMESTAMP,
            intf.linktype,
            if_id,
        )
        return True

    def _simple(self, w: _Walk, pos: int, blen: int) -> bool:
        if not self.interfaces:
            self._fail(w, pos, "Simple Packet Block before any Interface Description Block")
            return False
        if blen < 16:
            self._fail(w, pos, "Simple Packet Block too short (%d bytes)" % blen)
            return False
        orig = struct.unpack_from(self.endian + "I", w.buf, pos + 8)[0]
        incl = min(orig, blen - 16)
        if self.interfaces[0].snaplen:
            incl = min(incl, self.interfaces[0].snaplen)
        w.add_plain(pos, pos + blen, pos + 12, incl, orig, NO_TIMESTAMP, self.interfaces[0].linktype, 0)
        return True

    # -- the batch --------------------------------------------------------------------
    def _batch(self, w: _Walk) -> Optional[Batch]:
        """W's packets and blocks as a Batch (None if it has neither); the fast
        packets' fields come from :func:`epb_fields`, cut at the first bad one."""
        fields: Fields = w.plain
        if len(w.special) < len(w.starts):
            fields, bad, message = epb_fields(
                w.buf, w.starts, w.special, w.plain, w.fast_interfaces, w.if_start, w.marks, w.endian
            )
            if message is not None:  # before anything the plain walk found
                w.error = self.source.error(message, w.base + w.starts[bad], w.number + bad)
                w.pos = w.starts[bad]
                del w.starts[bad:]
                fields = tuple(f[:bad] for f in fields)
                w.blocks = [b for b in w.blocks if b[0] <= bad]
        if not w.starts and not w.blocks:
            return None
        self.packets_read = w.number - 1 + len(w.starts)
        self.bytes_read = self.source.progress(w.base + w.pos)
        return Batch(self.reader, w.buf, w.base, w.number, w.starts, w.endian, fields=fields, blocks=w.blocks)


# -- the vectorised Enhanced Packet Block fields ------------------------------------
def epb_fields(
    buf: bytes,
    starts: "array[int]",
    special: List[int],
    plain: Fields,
    interfaces: List[Interface],
    if_start: int,
    marks: List[Tuple[int, int]],
    endian: str,
) -> Tuple[Fields, int, Optional[str]]:
    """Fields of the Enhanced Packet Blocks the hot loop collected, checked as
    the plain walk checks them, merged with the packets in PLAIN.

    Returns (fields, index of the first bad packet, its error message or None).
    """
    import numpy as np

    n = len(starts)
    fast = np.ones(n, bool)
    if special:
        fast[special] = False
    idx = np.nonzero(fast)[0]
    F = np.frombuffer(starts, dtype=np.int64)[idx]
    blen, ifid, hi, lo, incl, orig, trail = _epb_headers(np, buf, F, endian)
    known = _known_interfaces(np, idx, marks, if_start)
    first_bad, message = n, None
    bad = (trail != blen) | (ifid >= known) | (28 + incl > blen - 4)
    if bad.any():
        k = int(np.argmax(bad))
        first_bad = int(idx[k])
        message = _epb_error(k, blen, trail, ifid, known, incl)
        ifid = np.where(bad, 0, ifid)
    safe_if = np.minimum(ifid, len(interfaces) - 1) if interfaces else np.zeros_like(ifid)
    ts = _epb_timestamps(np, hi, lo, safe_if, interfaces)
    linktypes = np.array([i.linktype for i in interfaces] or [0], dtype=np.int64)
    fast_values = (F + 28, F + blen, incl, orig, ts, linktypes[safe_if], ifid)
    return _merge(np, n, idx, special, fast_values, plain), first_bad, message


def _epb_headers(np: Any, buf: bytes, F: Any, endian: str) -> Tuple[Any, ...]:
    """(block length, interface, ts high, ts low, caplen, wirelen, trailing length)."""
    B = np.frombuffer(buf, dtype=np.uint8)
    word = np.dtype(endian + "u4")
    hdr = B.take(F[:, None] + np.arange(28, dtype=np.int64)).view(word).astype(np.int64)
    blen = hdr[:, 1]
    trail = B.take((F + blen - 4)[:, None] + np.arange(4, dtype=np.int64)).view(word).astype(np.int64)[:, 0]
    return (blen, hdr[:, 2], hdr[:, 3], hdr[:, 4], hdr[:, 5], hdr[:, 6], trail)


def _known_interfaces(np: Any, idx: Any, marks: List[Tuple[int, int]], if_start: int) -> Any:
    """How many interfaces were described before each fast packet."""
    if not marks:
        return np.full(len(idx), if_start, dtype=np.int64)
    at = np.array([m[0] for m in marks], dtype=np.int64)
    cnt = np.array([m[1] for m in marks], dtype=np.int64)
    j = np.searchsorted(at, idx, side="right")
    return np.where(j > 0, cnt[np.maximum(j - 1, 0)], if_start)


def _epb_error(k: int, blen: Any, trail: Any, ifid: Any, known: Any, incl: Any) -> str:
    if trail[k] != blen[k]:
        return "block type 0x%08x: trailing length %d does not match leading length %d" % (
            BT_EPB,
            trail[k],
            blen[k],
        )
    if ifid[k] >= known[k]:
        return "packet refers to interface %d, but only %d Interface Description Block(s) came before it" % (
            ifid[k],
            known[k],
        )
    return "captured length %d runs past the end of its %d-byte block" % (incl[k], blen[k])


def _epb_timestamps(np: Any, hi: Any, lo: Any, safe_if: Any, interfaces: List[Interface]) -> Any:
    """Timestamps: units of each interface's resolution, plus its offset."""
    num = [i.tsresol_num for i in interfaces] or [1]
    den = [i.tsresol_den for i in interfaces] or [1]
    off = [i.tsoffset_ns for i in interfaces] or [0]
    if (
        len(hi)
        and all(d == 1 for d in den)
        and hi.max() < (1 << 30)
        and max(num) * int((int(hi.max()) << 32) | 0xFFFFFFFF) + max(abs(o) for o in off) < (1 << 62)
    ):
        units = (hi << 32) | lo
        return units * np.array(num, dtype=np.int64)[safe_if] + np.array(off, dtype=np.int64)[safe_if]
    ts = np.empty(len(hi), dtype=np.int64)  # unusual resolutions or far-off stamps
    for k, (h, low, i) in enumerate(zip(hi.tolist(), lo.tolist(), safe_if.tolist())):
        stamp = interfaces[i].ts_ns((h << 32) | low) if interfaces else NO_TIMESTAMP
        ts[k] = stamp if TS_MIN < stamp < TS_MAX else NO_TIMESTAMP
    return ts


def _merge(
    np: Any, n: int, idx: Any, special: List[int], fast_values: Tuple[Any, ...], plain: Fields
) -> Fields:
    """One array per field: the fast packets' values at IDX, the plain ones at SPECIAL."""
    out = []
    for values, plain_values in zip(fast_values, plain):
        full = np.empty(n, dtype=np.int64)
        full[idx] = values
        if special:
            full[special] = np.frombuffer(plain_values, dtype=np.int64)
        merged = array("q")
        merged.frombytes(full.tobytes())
        out.append(merged)
    return tuple(out)
