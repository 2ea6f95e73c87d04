"""Generate a large, realistic Geneve capture for the scan benchmarks.

    python bench/gen_pcap.py OUT.pcap [--packets 1000000] [--seed 1] [--pcapng] [--varied]

The default mix (deterministic for a given seed) looks like a busy OVN / GWLB
hypervisor uplink:

- 60% Geneve with one OVN option (0x0102/0x80, critical, C bit set),
- 25% Geneve with the three AWS GWLB options (0x0108 types 1, 2, 3),
- 10% Geneve without options, 2% Geneve over IPv6,
- 1% VXLAN, 1% ARP, 1% plain UDP (DNS);

VNIs drawn from 200 values, inner TCP/UDP/ICMP, frame sizes 92..1514 bytes,
one packet every 10 us.  The bytes are assembled with ``struct`` from
templates (no Scapy), so a million packets take a few seconds.

``--varied`` (the issue's 300k file: ``--varied --packets 300000``) is Geneve
only, and its flows carry what fleets of many vendors put there: 0-3 options
per packet drawn from about 1,650 (class, type) kinds (classes all over the
IANA registry's First Come First Served range, critical or not), each with
0-32 data bytes; VNIs from 5,000 values, frames over 16,384 flows.
"""

import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapngWriter, PcapWriter  # noqa: E402

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def _ipv4(proto: int, src: bytes, dst: bytes, payload_len: int, ident: int) -> bytes:
    hdr = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst
        )
    )
    total = sum(struct.unpack("!10H", bytes(hdr)))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", hdr, 10, ~total & 0xFFFF)
    return bytes(hdr)


def _ipv6(nh: int, src: bytes, dst: bytes, payload_len: int) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, nh, 64, src, dst)


def _inner(rng: random.Random, size: int) -> bytes:
    """An inner Ethernet/IPv4 frame of SIZE bytes with TCP, UDP or ICMP."""
    src = bytes([10, 0, rng.randrange(256), rng.randrange(1, 255)])
    dst = bytes([10, 1, rng.randrange(256), rng.randrange(1, 255)])
    pick = rng.random()
    if pick < 0.7:
        proto = 6
        l4 = struct.pack(
            "!HHIIBBHHH",
            rng.randrange(1024, 65535),
            rng.choice((80, 443, 22)),
            rng.getrandbits(32),
            rng.getrandbits(32),
            0x50,
            0x18,
            65535,
            0,
            0,
        )
    elif pick < 0.95:
        proto = 17
        l4 = struct.pack(
            "!HHHH", rng.randrange(1024, 65535), rng.choice((53, 123, 4500)), max(8, size - 34), 0
        )
    else:
        proto = 1
        l4 = struct.pack("!BBHHH", 8, 0, 0, rng.randrange(65536), rng.randrange(65536))
    payload = bytes(max(0, size - 14 - 20 - len(l4)))
    ip = _ipv4(proto, src, dst, len(l4) + len(payload), rng.randrange(65536))
    return MAC_B + MAC_A + b"\x08\x00" + ip + l4 + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


OVN = struct.pack("!HBB", 0x0102, 0x80, 1)
GWLB = (
    struct.pack("!HBB", 0x0108, 0x01, 2)
    + bytes(8)
    + struct.pack("!HBB", 0x0108, 0x02, 2)
    + bytes(8)
    + struct.pack("!HBB", 0x0108, 0x03, 1)
    + bytes(4)
)


def _geneve(vni: int, options: bytes, critical: bool, proto: int = 0x6558) -> bytes:
    return struct.pack("!BBHI", len(options) // 4, 0x40 if critical else 0, proto, vni << 8) + options


def frame(rng: random.Random, vnis: list, number: int) -> bytes:
    """One frame of the mix (outer Ethernet included)."""
    pick = rng.random()
    size = rng.choice((92, 128, 256, 576, 1000, 1400))
    outer_src = bytes([192, 168, 0, rng.randrange(1, 32)])
    outer_dst = bytes([192, 168, 1, rng.randrange(1, 32)])
    sport = rng.randrange(1024, 65535)
    if pick < 0.97:
        vni = rng.choice(vnis)
        if pick < 0.60:
            gnv = _geneve(
                vni, OVN + struct.pack("!HH", rng.randrange(1, 1 << 15), rng.randrange(1, 1 << 16)), True
            )
        elif pick < 0.85:
            gnv = _geneve(vni, GWLB, False, 0x0800)
            inner = _inner(rng, size)[14:]
            udp = _udp(sport, 6081, gnv + inner)
            return MAC_A + MAC_B + b"\x08\x00" + _ipv4(17, outer_src, outer_dst, len(udp), number) + udp
        elif pick < 0.95:
            gnv = _geneve(vni, b"", False)
        else:
            udp = _udp(sport, 6081, _geneve(vni, b"", False) + _inner(rng, size))
            return (
                MAC_A
                + MAC_B
                + b"\x86\xdd"
                + _ipv6(17, b"\xfd" + bytes(14) + b"\x01", b"\xfd" + bytes(14) + b"\x02", len(udp))
                + udp
            )
        udp = _udp(sport, 6081, gnv + _inner(rng, size))
        return MAC_A + MAC_B + b"\x08\x00" + _ipv4(17, outer_src, outer_dst, len(udp), number) + udp
    if pick < 0.98:
        udp = _udp(sport, 4789, struct.pack("!II", 0x08000000, rng.choice(vnis) << 8) + _inner(rng, size))
        return MAC_A + MAC_B + b"\x08\x00" + _ipv4(17, outer_src, outer_dst, len(udp), number) + udp
    if pick < 0.99:
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, outer_src, bytes(6), outer_dst)
        return b"\xff" * 6 + MAC_A + b"\x08\x06" + arp + bytes(18)
    udp = _udp(sport, 53, bytes(40))
    return MAC_A + MAC_B + b"\x08\x00" + _ipv4(17, outer_src, outer_dst, len(udp), number) + udp


OPTION_KINDS = 1650  # distinct (class, type) pairs of the varied mix


def option_kinds(rng: random.Random) -> list:
    """About 1,650 distinct (class, type) pairs: 110 classes x 15 types, some critical."""
    classes = rng.sample(range(0x0100, 0xFF00), 110)
    return [
        (cls, typ | (0x80 if rng.random() < 0.2 else 0))
        for cls in classes
        for typ in rng.sample(range(0x7F), 15)
    ][:OPTION_KINDS]


def varied_frame(rng: random.Random, vnis: list, kinds: list, number: int) -> bytes:
    """A Geneve frame with 0-3 options of KINDS, 0-32 data bytes each."""
    options = b""
    critical = False
    for _ in range(rng.randrange(4)):
        cls, typ = rng.choice(kinds)
        words = rng.randrange(9)  # 0-8 words: 0-32 data bytes
        options += struct.pack("!HBB", cls, typ, words) + bytes(rng.getrandbits(8) for _ in range(words * 4))
        critical |= bool(typ & 0x80)
    size = rng.choice((92, 128, 256, 576, 1000, 1400))
    udp = _udp(
        rng.randrange(1024, 65535), 6081, _geneve(rng.choice(vnis), options, critical) + _inner(rng, size)
    )
    return (
        MAC_A
        + MAC_B
        + b"\x08\x00"
        + _ipv4(
            17,
            bytes([192, 168, 0, rng.randrange(1, 32)]),
            bytes([192, 168, 1, rng.randrange(1, 32)]),
            len(udp),
            number,
        )
        + udp
    )


def generate(path: str, packets: int, seed: int = 1, pcapng: bool = False, varied: bool = False) -> None:
    """Write PACKETS frames of the mix to PATH: pcap with microsecond
    timestamps, or pcapng (one Ethernet interface, nanosecond resolution).
    ``varied``: the many-option-kinds Geneve mix instead (see the module doc)."""
    rng = random.Random(seed)
    # A pool of distinct frames reused in a random order keeps generation fast
    # while the file still has thousands of different packets.
    if varied:
        vnis = [rng.randrange(1, 1 << 24) for _ in range(5000)]
        kinds = option_kinds(rng)
        pool = [varied_frame(rng, vnis, kinds, i) for i in range(16384)]
    else:
        vnis = [rng.randrange(1, 1 << 24) for _ in range(200)]
        pool = [frame(rng, vnis, i) for i in range(4096)]
    start = 1_700_000_000 * 10**9
    with open(path, "wb") as handle:
        if pcapng:
            writer: "PcapWriter | PcapngWriter" = PcapngWriter(handle)
            writer.add_interface(LINKTYPE_ETHERNET, tsresol=9)
        else:
            writer = PcapWriter(handle, LINKTYPE_ETHERNET)
        choice, size = rng.randrange, len(pool)
        for i in range(packets):
            writer.write(pool[choice(size)], start + i * 10_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pcapng", action="store_true", help="write pcapng instead of pcap")
    parser.add_argument(
        "--varied",
        action="store_true",
        help="Geneve whose flows carry 0-3 options of ~1,650 kinds, 0-32 data "
        "bytes each (the varied-traffic benchmark)",
    )
    args = parser.parse_args()
    generate(args.out, args.packets, args.seed, args.pcapng, args.varied)
    print("wrote %s: %d packets, %d bytes" % (args.out, args.packets, os.path.getsize(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
