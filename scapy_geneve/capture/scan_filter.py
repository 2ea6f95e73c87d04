"""Selecting packets: :class:`PacketFilter`, and copying the chosen records byte for byte.

The selection runs on the vectorised path (:meth:`PacketFilter.mask` over a
:class:`~scapy_geneve.capture.scan_batch.BatchResult`); :meth:`PacketFilter.match`
says the same of one :class:`~scapy_geneve.capture.scan_record.ScanRecord`.
"""

import errno
import io
import os
from typing import IO, Any, Callable, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from scapy_geneve import registry
from scapy_geneve.capture.decode import DecodeState
from scapy_geneve.capture.pcapio import Batch, CaptureReader, Record
from scapy_geneve.capture.formats import PCAP_REC_HDR_LEN
from scapy_geneve.capture.scan_batch import BatchResult, analyse_batch, numpy
from scapy_geneve.capture.scan_io import batches
from scapy_geneve.capture.scan_record import NO_TS, ScanRecord
from scapy_geneve.registry import DEFAULT_PORTS, Ports

__all__ = ["PacketFilter", "FilterResult", "filter_capture", "matching_packets", "matching_records"]


def _kind_names(kinds: Iterable[str]) -> frozenset:
    """Canonical registry names of KINDS (aliases accepted); ValueError names the choices."""
    names = set()
    for kind in kinds:
        try:
            names.add(registry.get(kind).name)
        except KeyError:
            raise ValueError(
                "unknown encapsulation kind %s (choose from %s)" % (kind, ", ".join(registry.names()))
            ) from None
    return frozenset(names)


def _checked(values: Iterable[int], bits: int, what: str) -> frozenset:
    """VALUES as a set of ints, each checked to fit BITS (ValueError naming WHAT)."""
    out = frozenset(int(v) for v in values)
    for value in out:
        if not 0 <= value < 1 << bits:
            if what == "identifier":
                raise ValueError("identifier %d is out of range" % value)
            raise ValueError("%s 0x%x is not a %d-bit value" % (what, value, bits))
    return out


class PacketFilter:
    """Which packets to keep.  Criteria of one kind are OR-ed, kinds AND-ed.

    ``vni``: identifiers (VNI, VSID, STT context, L2TPv3 session);
    ``kind``: registry names or aliases; ``option_class``/``option_type``: a
    packet matches if one Geneve option has one of the classes *and* one of
    the types (the 8-bit type, 0x80 = critical); ``malformed``: only
    malformed packets; ``invert``: keep the packets that do *not* match.
    An empty filter keeps everything.
    """

    def __init__(
        self,
        vni: Iterable[int] = (),
        kind: Iterable[str] = (),
        option_class: Iterable[int] = (),
        option_type: Iterable[int] = (),
        malformed: bool = False,
        invert: bool = False,
    ) -> None:
        self.vni = _checked(vni, 64, "identifier")
        self.kind = _kind_names(kind)
        self.option_class = _checked(option_class, 16, "option class")
        self.option_type = _checked(option_type, 8, "option type")
        self.malformed = malformed
        self.invert = invert

    @property
    def empty(self) -> bool:
        """True when the filter keeps every packet."""
        return not (
            self.vni or self.kind or self.option_class or self.option_type or self.malformed or self.invert
        )

    def match(self, rec: ScanRecord) -> bool:
        """Does this record pass the filter?"""
        return self._match(rec) != self.invert

    def _match(self, rec: ScanRecord) -> bool:
        if self.kind and rec.kind not in self.kind:
            return False
        if self.vni and rec.vni not in self.vni:
            return False
        if self.option_class or self.option_type:
            if not any(
                (not self.option_class or opt.classid in self.option_class)
                and (not self.option_type or opt.type in self.option_type)
                for opt in rec.options
            ):
                return False
        return not self.malformed or rec.malformed

    def mask(self, res: BatchResult) -> Any:
        """Boolean numpy array: which packets of an analysed batch pass."""
        np = numpy()
        keep = np.ones(res.n, bool)
        if self.kind:
            keep &= np.isin(res.kind, [int(registry.get(k).kind) for k in self.kind])
        if self.vni:
            keep &= res.has_vni & np.isin(res.vni, np.array(sorted(self.vni), dtype=np.uint64))
        if self.option_class or self.option_type:
            sel = np.ones(len(res.opt_pkt), bool)
            if self.option_class:
                sel &= np.isin(res.opt_class, list(self.option_class))
            if self.option_type:
                sel &= np.isin(res.opt_type, list(self.option_type))
            has = np.zeros(res.n, bool)
            has[res.opt_pkt[sel]] = True
            keep &= has
        if self.malformed:
            keep &= res.malformed
        return ~keep if self.invert else keep


def matching_packets(
    path: Union[str, "os.PathLike[str]"],
    pfilter: PacketFilter,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
) -> Iterator[int]:
    """Yield the 1-based numbers of the packets that pass PFILTER (fast path)."""
    np = numpy()
    state = DecodeState()
    for batch in batches(path):
        keep = pfilter.mask(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        for i in np.nonzero(keep)[0].tolist():
            yield batch.first + i


def matching_records(
    path: Union[str, "os.PathLike[str]"],
    pfilter: PacketFilter,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
) -> Iterator[Record]:
    """Yield the :class:`~scapy_geneve.capture.pcapio.Record` of each packet that passes.

    The selection runs on the vectorised path; only the chosen records are
    sliced out, so a caller can dissect just those with Scapy.
    """
    np = numpy()
    state = DecodeState()
    for batch in batches(path):
        if pfilter.empty:
            yield from batch.records()
            continue
        keep = pfilter.mask(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        chosen = np.nonzero(keep)[0].tolist()
        if chosen:
            yield from _records(batch, chosen)


def _records(batch: Batch, chosen: List[int]) -> Iterator[Record]:
    data_off, _ends, caplen, wirelen, ts_ns, linktype, iface = batch.fields
    for i in chosen:
        d, ts = data_off[i], ts_ns[i]
        yield Record(
            batch.first + i,
            batch.base + batch.starts[i],
            None if ts == NO_TS else ts,
            caplen[i],
            wirelen[i],
            linktype[i],
            iface[i],
            bytes(batch.buf[d : d + caplen[i]]),
        )


class FilterResult(NamedTuple):
    packets: int  # packets read
    matched: int  # packets written
    skipped: int = 0  # packets not examined (pcapng interface of an unsupported link type)


def _copy_chosen(out: IO[bytes], batch: Batch, res: BatchResult, chosen: Any) -> None:
    """Write the records CHOSEN (indices) and, for pcapng, every non-packet block in place.

    Records lie back to back in the buffer, so each run of consecutive chosen
    records is one write (every record of a batch, when all pass: one write).
    """
    if not len(chosen) and not batch.blocks:
        return
    np = numpy()
    view = memoryview(batch.buf)
    starts = np.frombuffer(batch.starts, dtype=np.int64)
    if batch.pcap_linktype >= 0:  # pcap: a record ends with its captured bytes
        ends = starts + PCAP_REC_HDR_LEN + res.caplen
    else:
        ends = np.frombuffer(batch.fields[1], dtype=np.int64)
    if batch.blocks:  # pcapng blocks that are not packets go between the packets, in place
        _copy_with_blocks(out, view, batch.blocks, chosen.tolist(), starts, ends)
        return
    last = np.nonzero(np.diff(chosen) != 1)[0]  # each run's last position in CHOSEN
    first_of_run = np.concatenate(([0], last + 1))
    last_of_run = np.append(last, len(chosen) - 1)
    for a, b in zip(starts[chosen[first_of_run]].tolist(), ends[chosen[last_of_run]].tolist()):
        _write_all(out, view[a:b])


def _write_all(out: IO[bytes], data: memoryview) -> None:
    """DATA onto OUT, whole: a raw (unbuffered) stream may take only part of a write.

    A non-blocking raw stream may take none of it (None, or 0): that is raised, as a
    buffered stream does, not lost.  Another sink's None means nothing (all taken)."""
    done = out.write(data)
    while done is not None and 0 < done < len(data):
        data = data[done:]
        done = out.write(data)
    if not done and len(data) and isinstance(out, io.RawIOBase):
        raise BlockingIOError(errno.EAGAIN, "the output stream took none of a %d-byte write" % len(data))


def _copy_with_blocks(
    out: IO[bytes],
    view: memoryview,
    blocks: List[Tuple[int, int, int]],
    chosen: List[int],
    starts: Any,
    ends: Any,
) -> None:
    j = 0
    for i in chosen:
        while j < len(blocks) and blocks[j][0] <= i:
            _write_all(out, view[blocks[j][1] : blocks[j][2]])
            j += 1
        _write_all(out, view[int(starts[i]) : int(ends[i])])
    for k in range(j, len(blocks)):
        _write_all(out, view[blocks[k][1] : blocks[k][2]])


def filter_capture(
    path: Union[str, "os.PathLike[str]"],
    out: IO[bytes],
    pfilter: PacketFilter,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
    counts: Optional[List[int]] = None,
) -> FilterResult:
    """Copy the packets of PATH that pass PFILTER to the binary stream OUT.

    Records are copied byte for byte (timestamps, lengths, pcapng options
    included).  A pcap gives a pcap with the same header; a pcapng gives a
    pcapng with every block that is not a packet (sections, interfaces, name
    resolution, statistics...) kept in place.  ``counts``, if given, is a
    list updated as [packets read, matched, skipped] while the copy goes on.
    Packets that cannot be examined (``skipped``: a pcapng interface of a link
    type scan cannot read) match no criterion, so only an empty or inverted
    filter copies them.  OUT is given memoryviews of the reader's buffers, which
    the reader refills once nobody holds them: a sink that keeps what it is
    given (rather than writing or copying it) pins a whole chunk per view.
    """
    np = numpy()
    counts = counts if counts is not None else [0, 0, 0]
    while len(counts) < 3:
        counts.append(0)
    state = DecodeState()

    def opened(reader: CaptureReader) -> None:
        _write_all(out, memoryview(reader.header))  # the pcap global header, as it was (empty for pcapng)

    for batch in batches(path, progress, opened):
        res = analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state)
        chosen = np.nonzero(pfilter.mask(res))[0]
        _copy_chosen(out, batch, res, chosen)
        counts[0] += res.n
        counts[1] += len(chosen)
        counts[2] += int(res.skipped.sum())
        del batch
    return FilterResult(counts[0], counts[1], counts[2])
