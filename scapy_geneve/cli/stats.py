"""``scapy-geneve stats PCAP``: packets and bytes per encapsulation, VNI,
Geneve option, inner protocol, and malformed counts, without Scapy."""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from scapy_geneve.cli._common import Progress
from scapy_geneve.errors import CaptureError
from scapy_geneve.capture.scan import KINDS, DEFAULT_PORTS, Ports, ScanStats, compute_stats


def add_scan_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by stats, filter and show: ports and L2TPv3 framing."""
    group = parser.add_argument_group("decoding")
    group.add_argument("--geneve-port", type=_port, action="append", default=[],
                       metavar="PORT", help="also read UDP dport PORT as Geneve (6081 always)")
    group.add_argument("--vxlan-port", type=_port, action="append", default=[],
                       metavar="PORT", help="also read UDP dport PORT as VXLAN "
                                            "(4789 and 8472 always; e.g. 48879 for Cisco ACI)")
    group.add_argument("--l2tp-cookie", type=int, choices=(0, 4, 8), default=0,
                       help="L2TPv3 cookie length in bytes (not on the wire; default 0)")
    group.add_argument("--l2tp-l2ss", action="store_true",
                       help="L2TPv3 data packets carry the Default L2-Specific Sublayer")


def _port(text: str) -> int:
    value = int(text, 0)
    if not 0 < value <= 0xFFFF:
        raise argparse.ArgumentTypeError("%s is not a UDP port" % text)
    return value


def input_size(path: str) -> Optional[int]:
    """Bytes to read for the progress bar (None for ``-``, standard input)."""
    return None if path == "-" else os.path.getsize(path)


def scan_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments for scapy_geneve.capture.scan functions from ARGS."""
    ports = Ports(geneve=DEFAULT_PORTS.geneve | frozenset(args.geneve_port),
                  vxlan=DEFAULT_PORTS.vxlan | frozenset(args.vxlan_port))
    return {"ports": ports, "l2tp_cookie": args.l2tp_cookie, "l2tp_l2ss": args.l2tp_l2ss}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats", help="count packets per encapsulation, VNI, option, inner protocol",
        description="Count packets and bytes per encapsulation (%s), per VNI, per Geneve "
                    "option class and type, critical options, inner protocols and "
                    "malformed packets.  Reads pcap and pcapng; never builds Scapy "
                    "packets, so it runs at millions of packets per second."
                    % ", ".join(KINDS))
    parser.add_argument("pcap", help="capture file (pcap or pcapng); - reads standard input")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="show the N busiest VNIs and options (default 20; 0 = all)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_scan_options(parser)
    parser.set_defaults(func=run)


def _ident(kind: str, vni: int) -> str:
    if kind == "stt":
        return "0x%016x" % vni
    if kind == "l2tpv3":
        return "%d (0x%08x)" % (vni, vni)
    return "%d (0x%06x)" % (vni, vni)


def format_text(data: Dict[str, Any], top: int) -> str:
    """The stats dict as the tables ``scapy-geneve stats`` prints."""
    out: List[str] = []
    add = out.append
    links = ", ".join("%s %d" % kv for kv in data["linktypes"].items()) or "-"
    add("%s: %s, %d packets, %d bytes on the wire (%d captured)" % (
        data["file"], data["format"] or "?", data["packets"], data["bytes"],
        data["captured_bytes"]))
    if data["duration"] is not None:
        add("time: %.6f to %.6f (%.3f s)" % (data["first_time"], data["last_time"],
                                              data["duration"]))
    add("link types: %s" % links)
    add("outer: %s" % (", ".join("%s %d" % kv for kv in data["outer"].items()) or "-"))
    add("")
    add("%-12s %12s %16s" % ("encapsulation", "packets", "bytes"))
    for name, entry in data["encapsulations"].items():
        add("%-12s %12d %16d" % (name, entry["packets"], entry["bytes"]))
    vnis = data["vnis"]
    if vnis:
        shown = vnis if top <= 0 else vnis[:top]
        add("")
        add("identifiers (VNI / VSID / STT context / L2TPv3 session): %d%s" % (
            len(vnis), "" if len(shown) == len(vnis) else ", top %d shown" % len(shown)))
        add("%-10s %-22s %12s %16s" % ("kind", "identifier", "packets", "bytes"))
        for entry in shown:
            add("%-10s %-22s %12d %16d" % (entry["kind"], _ident(entry["kind"], entry["vni"]),
                                           entry["packets"], entry["bytes"]))
    for kind, count in data["without_identifier"].items():
        what = {"stt": "STT continuation segments (the context ID is in the first segment)",
                "l2tpv3": "L2TPv3 control messages"}.get(kind, "%s without identifier" % kind)
        add("%s: %d" % (what, count))
    options = data["options"]
    if options:
        shown = options if top <= 0 else options[:top]
        add("")
        add("Geneve options: %d kinds%s" % (len(options), "" if len(shown) == len(options)
                                            else ", top %d shown" % len(shown)))
        add("%-8s %-34s %-6s %-3s %12s %12s %16s" % ("class", "owner", "type", "C", "count",
                                                      "packets", "bytes"))
        for entry in shown:
            add("0x%04x   %-34s 0x%02x   %-3s %12d %12d %16d" % (
                entry["class"], entry["class_name"][:34], entry["type"],
                "C" if entry["critical"] else "", entry["count"], entry["packets"],
                entry["bytes"]))
        classes = data["option_classes"]
        if len(classes) < len(options):     # several types in a class: per-class totals
            add("")
            add("%-8s %-34s %12s %16s" % ("class", "owner", "packets", "bytes"))
            for entry in classes if top <= 0 else classes[:top]:
                add("0x%04x   %-34s %12d %16d" % (entry["class"], entry["class_name"][:34],
                                                 entry["packets"], entry["bytes"]))
    crit = data["critical"]
    if crit["c_bit_packets"] or crit["critical_options"]:
        add("critical: C bit set in %d packets; %d critical options; %d packets with a "
            "critical option but C clear (RFC 8926 §3.5 requires C)" % (
                crit["c_bit_packets"], crit["critical_options"],
                crit["critical_option_without_c_bit"]))
    if data["oam_packets"]:
        add("O (control/OAM) bit set: %d packets" % data["oam_packets"])
    add("")
    add("inner protocols: %s" % (", ".join("%s %d" % kv for kv in
                                           data["inner_protocols"].items()) or "-"))
    mal = data["malformed"]
    add("malformed: %d packets" % mal["packets"])
    for reason, count in mal["reasons"].items():
        add("  %8d  %s" % (count, reason))
    if data["snapped"]:
        add("snapped (cut by the capture's snaplen before the headers ended): %d packets"
            % data["snapped"])
    skipped = data["skipped"]
    if skipped["packets"]:
        add("skipped (link type not supported, not examined): %d packets (%s), the first is "
            "packet %d" % (skipped["packets"], ", ".join(
                "link type %s: %d" % kv for kv in skipped["linktypes"].items()),
                skipped["first_packet"]))
    if data["error"]:
        add("")
        add("INCOMPLETE: the file is damaged; counts cover the packets before the damage.")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    stats = ScanStats(args.pcap)
    bar = Progress(input_size(args.pcap), "stats", args.quiet)
    try:
        compute_stats(args.pcap, progress=bar.update, stats=stats, **scan_kwargs(args))
    except CaptureError as exc:
        bar.close()
        stats.error = str(exc)
        if stats.format:
            _emit(stats, args)   # what was read up to the damage (nothing if not a capture)
        raise
    bar.close()
    _emit(stats, args)
    return 0


def _emit(stats: ScanStats, args: argparse.Namespace) -> None:
    data = stats.to_dict()
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_text(data, args.top))
    sys.stdout.flush()
