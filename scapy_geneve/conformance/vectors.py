"""Conformance test vectors: packets paired with what the RFC requires a
receiving tunnel endpoint to do with them.

``vectors()`` returns the catalogue: a list of :class:`Vector`, each with a
name, the protocol, the behaviour the spec requires of a *receiving* endpoint
(:class:`Expect`), the strength of that requirement, the section, and a
builder that makes the full outer frame for a given :class:`Target` (the
endpoint's addresses and VNI).  The inner frame carries a unique tag so the
harness can tell which vector came out of the endpoint.

Levels: ``MUST`` (a failure is a non-conformance), ``SHOULD`` (a deviation),
``MAY`` (the RFC leaves the choice open: recorded, never a failure) and
``CONTROL`` (not an RFC requirement: a sanity check that the harness and the
endpoint's configuration work, e.g. an unknown VNI is not delivered).

Add your own with :func:`register_vector` or by passing extra vectors to the
harness::

    def build(t, tag):
        return t.geneve(Geneve(vni=t.vni, options=[my_option]) / t.inner(tag))
    register_vector(Vector("my-option", "geneve", Expect.DELIVER, "MUST",
                           "my spec §2", "my option is accepted", build))
"""

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from scapy_geneve.consts import ETH_P_TEB, GENEVE_PORT, VXLAN_PORT
from scapy_geneve.layers.geneve import Geneve, GeneveOption

__all__ = [
    "Expect",
    "Target",
    "Vector",
    "vectors",
    "register_vector",
    "TAG_PREFIX",
    "KNOWN_OPTION",
    "UNKNOWN_CLASS",
    "LEVELS",
]

#: Every inner frame's UDP payload starts with this, then the vector name.
TAG_PREFIX = b"SGV:"

#: The option the endpoint under test must be configured to understand
#: (class, type, data): an experimental-range class, critical.
KNOWN_OPTION = (0xFFFF, 0x80, bytes.fromhex("1234abcd"))

#: An option class the endpoint must *not* know (Experimental Use range).
UNKNOWN_CLASS = 0xFFFE

#: ECN field codepoints (RFC 3168 §5), the low two bits of TOS / Traffic Class.
ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE = 0, 1, 2, 3

LEVELS = ("MUST", "SHOULD", "MAY", "CONTROL")


class Expect(str, enum.Enum):
    """What a conformant receiving endpoint does with a vector."""

    DELIVER = "deliver"
    """Decapsulate and forward the inner frame."""
    DELIVER_IGNORING_OPTION = "deliver-ignoring-option"
    """Forward the inner frame; the unknown (non-critical) option is skipped."""
    DROP = "drop"
    """Do not forward anything (silently or with a counter)."""
    NOT_FORWARDED = "not-forwarded-as-data"
    """Must not come out as data; may go to a control queue instead."""
    ANY = "any"
    """The spec leaves the choice open; the observation is recorded."""

    @property
    def delivers(self) -> Optional[bool]:
        """True/False for what the endpoint must do with the inner frame; None for ANY."""
        if self in (Expect.DELIVER, Expect.DELIVER_IGNORING_OPTION):
            return True
        if self in (Expect.DROP, Expect.NOT_FORWARDED):
            return False
        return None


@dataclass
class Target:
    """Addresses the vectors are built for: the endpoint's underlay and overlay.

    ``src_*`` is the harness (the remote tunnel endpoint), ``dst_*`` the
    endpoint under test.  The inner frame goes from ``inner_src_*`` to
    ``inner_dst_*``, the host behind the endpoint.
    """

    src_mac: str = "02:00:00:00:99:02"
    dst_mac: str = "02:00:00:00:99:01"
    src_ip: str = "10.99.0.2"
    dst_ip: str = "10.99.0.1"
    src_ip6: str = "fd00:99::2"
    dst_ip6: str = "fd00:99::1"
    vni: int = 5000
    vsid: int = 0xABCD
    flowid: int = 0x5A
    inner_src_mac: str = "02:00:00:00:50:02"
    inner_dst_mac: str = "02:00:00:00:50:01"
    inner_src_ip: str = "192.168.50.2"
    inner_dst_ip: str = "192.168.50.1"
    sport: int = 50123
    geneve_port: int = GENEVE_PORT
    vxlan_port: int = VXLAN_PORT
    known_option: tuple = KNOWN_OPTION

    # -- building blocks for vector builders --------------------------------

    def inner(self, tag: bytes, vlan: Optional[int] = None, ecn: int = ECN_NOT_ECT) -> Packet:
        """The inner Ethernet frame: IPv4 (ECN field ECN) UDP 7777 -> 8888 carrying TAG."""
        eth = Ether(src=self.inner_src_mac, dst=self.inner_dst_mac)
        if vlan is not None:
            eth = eth / Dot1Q(vlan=vlan)
        return (
            eth
            / IP(src=self.inner_src_ip, dst=self.inner_dst_ip, tos=ecn)
            / UDP(sport=7777, dport=8888)
            / Raw(tag)
        )

    def known(self, **kw: Any) -> GeneveOption:
        """The option the endpoint understands (``KNOWN_OPTION``)."""
        cls, typ, data = self.known_option
        return GeneveOption(classid=cls, type=typ, data=data, **kw)

    def outer_ip(self, family: int = 4, ecn: int = ECN_NOT_ECT) -> Packet:
        """Outer Ether/IPv4 (DF set) or Ether/IPv6, ECN field ECN."""
        if family == 6:
            return Ether(src=self.src_mac, dst=self.dst_mac) / IPv6(
                src=self.src_ip6, dst=self.dst_ip6, tc=ecn
            )
        return Ether(src=self.src_mac, dst=self.dst_mac) / IP(
            src=self.src_ip, dst=self.dst_ip, flags="DF", tos=ecn
        )

    def udp(
        self,
        payload: Packet,
        dport: int,
        family: int = 4,
        chksum: Optional[int] = None,
        sport: Optional[int] = None,
        ecn: int = ECN_NOT_ECT,
    ) -> Packet:
        u = UDP(sport=self.sport if sport is None else sport, dport=dport)
        if chksum is not None:
            u.chksum = chksum
        return self.outer_ip(family, ecn) / u / payload

    def geneve(
        self,
        payload: Packet,
        family: int = 4,
        chksum: Optional[int] = None,
        sport: Optional[int] = None,
        dport: Optional[int] = None,
        ecn: int = ECN_NOT_ECT,
    ) -> Packet:
        """Outer Ether/IP/UDP to the Geneve port around PAYLOAD (a Geneve header)."""
        return self.udp(payload, self.geneve_port if dport is None else dport, family, chksum, sport, ecn)


@dataclass(frozen=True)
class Vector:
    """One test vector: a packet and the receiver behaviour the spec requires."""

    name: str
    protocol: str  # "geneve", "vxlan" or "nvgre"
    expect: Expect
    level: str  # MUST, SHOULD, MAY, CONTROL
    section: str  # e.g. "RFC 8926 §3.4"
    requirement: str  # what the spec asks of the receiver, in words
    build: Callable[[Target, bytes], Packet] = field(repr=False, compare=False)
    family: int = 4  # outer IP version
    #: The inner frame a conformant endpoint delivers, when the requirement is
    #: about its content (e.g. RFC 6040 copies CE inward); None: the inner
    #: frame as sent.  A delivery of anything else does not meet the vector.
    inner: Optional[Callable[[Target, bytes], Packet]] = field(default=None, repr=False, compare=False)

    @property
    def tag(self) -> bytes:
        """The bytes that identify this vector's inner frame."""
        return TAG_PREFIX + self.name.encode()

    def packet(self, target: Optional[Target] = None) -> Packet:
        """The full outer frame for TARGET (default addresses if None)."""
        return self.build(target or Target(), self.tag)

    def frame(self, target: Optional[Target] = None) -> bytes:
        """The wire bytes of :meth:`packet`."""
        return bytes(self.packet(target))

    def expected_inner(self, target: Optional[Target] = None) -> Optional[bytes]:
        """The inner frame the spec requires to come out, when the vector says
        (``inner``); None when it is simply the inner frame that was sent."""
        if self.inner is None:
            return None
        return bytes(self.inner(target or Target(), self.tag))


# -- the catalogue -------------------------------------------------------------


def _g(t: Target, tag: bytes, **kw: Any) -> Packet:
    """Geneve with the known option, VNI from the target, then the inner frame."""
    options = kw.pop("options", [t.known()])
    return t.geneve(Geneve(vni=kw.pop("vni", t.vni), options=options, **kw) / t.inner(tag))


def _vxlan_hdr(flags: int = 0x08, rsvd24: int = 0, vni: int = 0, rsvd8: int = 0) -> bytes:
    return bytes([flags]) + rsvd24.to_bytes(3, "big") + vni.to_bytes(3, "big") + bytes([rsvd8])


def _vx(
    t: Target,
    tag: bytes,
    vlan: Optional[int] = None,
    chksum: Optional[int] = None,
    ecn: int = ECN_NOT_ECT,
    inner_ecn: int = ECN_NOT_ECT,
    family: int = 4,
    **hdr: int,
) -> Packet:
    hdr.setdefault("vni", t.vni)
    # Raw header bytes: exact control over every bit, whatever VXLAN class is bound.
    return t.udp(
        Raw(_vxlan_hdr(**hdr)) / t.inner(tag, vlan=vlan, ecn=inner_ecn),
        t.vxlan_port,
        family=family,
        chksum=chksum,
        ecn=ecn,
    )


#: Decapsulation of the ECN field: RFC 6040 §4.2 (Figure 4), which the tunnel spec points to.
ECN_SECTION = "RFC 6040 §4.2 (%s)"


def _gre(
    t: Target, tag: bytes, flags: int = 0x2000, key: Optional[int] = None, vlan: Optional[int] = None
) -> Packet:
    """Outer Ether/IPv4 with a GRE header written bit for bit (any C/K/S mix)."""
    from scapy.utils import checksum

    if key is None:
        key = t.vsid << 8 | t.flowid
    inner = bytes(t.inner(tag, vlan=vlan))
    head = flags.to_bytes(2, "big") + ETH_P_TEB.to_bytes(2, "big")
    csum_at = None
    if flags & 0x8000:
        csum_at = len(head)
        head += b"\x00\x00\x00\x00"  # Checksum + Reserved1 (RFC 2784 §2.5)
    if flags & 0x2000:
        head += key.to_bytes(4, "big")  # VSID | FlowID (RFC 7637 §3.2)
    if flags & 0x1000:
        head += b"\x00\x00\x00\x01"  # Sequence Number (RFC 2890 §2.2)
    if csum_at is not None:
        value = checksum(head + inner)
        head = head[:csum_at] + value.to_bytes(2, "big") + head[csum_at + 2 :]
    ip = t.outer_ip()
    ip[IP].proto = 47
    return ip / Raw(head + inner)


def _geneve_vectors() -> List[Vector]:
    K = "RFC 8926"
    unknown_nc = lambda: GeneveOption(classid=UNKNOWN_CLASS, type=0x05, data=b"\x00\x00\x00\x01")  # noqa: E731
    unknown_c = lambda: GeneveOption(classid=UNKNOWN_CLASS, type=0x85, data=b"\x00\x00\x00\x01")  # noqa: E731

    def opt_overrun(t: Target, tag: bytes) -> Packet:
        # Opt Len 2 words, but the known option (2 words) is followed by an
        # option header whose Length 1 runs one word past Opt Len: Σ ≠ Opt Len.
        return _g(
            t,
            tag,
            optionlen=3,
            options=[t.known(), GeneveOption(classid=UNKNOWN_CLASS, type=0x05, length=1, data=b"")],
        )

    def opt_252(t: Target, tag: bytes) -> Packet:
        # 8 (known) + 128 (Length 31) + 116 (Length 28) = 252 bytes, Opt Len 63.
        return _g(
            t,
            tag,
            options=[
                t.known(),
                GeneveOption(classid=UNKNOWN_CLASS, type=0x06, data=bytes(124)),
                GeneveOption(classid=UNKNOWN_CLASS, type=0x07, data=bytes(112)),
            ],
        )

    def no_options(t: Target, tag: bytes) -> Packet:
        return t.geneve(Geneve(vni=t.vni) / t.inner(tag))

    return [
        Vector(
            "geneve-baseline",
            "geneve",
            Expect.DELIVER,
            "CONTROL",
            K + " §3",
            "a well-formed packet (the known critical option, C set, valid UDP checksum) is delivered",
            lambda t, tag: _g(t, tag),
        ),
        Vector(
            "geneve-no-options",
            "geneve",
            Expect.DELIVER,
            "CONTROL",
            K + " §3.4",
            "Opt Len 0: a header with no options is delivered",
            no_options,
        ),
        Vector(
            "geneve-version-1",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.4",
            "packets with an unknown version MUST be dropped by a tunnel endpoint",
            lambda t, tag: _g(t, tag, version=1),
        ),
        Vector(
            "geneve-version-3",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.4",
            "packets with an unknown version MUST be dropped by a tunnel endpoint",
            lambda t, tag: _g(t, tag, version=3),
        ),
        Vector(
            "geneve-optlen-mismatch",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.5",
            "option lengths that do not sum to Opt Len: the packet is invalid and MUST be silently "
            "dropped by an endpoint that processes options",
            opt_overrun,
        ),
        Vector(
            "geneve-unknown-critical-option",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.5",
            "an unrecognised option with the critical bit set: the packet MUST be dropped",
            lambda t, tag: _g(t, tag, options=[t.known(), unknown_c()]),
        ),
        Vector(
            "geneve-unknown-critical-option-c-clear",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.5",
            "an unrecognised critical option MUST cause a drop even when the sender left C clear",
            lambda t, tag: _g(t, tag, critical=0, options=[t.known(), unknown_c()]),
        ),
        Vector(
            "geneve-unknown-noncritical-option",
            "geneve",
            Expect.DELIVER_IGNORING_OPTION,
            "SHOULD",
            K + " §3.5",
            "an unrecognised non-critical option is skipped (only critical ones force a drop)",
            lambda t, tag: _g(t, tag, options=[t.known(), unknown_nc()]),
        ),
        Vector(
            "geneve-unknown-noncritical-option-first",
            "geneve",
            Expect.DELIVER_IGNORING_OPTION,
            "SHOULD",
            K + " §3.5",
            "options come in any order: an unrecognised non-critical option before the known "
            "critical one is skipped, the known one still found",
            lambda t, tag: _g(t, tag, options=[unknown_nc(), t.known()]),
        ),
        Vector(
            "geneve-header-only-option",
            "geneve",
            Expect.DELIVER_IGNORING_OPTION,
            "SHOULD",
            K + " §3.5",
            "an unrecognised non-critical option with Length 0 (a 4-byte header, no data) is skipped",
            lambda t, tag: _g(t, tag, options=[t.known(), GeneveOption(classid=UNKNOWN_CLASS, type=0x08)]),
        ),
        Vector(
            "geneve-oam",
            "geneve",
            Expect.NOT_FORWARDED,
            "MUST",
            K + " §3.4",
            "O bit (control packet): tunnel endpoints MUST NOT forward the payload",
            lambda t, tag: _g(t, tag, oam=1),
        ),
        Vector(
            "geneve-c-bit-no-critical-option",
            "geneve",
            Expect.ANY,
            "MAY",
            K + " §3.4",
            "C set without critical options: an endpoint that parses options finds none to act on; "
            "one that does not parse options MUST drop on C",
            lambda t, tag: t.geneve(Geneve(vni=t.vni, critical=1) / t.inner(tag)),
        ),
        Vector(
            "geneve-known-critical-c-clear",
            "geneve",
            Expect.ANY,
            "MAY",
            K + " §3.5",
            "the sender broke the C-bit rule; the receiver's choice is not specified",
            lambda t, tag: _g(t, tag, critical=0),
        ),
        Vector(
            "geneve-rsvd-bits-set",
            "geneve",
            Expect.DELIVER,
            "MUST",
            K + " §3.4",
            "Rsvd (6 bits) MUST be ignored on receipt",
            lambda t, tag: _g(t, tag, reserved=0x3F),
        ),
        Vector(
            "geneve-reserved-byte-set",
            "geneve",
            Expect.DELIVER,
            "MUST",
            K + " §3.4",
            "Reserved (8 bits after the VNI) MUST be ignored on receipt",
            lambda t, tag: _g(t, tag, reserved2=0xFF),
        ),
        Vector(
            "geneve-option-r-bits-set",
            "geneve",
            Expect.DELIVER,
            "MUST",
            K + " §3.5",
            "option R bits MUST be ignored on receipt",
            lambda t, tag: _g(t, tag, options=[t.known(reserved=7)]),
        ),
        Vector(
            "geneve-252-bytes-of-options",
            "geneve",
            Expect.DELIVER,
            "SHOULD",
            K + " §3.5.1",
            "the largest legal header (Opt Len 63); an endpoint whose capability is lower MUST drop "
            "instead and tell its control plane",
            opt_252,
        ),
        Vector(
            "geneve-udp-checksum-zero",
            "geneve",
            Expect.DELIVER,
            "MUST",
            K + " §4.3",
            "over IPv4 a zero UDP checksum MUST be accepted for decapsulation",
            lambda t, tag: t.geneve(Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag), chksum=0),
        ),
        Vector(
            "geneve-udp-checksum-wrong",
            "geneve",
            Expect.DROP,
            "SHOULD",
            K + " §4.3",
            "a non-zero UDP checksum that is wrong: a receiver that verifies it MUST drop the packet "
            "(verifying is the receiver's choice, so a delivery is a deviation, not a failure)",
            lambda t, tag: t.geneve(Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag), chksum=0x1111),
        ),
        Vector(
            "geneve-ports-reversed",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §3.3",
            "Geneve is identified by destination port 6081, never reversed: a packet *from* 6081 "
            "to another port is not Geneve",
            lambda t, tag: t.geneve(
                Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag), sport=t.geneve_port, dport=t.sport
            ),
        ),
        Vector(
            "geneve-ecn-ce-over-ect0",
            "geneve",
            Expect.DELIVER,
            "MUST",
            ECN_SECTION % "RFC 8926 §4.4.2",
            "outer CE over an ECT(0) inner packet: decapsulate and set CE in the inner header "
            "(RFC 6040 normal decapsulation)",
            lambda t, tag: t.geneve(
                Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag, ecn=ECN_ECT0), ecn=ECN_CE
            ),
            inner=lambda t, tag: t.inner(tag, ecn=ECN_CE),
        ),
        Vector(
            "geneve-ecn-ce-over-not-ect",
            "geneve",
            Expect.DROP,
            "MUST",
            ECN_SECTION % "RFC 8926 §4.4.2",
            "outer CE over a Not-ECT inner packet: the congestion mark cannot be passed on, so the "
            "decapsulator drops the packet (RFC 6040 §4.2, Figure 4)",
            lambda t, tag: t.geneve(Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag), ecn=ECN_CE),
        ),
        Vector(
            "geneve-unknown-vni",
            "geneve",
            Expect.DROP,
            "CONTROL",
            K + " §3.4",
            "a VNI the endpoint has no network for is not delivered",
            lambda t, tag: _g(t, tag, vni=t.vni + 1),
        ),
        Vector(
            "geneve-ipv6-baseline",
            "geneve",
            Expect.DELIVER,
            "CONTROL",
            K + " §3.2",
            "a well-formed packet over IPv6 is delivered",
            lambda t, tag: _g6(t, tag),
            family=6,
        ),
        Vector(
            "geneve-ipv6-udp-checksum-zero",
            "geneve",
            Expect.DROP,
            "MUST",
            K + " §4.3.1",
            "over IPv6 a zero UDP checksum is accepted only on tunnels configured for it "
            "(RFC 6935/6936); by default it is dropped",
            lambda t, tag: _g6(t, tag, chksum=0),
            family=6,
        ),
    ]


def _g6(t: Target, tag: bytes, chksum: Optional[int] = None) -> Packet:
    return t.geneve(Geneve(vni=t.vni, options=[t.known()]) / t.inner(tag), family=6, chksum=chksum)


def _vxlan_vectors() -> List[Vector]:
    K = "RFC 7348"
    return [
        Vector(
            "vxlan-baseline",
            "vxlan",
            Expect.DELIVER,
            "CONTROL",
            K + " §5",
            "flags 0x08 (I), valid UDP checksum: delivered",
            lambda t, tag: _vx(t, tag),
        ),
        Vector(
            "vxlan-udp-checksum-zero",
            "vxlan",
            Expect.DELIVER,
            "MUST",
            K + " §5",
            "a zero UDP checksum MUST be accepted",
            lambda t, tag: _vx(t, tag, chksum=0),
        ),
        Vector(
            "vxlan-udp-checksum-wrong",
            "vxlan",
            Expect.DROP,
            "SHOULD",
            K + " §5",
            "a wrong non-zero checksum: a VTEP that verifies it MUST drop the packet (verifying is optional)",
            lambda t, tag: _vx(t, tag, chksum=0x1111),
        ),
        Vector(
            "vxlan-reserved-flags-set",
            "vxlan",
            Expect.DELIVER,
            "MUST",
            K + " §5",
            "the 7 R flag bits MUST be ignored on receipt",
            lambda t, tag: _vx(t, tag, flags=0x08 | 0x77),
        ),
        Vector(
            "vxlan-reserved24-set",
            "vxlan",
            Expect.DELIVER,
            "MUST",
            K + " §5",
            "the 24-bit Reserved field MUST be ignored on receipt",
            lambda t, tag: _vx(t, tag, rsvd24=0xABCDEF),
        ),
        Vector(
            "vxlan-reserved8-set",
            "vxlan",
            Expect.DELIVER,
            "MUST",
            K + " §5",
            "the 8-bit Reserved field MUST be ignored on receipt",
            lambda t, tag: _vx(t, tag, rsvd8=0xFF),
        ),
        Vector(
            "vxlan-i-flag-clear",
            "vxlan",
            Expect.DROP,
            "SHOULD",
            K + " §5",
            "the I flag MUST be 1 for a valid VNI: without it there is no VNI to deliver to",
            lambda t, tag: _vx(t, tag, flags=0x00),
        ),
        Vector(
            "vxlan-inner-vlan",
            "vxlan",
            Expect.DROP,
            "SHOULD",
            K + " §6.1",
            "decapsulated frames with an inner VLAN tag SHOULD be discarded unless configured otherwise",
            lambda t, tag: _vx(t, tag, vlan=10),
        ),
        Vector(
            "vxlan-ecn-ce-over-ect0",
            "vxlan",
            Expect.DELIVER,
            "SHOULD",
            ECN_SECTION % "RFC 9601",
            "outer CE over an ECT(0) inner packet: set CE in the inner header (RFC 7348 predates "
            "the rule, so a miss is a deviation)",
            lambda t, tag: _vx(t, tag, ecn=ECN_CE, inner_ecn=ECN_ECT0),
            inner=lambda t, tag: t.inner(tag, ecn=ECN_CE),
        ),
        Vector(
            "vxlan-ecn-ce-over-not-ect",
            "vxlan",
            Expect.DROP,
            "SHOULD",
            ECN_SECTION % "RFC 9601",
            "outer CE over a Not-ECT inner packet: drop (RFC 6040 §4.2, Figure 4)",
            lambda t, tag: _vx(t, tag, ecn=ECN_CE),
        ),
        Vector(
            "vxlan-unknown-vni",
            "vxlan",
            Expect.DROP,
            "CONTROL",
            K + " §5",
            "a VNI the endpoint has no segment for is not delivered",
            lambda t, tag: _vx(t, tag, vni=t.vni + 1),
        ),
        Vector(
            "vxlan-ipv6-baseline",
            "vxlan",
            Expect.DELIVER,
            "CONTROL",
            K + " §5",
            "a well-formed packet over IPv6 (UDP checksum computed) is delivered",
            lambda t, tag: _vx(t, tag, family=6),
            family=6,
        ),
        Vector(
            "vxlan-ipv6-reserved-flags-set",
            "vxlan",
            Expect.DELIVER,
            "MUST",
            K + " §5",
            "over IPv6 too, the R flag bits MUST be ignored on receipt",
            lambda t, tag: _vx(t, tag, flags=0x08 | 0x77, family=6),
            family=6,
        ),
        Vector(
            "vxlan-ipv6-udp-checksum-zero",
            "vxlan",
            Expect.DROP,
            "SHOULD",
            "RFC 6935 §5; RFC 8200 §8.1",
            "a zero UDP checksum over IPv6 is accepted only on tunnels configured for it; by "
            "default it is discarded (RFC 7348 says nothing for IPv6, so a delivery is a deviation)",
            lambda t, tag: _vx(t, tag, chksum=0, family=6),
            family=6,
        ),
    ]


def _nvgre_vectors() -> List[Vector]:
    K = "RFC 7637"
    return [
        Vector(
            "nvgre-baseline",
            "nvgre",
            Expect.DELIVER,
            "CONTROL",
            K + " §3.2",
            "20 00 65 58 + VSID/FlowID: delivered",
            lambda t, tag: _gre(t, tag),
        ),
        Vector(
            "nvgre-flowid-differs",
            "nvgre",
            Expect.DELIVER,
            "SHOULD",
            K + " §3.2",
            "the FlowID is per-flow entropy, not part of the virtual subnet: another FlowID in the same "
            "VSID is delivered",
            lambda t, tag: _gre(t, tag, key=t.vsid << 8 | ((t.flowid + 1) & 0xFF)),
        ),
        Vector(
            "nvgre-flowid-zero",
            "nvgre",
            Expect.DELIVER,
            "SHOULD",
            K + " §3.2",
            "FlowID 0 (an encapsulator that generates none MUST send zero) is delivered",
            lambda t, tag: _gre(t, tag, key=t.vsid << 8),
        ),
        Vector(
            "nvgre-inner-vlan",
            "nvgre",
            Expect.DROP,
            "MUST",
            K + " §3.2",
            "the decapsulating NVE MUST drop inner frames that carry an 802.1Q tag",
            lambda t, tag: _gre(t, tag, vlan=10),
        ),
        Vector(
            "nvgre-checksum-present",
            "nvgre",
            Expect.ANY,
            "MAY",
            K + " §3.2",
            "C MUST be 0 on transmit; the receiver's choice is not specified",
            lambda t, tag: _gre(t, tag, flags=0xA000),
        ),
        Vector(
            "nvgre-sequence-present",
            "nvgre",
            Expect.ANY,
            "MAY",
            K + " §3.2",
            "S MUST be 0 on transmit; the receiver's choice is not specified",
            lambda t, tag: _gre(t, tag, flags=0x3000),
        ),
        Vector(
            "nvgre-no-key",
            "nvgre",
            Expect.DROP,
            "SHOULD",
            K + " §3.2",
            "K clear: no VSID, so no virtual subnet to deliver to",
            lambda t, tag: _gre(t, tag, flags=0x0000),
        ),
        Vector(
            "nvgre-unknown-vsid",
            "nvgre",
            Expect.DROP,
            "CONTROL",
            K + " §3.2",
            "a VSID the endpoint has no subnet for is not delivered",
            lambda t, tag: _gre(t, tag, key=(t.vsid + 1) << 8 | t.flowid),
        ),
    ]


#: The encapsulations the catalogue has vectors for (registry names; a test checks both).
PROTOCOLS = ("geneve", "vxlan", "nvgre")

_USER_VECTORS: List[Vector] = []


def register_vector(vector: Vector) -> None:
    """Add VECTOR to the catalogue :func:`vectors` returns (replaces one of the same name)."""
    _USER_VECTORS[:] = [v for v in _USER_VECTORS if v.name != vector.name] + [vector]


def vectors(
    protocols: Optional[Iterable[str]] = None,
    levels: Optional[Sequence[str]] = None,
    names: Optional[Iterable[str]] = None,
) -> List[Vector]:
    """The catalogue, optionally filtered by protocol, level and name.

    >>> [v.name for v in vectors(["geneve"], levels=["MUST"])][:2]
    ['geneve-version-1', 'geneve-version-3']
    """
    allv = _geneve_vectors() + _vxlan_vectors() + _nvgre_vectors()
    allv = [v for v in allv if v.name not in {u.name for u in _USER_VECTORS}] + list(_USER_VECTORS)
    if protocols is not None:
        wanted = set(protocols)
        allv = [v for v in allv if v.protocol in wanted]
    if levels is not None:
        allv = [v for v in allv if v.level in set(levels)]
    if names is not None:
        wanted_names = set(names)
        unknown = wanted_names - {v.name for v in allv}
        if unknown:
            raise KeyError("no such vector: %s" % ", ".join(sorted(unknown)))
        allv = [v for v in allv if v.name in wanted_names]
    return allv


def by_name() -> Dict[str, Vector]:
    """The catalogue keyed by vector name."""
    return {v.name: v for v in vectors()}


def retarget(vector: Vector, **changes: object) -> Vector:
    """A copy of VECTOR with fields changed (e.g. ``expect=Expect.ANY``)."""
    return replace(vector, **changes)  # type: ignore[arg-type]
