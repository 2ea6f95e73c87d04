"""NVGRE (RFC 7637) as a GRE profile: vectors, dispatch, build checks, lossless dissection."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, GRE_PPTP, Ether
from scapy.packet import Raw

from scapy_geneve import BuildError, NVGRE

FUZZ_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

INNER = (
    Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
    / IP(src="192.168.1.1", dst="192.168.1.2")
    / UDP(sport=1000, dport=2000)
    / b"x"
)

# RFC 7637: C=0 K=1 S=0 Ver=0, Protocol Type 0x6558, Key = VSID(24) | FlowID(8)
# fmt: off
NVGRE_HDR = bytes.fromhex(
    "2000"        # |0| |1|0| Reserved0 | Ver=0  -> only the K bit
    "6558"        # Protocol Type: Transparent Ethernet Bridging
    "abcdef"      # Virtual Subnet ID 0xABCDEF
    "5a"          # FlowID 0x5A
)
# fmt: on


def test_header_vector_builds_exactly():
    assert bytes(NVGRE(vsid=0xABCDEF, flowid=0x5A)) == NVGRE_HDR


def test_header_vector_dissects_to_vsid_and_flowid():
    pkt = IP(bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / NVGRE_HDR / INNER))
    assert isinstance(pkt.payload, NVGRE)
    assert pkt[NVGRE].vsid == 0xABCDEF
    assert pkt[NVGRE].flowid == 0x5A
    assert pkt[NVGRE].key == 0xABCDEF5A  # the GRE Key view
    assert bytes(pkt[NVGRE].payload) == bytes(INNER)


def test_nvgre_is_still_found_as_gre():
    pkt = IP(bytes(IP() / NVGRE(vsid=1) / INNER))
    assert GRE in pkt and pkt[GRE] is pkt[NVGRE]


def test_ip_proto_and_ipv6_next_header_are_set_when_building():
    assert IP(bytes(IP() / NVGRE() / INNER)).proto == 47
    v6 = IPv6(bytes(IPv6() / NVGRE(vsid=7) / INNER))
    assert v6.nh == 47 and v6[NVGRE].vsid == 7


@pytest.mark.parametrize(
    "gre, why",
    [
        (GRE(key_present=1, key=0x28, proto=0x8909), "protocol is not TEB"),
        (GRE(proto=0x6558), "no key"),
        (GRE(key_present=1, seqnum_present=1, key=5, sequence_number=1, proto=0x6558), "S bit"),
        (GRE(chksum_present=1, key_present=1, key=5, proto=0x6558), "C bit"),
        (GRE(key_present=1, key=5, proto=0x6558, version=1), "version 1"),
    ],
)
def test_other_gre_stays_scapys_gre(gre, why):
    wire = bytes(IP() / gre / Raw(b"\x00" * 20))
    pkt = IP(wire)
    assert type(pkt.payload) is GRE, why
    assert bytes(pkt) == wire


def test_pptp_gre_still_dispatches_to_gre_pptp():
    pkt = IP(bytes(IP() / GRE_PPTP(call_id=3) / Raw(b"\xff\x03")))
    assert type(pkt.payload) is GRE_PPTP


@pytest.mark.parametrize(
    "field, value",
    [
        ("vsid", 1 << 24),
        ("flowid", 256),
        ("key_present", 0),
        ("chksum_present", 1),
        ("seqnum_present", 1),
        ("version", 1),
    ],
)
def test_build_refuses_what_nvgre_cannot_carry(field, value):
    with pytest.raises(BuildError, match=field):
        bytes(NVGRE(**{field: value}))


@settings(max_examples=200, deadline=None, suppress_health_check=FUZZ_OK)
@given(st.binary(min_size=0, max_size=80))
def test_random_gre_payload_dissects_losslessly(no_debug_dissector, data):
    wire = bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / Raw(data))
    pkt = IP(wire)
    assert bytes(pkt) == wire
    if data[:4] == NVGRE_HDR[:4] and len(data) >= 8:
        assert isinstance(pkt.payload, NVGRE)
        assert pkt[NVGRE].vsid == int.from_bytes(data[4:7], "big")


@settings(max_examples=100, deadline=None, suppress_health_check=FUZZ_OK)
@given(st.integers(0, (1 << 24) - 1), st.integers(0, 255), st.binary(max_size=64))
def test_nvgre_with_any_payload_round_trips(no_debug_dissector, vsid, flowid, payload):
    wire = bytes(IP() / NVGRE(vsid=vsid, flowid=flowid) / Raw(payload))
    pkt = IP(wire)
    assert pkt[NVGRE].vsid == vsid and pkt[NVGRE].flowid == flowid
    assert bytes(pkt) == wire


def test_the_shared_binding_helper_puts_one_candidate_first():
    from scapy.packet import Packet, bind_bottom_up

    from scapy_geneve import compat
    from scapy_geneve.layers._bind import bind_bottom_up_first

    class Probe(Packet):
        name = "Probe"

    class Lower(Packet):
        name = "Lower"

    bind_bottom_up(Lower, Raw, x=1)
    bind_bottom_up_first(Lower, Probe, x=2)
    bind_bottom_up_first(Lower, Probe, x=2)  # twice: still one entry, still first
    assert compat.bottom_up_bindings(Lower) == [({"x": 2}, Probe), ({"x": 1}, Raw)]
    # NVGRE is IP protocol 47's first candidate; Scapy's GRE is still there after it.
    ip47 = [cls for fval, cls in compat.bottom_up_bindings(IP) if fval.get("proto") == 47]
    assert ip47[0] is NVGRE and GRE in ip47
