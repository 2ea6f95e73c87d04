"""``scapy-geneve segment IN OUT``: turn a capture taken before the NIC into wire packets.

Default: every GSO/TSO super-packet (Geneve, VXLAN, VXLAN-GPE, GRE/NVGRE or no
tunnel; TCP or UDP GSO) is cut into the segments Linux's software GSO sends,
and every TCP/UDP packet gets the lengths and checksums the NIC would fill in.
``--finish-checksums`` only finishes checksums and lengths (no cutting).
``--coalesce`` does the opposite: merges wire segments the way GRO does.
"""

import argparse
import itertools
import sys
from collections import deque
from typing import IO, Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from scapy_geneve.cli._common import Progress, capture_output
from scapy_geneve.errors import BuildError, CaptureError
from scapy_geneve.offload.gro import coalesce_indexed
from scapy_geneve.capture.pcapio import PcapngWriter, PcapWriter, Record, open_capture
from scapy_geneve.offload.segment import TUNNEL_PORTS, finish_checksums_bytes, segment_bytes

_ETH, _IP = "ether", "ip"


def _link(rec: Record) -> Optional[Tuple[int, str]]:
    """(length of the link header kept as is, what follows it) or None: not IP."""
    lt, data = rec.linktype, rec.data
    if lt == 1:
        return 0, _ETH
    if lt in (101, 228, 229):
        return 0, _IP
    if lt == 113 and len(data) >= 16 and data[14:16] in (b"\x08\x00", b"\x86\xdd"):
        return 16, _IP                    # Linux cooked v1 (tcpdump -i any)
    if lt == 276 and len(data) >= 20 and data[0:2] in (b"\x08\x00", b"\x86\xdd"):
        return 20, _IP                    # Linux cooked v2
    if lt in (0, 108) and len(data) >= 4:
        return 4, _IP                     # BSD / OpenBSD loopback
    return None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "segment", help="GSO/TSO-segment (or GRO-coalesce) a capture",
        description="Read IN (pcap or pcapng, captured before the NIC) and write OUT "
                    "with every GSO/TSO super-packet cut into the segments "
                    "Linux's software GSO sends: tunnel header and options copied, IDs, "
                    "sequence numbers, lengths and checksums per segment.  Every other "
                    "TCP/UDP packet gets its checksums finished; anything else is copied "
                    "unchanged.  pcap in gives pcap out (nanosecond timestamps); pcapng "
                    "in gives pcapng out with one interface per input interface (other "
                    "blocks, such as comments and name resolution, are not copied).  "
                    "OUT is written atomically and may not be IN.")
    parser.add_argument("input", metavar="IN",
                        help="capture file (pcap or pcapng); - reads standard input")
    parser.add_argument("output", metavar="OUT",
                        help="capture file to write; - writes standard output")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--mtu", type=int, metavar="N",
                      help="IP MTU of the outer link (default 1500): the MSS is N minus every "
                           "header from the outer IP header to the inner TCP/UDP header, "
                           "Geneve options included")
    size.add_argument("--mss", type=int, metavar="N", help="payload bytes per segment")
    parser.add_argument("--coalesce", action="store_true",
                        help="merge segments into super-packets the way Linux GRO does instead; "
                             "their TCP (and non-zero outer UDP) checksums hold the "
                             "pseudo-header sum, as GRO hands them up, unless "
                             "--finish-checksums is given too")
    parser.add_argument("--finish-checksums", action="store_true",
                        help="only fill in lengths and checksums (partial checksums, IPv4 "
                             "length 0 / IPv6 payload length 0 of BIG TCP); no segmenting.  "
                             "With --coalesce: finish the merged packets' checksums")
    parser.add_argument("--geneve-port", type=int, action="append", default=[], metavar="P",
                        help="also read UDP port P as Geneve (6081 always is); repeatable")
    parser.add_argument("--vxlan-port", type=int, action="append", default=[], metavar="P",
                        help="also read UDP port P as VXLAN (4789 and 8472 always are); repeatable")
    parser.add_argument("--napi-budget", type=int, metavar="N",
                        help="--coalesce: flush every held super-packet after each N packets, "
                             "as the end of a NAPI poll does (the kernel's budget is 64)")
    parser.add_argument("--fixed-id", action="store_true",
                        help="keep the IPv4 IDs of every segment (TCP_FIXEDID) instead of +1")
    parser.add_argument("--keep-going", action="store_true",
                        help="copy packets whose headers cannot be read (truncated, "
                             "fragments) unchanged instead of stopping with an error")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)


class _UsageError(Exception):
    """A bad combination of options: reported like argparse does, exit code 2."""


def _ports(args: argparse.Namespace) -> Dict[int, str]:
    ports = dict(TUNNEL_PORTS)
    for kind, extra in (("geneve", args.geneve_port), ("vxlan", args.vxlan_port)):
        for port in extra:
            if not 0 < port < 65536:
                raise _UsageError("--%s-port %d is not a UDP port" % (kind, port))
            ports[port] = kind
    return ports


class _Writer:
    """The output capture: pcap for pcap input (nanosecond timestamps, the input's
    link type), pcapng for pcapng input (one interface per input interface, with
    its link type, nanosecond timestamps).  Created with the first record."""

    def __init__(self, out: IO[bytes], pcapng: bool) -> None:
        self.out, self.pcapng = out, pcapng
        self.count = 0
        self._pcap: Optional[PcapWriter] = None
        self._ng: Optional[PcapngWriter] = PcapngWriter(out) if pcapng else None
        self._ifaces: Dict[int, int] = {}

    def write(self, rec: Record, frame: bytes) -> None:
        """One output frame, with ``rec``'s time and interface."""
        self.count += 1
        if self._ng is None:
            if self._pcap is None:
                self._pcap = PcapWriter(self.out, rec.linktype, nanosecond=True)
            self._pcap.write(frame, rec.ts_ns or 0)
            return
        iface = self._ifaces.get(rec.interface)
        if iface is None:
            iface = self._ifaces[rec.interface] = self._ng.add_interface(rec.linktype, tsresol=9)
        if rec.ts_ns is None and iface == 0:
            self._ng.write_simple(frame)        # a Simple Packet Block stays one (no time)
        else:
            self._ng.write(frame, rec.ts_ns or 0, iface)

    def close(self) -> None:
        """An empty pcap input still gives a valid (empty) pcap."""
        if self._ng is None and self._pcap is None:
            self._pcap = PcapWriter(self.out, 1, nanosecond=True)


def _transform(args: argparse.Namespace) -> Callable[[bytes, str], List[bytes]]:
    ports = _ports(args)
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


def _run(args: argparse.Namespace) -> int:
    if args.coalesce and (args.mtu is not None or args.mss is not None or args.fixed_id):
        raise _UsageError("--coalesce takes no --mtu/--mss/--fixed-id")
    if args.napi_budget is not None and (not args.coalesce or args.napi_budget < 1):
        raise _UsageError("--napi-budget needs --coalesce and N >= 1")
    counts = {"in": 0, "out": 0, "cut": 0, "finished": 0, "unchanged": 0, "skipped": 0}
    reasons: List[str] = []
    transform = _transform(args)
    ports = _ports(args)
    with open_capture(args.input) as reader, capture_output(args.output, args.input) as out:
        bar = Progress(reader.file_size, "segment", args.quiet)
        writer = _Writer(out, reader.format == "pcapng")
        records = _checked(reader, args.input, counts, bar, one_link=args.coalesce)
        try:
            if args.coalesce:
                _coalesce(records, writer, ports, args.napi_budget,
                          "full" if args.finish_checksums else "partial")
                counts["out"] = writer.count
                counts["cut"] = counts["in"] - counts["out"]
            else:
                for rec in records:
                    for frame in _one(rec, transform, args, counts, reasons):
                        writer.write(rec, frame)
                        counts["out"] += 1
        finally:
            bar.close()
        writer.close()
    if not args.quiet:
        if args.coalesce:
            print("scapy-geneve segment: %d packets in, %d out (%d merged into super-packets) "
                  "-> %s" % (counts["in"], counts["out"], counts["cut"], args.output), file=sys.stderr)
        else:
            print("scapy-geneve segment: %d packets in, %d out: %d super-packets cut, %d finished, "
                  "%d copied unchanged%s -> %s"
                  % (counts["in"], counts["out"], counts["cut"], counts["finished"], counts["unchanged"],
                     (", %d unreadable copied (--keep-going)" % counts["skipped"]) if counts["skipped"] else "",
                     args.output), file=sys.stderr)
            for line in reasons[:5]:
                print("  " + line, file=sys.stderr)
    return 0


def _one(rec: Record, transform: Callable[[bytes, str], List[bytes]], args: argparse.Namespace,
         counts: Dict[str, int], reasons: List[str]) -> List[bytes]:
    link = _link(rec)
    if link is None:
        counts["unchanged"] += 1
        return [rec.data]
    keep, kind = link
    head, body = rec.data[:keep], rec.data[keep:]
    if rec.caplen < rec.wirelen:
        err = CaptureError("only %d of %d bytes were captured (snaplen): cannot rebuild the "
                           "packet" % (rec.caplen, rec.wirelen), path=args.input,
                           offset=rec.offset, packet=rec.number)
        return _unreadable(rec, err, args, counts, reasons)
    try:
        frames = transform(body, kind)
    except CaptureError as exc:
        if "not IPv4 or IPv6" in exc.message or "fragment" in exc.message:
            counts["unchanged"] += 1          # ARP, LLDP, IP fragments: nothing to do
            return [rec.data]
        try:                                  # e.g. a tunnel carrying no IP: finish the outer packet
            frames = [finish_checksums_bytes(body, link=kind)]
        except CaptureError:
            err = CaptureError(exc.message, path=args.input, offset=rec.offset, packet=rec.number)
            return _unreadable(rec, err, args, counts, reasons)
    except BuildError as exc:
        if exc.field == "payload":            # not TCP/UDP and too big: nothing to cut
            counts["unchanged"] += 1
            return [rec.data]
        raise BuildError(exc.layer, exc.field, exc.value,
                         "%s (%s, packet %d)" % (exc.why, args.input, rec.number)) from None
    if len(frames) > 1:
        counts["cut"] += 1
    else:
        counts["finished"] += 1
    return [head + f for f in frames] if keep else frames


def _unreadable(rec: Record, err: CaptureError, args: argparse.Namespace, counts: Dict[str, int],
                reasons: List[str]) -> List[bytes]:
    if not args.keep_going:
        raise err
    counts["skipped"] += 1
    reasons.append(str(err))
    return [rec.data]


def _checked(reader: Any, path: str, counts: Dict[str, int], bar: Progress,
             one_link: bool) -> Iterator[Record]:
    """The records of READER, counted, with the progress bar moving.  ``one_link``:
    every record must have the first one's link type (GRO reads them as one stream)."""
    linktype = None
    for rec in reader.records():
        counts["in"] += 1
        if linktype is None:
            linktype = rec.linktype
        elif one_link and rec.linktype != linktype:
            raise CaptureError("link type %d differs from the first packet's %d: --coalesce "
                               "reads one link type" % (rec.linktype, linktype), path=path,
                               offset=rec.offset, packet=rec.number)
        bar.update(reader.bytes_read, counts["in"])
        yield rec


def _coalesce(records: Iterator[Record], writer: _Writer, ports: Dict[int, str],
              budget: Optional[int], checksums: str) -> None:
    """GRO over the capture as it is read; frames keep their first segment's time
    and link header.  Records that are not IP pass through unchanged."""
    first = next(records, None)
    if first is None:
        return
    link = _link(first)
    window: Deque[Tuple[int, Record]] = deque()   # records read, output not written yet

    def frames() -> Iterator[bytes]:
        for n, rec in enumerate(itertools.chain([first], records)):
            window.append((n, rec))
            lk = _link(rec)
            yield rec.data[lk[0]:] if lk else b""    # b"": unreadable, passed through
    for frame, n in coalesce_indexed(frames(), link=link[1] if link else _ETH, tunnel_ports=ports,
                                     flush_every=budget, checksums=checksums):
        while window[0][0] < n:                      # absorbed into earlier super-packets
            window.popleft()
        rec = window.popleft()[1]
        lk = _link(rec)
        writer.write(rec, rec.data[:lk[0]] + frame if lk else rec.data)
