"""L2TPv3 (RFC 3931) data and control messages carrying Ethernet (RFC 4719)."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.config import conf
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.l2tp import L2TP
from scapy.packet import Raw

from scapy_geneve import BuildError, L2TPv3, L2TPv3AVP, L2TPv3Control, L2TPv3UDP
from scapy_geneve.tunnels.l2tpv3 import (
    L2TPv3Session,
    l2tpv3_default,
    l2tpv3_forget,
    l2tpv3_learn,
    l2tpv3_lookup,
    l2tpv3_session,
    l2tpv3_sessions,
)

FUZZ_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
INNER = (
    Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
    / IP(src="192.168.1.1", dst="192.168.1.2")
    / UDP(sport=1000, dport=2000)
    / b"inner"
)


@pytest.fixture(autouse=True)
def clean_session_table():
    cfg = conf.contribs.setdefault("scapy_geneve", {})
    saved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items() if k.startswith("l2tpv3")}
    l2tpv3_forget()
    l2tpv3_default(cookie_len=0, l2ss=False)
    yield
    cfg.update(saved)


# RFC 3931 §4.1.1 data message over IP, with a 4-byte cookie and the
# Default L2-Specific Sublayer (§4.6), then the Ethernet frame (RFC 4719).
# fmt: off
DATA_OVER_IP = bytes.fromhex(
    "00001234"    # Session ID 0x1234
    "c001c001"    # Cookie (4 bytes, per session configuration)
    "40000005"    # |x|S|x|x|x|x|x|x| Sequence Number: S=1, sequence 5
)
# fmt: on


def test_data_over_ip_vector_builds_exactly():
    hdr = L2TPv3(session_id=0x1234, cookie=b"\xc0\x01\xc0\x01", l2ss_s=1, l2ss_seq=5)
    assert bytes(hdr) == DATA_OVER_IP


def test_data_over_ip_dissects_with_the_session_layout():
    l2tpv3_session(0x1234, cookie_len=4, l2ss=True)
    pkt = IP(bytes(IP(proto=115) / Raw(DATA_OVER_IP) / INNER))
    l2 = pkt[L2TPv3]
    assert l2.session_id == 0x1234 and l2.cookie == b"\xc0\x01\xc0\x01"
    assert l2.l2ss_s == 1 and l2.l2ss_seq == 5
    assert bytes(l2.payload) == bytes(INNER)


def test_unknown_session_uses_the_default_no_cookie_no_sublayer_and_stays_lossless():
    wire = bytes(IP(proto=115) / Raw(DATA_OVER_IP) / INNER)
    pkt = IP(wire)
    assert pkt[L2TPv3].cookie == b"" and "l2ss_seq" not in pkt[L2TPv3].fields
    assert bytes(pkt) == wire
    l2tpv3_default(cookie_len=4, l2ss=True)
    assert bytes(IP(wire)[L2TPv3].payload) == bytes(INNER)


def test_data_over_udp_1701_header():
    # RFC 3931 §4.1.2.1: |T|x..x| Ver=3 | Reserved | Session ID ...
    wire = bytes(IP() / UDP(sport=1701, dport=1701) / L2TPv3UDP() / L2TPv3(session_id=0x1234) / INNER)
    assert wire[28:36] == bytes.fromhex("0003 0000 00001234")
    pkt = IP(wire)
    assert isinstance(pkt[UDP].payload, L2TPv3UDP)
    assert pkt[L2TPv3].session_id == 0x1234
    assert bytes(pkt[L2TPv3].payload) == bytes(INNER)


@pytest.mark.parametrize("version", [1, 2])
def test_udp_1701_versions_other_than_3_stay_scapys_l2tp(version):
    wire = bytes(IP() / UDP(sport=1701, dport=1701) / Raw(bytes([0x00, version, 0, 1, 0, 2])))
    assert type(IP(wire)[UDP].payload) is L2TP


def _icrq(local_sid: int, cookie: bytes, l2ss: int, ccid: int = 7) -> L2TPv3Control:
    return L2TPv3Control(
        ccid=ccid,
        ns=1,
        nr=2,
        avps=[
            L2TPv3AVP(m=1, attr_type=0, value=(10).to_bytes(2, "big")),  # ICRQ
            L2TPv3AVP(m=1, attr_type=63, value=local_sid.to_bytes(4, "big")),
            L2TPv3AVP(attr_type=64, value=(0).to_bytes(4, "big")),
            L2TPv3AVP(attr_type=65, value=cookie),
            L2TPv3AVP(m=1, attr_type=68, value=(5).to_bytes(2, "big")),  # Ethernet
            L2TPv3AVP(attr_type=69, value=l2ss.to_bytes(2, "big")),
        ],
    )


def test_control_over_ip_follows_a_zero_session_id():
    wire = bytes(IP() / L2TPv3(session_id=0) / _icrq(0x77, b"12345678", 1))
    # 0x00000000 | T L x x S x x x x x x x Ver=3 | Length | CCID | Ns | Nr
    assert wire[20:24] == b"\x00\x00\x00\x00"  # Session ID 0: control
    assert wire[24:26] == b"\xc8\x03"  # T=1 L=1 S=1, Ver 3
    assert int.from_bytes(wire[26:28], "big") == len(wire) - 24  # Length
    ctrl = IP(wire)[L2TPv3Control]
    assert ctrl.length == len(wire) - 24 and ctrl.ccid == 7 and (ctrl.ns, ctrl.nr) == (1, 2)
    assert ctrl.message_type() == 10 and "ICRQ" in ctrl.mysummary()
    assert [a.attr_type for a in ctrl.avps] == [0, 63, 64, 65, 68, 69]


def test_control_over_udp_starts_with_the_t_bit():
    wire = bytes(IP() / UDP(sport=1701, dport=1701) / _icrq(0x77, b"", 0))
    pkt = IP(wire)
    assert isinstance(pkt[UDP].payload, L2TPv3Control)
    assert pkt[L2TPv3Control].t == 1 and pkt[L2TPv3Control].version == 3


def test_learning_cookie_and_sublayer_from_the_control_channel():
    capture = [
        IP(bytes(IP() / L2TPv3(session_id=0) / _icrq(0x77, b"ABCDEFGH", 1))),
        IP(bytes(IP() / UDP(sport=1701, dport=1701) / _icrq(0x99, b"WXYZ", 0))),
    ]
    assert l2tpv3_learn(capture) == [0x77, 0x99]
    assert l2tpv3_lookup(0x77) == L2TPv3Session(cookie_len=8, l2ss=True, pw_type=5, cookie=b"ABCDEFGH")
    assert l2tpv3_lookup(0x99) == L2TPv3Session(cookie_len=4, l2ss=False, pw_type=5, cookie=b"WXYZ")
    data = IP(bytes(IP() / L2TPv3(session_id=0x77, cookie=b"ABCDEFGH", l2ss_s=1, l2ss_seq=9) / INNER))
    assert data[L2TPv3].cookie == b"ABCDEFGH" and data[L2TPv3].l2ss_seq == 9
    assert bytes(data[L2TPv3].payload) == bytes(INNER)


def test_learning_while_dissecting_is_opt_in():
    conf.contribs["scapy_geneve"]["l2tpv3_learn"] = True
    try:
        IP(bytes(IP() / L2TPv3(session_id=0) / _icrq(0x55, b"abcd", 0)))
    finally:
        conf.contribs["scapy_geneve"]["l2tpv3_learn"] = False
    # Keyed by the sender of the ICRQ: the LCCE that will receive session 0x55.
    assert l2tpv3_sessions()[("127.0.0.1", 0x55)].cookie_len == 4


def test_malformed_avp_lengths_keep_every_byte():
    body = bytes.fromhex(
        "c803 0014 00000001 0000 0000"  # header, Length 20
        "8003 0000 0001"  # AVP with Length 3 (< 6)
    )
    wire = bytes(IP() / UDP(sport=1701, dport=1701) / Raw(body))
    assert bytes(IP(wire)) == wire


@pytest.mark.parametrize(
    "call",
    [
        lambda: l2tpv3_session(0),
        lambda: l2tpv3_session(1 << 32),
        lambda: l2tpv3_session(5, cookie_len=3),
        lambda: l2tpv3_default(cookie_len=6),
        lambda: bytes(L2TPv3(session_id=5, cookie=b"abc")),
    ],
)
def test_impossible_layouts_are_refused(call):
    with pytest.raises(BuildError):
        call()


def test_ipv6_next_header_115():
    l2tpv3_session(9, cookie_len=8)
    wire = bytes(IPv6() / L2TPv3(session_id=9, cookie=b"\x11" * 8) / INNER)
    pkt = IPv6(wire)
    assert pkt.nh == 115 and pkt[L2TPv3].cookie == b"\x11" * 8


@settings(max_examples=200, deadline=None, suppress_health_check=FUZZ_OK)
@given(
    data=st.binary(max_size=64),
    cookie_len=st.sampled_from([0, 4, 8]),
    l2ss=st.booleans(),
    over_udp=st.booleans(),
)
def test_random_bytes_dissect_losslessly_under_any_session_layout(
    no_debug_dissector, data, cookie_len, l2ss, over_udp
):
    l2tpv3_default(cookie_len=cookie_len, l2ss=l2ss)
    if over_udp:
        wire = bytes(IP() / UDP(sport=1701, dport=1701) / Raw(data))
    else:
        wire = bytes(IP(proto=115) / Raw(data))
    assert bytes(IP(wire)) == wire


def test_building_writes_what_is_set_whatever_the_session_table_says():
    # The table tells the *dissector* what is not on the wire; a packet being
    # built has its own fields (it once grew a sublayer from an unrelated entry).
    l2tpv3_session(0x1234, cookie_len=4, l2ss=True)
    assert bytes(L2TPv3(session_id=0x1234, cookie=b"\xc0\x01\xc0\x01")) == DATA_OVER_IP[:8]
    assert bytes(L2TPv3(session_id=0x1234, cookie=b"\xc0\x01\xc0\x01", l2ss_s=1, l2ss_seq=5)) == DATA_OVER_IP
    back = IP(bytes(IP(proto=115) / Raw(DATA_OVER_IP) / INNER))[L2TPv3]
    assert back.l2ss_seq == 5 and bytes(back) == DATA_OVER_IP + bytes(INNER)


@settings(max_examples=200, deadline=None, suppress_health_check=FUZZ_OK)
@given(
    data=st.binary(min_size=4, max_size=64),
    cookie_len=st.sampled_from([0, 4, 8]),
    l2ss=st.booleans(),
    keyed=st.booleans(),
)
def test_random_data_of_a_configured_session_dissects_losslessly(
    no_debug_dissector, data, cookie_len, l2ss, keyed
):
    sid = int.from_bytes(data[:4], "big")
    l2tpv3_forget()  # the examples share one fixture: an earlier keyed entry would answer first
    if sid:
        l2tpv3_session(sid, cookie_len, l2ss, dst="127.0.0.1" if keyed else None)
    wire = bytes(IP(proto=115) / Raw(data))
    pkt = IP(wire)
    assert bytes(pkt) == wire
    if sid and len(data) >= 4 + cookie_len + 4 * l2ss:
        assert pkt[L2TPv3].cookie == data[4 : 4 + cookie_len]


# -- the layer asks a resolver; the session table is a helper that installs itself ------------
def test_the_layer_reads_the_layout_from_the_installed_resolver():
    from scapy_geneve.layers.l2tpv3 import L2TPv3Layout, set_session_resolver

    asked = []

    def resolver(session_id, dst):
        asked.append((session_id, dst))
        return L2TPv3Layout(cookie_len=4, l2ss=True)

    previous = set_session_resolver(resolver)
    try:
        pkt = IP(bytes(IP(src="192.0.2.1", dst="192.0.2.2", proto=115) / DATA_OVER_IP / INNER))
        assert pkt[L2TPv3].cookie == b"\xc0\x01\xc0\x01" and pkt[L2TPv3].l2ss_seq == 5
        assert asked == [(0x1234, "192.0.2.2")]
        set_session_resolver(None)  # the layer alone: no cookie, no sublayer
        assert IP(bytes(pkt))[L2TPv3].cookie == b""
    finally:
        set_session_resolver(previous)
    assert previous is l2tpv3_lookup  # what importing scapy_geneve installed


def test_layers_do_not_import_the_tunnel_helpers():
    import subprocess
    import sys

    code = (
        "import sys; import scapy_geneve.layers.l2tpv3, scapy_geneve.layers.stt; "
        "print(sorted(m for m in sys.modules if m.startswith(('scapy_geneve.tunnels', "
        "'scapy_geneve.offload'))))"
    )
    # A fresh interpreter importing the layer files only (scapy_geneve/__init__ imports
    # the helpers, so the layer files are loaded by path, as a stand-alone contrib would).
    script = (
        "import importlib.util, sys, types\n"
        "pkg = types.ModuleType('scapy_geneve'); pkg.__path__ = [%r]\n"
        "sys.modules['scapy_geneve'] = pkg\n" % str(_package_dir()) + code
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"


def _package_dir():
    import pathlib

    import scapy_geneve

    return pathlib.Path(scapy_geneve.__file__).parent


def test_old_import_path_forwards_with_a_deprecation_warning():
    import scapy_geneve.layers.l2tpv3 as layer

    with pytest.warns(DeprecationWarning, match="moved to scapy_geneve.tunnels.l2tpv3"):
        assert layer.l2tpv3_session is l2tpv3_session
