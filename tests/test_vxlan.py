"""VXLAN (RFC 7348), GPE and GBP through Scapy's own VXLAN class and our builder."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN as ScapyVXLAN
from scapy.packet import Raw

from scapy_geneve import VXLAN, BuildError, build_vxlan, encapsulate, vxlan_port

FUZZ_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

INNER = (
    Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
    / IP(src="192.168.1.1", dst="192.168.1.2")
    / UDP(sport=1000, dport=2000)
    / b"x"
)


def test_vxlan_is_scapys_class_not_a_fork():
    assert VXLAN is ScapyVXLAN


def test_rfc7348_header_is_flags_0x08_and_zero_reserved():
    # RFC 7348 §5: |R|R|R|R|I|R|R|R| Reserved(24) | VNI(24) | Reserved(8)
    assert bytes(build_vxlan(0x123456)) == bytes.fromhex("08 000000 123456 00")


def test_scapy_default_would_be_gpe_which_is_why_the_builder_exists():
    assert bytes(ScapyVXLAN(vni=1) / INNER)[0] == 0x0C  # I|P: the GPE layout
    assert bytes(build_vxlan(1) / INNER)[0] == 0x08


def test_encapsulate_vxlan_sends_rfc7348_flags_on_4789():
    pkt = encapsulate(INNER, "vxlan", vni=42)
    wire = bytes(pkt)
    assert pkt[UDP].dport == 4789
    assert wire[28:36] == bytes.fromhex("08000000 00002a00")
    assert IP(wire)[VXLAN].vni == 42 and bytes(IP(wire)[VXLAN].payload) == bytes(INNER)


def test_gbp_header_vector_both_ways():
    # |G|R|R|R|I|R|R|R|R|D|R|R|A|R|R|R| Group Policy ID | VNI | Rsvd
    hdr = build_vxlan(0xABCDEF, gpid=0x1234, dont_learn=True, policy_applied=True)
    assert bytes(hdr) == bytes.fromhex("88 48 1234 abcdef 00")
    back = IP(bytes(IP() / UDP(sport=50000, dport=4789) / hdr / INNER))[VXLAN]
    assert back.flags.G and back.gpid == 0x1234 and back.vni == 0xABCDEF
    assert back.gpflags.D and back.gpflags.A
    assert bytes(back.payload) == bytes(INNER)


@pytest.mark.parametrize(
    "next_protocol, inner, cls", [(1, INNER[IP], IP), (2, IPv6() / UDP(), IPv6), (3, INNER, Ether)]
)
def test_gpe_on_4790_both_ways(next_protocol, inner, cls):
    hdr = build_vxlan(7, next_protocol=next_protocol)
    assert vxlan_port(hdr) == 4790
    wire = bytes(IP() / UDP(sport=50000, dport=4790) / hdr / inner)
    # |R|R|Ver|I|P|B|O| Reserved(16) | Next Protocol | VNI | Rsvd
    assert wire[28:36] == bytes([0x0C, 0, 0, next_protocol, 0, 0, 7, 0])
    back = IP(wire)[VXLAN]
    assert back.NextProtocol == next_protocol and isinstance(back.payload, cls)


def test_encapsulate_picks_gpe_for_an_inner_ip_packet():
    pkt = encapsulate(INNER[IP], "vxlan", vni=9)
    assert pkt[UDP].dport == 4790 and pkt[VXLAN].NextProtocol == 1


def test_linux_legacy_port_8472_dissects():
    wire = bytes(IP() / UDP(sport=50000, dport=8472) / build_vxlan(100) / INNER)
    assert IP(wire)[VXLAN].vni == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(vni=1 << 24),
        dict(vni=1, gpid=1 << 16),
        dict(vni=1, gpid=1, next_protocol=1),
        dict(vni=1, oam=True),
        dict(vni=1, dont_learn=True),
        dict(vni=1, next_protocol=256),
    ],
)
def test_builder_refuses_impossible_headers(kwargs):
    with pytest.raises(BuildError):
        build_vxlan(**kwargs)


@settings(max_examples=200, deadline=None, suppress_health_check=FUZZ_OK)
@given(st.binary(max_size=48), st.sampled_from([4789, 4790, 8472]))
def test_random_vxlan_bytes_dissect_losslessly(no_debug_dissector, data, port):
    wire = bytes(IP() / UDP(sport=50000, dport=port) / Raw(data))
    assert bytes(IP(wire)) == wire
