"""The Geneve fast paths (one struct.pack/unpack for the fixed headers) give
exactly what Scapy's generic field-by-field build and dissection give."""

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.packet import Packet

from scapy_geneve import Geneve, GeneveOption
from tests.strategies import geneve_headers


def generic_build(pkt: Packet) -> bytes:
    pkt = pkt.copy()
    pkt.raw_packet_cache = None
    return Packet.self_build(pkt)


@settings(max_examples=300)
@given(geneve_headers(), st.one_of(st.none(), st.integers(0, 63)),
       st.one_of(st.none(), st.integers(0, 1)))
def test_fast_build_equals_generic_build(g, optionlen, critical):
    g.optionlen, g.critical = optionlen, critical
    assert g.fast_self_build() == generic_build(g)
    for opt in g.options:
        assert opt.fast_self_build() == generic_build(opt)


@settings(max_examples=300)
@given(st.binary(min_size=8, max_size=300))
def test_fast_dissect_equals_generic_dissect(wire):
    wire = wire[:2] + b"\x12\x34" + wire[4:]  # unknown proto: the payload stays raw
    fast = Geneve(wire)
    generic = Geneve()
    rest = Packet.do_dissect(generic, wire)
    assert fast.fields == generic.fields
    assert fast.raw_packet_cache == generic.raw_packet_cache
    assert bytes(fast.payload) == rest


@settings(max_examples=300)
@given(st.binary(min_size=4, max_size=140))
def test_fast_option_dissect_equals_generic(wire):
    fast = GeneveOption(wire)
    generic = type(fast)()
    Packet.do_dissect(generic, wire)
    assert fast.fields == generic.fields
