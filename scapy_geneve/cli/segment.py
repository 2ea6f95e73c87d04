"""``scapy-geneve segment IN OUT``: turn a capture taken before the NIC into wire packets.

Default: every GSO/TSO super-packet (Geneve, VXLAN, VXLAN-GPE, GRE/NVGRE or no
tunnel; TCP or UDP GSO) is cut into the segments Linux's software GSO sends;
every other packet is copied as it is (its checksums are evidence).
``--finish-checksums`` only finishes checksums and lengths (no cutting).
``--coalesce`` does the opposite: merges wire segments the way GRO does.

The output keeps what the input says about each packet: a pcap stays a pcap
with the same timestamp resolution, snaplen, link type and byte order, and
every timestamp is copied as it was stored (even one the pcap format cannot
normalise); a pcapng keeps its sections, each section its interfaces (the
Interface Description Blocks copied as they are) and the other blocks (name
resolution, statistics, comments).  ``-F`` or OUT's name (``.pcap``,
``.pcapng``, ``.gz``) converts.
"""

import argparse
import gzip
import itertools
import struct
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple, Union

from scapy_geneve import registry
from scapy_geneve.capture.pcapio import (
    MAX_SNAPLEN,
    PcapngWriter,
    PcapWriter,
    Record,
    open_capture,
)
from scapy_geneve.cli import _options
from scapy_geneve.cli._common import Progress, capture_output
from scapy_geneve.errors import BuildError, CaptureError
from scapy_geneve.offload.gro import MAX_AGE_NS, MAX_FLOWS, coalesce_timed
from scapy_geneve.offload.segment import (
    NotSegmentable,
    UDP_TUNNELS,
    finish_checksums_bytes,
    segment_bytes,
    tunnel_ports,
)

_ETH, _IP = "ether", "ip"
_BT_SHB, _BT_IDB, _BT_SPB, _BT_EPB, _BT_PB = 0x0A0D0D0A, 1, 3, 6, 2
_OPT_IF_TSRESOL, _OPT_IF_TSOFFSET = 9, 14


def _link(rec: Record) -> Optional[Tuple[int, str]]:
    """(length of the link header kept as is, what follows it) or None: not IP."""
    lt, data = rec.linktype, rec.data
    if lt == 1:
        return 0, _ETH
    if lt in (101, 228, 229):
        return 0, _IP
    if lt == 113 and len(data) >= 16 and data[14:16] in (b"\x08\x00", b"\x86\xdd"):
        return 16, _IP  # Linux cooked v1 (tcpdump -i any)
    if lt == 276 and len(data) >= 20 and data[0:2] in (b"\x08\x00", b"\x86\xdd"):
        return 20, _IP  # Linux cooked v2
    if lt in (0, 108) and len(data) >= 4:
        return 4, _IP  # BSD / OpenBSD loopback
    return None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="GSO/TSO-segment (or GRO-coalesce) a capture",
        description="Read IN (pcap or pcapng, captured before the NIC) and write OUT "
        "with every GSO/TSO super-packet cut into the segments "
        "Linux's software GSO sends: tunnel header and options copied, IDs, "
        "sequence numbers, lengths and checksums per segment.  Every other "
        "packet is copied unchanged (--finish-checksums fixes checksums "
        "instead).  OUT has IN's format (a pcap keeps its timestamp "
        "resolution and snaplen; a pcapng its sections, interfaces and other "
        "blocks) unless -F or OUT's name (.pcap, .pcapng, .gz) says otherwise.  "
        "OUT is written atomically and may not be IN.  Tunnels cut: %s over UDP (their "
        "port options add ports), and GRE/NVGRE; STT and L2TPv3 are not cut by GSO, so "
        "--stt-port and --l2tp-port change nothing here.  --coalesce holds at most %d "
        "super-packets, each flushed %d ms after its first segment, as the kernel's GRO."
        % (", ".join(registry.get(n).title for n in UDP_TUNNELS), MAX_FLOWS, MAX_AGE_NS // 10**6),
    )
    _options.add_input(parser, "capture file (pcap or pcapng); - reads standard input")
    _options.add_output(parser, "capture file to write; - writes standard output")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--mtu",
        type=int,
        metavar="N",
        help="IP MTU of the outer link (default 1500): the MSS is N minus every "
        "header from the outer IP header to the inner TCP/UDP header, "
        "Geneve options included",
    )
    size.add_argument("--mss", type=int, metavar="N", help="payload bytes per segment")
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help="merge segments into super-packets the way Linux GRO does instead; "
        "their TCP (and non-zero outer UDP) checksums hold the "
        "pseudo-header sum, as GRO hands them up, unless "
        "--finish-checksums is given too",
    )
    parser.add_argument(
        "--finish-checksums",
        action="store_true",
        help="only fill in lengths and checksums (partial checksums, IPv4 "
        "length 0 / IPv6 payload length 0 of BIG TCP); no segmenting.  "
        "With --coalesce: finish the merged packets' checksums",
    )
    parser.add_argument(
        "--napi-budget",
        type=int,
        metavar="N",
        help="--coalesce: flush every held super-packet after each N packets, "
        "as the end of a NAPI poll does (the kernel's budget is 64)",
    )
    parser.add_argument(
        "--fixed-id",
        action="store_true",
        help="keep the IPv4 IDs of every segment (TCP_FIXEDID) instead of +1",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="copy packets whose headers cannot be read (truncated, "
        "malformed) unchanged instead of stopping with an error",
    )
    _options.add_count_option(parser)
    _options.add_quiet_option(parser)
    _options.add_format_option(parser)
    _options.add_port_options(parser)
    parser.set_defaults(func=run)


class _UsageError(Exception):
    """A bad combination of options: reported like argparse does, exit code 2."""


# -- reading: records with their stored timestamps, sections and interfaces ---------------


@dataclass(frozen=True)
class _Iface:
    """An input interface: what an output interface copies (pcapng IDB body)."""

    linktype: int
    snaplen: int
    tsresol: int = 6  # if_tsresol option byte (6: microseconds)
    tsoffset: int = 0  # if_tsoffset seconds
    body: bytes = b""  # the IDB body as stored (empty: made up for a pcap input)


@dataclass
class _Packet:
    """A record and its timestamp as stored: pcap (sec, frac) or pcapng units."""

    rec: Record
    stamp: Tuple[int, int]  # pcap: (seconds, fraction); pcapng: (units, 0)
    simple: bool = False  # a pcapng Simple Packet Block (no timestamp)


@dataclass
class _Event:
    """Something the output must say before the next packet: a new section, an
    interface, or another block to copy."""

    what: str  # "section", "iface", "block"
    endian: str = "<"
    iface: Optional[_Iface] = None
    btype: int = 0
    body: bytes = b""


def _idb(body: bytes, endian: str) -> _Iface:
    """Link type, snaplen, if_tsresol and if_tsoffset of an IDB body (options bounds-checked)."""
    linktype, _res, snaplen = struct.unpack_from(endian + "HHI", body, 0)
    tsresol, tsoffset, pos = 6, 0, 8
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        value = body[pos + 4 : pos + 4 + length]
        if code == 0 or len(value) < length:
            break
        if code == _OPT_IF_TSRESOL and length >= 1:
            tsresol = value[0]
        elif code == _OPT_IF_TSOFFSET and length >= 8:
            tsoffset = struct.unpack(endian + "q", value[:8])[0]
        pos += 4 + length + (-length % 4)
    return _Iface(linktype, snaplen, tsresol, tsoffset, body)


def _pcapng_events(batch: Any, k: int) -> Iterator[_Event]:
    """The blocks of BATCH that come just before its packet K, as events."""
    for at, start, end in batch.blocks:
        if at != k:
            continue
        btype = struct.unpack_from(batch.endian + "I", batch.buf, start)[0]
        if btype == _BT_SHB:
            endian = "<" if batch.buf[start + 8 : start + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            yield _Event("section", endian=endian)
        elif btype == _BT_IDB:
            yield _Event("iface", iface=_idb(bytes(batch.buf[start + 8 : end - 4]), batch.endian))
        else:
            yield _Event("block", btype=btype, body=bytes(batch.buf[start + 8 : end - 4]))


def _walk(reader: Any) -> Iterator[Union[_Packet, _Event]]:
    """Every packet of READER with its stored timestamp, and (pcapng) the section,
    interface and other blocks around them, in file order."""
    pcap = reader.format == "pcap"
    if pcap:
        yield _Event("section", endian=reader.endian)
        res = 9 if reader.nanosecond else 6
        yield _Event("iface", iface=_Iface(reader.linktype, reader.snaplen, res))
    for batch in reader.batches():
        stamp_of = struct.Struct(batch.endian + "II").unpack_from
        for k, rec in enumerate(batch.records()):
            start = batch.starts[k]
            if not pcap:
                yield from _pcapng_events(batch, k)
            if pcap:
                yield _Packet(rec, stamp_of(batch.buf, start))
                continue
            btype = struct.unpack_from(batch.endian + "I", batch.buf, start)[0]
            if btype == _BT_SPB:
                yield _Packet(rec, (0, 0), simple=True)
            else:
                hi, lo = stamp_of(batch.buf, start + 12)
                yield _Packet(rec, ((hi << 32) | lo, 0))
        if not pcap:
            yield from _pcapng_events(batch, len(batch))


# -- writing ------------------------------------------------------------------------------


def _ns_per_unit(tsresol: int) -> Tuple[int, int]:
    """(numerator, denominator) of nanoseconds per timestamp unit."""
    if tsresol & 0x80:
        return 1000000000, 1 << (tsresol & 0x7F)
    exp = tsresol
    return (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))


class _Writer:
    """The output capture, in FORMAT ("pcap" or "pcapng"), told about the input's
    sections and interfaces (:class:`_Event`) and given frames with their packet's
    stored timestamp.  Same format in and out: timestamps, interfaces and blocks are
    copied as stored.  Converting: times go through nanoseconds."""

    def __init__(self, out: IO[bytes], fmt: str, in_format: str, snaplen_floor: int = 0) -> None:
        self.out, self.fmt, self.in_format = out, fmt, in_format
        self.snaplen_floor = snaplen_floor  # --coalesce: merged frames outgrow the input's
        self.count = 0
        self.ifaces: List[_Iface] = []
        self.endian = "<"
        self._pcap: Optional[Tuple[PcapWriter, _Iface]] = None  # the writer, the link it holds
        self._ng: Optional[PcapngWriter] = None

    def _pcapng(self, pkt: Optional[_Packet] = None) -> PcapngWriter:
        if self._ng is None:  # the reader refuses a pcapng without a Section Header Block
            raise CaptureError(
                "no section header before this block",
                offset=pkt.rec.offset if pkt else None,
                packet=pkt.rec.number if pkt else None,
            )
        return self._ng

    def event(self, ev: _Event) -> None:
        if ev.what == "section":
            self.ifaces = []
            self.endian = ev.endian
            if self.fmt == "pcapng":
                self._ng = PcapngWriter(self.out, self.endian if self.in_format == "pcapng" else "<")
        elif ev.what == "iface" and ev.iface is not None:
            self.ifaces.append(ev.iface)
            if self.fmt == "pcapng":
                self._write_idb(ev.iface)
        elif ev.what == "block" and self._ng is not None and self.fmt == self.in_format:
            self._ng.write_block(ev.btype, ev.body)

    def _snaplen(self, snaplen: int) -> int:
        if self.snaplen_floor and snaplen:
            return max(snaplen, self.snaplen_floor)
        return snaplen

    def _write_idb(self, iface: _Iface) -> None:
        if iface.body and self.in_format == "pcapng":
            body = bytearray(iface.body)
            struct.pack_into(self.endian + "I", body, 4, self._snaplen(iface.snaplen))
            self._pcapng().write_block(_BT_IDB, bytes(body))
        else:  # from a pcap: the same resolution
            self._pcapng().add_interface(
                iface.linktype, self._snaplen(iface.snaplen) or MAX_SNAPLEN, tsresol=iface.tsresol
            )

    def write(self, pkt: _Packet, frame: bytes) -> None:
        """One output frame, with PKT's timestamp and interface."""
        self.count += 1
        rec = pkt.rec
        wirelen = len(frame) if len(frame) != rec.caplen or rec.wirelen < rec.caplen else rec.wirelen
        if self.fmt == "pcapng":
            self._write_ng(pkt, frame, wirelen)
        else:
            self._write_pcap(pkt, frame, wirelen)

    def _write_ng(self, pkt: _Packet, frame: bytes, wirelen: int) -> None:
        ng = self._pcapng(pkt)
        if pkt.simple:
            ng.write_simple(frame, wirelen)
            return
        units = pkt.stamp[0]
        if self.in_format == "pcap":  # seconds and fraction -> units of the same resolution
            units = pkt.stamp[0] * (10**9 if self.ifaces[0].tsresol == 9 else 10**6) + pkt.stamp[1]
        if not 0 <= units < 1 << 64:
            raise CaptureError(
                "timestamp does not fit a pcapng block", offset=pkt.rec.offset, packet=pkt.rec.number
            )
        body = struct.pack(
            self.endian + "IIIII", pkt.rec.interface, units >> 32, units & 0xFFFFFFFF, len(frame), wirelen
        )
        ng.write_block(_BT_EPB, body + frame)

    def _write_pcap(self, pkt: _Packet, frame: bytes, wirelen: int) -> None:
        rec = pkt.rec
        writer, link = self._pcap if self._pcap is not None else self._open_pcap(rec)
        if rec.linktype != link.linktype:
            raise CaptureError(
                "link type %d differs from the first packet's %d: a pcap holds one "
                "link type (write pcapng: -F pcapng)" % (rec.linktype, link.linktype),
                offset=rec.offset,
                packet=rec.number,
            )
        sec, frac = pkt.stamp if self.in_format == "pcap" else _pcap_stamp(rec, writer.nanosecond)
        # one write per record: a stop between two packets leaves a valid file
        self.out.write(struct.pack(writer.endian + "IIII", sec, frac, len(frame), wirelen) + frame)

    def _open_pcap(self, rec: Optional[Record]) -> Tuple[PcapWriter, _Iface]:
        """The pcap header: the first packet's interface (a pcap input's own header)."""
        index = rec.interface if rec is not None else 0
        first = (
            self.ifaces[index] if index < len(self.ifaces) else _Iface(1 if rec is None else rec.linktype, 0)
        )
        if self.in_format == "pcap":
            ns, endian = first.tsresol == 9, self.endian
        else:  # finer than microseconds: a nanosecond pcap
            num, den = _ns_per_unit(first.tsresol)
            ns, endian = num < 1000 * den, "<"
        snaplen = self._snaplen(first.snaplen) or MAX_SNAPLEN
        writer = PcapWriter(self.out, first.linktype, nanosecond=ns, snaplen=snaplen, endian=endian)
        self._pcap = writer, first
        return self._pcap

    def close(self) -> None:
        """An empty input still gives a valid (empty) capture."""
        if self.fmt == "pcap" and self._pcap is None:
            self._open_pcap(None)
        elif self.fmt == "pcapng" and self._ng is None:
            self._ng = PcapngWriter(self.out)


def _pcap_stamp(rec: Record, nanosecond: bool) -> Tuple[int, int]:
    """(seconds, fraction) of a pcapng packet's time, for a pcap (no time: 0)."""
    ts = rec.ts_ns or 0
    sec, ns = divmod(ts, 10**9)
    if not 0 <= sec <= 0xFFFFFFFF:
        raise CaptureError(
            "time %d ns is outside a pcap's 32-bit seconds (write pcapng: -F pcapng)" % ts,
            offset=rec.offset,
            packet=rec.number,
        )
    return sec, ns if nanosecond else ns // 1000


# -- the command --------------------------------------------------------------------------


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    cut: int = 0
    finished: int = 0
    unchanged: int = 0
    skipped: int = 0
    reasons: List[str] = field(default_factory=list)


def _transform(args: argparse.Namespace, ports: Dict[int, str]) -> Callable[[bytes, str], List[bytes]]:
    if args.finish_checksums:
        return lambda data, link: [finish_checksums_bytes(data, link=link, tunnel_ports=ports)]
    knobs: Dict[str, Any] = {"tunnel_ports": ports}
    if args.fixed_id:
        knobs.update(ip_id="fixed", outer_ip_id="fixed")
    return lambda data, link: segment_bytes(data, args.mss, args.mtu, link=link, **knobs)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _UsageError as exc:
        print("scapy-geneve segment: error: %s" % exc, file=sys.stderr)
        return 2


def _check_usage(args: argparse.Namespace) -> None:
    if args.coalesce and (args.mtu is not None or args.mss is not None or args.fixed_id):
        raise _UsageError("--coalesce takes no --mtu/--mss/--fixed-id")
    if (
        args.finish_checksums
        and not args.coalesce
        and (args.mtu is not None or args.mss is not None or args.fixed_id)
    ):
        raise _UsageError("--finish-checksums cuts nothing: it takes no --mtu/--mss/--fixed-id")
    if args.napi_budget is not None and (not args.coalesce or args.napi_budget < 1):
        raise _UsageError("--napi-budget needs --coalesce and N >= 1")
    for name in ("mtu", "mss"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UsageError("--%s %d: must be a positive number of bytes" % (name, value))


def _run(args: argparse.Namespace) -> int:
    _check_usage(args)
    in_path, out_path = _options.input_path(args), _options.output_path(args)
    if in_path is None:  # input_path() exits first: IN is required
        raise _UsageError("no input: give IN or -r FILE")
    counts = _Counts()
    try:
        with open_capture(in_path) as reader, capture_output(out_path, in_path) as handle:
            _write_all(reader, handle, args, in_path, out_path, counts)
    except KeyboardInterrupt:  # SIGINT, SIGTERM, SIGHUP: OUT holds every packet done so far
        if not args.quiet:
            _summary(args, counts, out_path + " (stopped)")
        raise
    if not args.quiet:
        _summary(args, counts, out_path)
    return 0


def _write_all(
    reader: Any, handle: IO[bytes], args: argparse.Namespace, in_path: str, out_path: str, counts: _Counts
) -> None:
    """Every record of READER, cut (or merged), into HANDLE in the output's format."""
    fmt = _options.output_format(args, out_path)
    ports = tunnel_ports(_options.ports(args))
    bar = Progress(reader.file_size, "segment", args.quiet)
    sink: IO[bytes] = handle
    if fmt.gzip:
        sink = gzip.GzipFile(fileobj=handle, mode="wb", mtime=0)  # type: ignore[assignment]
    writer = _Writer(sink, fmt.format or reader.format, reader.format, MAX_SNAPLEN if args.coalesce else 0)
    try:
        items = _counted(_walk(reader), reader, counts, bar, args.count)
        if args.coalesce:
            _coalesce(items, writer, ports, args, in_path)
        else:
            _segment(items, writer, _transform(args, ports), args, in_path, counts)
    finally:  # also when stopped by a signal: a valid capture of what was written
        bar.close()
        writer.close()
        if sink is not handle:
            sink.close()  # the gzip trailer
        counts.written = writer.count
        if args.coalesce:
            counts.cut = counts.read - writer.count


def _summary(args: argparse.Namespace, counts: _Counts, out_path: str) -> None:
    if args.coalesce:
        print(
            "scapy-geneve segment: %d packets in, %d out (%d merged into super-packets) "
            "-> %s" % (counts.read, counts.written, counts.cut, out_path),
            file=sys.stderr,
        )
        return
    finished = (", %d finished" % counts.finished) if args.finish_checksums else ""
    unreadable = (", %d unreadable copied (--keep-going)" % counts.skipped) if counts.skipped else ""
    print(
        "scapy-geneve segment: %d packets in, %d out: %d super-packets cut%s, %d copied "
        "unchanged%s -> %s"
        % (counts.read, counts.written, counts.cut, finished, counts.unchanged, unreadable, out_path),
        file=sys.stderr,
    )
    for line in counts.reasons[:5]:
        print("  " + line, file=sys.stderr)


def _counted(
    items: Iterator[Union[_Packet, _Event]], reader: Any, counts: _Counts, bar: Progress, limit: Optional[int]
) -> Iterator[Union[_Packet, _Event]]:
    """ITEMS, packets counted (at most LIMIT of them), the progress bar moving."""
    for item in items:
        if isinstance(item, _Packet):
            if limit is not None and counts.read >= limit:
                return
            counts.read += 1
            bar.update(reader.bytes_read, counts.read)
        yield item


def _segment(
    items: Iterator[Union[_Packet, _Event]],
    writer: _Writer,
    transform: Callable[[bytes, str], List[bytes]],
    args: argparse.Namespace,
    path: str,
    counts: _Counts,
) -> None:
    for item in items:
        if isinstance(item, _Event):
            writer.event(item)
            continue
        for frame in _one(item.rec, transform, args, path, counts):
            writer.write(item, frame)


def _one(
    rec: Record,
    transform: Callable[[bytes, str], List[bytes]],
    args: argparse.Namespace,
    path: str,
    counts: _Counts,
) -> List[bytes]:
    """The frames REC becomes: its segments, its finished self, or itself unchanged."""
    link = _link(rec)
    if link is None:
        counts.unchanged += 1
        return [rec.data]
    keep, kind = link
    head, body = rec.data[:keep], rec.data[keep:]
    if rec.caplen < rec.wirelen:
        err = CaptureError(
            "only %d of %d bytes were captured (snaplen): cannot rebuild the "
            "packet" % (rec.caplen, rec.wirelen),
            path=path,
            offset=rec.offset,
            packet=rec.number,
        )
        return _unreadable(rec, err, args, counts)
    try:
        frames = transform(body, kind)
    except NotSegmentable:  # ARP in a tunnel, IP fragments: nothing to do
        counts.unchanged += 1
        return [rec.data]
    except CaptureError as exc:
        err = CaptureError(exc.message, path=path, offset=rec.offset, packet=rec.number)
        return _unreadable(rec, err, args, counts)
    except BuildError as exc:
        if exc.field == "payload":  # not TCP/UDP and too big: nothing to cut
            counts.unchanged += 1
            return [rec.data]
        raise BuildError(
            exc.layer, exc.field, exc.value, "%s (%s, packet %d)" % (exc.why, path, rec.number)
        ) from None
    if len(frames) > 1:
        counts.cut += 1
    elif args.finish_checksums:
        counts.finished += 1
    else:  # not a super-packet: its checksums are evidence
        counts.unchanged += 1
        return [rec.data]
    return [head + f for f in frames] if keep else frames


def _unreadable(rec: Record, err: CaptureError, args: argparse.Namespace, counts: _Counts) -> List[bytes]:
    if not args.keep_going:
        raise err
    counts.skipped += 1
    counts.reasons.append(str(err))
    return [rec.data]


def _sections(items: Iterator[Union[_Packet, _Event]]) -> Iterator[Iterator[Union[_Packet, _Event]]]:
    """ITEMS cut at every new section (each part starts with its section event)."""
    number = [0]

    def key(item: Union[_Packet, _Event]) -> int:
        if isinstance(item, _Event) and item.what == "section":
            number[0] += 1
        return number[0]

    for _n, part in itertools.groupby(items, key):
        yield part


def _coalesce(
    items: Iterator[Union[_Packet, _Event]],
    writer: _Writer,
    ports: Dict[int, str],
    args: argparse.Namespace,
    path: str,
) -> None:
    """GRO over the capture as it is read, one section at a time (a new section ends
    every held super-packet); frames keep their first segment's time, interface and
    link header.  Records that are not IP pass through unchanged."""
    for part in _sections(items):
        first: Optional[_Packet] = None
        for item in part:  # the section's blocks up to its first packet
            if isinstance(item, _Packet):
                first = item
                break
            writer.event(item)
        if first is not None:
            _coalesce_section(itertools.chain([first], part), first, writer, ports, args, path)


def _coalesce_section(
    part: Iterator[Union[_Packet, _Event]],
    first: _Packet,
    writer: _Writer,
    ports: Dict[int, str],
    args: argparse.Namespace,
    path: str,
) -> None:
    """GRO over one section's packets (the link type of FIRST).  A signal while reading
    ends the input: what GRO holds is flushed and written, then the signal goes on."""
    window: Deque[Tuple[int, _Packet]] = deque()  # packets read, output not written yet
    stopped: List[KeyboardInterrupt] = []

    def frames() -> Iterator[Tuple[bytes, Optional[int]]]:
        try:
            for n, item in enumerate(_packets(part, writer)):
                _same_link(item, first, path)
                window.append((n, item))
                lk = _link(item.rec)
                yield (item.rec.data[lk[0] :] if lk else b""), item.rec.ts_ns  # b"": passed through
        except KeyboardInterrupt as exc:
            stopped.append(exc)

    link = _link(first.rec)
    merged = coalesce_timed(
        frames(),
        link=link[1] if link else _ETH,
        tunnel_ports=ports,
        flush_every=args.napi_budget,
        checksums="full" if args.finish_checksums else "partial",
    )
    for frame, n in merged:
        while window[0][0] < n:  # absorbed into earlier super-packets
            window.popleft()
        pkt = window.popleft()[1]
        lk = _link(pkt.rec)
        writer.write(pkt, pkt.rec.data[: lk[0]] + frame if lk else pkt.rec.data)
    if stopped:
        raise stopped[0]


def _same_link(item: _Packet, first: _Packet, path: str) -> None:
    if item.rec.linktype != first.rec.linktype:
        raise CaptureError(
            "link type %d differs from the first packet's %d in this section: --coalesce "
            "reads one link type per section" % (item.rec.linktype, first.rec.linktype),
            path=path,
            offset=item.rec.offset,
            packet=item.rec.number,
        )


def _packets(items: Iterator[Union[_Packet, _Event]], writer: _Writer) -> Iterator[_Packet]:
    """The packets of ITEMS; the events among them go to WRITER as they come."""
    for item in items:
        if isinstance(item, _Event):
            writer.event(item)
        else:
            yield item
