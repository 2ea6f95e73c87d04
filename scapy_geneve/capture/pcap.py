"""Classic pcap: the record walk behind :class:`~scapy_geneve.capture.pcapio.CaptureReader`.

The walk (:mod:`.accel`: compiled when built, else one ``unpack_from`` per
record) runs over a chunk held in memory; the record
lengths are checked once per batch, after the walk (the widest record against
the limit), so a sane file pays almost nothing for the checks.
"""

import struct
from array import array
from typing import Any, Iterator, Optional, Tuple

from scapy_geneve.capture.accel import PcapHeads, pcap_walk
from scapy_geneve.capture.formats import (
    MAX_CLAIMED_SNAPLEN,
    MAX_SNAPLEN,
    PCAP_HDR_LEN,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAP_REC_HDR_LEN,
)
from scapy_geneve.capture.recordbatch import Batch
from scapy_geneve.capture.source import ByteSource

__all__ = ["PcapHeader", "PcapWalker", "parse_header"]


class PcapHeader:
    """The 24-byte pcap file header, decoded."""

    def __init__(
        self, raw: bytes, endian: str, nanosecond: bool, version: Tuple[int, int], snaplen: int, linktype: int
    ) -> None:
        self.raw = raw
        self.endian = endian
        self.nanosecond = nanosecond
        self.version = version
        self.snaplen = snaplen
        self.linktype = linktype


def sniff_endian(head: bytes) -> Optional[str]:
    """'<' or '>' if HEAD starts with a pcap magic number, else None."""
    if len(head) < 4:
        return None
    for endian in "<>":
        if struct.unpack(endian + "I", head[:4])[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return endian
    return None


def parse_header(head: bytes, endian: str, source: ByteSource) -> PcapHeader:
    """Decode the file header HEAD (magic already known to be pcap's)."""
    nanosecond = struct.unpack(endian + "I", head[:4])[0] == PCAP_MAGIC_NS
    if len(head) < PCAP_HDR_LEN:
        raise source.error("truncated pcap file header: %d of 24 bytes" % len(head), 0)
    vmaj, vmin, _zone, _sigfigs, snaplen, linktype = struct.unpack(endian + "HHiIII", head[4:])
    if vmaj != 2:
        raise source.error("unsupported pcap version %d.%d (only 2.x exists)" % (vmaj, vmin), 4)
    # The upper bits of the link-type word carry the FCS length and flags.
    return PcapHeader(head, endian, nanosecond, (vmaj, vmin), snaplen, linktype & 0x0FFFFFFF)


class PcapWalker:
    """Batches of pcap records from SOURCE, positioned after the file header."""

    def __init__(self, source: ByteSource, header: PcapHeader, reader: Any = None) -> None:
        self.source = source
        self.header = header
        self.reader = reader
        self.endian = header.endian
        self._incl = struct.Struct(header.endian + "I").unpack_from
        claimed = header.snaplen if header.snaplen < MAX_CLAIMED_SNAPLEN else 0
        self.limit = max(MAX_SNAPLEN, claimed)
        self.ts_mult = 1 if header.nanosecond else 1000
        self.packets_read = 0
        self.bytes_read = 0

    def _walk(self, buf: bytes) -> Tuple["array[int]", int, PcapHeads]:
        """Start offsets of the complete records in BUF, where the walk stopped, and
        (compiled walk) their timestamps and lengths.

        The walk is :func:`~scapy_geneve.capture.accel.pcap_walk` (compiled when
        built).  The last record may run past the buffer and a length may be
        absurd: both are checked after the walk (:meth:`_cut_absurd`).
        """
        starts = array("q")
        pos, heads = pcap_walk(buf, self.endian == ">", self.ts_mult, starts)
        return starts, pos, heads

    def _cut_absurd(self, buf: bytes, starts: "array[int]", pos: int) -> Tuple[int, int]:
        """Drop the records from the first absurd length on; (stop, bad length or -1)."""
        incl_at, limit = self._incl, self.limit
        if starts and _widest(starts, pos) > limit + PCAP_REC_HDR_LEN:
            for k, start in enumerate(starts):
                if incl_at(buf, start + 8)[0] > limit:
                    del starts[k:]
                    pos = start
                    break
        if pos + PCAP_REC_HDR_LEN <= len(buf) and incl_at(buf, pos + 8)[0] > limit:
            return pos, incl_at(buf, pos + 8)[0]
        return pos, -1

    def _at_end(self, buf: bytes, base: int, number: int) -> None:
        """The input ended with BUF left over: nothing, or a cut record."""
        if not buf:
            return
        if len(buf) < PCAP_REC_HDR_LEN:
            raise self.source.error("truncated record header: %d of 16 bytes" % len(buf), base, number)
        raise self.source.error(
            "truncated record: header says %d captured bytes, only %d "
            "left in the file" % (self._incl(buf, 8)[0], len(buf) - PCAP_REC_HDR_LEN),
            base,
            number,
        )

    def batches(self) -> Iterator[Batch]:
        """Yield :class:`Batch` objects in file order until the end of the input."""
        base, buf, number, need = PCAP_HDR_LEN, b"", 1, PCAP_REC_HDR_LEN
        while True:
            buf, got = self.source.fill(buf, need, base, number)
            if not got:
                self._at_end(buf, base, number)
                return
            starts, pos, heads = self._walk(buf)
            pos, bad = self._cut_absurd(buf, starts, pos)
            if starts:
                yield self._batch(buf, base, number, starts, pos, heads)
                number += len(starts)
            if bad >= 0:
                raise self.source.error(
                    "record length %d is absurd (snaplen %d, limit %d): corrupt record header"
                    % (bad, self.header.snaplen, self.limit),
                    base + pos,
                    number,
                )
            base += pos
            buf = buf[pos:]
            need = PCAP_REC_HDR_LEN
            if len(buf) >= PCAP_REC_HDR_LEN:
                need += self._incl(buf, 8)[0]

    def _batch(
        self, buf: bytes, base: int, number: int, starts: "array[int]", pos: int, heads: PcapHeads
    ) -> Batch:
        self.packets_read = number - 1 + len(starts)
        self.bytes_read = self.source.progress(base + pos)
        return Batch(
            self.reader,
            buf,
            base,
            number,
            starts,
            self.endian,
            pcap_linktype=self.header.linktype,
            ts_mult=self.ts_mult,
            pcap_heads=heads,
        )


def _widest(starts: "array[int]", pos: int) -> int:
    """The longest record among STARTS (the last one ends at POS)."""
    widest = pos - starts[-1]
    if len(starts) > 1:  # read off the start offsets
        import numpy as np

        widest = max(widest, int(np.diff(np.frombuffer(starts, np.int64)).max()))
    return widest
