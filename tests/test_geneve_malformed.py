"""Lossless dissection: whatever follows a UDP header to port 6081.

RFC 8926 says what a receiver must do with a malformed packet (drop it,
treat it as plain UDP); a dissector's job is to show it exactly as it came,
so ``bytes(pkt)`` must give back the input, and nothing may raise.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from scapy_geneve import Geneve, GeneveOption
from tests.strategies import geneve_headers
from tests.test_geneve import h

UNDERLAY = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="192.0.2.1", dst="192.0.2.2")
    / UDP(sport=50000, dport=6081, chksum=0)
)


def frame(payload: bytes) -> bytes:
    return bytes(UNDERLAY / Raw(payload))


def test_truncated_base_header_stays_raw():
    for size in range(8):
        pkt = Ether(frame(b"\x00" * size))
        assert Geneve not in pkt
        assert bytes(pkt) == frame(b"\x00" * size)


def test_option_overrunning_opt_len():
    # Opt Len says 1 word, the option claims 2 words of data.
    wire = h("""
        01 00 1234 000001 00   # Opt Len=1, unknown proto (payload stays raw)
        0101 01 02             # Length=2: 8 bytes claimed, none inside Opt Len
        aabbccdd eeff0011      # ...these bytes are past Opt Len: payload
    """)
    g = Ether(frame(wire))[Geneve]
    assert g.options[0].length == 2 and g.options[0].data == b""
    assert g[Raw].load == h("aabbccdd eeff0011")
    assert bytes(g) == wire


def test_opt_len_longer_than_the_packet():
    wire = h("3f 00 6558 000001 00 | 0101 01 1f 00")  # Opt Len 63, 5 bytes follow
    pkt = Ether(frame(wire))
    assert bytes(pkt) == frame(wire)
    assert pkt[Geneve].optionlen == 63


def test_truncated_option_header_is_kept_raw_in_the_options():
    wire = h("01 00 1234 000001 00 | 0101 01")  # 3 bytes of an option header
    g = Ether(frame(wire))[Geneve]
    assert isinstance(g.options[0], Raw) and bytes(g) == wire


def test_version_1_is_not_interpreted():
    # §3.4: transit devices treat an unknown version as UDP with unknown payload.
    wire = h("41 00 6558 000001 00 | 0101 01 00 | 00112233")
    g = Ether(frame(wire))[Geneve]
    assert g.version == 1 and g.options == []
    assert g[Raw].load == h("0101 01 00 00112233")
    assert bytes(g) == wire


def test_reserved_bits_are_kept():
    wire = h("00 3f 6558 000001 ff")  # every reserved bit set
    g = Geneve(wire)
    assert (g.reserved, g.reserved2) == (0x3F, 0xFF)
    assert bytes(g) == wire


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_udp_6081_payload_dissects_losslessly(no_debug_dissector, payload):
    wire = frame(payload)
    assert bytes(Ether(wire)) == wire


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=8, max_size=300))
def test_geneve_parsing_itself_never_raises(payload):
    """With conf.debug_dissector on, only our own parsing runs: an unknown
    protocol type keeps the inner bytes raw."""
    wire = payload[:2] + b"\x12\x34" + payload[4:]
    g = Geneve(wire)
    assert bytes(g) == wire


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(geneve_headers())
def test_valid_packets_round_trip(g):
    wire = bytes(g)
    again = Geneve(wire)
    assert bytes(again) == wire
    assert again.optionlen * 4 == len(wire) - 8
    assert [(o.classid, o.type, o.reserved) for o in again.options] == [
        (o.classid, o.type, o.reserved) for o in g.options
    ]
    for sent, got in zip(g.options, again.options):
        assert got.data[: len(sent.data)] == sent.data
        assert set(got.data[len(sent.data) :]) <= {0}
    assert again.critical == any(o.type & 0x80 for o in g.options)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geneve_headers(), st.integers(0, 300), st.binary(min_size=1, max_size=1))
def test_mutated_valid_packets_stay_lossless(no_debug_dissector, g, where, byte):
    wire = bytearray(bytes(UNDERLAY / g / Raw(b"x" * 20)))
    where = 42 + where % (len(wire) - 42)
    wire[where] = byte[0]
    assert bytes(Ether(bytes(wire))) == bytes(wire)


def test_options_sum_not_matching_opt_len_keeps_bytes():
    # Two options of 8 bytes, Opt Len claims 3 words: the second overruns.
    wire = h("03 00 1234 000001 00 | 0001 01 01 11111111 | 0002 02 01 22222222")
    g = Geneve(wire)
    assert len(g.options) == 2 and g.options[1].data == b""
    assert bytes(g) == wire
    assert isinstance(g.options[1], GeneveOption)
