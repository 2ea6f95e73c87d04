"""The Geneve fast paths (one struct.pack/unpack for the fixed headers) give
exactly what Scapy's generic field-by-field build and dissection give."""

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.packet import Packet

from scapy_geneve import Geneve, GeneveOption, compat
from scapy_geneve.layers.geneve import registered_options
from tests.strategies import geneve_headers


def generic_build(pkt: Packet) -> bytes:
    pkt = pkt.copy()
    pkt.clear_cache()  # Scapy's public way to drop the dissection cache
    return Packet.self_build(pkt)


@settings(max_examples=300)
@given(geneve_headers(), st.one_of(st.none(), st.integers(0, 63)), st.one_of(st.none(), st.integers(0, 1)))
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
    assert compat.dissection_cache(fast) == compat.dissection_cache(generic)
    assert bytes(fast.payload) == rest


@settings(max_examples=300)
@given(st.binary(min_size=4, max_size=140))
def test_fast_option_dissect_equals_generic(wire):
    fast = GeneveOption(wire)
    generic = type(fast)()
    Packet.do_dissect(generic, wire)
    assert fast.fields == generic.fields


TYPED = sorted(
    {cls for variants in registered_options.values() for cls in variants}, key=lambda cls: cls.__name__
)


@settings(max_examples=200)
@given(
    st.sampled_from(TYPED),
    st.one_of(st.none(), st.integers(0, 31)),
    st.integers(0, 7),
    st.binary(max_size=40),
)
def test_typed_option_fast_build_equals_generic_build(cls, length, reserved, blob):
    """Every typed option, its Length derived (None) or set: the declared
    OptionLengthField gives the same header on both paths."""
    opt = cls(length=length, reserved=reserved)
    for fld in cls.fields_desc[4:]:
        if isinstance(opt.getfieldval(fld.name), bytes):  # variable parts: some bytes
            opt.setfieldval(fld.name, blob)
    assert opt.fast_self_build() == generic_build(opt)
    if length is None and len(blob) % 4 == 0 and len(Packet.self_build(opt)) <= 4 + 124:
        assert Geneve(bytes(Geneve(options=[opt]))).options[0].length == opt.get_field("length").i2m(
            opt, None
        )
