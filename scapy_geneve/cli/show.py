"""``scapy-geneve show [PCAP]``: one summary line per packet, or Scapy's show()."""

import argparse
import contextlib
import datetime
import sys
from pathlib import Path
from typing import Iterator, List, Optional

from scapy.config import conf
from scapy.packet import Packet, Raw

from scapy_geneve.capture import pcapio
from scapy_geneve.layers import Geneve

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.pcap"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "show", help="dissect a pcap/pcapng: one line per packet (or --detail)",
        description="Dissect a pcap or pcapng file with Scapy and every scapy-geneve layer. "
                    "Without PCAP, shows the bundled sample capture.")
    p.add_argument("pcap", nargs="?", help="capture file (default: the bundled sample, %s)"
                   % SAMPLE.name)
    p.add_argument("--detail", action="store_true", help="Scapy's show() of every packet")
    p.add_argument("--count", "-c", type=int, metavar="N", help="stop after N packets")
    # Selection (issue 6): packets are found on the fast path (scapy_geneve.capture.scan)
    # and only the matching ones are dissected with Scapy.
    from scapy_geneve.cli.filter import add_filter_options
    from scapy_geneve.cli.stats import add_scan_options
    add_filter_options(p)
    add_scan_options(p)
    p.set_defaults(func=run)


def dissect(record: pcapio.Record) -> Packet:
    """The record as a Scapy packet of its link type (Raw if Scapy has none)."""
    cls = conf.l2types.num2layer.get(record.linktype, conf.raw_layer)
    pkt = cls(record.data)
    if record.time is not None:
        pkt.time = record.time
    pkt.wirelen = record.wirelen
    return pkt


def _tunnel_index(layers: List[Packet]) -> Optional[int]:
    for i, layer in enumerate(layers):
        module = type(layer).__module__
        if module.startswith("scapy_geneve.layers") or type(layer).__name__ in ("VXLAN", "GRE"):
            return i
    return None


def summary_line(pkt: Packet) -> str:
    """``outer addresses | tunnel header | inner packet`` in one line."""
    layers: List[Packet] = []
    layer = pkt
    while layer and not isinstance(layer, Raw):
        layers.append(layer)
        layer = layer.payload
    tunnel = _tunnel_index(layers)
    if tunnel is None:
        return pkt.summary()
    outer = layers[tunnel - 1] if tunnel else pkt
    ip = next((l for l in reversed(layers[:tunnel]) if hasattr(l, "src") and
               type(l).__name__ in ("IP", "IPv6")), None)
    parts = []
    if ip is not None:
        sport, dport = getattr(outer, "sport", None), getattr(outer, "dport", None)
        if sport is not None and type(outer).__name__ in ("UDP", "TCP"):
            parts.append("%s:%s > %s:%s %s" % (ip.src, sport, ip.dst, dport, type(outer).__name__))
        else:
            parts.append("%s > %s" % (ip.src, ip.dst))
    parts.append(str(layers[tunnel].mysummary()))
    if isinstance(layers[tunnel], Geneve):
        notes = []
        g = layers[tunnel]
        if g.version != 0:
            notes.append("version %d" % g.version)
        if any(isinstance(o, Raw) for o in g.options):
            notes.append("truncated option")
        if notes:
            parts[-1] += " [malformed: %s]" % ", ".join(notes)
    inner = layers[tunnel].payload
    if inner:
        parts.append(inner.summary())
    return " | ".join(parts)


def _stamp(pkt: Packet) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(pkt.time), datetime.timezone.utc).strftime(
            "%H:%M:%S.%f")
    except (OverflowError, OSError, ValueError):
        return "-"


def load_payload_contribs() -> None:
    """Scapy's MPLS and NSH live in contrib: load them so Geneve payloads of
    those EtherTypes dissect (kept out of ``import scapy_geneve``: NSH
    imports all of Scapy)."""
    from scapy.main import load_contrib

    for name in ("mpls", "nsh"):
        load_contrib(name)


@contextlib.contextmanager
def dissect_extra_ports(geneve_ports: List[int], vxlan_ports: List[int]) -> Iterator[None]:
    """Let Scapy dissect the extra ``--geneve-port``/``--vxlan-port`` UDP
    destination ports that the selection used; undone afterwards (ports
    Scapy already binds are left alone)."""
    from scapy.layers.inet import UDP
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import bind_bottom_up, split_bottom_up

    added = []
    for cls, ports in ((Geneve, geneve_ports), (VXLAN, vxlan_ports)):
        for port in sorted(set(ports)):
            if any(c is cls and params == {"dport": port} for params, c in UDP.payload_guess):
                continue
            bind_bottom_up(UDP, cls, dport=port)
            added.append((cls, port))
    try:
        yield
    finally:
        for cls, port in added:
            split_bottom_up(UDP, cls, dport=port)


def run(args: argparse.Namespace) -> int:
    with dissect_extra_ports(args.geneve_port, args.vxlan_port):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    path = args.pcap or str(SAMPLE)
    load_payload_contribs()
    out = sys.stdout
    from scapy_geneve.cli.filter import packet_filter
    from scapy_geneve.cli.stats import scan_kwargs
    from scapy_geneve.capture.scan import matching_records
    pfilter = packet_filter(args)
    records = (pcapio.iter_records(path) if pfilter.empty
               else matching_records(path, pfilter, **scan_kwargs(args)))
    for shown, record in enumerate(records):
        if args.count is not None and shown >= args.count:
            break
        pkt = dissect(record)
        if args.detail:
            out.write("#%d  %s  %d bytes\n" % (record.number, _stamp(pkt), record.caplen))
            out.write(pkt.show(dump=True) or "")
            out.write("\n")
        else:
            out.write("%5d  %s  %s\n" % (record.number, _stamp(pkt), summary_line(pkt)))
    return 0
