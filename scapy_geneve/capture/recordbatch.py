"""What the capture readers hand out: one :class:`Record` per packet, or one
:class:`Batch` per read (a buffer and where each record is in it)."""

import struct
from array import array
from typing import Any, Iterator, List, NamedTuple, Optional, Tuple

from scapy_geneve.capture.formats import NO_TIMESTAMP, PCAP_REC_HDR_LEN

Fields = Tuple["array[int]", ...]


class Record(NamedTuple):
    """One packet as stored in the file (no parsing beyond the record header)."""

    number: int  # 1-based packet number (blocks that are not packets don't count)
    offset: int  # file offset of the record header / block
    ts_ns: Optional[int]  # nanoseconds since the epoch; None for a Simple Packet Block
    caplen: int  # bytes captured (len(data))
    wirelen: int  # bytes on the wire
    linktype: int
    interface: int  # pcapng interface ID within its section (0 for pcap)
    data: bytes

    @property
    def time(self) -> Optional[float]:
        """Timestamp in seconds (float, like Scapy's ``pkt.time``)."""
        return None if self.ts_ns is None else self.ts_ns / 1e9


class Batch:
    """The packets found in one read: a buffer and where each record is.

    ``starts[i]`` is packet i's record (header included) in ``buf``;
    :attr:`fields` gives ``(data_off, ends, caplen, wirelen, ts_ns, linktype,
    iface)`` arrays.  For classic pcap the walk fills only ``starts`` and the
    rest is computed on first use (the fast path reads them with numpy from
    ``endian``, ``pcap_linktype`` and ``ts_mult`` instead; :attr:`has_fields`
    says whether they exist yet).  ``blocks`` lists the pcapng blocks that are
    not packets as ``(k, start, end)``: that block came just before packet k of
    this batch (k == len(self) means after the last).  ``base`` is the file
    offset of ``buf[0]``, ``first`` the number of packet 0.
    """

    __slots__ = (
        "reader",
        "buf",
        "base",
        "first",
        "starts",
        "_fields",
        "blocks",
        "endian",
        "pcap_linktype",
        "ts_mult",
        "pcap_heads",
    )

    def __init__(
        self,
        reader: Any,
        buf: bytes,
        base: int,
        first: int,
        starts: "array[int]",
        endian: str,
        fields: Optional[Fields] = None,
        blocks: Optional[List[Tuple[int, int, int]]] = None,
        pcap_linktype: int = -1,
        ts_mult: int = 1,
        pcap_heads: Optional[Tuple[bytes, bytes]] = None,
    ) -> None:
        self.reader = reader
        self.buf = buf
        self.base = base
        self.first = first
        self.starts = starts
        self.endian = endian
        self._fields = fields
        self.blocks: List[Tuple[int, int, int]] = blocks if blocks is not None else []
        self.pcap_linktype = pcap_linktype
        self.ts_mult = ts_mult
        # pcap, compiled walk: (ts_ns, wirelen) as native int64 bytes, for at least
        # the records in ``starts`` (records cut after the walk may follow)
        self.pcap_heads = pcap_heads

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def has_fields(self) -> bool:
        """True once the per-packet field arrays exist (always for pcapng)."""
        return self._fields is not None

    def _pcap_fields(self) -> Fields:
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
    def fields(self) -> Fields:
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
            yield Record(
                first + i,
                base + starts[i],
                None if ts == NO_TIMESTAMP else ts,
                caplen[i],
                wirelen[i],
                linktype[i],
                iface[i],
                bytes(buf[d : d + caplen[i]]),
            )
