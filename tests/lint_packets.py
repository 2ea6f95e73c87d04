"""Hypothesis strategies for the linter's tests: tunnel packets, right and wrong.

A packet is an outer Ethernet frame (maybe 802.1Q-tagged) with IPv4 or IPv6,
then one of the encapsulations lint judges -- Geneve, VXLAN, NVGRE/GRE, STT,
L2TPv3 over IP or UDP -- or plain UDP/TCP, its header first built right and then
mutated bit by bit, carrying an inner frame (plain, 802.1Q-tagged, ECN-marked, or
itself a Geneve packet), with a right, zero, partial or random L4 checksum and
maybe cut short.  Every value is a wire byte string.
"""

from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from scapy_geneve.checksum import pseudo_header_sum

MAC = dict(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")
IMAC = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

#: valid headers (hex) per kind: what the mutations start from
HEADERS = {
    # Geneve: Ver 0, Opt Len 2, C | 0x6558 | VNI 0x001388 | 0; option ffff/80 len 1
    "geneve": "02 40 6558 001388 00 ffff 80 01 1234abcd",
    "geneve-plain": "00 00 6558 001388 00",
    # VXLAN: I flag | reserved | VNI | reserved
    "vxlan": "08 000000 001388 00",
    # STT: version 0 flags 0 L4 0 rsvd 0 MSS 0 | VLAN 0 | context 7 | pad
    "stt": "00 00 00 00 0000 0000 0000000000000007 0000",
    # L2TPv3 over UDP: T=0 Ver=3 | Reserved | Session ID
    "l2tp-udp": "0003 0000 11223344",
    # L2TPv3 over IP: Session ID
    "l2tp-ip": "11223344",
    # GRE: K | 0x6558 | key (VSID 0xabcd, FlowID 0x5a)
    "gre": "2000 6558 00abcd5a",
}


def _inner(kind: str, ecn: int) -> bytes:
    ip = IP(src="10.0.0.1", dst="10.0.0.2", tos=ecn)
    if kind == "tagged":
        return bytes(Ether(**IMAC) / Dot1Q(vlan=5) / ip / UDP(sport=1, dport=2) / Raw(b"x" * 8))
    if kind == "arp":
        return bytes(Ether(**IMAC, type=0x0806) / Raw(bytes(28)))
    if kind == "ipv6":
        return bytes(Ether(**IMAC) / IPv6(tc=ecn) / UDP(sport=1, dport=2) / Raw(b"x" * 8))
    if kind == "geneve":  # a nested Geneve packet with a bad version
        return bytes(
            Ether(**IMAC)
            / IP(src="10.1.0.1", dst="10.1.0.2", flags="DF")
            / UDP(sport=50000, dport=6081)
            / Raw(bytes.fromhex("4000655800000100"))
            / Ether(**IMAC)
            / IP()
            / UDP()
        )
    return bytes(Ether(**IMAC) / ip / UDP(sport=1, dport=2) / Raw(b"x" * 8))


@st.composite
def mutated(draw: st.DrawFn, hexhdr: str, most: int = 3) -> bytes:
    """A header from HEXHDR with up to MOST bytes changed (often none)."""
    hdr = bytearray(bytes.fromhex(hexhdr.replace(" ", "")))
    for index, mask in draw(
        st.lists(st.tuples(st.integers(0, len(hdr) - 1), st.integers(1, 255)), max_size=most)
    ):
        hdr[index] ^= mask
    return bytes(hdr)


def _outer_ip(draw: st.DrawFn, proto: int, near_clean: bool) -> object:
    ecn = 0 if near_clean and draw(st.booleans()) else draw(st.integers(0, 3))
    if draw(st.booleans()):
        return IPv6(src="2001:db8::1", dst="2001:db8::2", tc=ecn, nh=proto)
    flags = draw(st.sampled_from(["DF", "DF", ""] if near_clean else ["DF", "", "MF"]))
    return IP(src="192.0.2.1", dst="192.0.2.2", flags=flags, tos=ecn, proto=proto)


def _l4_checksum(draw: st.DrawFn, frame: bytearray, ip: int, proto: int, near_clean: bool) -> None:
    """Set the outer UDP/TCP checksum (IP header at IP): leave it (right), zero, partial
    (the pseudo-header sum only, as checksum offload leaves it) or random."""
    choice = draw(
        st.sampled_from(["right", "zero"] if near_clean else ["right", "right", "zero", "partial", "random"])
    )
    if choice == "right":
        return
    v6 = frame[ip] >> 4 == 6
    l4 = ip + (40 if v6 else (frame[ip] & 0x0F) * 4)
    at = l4 + (6 if proto == 17 else 16)
    if choice == "zero":
        value = 0
    elif choice == "random":
        value = draw(st.integers(0, 0xFFFF))
    else:
        src, dst = (
            (frame[ip + 8 : ip + 24], frame[ip + 24 : ip + 40])
            if v6
            else (frame[ip + 12 : ip + 16], frame[ip + 16 : ip + 20])
        )
        value = pseudo_header_sum(bytes(src), bytes(dst), proto, len(frame) - l4)
    frame[at : at + 2] = value.to_bytes(2, "big")


@st.composite
def tunnel_packets(draw: st.DrawFn, gpe: bool = True, near_clean: bool = False) -> bytes:
    """One wire frame (see the module docstring).  ``gpe``: VXLAN-GPE on 4790 too.
    ``near_clean``: Geneve, VXLAN and GRE, mostly right (at most one byte changed, DF,
    a right or zero checksum, whole): what a batch path must judge alone."""
    kinds = (
        ["geneve", "vxlan", "gre"]
        if near_clean
        else ["geneve", "geneve", "vxlan", "vxlan", "gre", "stt", "l2tp-ip", "l2tp-udp", "udp", "tcp"]
    )
    kind = draw(st.sampled_from(kinds))
    most = 1 if near_clean else 3
    inner = _inner(
        draw(st.sampled_from(["plain", "plain", "tagged", "arp", "ipv6", "geneve"])), draw(st.integers(0, 3))
    )
    proto = {"gre": 47, "l2tp-ip": 115, "stt": 6, "tcp": 6}.get(kind, 17)
    ip = _outer_ip(draw, proto, near_clean)
    if kind in ("geneve", "vxlan", "l2tp-udp", "udp"):
        ports = {
            "geneve": [6081, 6081, 6082],
            "vxlan": [4789, 8472, 48879] + ([4790] if gpe else []),
            "l2tp-udp": [1701],
            "udp": [53, 50001],
        }[kind]
        sport = draw(st.sampled_from([50123, 39902] if near_clean else [50123, 39902, 6081, 1701]))
        hdr = draw(
            mutated(
                HEADERS[draw(st.sampled_from(["geneve", "geneve-plain"]))]
                if kind == "geneve"
                else HEADERS.get(kind, "00"),
                most,
            )
        )
        body = UDP(sport=sport, dport=draw(st.sampled_from(ports))) / Raw(hdr + inner)
    elif kind in ("stt", "tcp"):
        hdr = draw(mutated(HEADERS["stt"])) + inner
        seq = (len(hdr) << 16) if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
        body = TCP(
            sport=50000,
            dport=7471 if kind == "stt" else 80,
            seq=seq,
            ack=1,
            flags=draw(st.sampled_from(["PA", "A", "SA"])),
        ) / Raw(hdr)
    elif kind == "gre":
        body = Raw(draw(mutated(HEADERS["gre"], most)) + inner)
    else:
        body = Raw(draw(mutated(HEADERS["l2tp-ip"])) + inner)
    tagged = draw(st.booleans())
    outer = Ether(**MAC) / Dot1Q(vlan=7) / ip / body if tagged else Ether(**MAC) / ip / body
    frame = bytearray(bytes(outer))
    if proto in (17, 6):
        _l4_checksum(draw, frame, 18 if tagged else 14, proto, near_clean)
    cut = 0 if near_clean else draw(st.sampled_from([0, 0, 0, 1, 4, 12, 30]))
    return bytes(frame[: len(frame) - cut] if cut < len(frame) - 14 else frame)


__all__ = ["tunnel_packets", "mutated", "HEADERS"]
