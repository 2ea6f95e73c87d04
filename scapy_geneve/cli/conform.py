"""``scapy-geneve conform``: run the conformance vectors against an endpoint.

Endpoints: ``ovs`` (Open vSwitch userspace datapath, started privately in
namespaces), ``linux-vxlan`` (the kernel's vxlan device in a namespace),
``interface`` (your own endpoint, through interfaces you name).  ``--list``
prints the catalogue instead.

Exit status: 0 every MUST and control vector passed; 1 some failed;
2 the endpoint could not be set up.
"""

import argparse
import ipaddress
import json
import os
import re
import sys
from typing import List

import scapy_geneve._api  # noqa: F401  (every layer and hook, as `import scapy_geneve` binds them)
from scapy_geneve.capture import pcapio
from scapy_geneve.cli._common import atomic_output
from scapy_geneve.conformance.endpoints import (
    Endpoint,
    EndpointError,
    InterfaceEndpoint,
    KernelVXLANEndpoint,
    OVSEndpoint,
)
from scapy_geneve.conformance.harness import run_vectors
from scapy_geneve.conformance.vectors import LEVELS, Target, vectors


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number (decimal or 0x hex)" % text) from None


def _seconds(text: str) -> float:
    """A positive number of seconds (0 or less would call every vector dropped)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("%r is not a positive number of seconds" % text)
    return value


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an IPv4 address" % text) from None


def _mac(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", text):
        raise argparse.ArgumentTypeError("%r is not a MAC address (aa:bb:cc:dd:ee:ff)" % text)
    return text.lower()


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "conform",
        help="send RFC conformance vectors into a tunnel endpoint, print verdicts",
        description="Send every conformance vector into a tunnel endpoint and report, per vector, "
        "what the RFC requires and what the endpoint did.  Needs root for ovs and "
        "linux-vxlan (they create and delete their own network namespaces).",
    )
    p.add_argument(
        "endpoint", nargs="?", choices=["ovs", "linux-vxlan", "interface"], help="the endpoint under test"
    )
    p.add_argument("--list", action="store_true", help="print the vector catalogue and exit")
    p.add_argument(
        "--write",
        metavar="PCAP",
        help="write the selected vectors' frames to PCAP (one per vector, in catalogue order, "
        "addressed with the interface-endpoint options) and exit: replay them into a "
        "device with tcpreplay or a traffic generator",
    )
    p.add_argument("--force", action="store_true", help="let --write replace an existing file")
    p.add_argument(
        "--protocol",
        action="append",
        choices=["geneve", "vxlan", "nvgre"],
        help="only these protocols (repeatable)",
    )
    p.add_argument("--vector", action="append", metavar="NAME", help="only these vectors (repeatable)")
    p.add_argument("--level", action="append", choices=list(LEVELS), help="only these levels (repeatable)")
    p.add_argument("--timeout", type=_seconds, help="seconds to wait for an inner frame (> 0)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON verdict table")
    out.add_argument("--markdown", action="store_true", help="Markdown verdict table")
    g = p.add_argument_group("interface endpoint")
    g.add_argument("--send-iface", help="interface facing the endpoint's underlay port")
    g.add_argument("--send-netns", help="network namespace of --send-iface")
    g.add_argument("--recv-iface", help="interface where decapsulated frames come out")
    g.add_argument("--recv-netns", help="network namespace of --recv-iface")
    g.add_argument("--src-mac", type=_mac), g.add_argument("--dst-mac", type=_mac)
    g.add_argument("--src-ip", type=_ipv4), g.add_argument("--dst-ip", type=_ipv4)
    g.add_argument("--vni", type=_int, default=5000)
    g.add_argument("--vsid", type=_int, default=0xABCD)
    g.add_argument("--flowid", type=_int, default=0x5A)
    g.add_argument("--inner-dst-mac", type=_mac, help="MAC of the host behind the endpoint")
    g.add_argument("--inner-dst-ip", type=_ipv4, help="IPv4 address of the host behind the endpoint")
    p.set_defaults(func=run)


def _print_catalogue(args: argparse.Namespace) -> int:
    vs = vectors(args.protocol, args.level, args.vector)
    if args.json:
        json.dump(
            [
                {
                    "vector": v.name,
                    "protocol": v.protocol,
                    "level": v.level,
                    "section": v.section,
                    "expected": v.expect.value,
                    "family": v.family,
                    "requirement": v.requirement,
                }
                for v in vs
            ],
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    for v in vs:
        print("%-40s %-7s %-22s %-16s %s" % (v.name, v.level, v.expect.value, v.section, v.requirement))
    return 0


def _target(args: argparse.Namespace) -> Target:
    base = Target()
    return Target(
        src_mac=args.src_mac or base.src_mac,
        dst_mac=args.dst_mac or base.dst_mac,
        src_ip=args.src_ip or base.src_ip,
        dst_ip=args.dst_ip or base.dst_ip,
        vni=args.vni,
        vsid=args.vsid,
        flowid=args.flowid,
        inner_dst_mac=args.inner_dst_mac or base.inner_dst_mac,
        inner_dst_ip=args.inner_dst_ip or base.inner_dst_ip,
    )


def _write_vectors(args: argparse.Namespace) -> int:
    if os.path.exists(args.write) and not args.force:
        print("scapy-geneve conform: error: %s exists; --force replaces it" % args.write, file=sys.stderr)
        return 2
    vs = vectors(args.protocol, args.level, args.vector)
    target = _target(args)
    with atomic_output(args.write) as handle:
        writer = pcapio.PcapWriter(handle, pcapio.LINKTYPE_ETHERNET, nanosecond=True)
        for i, v in enumerate(vs):
            writer.write(v.frame(target), ts_ns=i * 1000)
    print("%s: %d vectors (%s)" % (args.write, len(vs), ", ".join(sorted({v.protocol for v in vs}))))
    return 0


def _interface_endpoint(args: argparse.Namespace) -> InterfaceEndpoint:
    missing = [
        flag
        for flag, val in (
            ("--send-iface", args.send_iface),
            ("--recv-iface", args.recv_iface),
            ("--dst-mac", args.dst_mac),
            ("--dst-ip", args.dst_ip),
            ("--src-ip", args.src_ip),
        )
        if not val
    ]
    if missing:
        raise EndpointError("the interface endpoint needs %s" % ", ".join(missing))
    if (args.send_iface, args.send_netns) == (args.recv_iface, args.recv_netns):
        raise EndpointError(
            "--send-iface and --recv-iface are the same interface: every injected "
            "frame would be seen coming back and called delivered"
        )
    return InterfaceEndpoint(
        args.send_iface,
        args.recv_iface,
        _target(args),
        protocols=args.protocol or ("geneve", "vxlan", "nvgre"),
        send_netns=args.send_netns,
        recv_netns=args.recv_netns,
        name="interface",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.list:
            return _print_catalogue(args)
        if args.write:
            return _write_vectors(args)
    except KeyError as exc:
        print("scapy-geneve conform: error: %s" % exc.args[0], file=sys.stderr)
        return 2
    if args.endpoint is None:
        print(
            "scapy-geneve conform: error: name an endpoint (ovs, linux-vxlan, interface) or --list",
            file=sys.stderr,
        )
        return 2
    if args.endpoint in ("ovs", "linux-vxlan") and os.geteuid() != 0:
        print(
            "scapy-geneve conform: error: the %s endpoint needs root (it creates network namespaces)"
            % args.endpoint,
            file=sys.stderr,
        )
        return 2
    endpoint: Endpoint
    try:
        if args.endpoint == "ovs":
            endpoint = OVSEndpoint(protocols=args.protocol or ("geneve", "vxlan", "nvgre"))
        elif args.endpoint == "linux-vxlan":
            endpoint = KernelVXLANEndpoint()
        else:
            endpoint = _interface_endpoint(args)
        selected: List = vectors(args.protocol or sorted(endpoint.protocols), args.level, args.vector)
        with endpoint:
            table = run_vectors(endpoint, selected, timeout=args.timeout)
    except (EndpointError, KeyError) as exc:
        print("scapy-geneve conform: error: %s" % (exc.args[0] if exc.args else exc), file=sys.stderr)
        return 2
    if args.json:
        print(table.to_json())
    elif args.markdown:
        print(table.to_markdown())
    else:
        print(table.to_text())
    return 0 if table.ok else 1
