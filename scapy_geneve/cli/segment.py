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
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from scapy_geneve.cli._common import Progress, atomic_output
from scapy_geneve.errors import BuildError, CaptureError
from scapy_geneve.gro import coalesce_indexed
from scapy_geneve.pcapio import PcapWriter, Record, open_capture
from scapy_geneve.segment import TUNNEL_PORTS, finish_checksums_bytes, segment_bytes

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
        description="Read IN (pcap or pcapng, captured before the NIC) and write OUT (pcap, "
                    "same link type) with every GSO/TSO super-packet cut into the segments "
                    "Linux's software GSO sends: tunnel header and options copied, IDs, "
                    "sequence numbers, lengths and checksums per segment.  Every other "
                    "TCP/UDP packet gets its checksums finished; anything else is copied "
                    "unchanged.  OUT is written atomically and may not be IN.")
    parser.add_argument("input", metavar="IN", help="capture file (pcap or pcapng)")
    parser.add_argument("output", metavar="OUT", help="pcap file to write")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--mtu", type=int, metavar="N",
                      help="IP MTU of the outer link (default 1500): the MSS is N minus every "
                           "header from the outer IP header to the inner TCP/UDP header, "
                           "Geneve options included")
    size.add_argument("--mss", type=int, metavar="N", help="payload bytes per segment")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--coalesce", action="store_true",
                      help="merge segments into super-packets the way Linux GRO does instead")
    mode.add_argument("--finish-checksums", action="store_true",
                      help="only fill in lengths and checksums (partial checksums, IPv4 "
                           "length 0 / IPv6 payload length 0 of BIG TCP); no segmenting")
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


def _ports(args: argparse.Namespace) -> Dict[int, str]:
    ports = dict(TUNNEL_PORTS)
    for kind, extra in (("geneve", args.geneve_port), ("vxlan", args.vxlan_port)):
        for port in extra:
            if not 0 < port < 65536:
                raise SystemExit("scapy-geneve segment: error: --%s-port %d is not a UDP port"
                                 % (kind, port))
            ports[port] = kind
    return ports


def _transform(args: argparse.Namespace) -> Callable[[bytes, str], List[bytes]]:
    ports = _ports(args)
    if args.finish_checksums:
        return lambda data, link: [finish_checksums_bytes(data, link=link, tunnel_ports=ports)]
    knobs: Dict[str, Any] = {"tunnel_ports": ports}
    if args.fixed_id:
        knobs.update(ip_id="fixed", outer_ip_id="fixed")
    return lambda data, link: segment_bytes(data, args.mss, args.mtu, link=link, **knobs)


def run(args: argparse.Namespace) -> int:
    if args.coalesce and (args.mtu is not None or args.mss is not None or args.fixed_id):
        raise SystemExit("scapy-geneve segment: error: --coalesce takes no --mtu/--mss/--fixed-id")
    if args.napi_budget is not None and (not args.coalesce or args.napi_budget < 1):
        raise SystemExit("scapy-geneve segment: error: --napi-budget needs --coalesce and N >= 1")
    counts = {"in": 0, "out": 0, "cut": 0, "finished": 0, "unchanged": 0, "skipped": 0}
    reasons: List[str] = []
    with open_capture(args.input) as reader, atomic_output(args.output, args.input) as out:
        bar = Progress(reader.file_size, "segment", args.quiet)
        writer: Optional[PcapWriter] = None
        linktype = None
        transform = _transform(args)
        records = _checked(reader, args.input, counts, bar)
        try:
            if args.coalesce:
                writer = _coalesce(records, out, _ports(args), args.napi_budget)
                counts["out"] = writer.count if writer is not None else 0
                counts["cut"] = counts["in"] - counts["out"]
            else:
                for rec in records:
                    if writer is None:
                        writer = PcapWriter(out, rec.linktype, nanosecond=True)
                    for frame in _one(rec, transform, args, counts, reasons):
                        writer.write(frame, rec.ts_ns or 0)
                        counts["out"] += 1
        finally:
            bar.close()
        if writer is None:
            PcapWriter(out, 1, nanosecond=True)   # empty input: an empty pcap
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


def _checked(reader: Any, path: str, counts: Dict[str, int], bar: Progress) -> Iterator[Record]:
    """The records of READER, counted, with the progress bar moving; one link type only."""
    linktype = None
    for rec in reader.records():
        counts["in"] += 1
        if linktype is None:
            linktype = rec.linktype
        elif rec.linktype != linktype:
            raise CaptureError("link type %d differs from the first packet's %d: a pcap has one"
                               % (rec.linktype, linktype), path=path, offset=rec.offset,
                               packet=rec.number)
        bar.update(reader.bytes_read, counts["in"])
        yield rec


class _CountingWriter(PcapWriter):
    count = 0

    def write(self, data: bytes, ts_ns: int = 0, wirelen: Optional[int] = None) -> None:
        self.count += 1
        super().write(data, ts_ns, wirelen)


def _coalesce(records: Iterator[Record], out: Any, ports: Dict[int, str],
              budget: Optional[int]) -> Optional[_CountingWriter]:
    """GRO over the capture as it is read; frames keep their first segment's time
    and link header.  Records that are not IP pass through unchanged."""
    first = next(records, None)
    if first is None:
        return None
    writer = _CountingWriter(out, first.linktype, nanosecond=True)
    link = _link(first)
    window: Deque[Tuple[int, Record]] = deque()   # records read, output not written yet

    def frames() -> Iterator[bytes]:
        for n, rec in enumerate(itertools.chain([first], records)):
            window.append((n, rec))
            lk = _link(rec)
            yield rec.data[lk[0]:] if lk else b""    # b"": unreadable, passed through
    for frame, n in coalesce_indexed(frames(), link=link[1] if link else _ETH, tunnel_ports=ports,
                                     flush_every=budget):
        while window[0][0] < n:                      # absorbed into earlier super-packets
            window.popleft()
        rec = window.popleft()[1]
        lk = _link(rec)
        writer.write(rec.data[:lk[0]] + frame if lk else rec.data, rec.ts_ns or 0)
    return writer
