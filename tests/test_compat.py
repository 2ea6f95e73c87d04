"""scapy_geneve.compat: the one module that touches Scapy's internals, and living
beside the rest of a Scapy session as a good guest.

The layer tests run on every supported Scapy (2.5.0, 2.6.1, 2.7.0, 2.8.0; the
README gives the commands); these check the version-dependent pieces directly.
"""

import subprocess
import sys
import textwrap

import pytest
import scapy
from scapy.fields import (
    BitField,
    ByteField,
    IntField,
    LongField,
    ShortField,
    ThreeBytesField,
    X3BytesField,
    XByteField,
    XShortEnumField,
)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw, bind_bottom_up, split_bottom_up

from scapy_geneve import BuildError, Geneve, GeneveOptionOVN, compat


def test_version_is_parsed_and_at_least_the_floor():
    assert compat._parse_version("2.6.1") == (2, 6, 1)
    assert compat._parse_version("2.7.0rc1") == (2, 7, 0)
    assert compat._parse_version("2.6.1.dev23") == (2, 6, 1)
    assert compat.SCAPY_VERSION == compat._parse_version(scapy.__version__)
    assert compat.SCAPY_VERSION >= compat.SCAPY_FLOOR == (2, 5, 0)


@pytest.mark.parametrize(
    "field, bits",
    [
        (BitField("f", 0, 5), 5),
        (ByteField("f", 0), 8),
        (XByteField("f", 0), 8),
        (ShortField("f", 0), 16),
        (XShortEnumField("f", 0, {}), 16),
        (ThreeBytesField("f", 0), 24),
        (X3BytesField("f", 0), 24),  # sz is 4 up to Scapy 2.7
        (IntField("f", 0), 32),
        (LongField("f", 0), 64),
    ],
)
def test_field_widths_are_written_out_not_read_from_struct_formats(field, bits):
    assert compat.field_bits(field) == bits


def test_over_wide_vni_is_a_build_error_not_a_struct_error():
    # Scapy 2.6/2.7: X3BytesField packs "!I", so a guessed width said 32 bits
    with pytest.raises(BuildError, match=r"Geneve\.vni: value 16777216 does not fit in 24 bits"):
        bytes(Geneve(vni=1 << 24))


WIRE = bytes.fromhex(
    "02 00 6558 000007 00"  # Ver 0, Opt Len 2 words | O=C=0 | TEB | VNI 7
    "0102 80 01 0003 0009"  # OVN option: class 0x0102, type 0x80, Len 1, ports 3 -> 9
)


def test_dissected_geneve_is_cached_and_an_option_edit_rebuilds():
    # Scapy 2.5 keeps copies of mutable fields, 2.6+ a digest: both notice the edit
    g = Geneve(WIRE)
    assert isinstance(g.options[0], GeneveOptionOVN) and bytes(g) == WIRE
    g.options[0].egress_port = 10
    assert bytes(g) == WIRE[:-2] + b"\x00\x0a"


class _Probe(Packet):
    name = "probe"
    fields_desc = [ByteField("b", 0)]


def test_ethertype_table_follows_every_new_binding():
    # The table was keyed on id(Ether.payload_guess): after a bind frees the old
    # list, the next list may reuse its address and the stale table was kept.
    classes = [type("_Probe%d" % i, (_Probe,), {}) for i in range(6)]
    try:
        for i, cls in enumerate(classes):
            ethertype = 0x88F0 + i
            raw = Geneve(bytes.fromhex("0000%04x00000100" % ethertype) + b"\x2a")
            assert isinstance(raw.payload, Raw)  # not bound yet
            bind_bottom_up(Ether, cls, type=ethertype)
            got = Geneve(bytes.fromhex("0000%04x00000100" % ethertype) + b"\x2a")
            assert isinstance(got.payload, cls) and got.payload.b == 0x2A
    finally:
        for i, cls in enumerate(classes):
            split_bottom_up(Ether, cls, type=0x88F0 + i)


def test_ethertype_table_notices_an_in_place_append():
    ethertype = 0x88FE
    assert compat.payload_layer_for(Ether, "type", ethertype) is None
    Ether.payload_guess.append(({"type": ethertype}, _Probe))
    try:
        assert compat.payload_layer_for(Ether, "type", ethertype) is _Probe
    finally:
        split_bottom_up(Ether, _Probe, type=ethertype)
    assert compat.payload_layer_for(Ether, "type", ethertype) is None


def test_fast_copy_equals_packet_copy_and_is_independent():
    pkt = Ether(
        bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(dst="192.0.2.1")
            / UDP(sport=5, dport=6081)
            / Geneve(WIRE)
            / Ether(src="02:00:00:00:00:03")
            / IP()
            / TCP(options=[("MSS", 1460)])
            / b"data"
        )
    )
    layers = []
    copy = compat.fast_copy(pkt, out=layers)
    assert bytes(copy) == bytes(pkt.copy()) == bytes(pkt)
    assert [type(x) for x in layers] == [type(x) for x in pkt.iterpayloads()]
    assert all(a.fields == b.fields for a, b in zip(layers, pkt.iterpayloads()))
    assert copy[UDP].underlayer is copy[IP] and copy[Geneve].options[0].parent is copy[Geneve]
    copy[Geneve].options[0].ingress_port = 4
    copy[TCP].options.append(("NOP", None))
    assert pkt[Geneve].options[0].ingress_port == 3 and pkt[TCP].options == [("MSS", 1460)]


def test_a_layer_note_stays_on_its_layer_and_is_no_field():
    pkt = IP(bytes(IP() / UDP(sport=5, dport=7) / Raw(b"x")))
    compat.set_layer_note(pkt[UDP], "seen", (1, 2))
    assert compat.layer_note(pkt[UDP], "seen") == (1, 2)
    assert compat.layer_note(pkt, "seen") is None  # not searched for in payloads
    assert compat.layer_note(compat.fast_copy(pkt)[UDP], "seen") == (1, 2)
    assert compat.layer_note(pkt.copy()[UDP], "seen") is None  # Packet.copy starts afresh
    compat.set_layer_note(pkt[UDP], "seen", None)
    assert compat.layer_note(pkt[UDP], "seen") is None
    assert bytes(pkt) == pkt.original  # notes are not on the wire
    with pytest.raises(ValueError, match="sport is a field of UDP"):
        compat.set_layer_note(pkt[UDP], "sport", 1)  # it would hide the field


def test_hook_acts_first_and_unhook_restores():
    class Layer(Packet):
        fields_desc = [ByteField("n", 0)]

        def extract_padding(self, s):
            return s[:1], s[1:]

    compat.hook_method(Layer, "extract_padding", lambda pkt, s: (s, b"") if pkt.n == 0 else None)
    compat.hook_method(Layer, "extract_padding", lambda pkt, s: None)  # idempotent: ignored
    try:
        assert len(Layer(b"\x00abc").payload) == 3  # the hook answers
        assert isinstance(Layer(b"\x01abc")[Raw].payload, Raw)  # the original answers
    finally:
        compat.unhook_method(Layer, "extract_padding")
    assert not compat.hooked(Layer, "extract_padding")
    assert len(Layer(b"\x00abc").payload.load) == 1


# -- good guest: Scapy's contrib Geneve and the rest of the session (subprocesses) ---------


def run_py(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


UDP_6081 = """
    from scapy.layers.inet import IP, UDP
    from scapy.main import load_contrib
    from scapy.packet import Raw
    wire = bytes(IP() / UDP(sport=1, dport=6081) / Raw(bytes.fromhex("0000655800000100")))
    def who():
        return type(IP(wire)[UDP].payload).__module__
"""


def test_release_gives_udp_6081_to_contrib_loaded_after_us():
    out = run_py(
        UDP_6081
        + """
    from scapy_geneve.layers.geneve import claim_geneve_port, release_geneve_port
    load_contrib("geneve")
    first = who()
    release_geneve_port()
    second = who()
    claim_geneve_port()
    print(first, second, who())
    """
    )
    assert out == "scapy_geneve.layers.geneve scapy.contrib.geneve scapy_geneve.layers.geneve"


def test_release_before_load_contrib_and_our_layer_still_builds():
    out = run_py(
        UDP_6081
        + """
    from scapy_geneve.layers.geneve import Geneve, release_geneve_port
    release_geneve_port()
    before = type(IP(wire)[UDP].payload).__name__
    load_contrib("geneve")
    pkt = IP() / UDP() / Geneve(vni=7)
    print(before, who(), pkt[UDP].dport, Geneve(bytes(pkt[Geneve])).vni)
    """
    )
    assert out == "Raw scapy.contrib.geneve 6081 7"


def test_contrib_loaded_first_keeps_the_port_and_its_own_bindings():
    out = run_py(
        UDP_6081
        + """
    load_contrib("geneve")
    from scapy.contrib.geneve import GENEVE
    import scapy_geneve
    built = IP() / UDP() / GENEVE(vni=5)
    print(who(), built[UDP].dport, IP(bytes(built))[GENEVE].vni)
    """
    )
    assert out == "scapy.contrib.geneve 6081 5"


def test_importing_us_only_adds_bindings():
    """Every binding of Scapy's own layers is still there, in the same order;
    what is new binds one of our layers."""
    out = run_py("""
    import scapy.all  # noqa: every Scapy layer and its bindings
    from scapy.config import conf
    def bindings():
        return {cls: [(tuple(sorted(f.items())), c) for f, c in cls.payload_guess]
                for cls in conf.layers}
    before = bindings()
    import scapy_geneve
    after = bindings()
    problems = []
    for cls, old in before.items():
        new = after[cls]
        kept = [b for b in new if b in old]
        if kept != old:
            problems.append("%s: Scapy's bindings changed" % cls.__name__)
        for fval, upper in new:
            if (fval, upper) not in old and not upper.__module__.startswith("scapy_geneve"):
                problems.append("%s -> %s added" % (cls.__name__, upper.__name__))
    print(problems)
    """)
    assert out == "[]"


def test_scapy_older_than_the_floor_is_refused_on_import_with_the_reason():
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import scapy
        scapy.__version__ = "2.4.5"
        import scapy_geneve
        """),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert (
        "ImportError: scapy-geneve needs Scapy >= 2.5.0; this is Scapy 2.4.5" in res.stderr.splitlines()[-1]
    )


def test_binding_queries_and_moves():
    from scapy_geneve.layers.geneve import GENEVE_PORT

    assert compat.is_bound(UDP, Geneve, dport=GENEVE_PORT)
    assert not compat.is_bound(UDP, Geneve, sport=GENEVE_PORT)
    assert compat.bottom_up_bindings(UDP) is UDP.payload_guess
    saved = UDP.payload_guess
    try:
        compat.move_binding_first(UDP, Geneve, dport=GENEVE_PORT)
        assert UDP.payload_guess[0] == ({"dport": GENEVE_PORT}, Geneve)
        assert sum(c is Geneve for _f, c in UDP.payload_guess) == 1
    finally:
        UDP.payload_guess = saved
    assert compat.has_dissection_cache(Geneve(WIRE)) and not compat.has_dissection_cache(Geneve())


def test_geneve_dissects_with_scapy_swallowing_errors(no_debug_dissector):
    """As users run Scapy (debug_dissector off), where Scapy 2.5 once turned every
    Geneve packet into Raw: a missing internal raised AttributeError, swallowed."""
    pkt = IP(
        bytes(
            IP(dst="192.0.2.1")
            / UDP(sport=5, dport=6081)
            / Geneve(WIRE)
            / Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")
            / IP(dst="192.0.2.2")
        )
    )
    assert isinstance(pkt[UDP].payload, Geneve)
    assert isinstance(pkt[Geneve].options[0], GeneveOptionOVN) and pkt[Geneve][IP].dst == "192.0.2.2"
