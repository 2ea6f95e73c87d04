"""The registry of encapsulations (scapy_geneve.registry): its invariants, the port parser,
and issue 9's promise that adding an encapsulation touches the registry, its layer and its
adapter only, on the capture side too.

A toy kind is registered here with a record, a Scapy layer and an adapter, and nothing
else: the Scapy-free wire decoder, scan's reference records, Ports, encapsulate and
decapsulate all read it, tshark (told the port carries VXLAN's layout) reads the same
identifier and inner headers, and unregistering it restores every one of them.  The
built-in records' generic wire facts agree with their dedicated parsers on pcaps/.
"""

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.fields import ThreeBytesField, X3BytesField, XByteField
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, bind_layers, split_layers

from scapy_geneve import registry
from scapy_geneve.capture.decode import decode, decode_ip
from scapy_geneve.capture.pcapio import iter_records
from scapy_geneve.capture.scan import parse_packet, scan
from scapy_geneve.capture.writers import PcapWriter
from scapy_geneve.registry import (
    DEFAULT_PORTS,
    Encapsulation,
    Kind,
    PortError,
    Ports,
    parse_port,
)
from scapy_geneve.tunnels.base import Adapter
from scapy_geneve.tunnels.tunnel import decapsulate, encapsulate

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))
TOY_PORT = 9999


# -- the toy encapsulation: a record, a layer and an adapter (nothing else) -----------------
class Toy(Packet):
    """8 bytes, VXLAN's layout under another name and port:

     0                   1                   2                   3
    |     Flags     |                 Reserved                      |
    |                 Ring (24 bits)                |   Reserved    |
    """

    name = "Toy"
    fields_desc = [
        XByteField("flags", 0x08),
        X3BytesField("reserved", 0),
        ThreeBytesField("ring", 0),
        XByteField("reserved2", 0),
    ]


class ToyAdapter(Adapter):
    kind = "toy"
    layers = (Toy,)

    def encapsulate(self, inner: Packet, ident: int, outer: Any, params: Dict[str, Any]) -> Packet:
        udp = outer.udp(self.kind, params.get("sport", 40000), params.get("dport", TOY_PORT), True)
        return outer.l3 / udp / Toy(ring=ident) / inner

    def decapsulate(self, layer: Packet, packet: Packet, info: Any) -> None:
        info.vni = int(layer.ring)

    def params(self, info: Any) -> Dict[str, Any]:
        return {"sport": info.sport, "dport": info.dport}


TOY_ADAPTER = ToyAdapter()

TOY = Encapsulation(
    name="toy",
    kind=100,
    title="Toy",
    spec="this test",
    aliases=("toy-tunnel",),
    udp_ports=frozenset([TOY_PORT]),
    header_len=8,
    id_name="ring",
    id_title="Ring",
    id_bits=24,
    id_offset=4,  # the 32-bit word at offset 4 ...
    id_shift=8,  # ... holds Ring above 8 reserved bits
    inner="ether",
    layer=__name__ + ":Toy",
    adapter=__name__ + ":TOY_ADAPTER",
)


@pytest.fixture
def toy() -> Iterator[Encapsulation]:
    """TOY registered, its layer bound to UDP 9999, for one test."""
    bind_layers(UDP, Toy, dport=TOY_PORT)
    bind_layers(Toy, Ether)
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister("toy")
        split_layers(UDP, Toy, dport=TOY_PORT)
        split_layers(Toy, Ether)


# -- a frame built by hand: each header annotated once --------------------------------------
# fmt: off
INNER = bytes.fromhex(
    "020000000022 020000000011 0800"        # inner Ethernet: dst, src, IPv4
    "45 00 001f 0001 0000 40 11 0000"       # IPv4: 31 bytes, ID 1, TTL 64, UDP, checksum 0
    "c0a80101 c0a80102"                     # 192.168.1.1 > 192.168.1.2
    "03e8 07d0 000b 0000"                   # UDP 1000 > 2000, length 11, checksum 0
    "707070"                                # payload "ppp"
)
TOY_HEADER = bytes.fromhex(
    "08"                                    # Flags (I, as VXLAN's)
    "000000"                                # Reserved
    "abcdef"                                # Ring 0xabcdef
    "00"                                    # Reserved
)
# fmt: on


def outer(payload: bytes, dport: int = TOY_PORT, proto: int = 17) -> bytes:
    """Ethernet / IPv4 192.0.2.1 > 192.0.2.2 / UDP 40000 > DPORT (or PROTO's payload)."""
    if proto == 17:
        payload = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0)
    return bytes.fromhex("020000000002 020000000001 0800") + ip + bytes.fromhex("c0000201c0000202") + payload


FRAME = outer(TOY_HEADER + INNER)  # Ethernet 14 + IPv4 20 + UDP 8: Toy at 42, inner at 50


def _write_pcap(path: Path, frames: Iterable[bytes]) -> None:
    with path.open("wb") as handle:
        writer = PcapWriter(handle)
        for frame in frames:
            writer.write(frame)


# -- the decoder reads a registered kind from its record ------------------------------------
def test_decode_reads_a_registered_kind_from_its_record(toy: Encapsulation) -> None:
    rec = decode(FRAME)
    assert not rec.malformed, rec.reason
    assert (rec.kind, rec.kind_code, rec.vni) == ("toy", 100, 0xABCDEF)
    assert (rec.tunnel_off, rec.tunnel_len, rec.inner_off) == (42, 8, 50)
    assert rec.inner_ip is not None and rec.inner_ip.off == 64
    assert (rec.inner_ip.src, rec.inner_ip.dst) == ("192.168.1.1", "192.168.1.2")
    assert rec.inner_l4 is not None and (rec.inner_l4.sport, rec.inner_l4.dport) == (1000, 2000)
    assert (rec.payload_off, rec.payload_len) == (92, 3)


def test_decode_reads_what_encapsulate_builds(toy: Encapsulation) -> None:
    built = bytes(Ether() / encapsulate(Ether(INNER), "toy", ring=0xABCDEF))
    rec = decode(built)
    assert (rec.kind, rec.vni, rec.inner_off) == ("toy", 0xABCDEF, 50)
    assert built[rec.inner_off :] == INNER


def test_a_truncated_registered_header_is_malformed_at_its_offset(toy: Encapsulation) -> None:
    cut = FRAME[: 42 + 5]  # 5 of Toy's 8 bytes (the UDP Length says more: a cut datagram)
    rec = decode(outer(TOY_HEADER[:5]))
    assert (rec.malformed, rec.reason, rec.reason_offset) == (True, "truncated Toy header", 42)
    assert (rec.kind, rec.vni) == ("toy", None)
    snapped = decode(cut, wirelen=len(FRAME))  # cut by the snaplen: not malformed
    assert (snapped.kind, snapped.snapped, snapped.malformed) == ("toy", True, False)


@pytest.mark.parametrize(
    "inner, says", [("ip", "Toy inner IP header with version 0"), ("ether", None), ("none", None)]
)
def test_the_record_says_what_follows_the_header(inner: str, says: Optional[str]) -> None:
    """``inner``: Ethernet, IP (its version nibble says 4 or 6), or nothing read."""
    record = registry.register(
        Encapsulation(
            name="toy",
            kind=100,
            title="Toy",
            spec="this test",
            udp_ports=frozenset([TOY_PORT]),
            header_len=8,
            id_offset=4,
            id_shift=8,
            inner=inner,
        )
    )
    try:
        rec = decode(FRAME)
        if inner == "ip":  # the inner Ethernet's first byte is 0x02: not IP
            assert (rec.malformed, rec.reason, rec.reason_offset) == (True, says, 50)
            ip_rec = decode(outer(TOY_HEADER + INNER[14:]))
            assert ip_rec.inner_ethertype == 0x0800 and ip_rec.inner_ip is not None
            assert ip_rec.inner_off == ip_rec.inner_ip.off == 50
        elif inner == "ether":
            assert rec.inner_ip is not None and rec.inner_off == 50
        else:
            assert (rec.inner_off, rec.payload_off, rec.payload_len) == (-1, 50, len(INNER))
        assert (rec.kind, rec.vni) == (record.name, 0xABCDEF)
    finally:
        registry.unregister("toy")


#: A kind on a TCP port and one straight over IP (tests/test_batch_compiled.py registers them too).
TOY_TCP = Encapsulation(
    name="toy-tcp",
    kind=101,
    title="ToyTCP",
    spec="this test",
    tcp_ports=frozenset([9998]),
    header_len=4,
    id_bits=32,
    id_offset=0,
    inner="ip",
)
TOY_IP = Encapsulation(
    name="toy-ip",
    kind=102,
    title="ToyIP",
    spec="this test",
    ip_protocol=253,
    header_len=4,
    id_bits=16,
    id_offset=2,
    inner="ether",
)


def test_registered_kinds_over_tcp_and_ip() -> None:
    """A kind on a TCP port (after the TCP header) and one directly over IP (RFC 3692's
    experimental protocol 253), each read from its record alone."""
    # fmt: off
    tcp = bytes.fromhex(
        "9c40 270e"             # TCP 40000 > 9998
        "00000001 00000000"     # seq 1, ack 0
        "50 18 ffff 0000 0000"  # data offset 5 (20 bytes), PSH ACK, window, checksum, urgent
        "01020304"              # ToyTCP: identifier 0x01020304
    ) + INNER[14:]              # inner IPv4
    toy_ip = bytes.fromhex("0000 beef") + INNER  # ToyIP: reserved, identifier 0xbeef
    # fmt: on
    for record in (TOY_TCP, TOY_IP):
        registry.register(record)
    try:
        rec = decode_ip(outer(tcp, proto=6)[14:])
        assert (rec.kind, rec.kind_code, rec.vni, rec.tunnel_off, rec.inner_off) == (
            "toy-tcp",
            101,
            0x01020304,
            40,
            44,
        )
        assert rec.inner_ip is not None and rec.inner_ip.src == "192.168.1.1"
        rec = decode(outer(toy_ip, proto=253))
        assert (rec.kind, rec.vni, rec.tunnel_off, rec.inner_off) == ("toy-ip", 0xBEEF, 34, 38)
        assert decode(outer(tcp[:22], proto=6)).reason == "truncated ToyTCP header"  # 2 of 4 bytes
        assert decode(outer(tcp[:12], proto=6)).reason == "truncated ToyTCP TCP header"
    finally:
        registry.unregister("toy-tcp")
        registry.unregister("toy-ip")
    assert decode_ip(outer(tcp, proto=6)[14:]).kind is None
    assert decode(outer(toy_ip, proto=253)).kind is None


# -- Ports ----------------------------------------------------------------------------------
def test_ports_see_registered_kinds_and_forget_them() -> None:
    before = Ports()  # made before the registration: its defaults follow the registry
    assert DEFAULT_PORTS.udp_kind(40000, TOY_PORT) is None
    registry.register(TOY)
    try:
        for ports in (before, Ports(), DEFAULT_PORTS):
            assert ports.udp_kind(40000, TOY_PORT) == "toy"
            assert ports.udp_kind(TOY_PORT, 40000) is None  # destination ports only
            assert ports.tcp_kind(40000, TOY_PORT) is None  # a UDP port
        wider = DEFAULT_PORTS.extended(toy=[9997], geneve=[6082])
        assert (wider.udp_kind(1, 9997), wider.udp_kind(1, TOY_PORT), wider.udp_kind(1, 6082)) == (
            "toy",
            "toy",
            "geneve",
        )
        assert ("udp", 9997, "toy") in wider.registered()
        none = Ports(*(frozenset() for _ in Ports._fields))  # an explicit empty set: no ports
        assert none.udp_kind(40000, TOY_PORT) is None
        assert DEFAULT_PORTS.udp_kind(40000, 4789) == "vxlan"  # the built-ins first
    finally:
        registry.unregister("toy")
    assert before.udp_kind(40000, TOY_PORT) is None and DEFAULT_PORTS.registered() == frozenset()
    assert Ports() == DEFAULT_PORTS
    with pytest.raises(KeyError, match="unknown encapsulation 'toy'"):
        DEFAULT_PORTS.extended(toy=[9997])
    with pytest.raises(KeyError, match="nvgre is not carried on a port"):
        DEFAULT_PORTS.extended(nvgre=[9997])


def test_an_either_port_kind_answers_on_the_source_port_too() -> None:
    record = registry.register(
        Encapsulation(
            name="toy",
            kind=100,
            title="Toy",
            spec="this test",
            udp_ports=frozenset([TOY_PORT]),
            either_port=True,
            id_offset=4,
            id_shift=8,
            inner="ether",
        )
    )
    try:
        assert DEFAULT_PORTS.udp_kind(TOY_PORT, 40000) == record.name
        assert (
            decode(
                outer(TOY_HEADER + INNER, dport=40000)[:34]
                + struct.pack("!HHHH", TOY_PORT, 40000, 16 + len(INNER), 0)
                + TOY_HEADER
                + INNER
            ).vni
            == 0xABCDEF
        )
    finally:
        registry.unregister("toy")


# -- scan's reference records, encapsulate/decapsulate, and unregister --------------------
def test_scan_reference_records_read_a_registered_kind(toy: Encapsulation, tmp_path: Path) -> None:
    path = tmp_path / "toy.pcap"
    _write_pcap(path, [FRAME, outer(TOY_HEADER[:5])])
    first = parse_packet(FRAME)
    assert (first.kind, first.vni, first.inner_src, first.inner_dst) == (
        "toy",
        0xABCDEF,
        "192.168.1.1",
        "192.168.1.2",
    )
    assert (first.inner_sport, first.inner_dport) == (1000, 2000)
    records = list(scan(path, vectorised=False))
    assert [(r.kind, r.vni, r.malformed) for r in records] == [("toy", 0xABCDEF, False), ("toy", None, True)]
    assert records[1].reason == "truncated Toy header"


def test_encapsulate_and_decapsulate_round_trip_a_registered_kind(
    toy: Encapsulation, no_debug_dissector: None
) -> None:
    out = encapsulate(Ether(INNER), "toy-tunnel", ring=0x123456)  # by its alias
    inner, info = decapsulate(bytes(out))
    assert bytes(inner) == INNER and (info.kind, info.vni) == ("toy", 0x123456)
    assert bytes(encapsulate(inner, "toy", **info.params())) == bytes(out)
    rec = decode(bytes(out), 228)  # raw IPv4
    assert (rec.kind, rec.vni, rec.inner_off) == ("toy", 0x123456, 36)


def test_unregister_restores_decode_and_ports() -> None:
    untouched = decode(FRAME)
    registry.register(TOY)
    registry.unregister("toy")
    rec = decode(FRAME)
    assert (rec.kind, rec.kind_code, rec.vni, rec.tunnel_off) == (None, 0, None, -1)
    assert (
        (rec.payload_off, rec.payload_len)
        == (untouched.payload_off, untouched.payload_len)
        == (42, len(TOY_HEADER + INNER))
    )
    assert "toy" not in registry.names() and registry.by_kind(100) is None
    with pytest.raises(KeyError):
        registry.get("toy-tunnel")


@pytest.mark.oracle
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_registered_kind_as_the_decoder_does(toy: Encapsulation, tmp_path: Path) -> None:
    """Told UDP 9999 carries VXLAN's layout, tshark finds the same identifier and the same
    inner Ethernet/IPv4/UDP that the decoder finds from the toy record alone."""
    rings = (1, 0xABCDEF, 0xFFFFFF)
    frames = [outer(TOY_HEADER[:4] + struct.pack("!I", ring << 8) + INNER) for ring in rings]
    path = tmp_path / "toy.pcap"
    _write_pcap(path, frames)
    fields = ["vxlan.vni", "eth.type", "ip.src", "ip.dst", "udp.srcport", "udp.dstport"]
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-d",
            "udp.port==%d,vxlan" % TOY_PORT,
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=l",
        ]
        + [a for f in fields for a in ("-e", f)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    assert len(out) == len(frames)
    for line, frame in zip(out, frames):
        vni, ethertype, src, dst, sport, dport = line.split("|")
        rec = decode(frame)
        assert rec.inner_ip is not None and rec.inner_l4 is not None
        assert (rec.vni, rec.inner_ethertype) == (int(vni), int(ethertype, 0))
        assert (rec.inner_ip.src, rec.inner_ip.dst) == (src, dst)
        assert (rec.inner_l4.sport, rec.inner_l4.dport) == (int(sport), int(dport))


def test_ports_naming_a_kind_this_process_has_not_registered_read_no_tunnel() -> None:
    """A Ports pickled in a process that registered a kind and read in one that did not."""
    ports = DEFAULT_PORTS._replace(others=frozenset([("udp", TOY_PORT, "toy")]))
    assert ports.udp_kind(40000, TOY_PORT) == "toy"
    rec = decode(FRAME, ports=ports)
    assert (rec.kind, rec.malformed, rec.payload_off) == (None, False, 42)


def _decoded(rec: Any) -> Any:
    """What a receiver reads from a frame, the kind's name aside."""
    ip, l4 = rec.inner_ip, rec.inner_l4
    return (
        rec.vni,
        rec.tunnel_off,
        rec.tunnel_len,
        rec.inner_off,
        rec.inner_ethertype,
        rec.inner_vlans,
        None if ip is None else (ip.off, ip.hlen, ip.proto, ip.end, ip.src_b, ip.dst_b),
        None if l4 is None else (l4.off, l4.sport, l4.dport, l4.hlen, l4.end),
        rec.payload_off,
        rec.payload_len,
        rec.malformed,
        rec.reason,
        rec.reason_offset,
        rec.snapped,
    )


# fmt: off
@settings(max_examples=200, deadline=None)
@given(
    flags=st.integers(0, 255).map(lambda f: f | 0x08),  # the I flag set (RFC 7348 §5)
    rest=st.binary(min_size=7, max_size=7),             # Reserved, VNI, Reserved
    inner=st.one_of(st.binary(max_size=80), st.sampled_from([INNER, INNER[:20], INNER[:40]])),
    cut=st.integers(0, 140),
    snapped=st.booleans(),
)
# fmt: on
def test_the_generic_reader_equals_the_dedicated_vxlan_parser(
    flags: int, rest: bytes, inner: bytes, cut: int, snapped: bool
) -> None:
    """A kind registered with VXLAN's record facts on another port reads every frame
    (truncated or snapped at any byte, any inner bytes) as the VXLAN parser does."""
    clone = registry.register(Encapsulation(
        name="vxlan-clone", kind=120, title="VXLAN", spec="this test", udp_ports=frozenset([TOY_PORT]),
        **{f: getattr(registry.get("vxlan"), f) for f in ("header_len", "id_bits", "id_offset",
                                                          "id_shift", "inner")}))
    try:
        whole = {port: outer(bytes([flags]) + rest + inner, dport=port) for port in (4789, TOY_PORT)}
        wire = {port: (frame[: 42 + cut], len(frame) if snapped else None) for port, frame in whole.items()}
        vxlan, mine = (decode(data, wirelen=wirelen) for data, wirelen in wire.values())
        assert (vxlan.kind, mine.kind, mine.kind_code) == ("vxlan", clone.name, 120)
        assert _decoded(mine) == _decoded(vxlan)
    finally:
        registry.unregister("vxlan-clone")


# -- the built-in records' generic facts agree with the dedicated parsers ------------------
def _fixed_length(rec: Any) -> bool:
    """The header is ``header_len`` bytes: Geneve without options, L2TPv3 over IP without
    cookie (decode's default); VXLAN, VXLAN-GPE, NVGRE (RFC 7637's exact header) and
    STT's first segment always."""
    if rec.kind == "geneve":
        return rec.opt_len == 0
    if rec.kind == "l2tpv3":
        return rec.l4.proto == registry.IPPROTO_L2TP
    return True


def _carries_ethernet(rec: Any) -> bool:
    """The protocol field, where there is one, says Ethernet (``inner`` "ether")."""
    if rec.kind == "geneve":
        return rec.proto == 0x6558
    if rec.kind == "vxlan-gpe":
        return not rec.flags & 0x04 or rec.proto == 3  # no Next Protocol, or Ethernet
    return True


def _agree_with_dedicated(paths: Iterable[Path], ids: Dict[str, int], inners: Dict[str, int]) -> None:
    """Each packet's identifier and inner offset, as the record's generic facts read them,
    equal the dedicated parser's (counted per kind in IDS and INNERS)."""
    for path in paths:
        for record in iter_records(path):
            rec = decode(record.data, record.linktype)
            if rec.kind is None or rec.tunnel_off < 0 or rec.control:
                continue  # no tunnel, an STT continuation segment, an L2TPv3 control message
            enc, where = registry.get(rec.kind), (path.name, record.number)
            over_udp = rec.l4 is not None and rec.l4.proto == 17
            if rec.vni is not None and not (rec.kind == "l2tpv3" and over_udp):
                assert enc.read_id(record.data, rec.tunnel_off) == rec.vni, where
                ids[rec.kind] = ids.get(rec.kind, 0) + 1
            if rec.inner_off >= 0 and _fixed_length(rec):
                assert rec.inner_off == rec.tunnel_off + enc.header_len, where
                assert enc.inner == "ether"
                if _carries_ethernet(rec) and rec.inner_ip is not None:  # IP after an Ethernet header
                    assert rec.inner_ip.off >= rec.inner_off + 14, where
                inners[rec.kind] = inners.get(rec.kind, 0) + 1


def test_builtin_generic_facts_agree_with_the_dedicated_parsers() -> None:
    """On every packet of pcaps/ whose tunnel header is whole, the identifier read at
    ``id_offset`` (``id_shift``, ``id_bits``) is the dedicated parser's (L2TPv3 over UDP
    excepted: the record describes the IP form, RFC 3931 §4.1.1), and where the header is
    ``header_len`` bytes the inner frame starts right after it."""
    ids: Dict[str, int] = {}
    inners: Dict[str, int] = {}
    _agree_with_dedicated(PROJECT_PCAPS, ids, inners)
    builtin = {rec.name for rec in registry.records()}
    assert set(ids) == builtin and set(inners) == builtin, (ids, inners)


def test_builtin_generic_facts_agree_on_the_tcpdump_corpus(corpus: Path) -> None:
    """The same on tcpdump's own tunnel captures (GSO / BIG TCP Geneve and VXLAN, NSH over
    VXLAN-GPE, GRE, L2TP)."""
    paths = sorted(p for p in corpus.glob("*.pcap")
                   if any(word in p.name for word in ("geneve", "vxlan", "gre", "l2tp", "nsh")))
    ids: Dict[str, int] = {}
    inners: Dict[str, int] = {}
    _agree_with_dedicated(paths, ids, inners)
    assert {"geneve", "vxlan", "vxlan-gpe"} <= set(ids) and {"geneve", "vxlan"} <= set(inners), (ids, inners)


# -- the registry's invariants --------------------------------------------------------------
def test_names_aliases_and_kind_codes_are_unique() -> None:
    spellings = [s for rec in registry.records() for s in (rec.name,) + rec.aliases]
    assert len(spellings) == len(set(spellings))
    codes = [int(rec.kind) for rec in registry.records()]
    assert len(codes) == len(set(codes)) and 0 not in codes
    assert [int(k) for k in Kind if k] == codes  # kind-code order; Kind.NONE is no record
    assert all(registry.by_kind(code).kind == code for code in codes)  # type: ignore[union-attr]


def test_every_layer_and_adapter_loads() -> None:
    for rec in registry.records():
        layer, adapter = rec.load_layer(), rec.load_adapter()
        assert issubclass(layer, Packet), rec.name
        assert isinstance(adapter, Adapter) and adapter.kind == (rec.variant_of or rec.name), rec.name


def test_each_port_belongs_to_exactly_one_kind() -> None:
    for transport in ("udp_ports", "tcp_ports"):
        owners: Dict[int, str] = {}
        for rec in registry.records():
            for port in getattr(rec, transport):
                assert port not in owners, "%s %d: %s and %s" % (transport, port, owners[port], rec.name)
                owners[port] = rec.name
    for rec in registry.records():  # and Ports says the same
        for port in rec.udp_ports:
            assert DEFAULT_PORTS.udp_kind(40000, port) == rec.name
        for port in rec.tcp_ports:
            assert DEFAULT_PORTS.tcp_kind(40000, port) == rec.name


def test_generic_facts_fit_each_header() -> None:
    for rec in registry.records():
        assert rec.inner in registry.INNER_TYPES
        if rec.generic:
            assert rec.id_offset is not None and rec.id_offset + rec.id_bytes <= rec.header_len
    with pytest.raises(ValueError, match="toy: inner 'ppp' is not one of ether, ip, none"):
        Encapsulation(name="toy", kind=100, title="Toy", spec="x", inner="ppp")
    with pytest.raises(ValueError, match="a 4-byte identifier word at offset 6 does not fit the 8-byte"):
        Encapsulation(name="toy", kind=100, title="Toy", spec="x", id_offset=6, id_shift=8)


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"name": "vxlan"}, "cannot register 'vxlan': vxlan already registered"),
        ({"aliases": ("gnv",)}, "gnv already registered"),
        ({"kind": int(Kind.STT)}, "kind code 5 already registered"),
        ({"kind": 0}, "kind code 0 is not in 1-127"),
        ({"kind": 128}, "kind code 128 is not in 1-127"),
        ({"udp_ports": frozenset([4789])}, r"UDP port 4789 \(vxlan\) already registered"),
        ({"tcp_ports": frozenset([7471])}, r"TCP port 7471 \(stt\) already registered"),
        ({"ip_protocol": 47}, "IP protocol 47 already registered"),
        ({"ports_key": "geneve"}, r"ports_key 'geneve' \(a built-in kind's\) already registered"),
    ],
)
def test_register_refuses_what_is_taken(changes: Dict[str, Any], says: str) -> None:
    fields = dict(name="toy", kind=100, title="Toy", spec="this test")
    fields.update(changes)
    with pytest.raises(ValueError, match=says):
        registry.register(Encapsulation(**fields))  # type: ignore[arg-type]
    assert "toy" not in registry.names() and registry.by_kind(100) is None


def test_builtins_cannot_be_unregistered() -> None:
    with pytest.raises(ValueError, match="cannot unregister 'geneve': a built-in encapsulation"):
        registry.unregister("gnv")
    assert registry.get("geneve").name == "geneve"


# -- parse_port: one parser for every command ------------------------------------------------
@pytest.mark.parametrize("text, port", [("6081", 6081), ("0x17c1", 6081), ("0X17C1", 6081), (" 4789 ", 4789),
                                        ("0", 0), ("65535", 65535), ("0xffff", 65535), (6081, 6081)])
def test_parse_port_reads_decimal_and_hex(text: Any, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize(
    "text, says",
    [
        ("65536", r"port 65536 is out of range \(0-65535\)"),
        ("0x10000", r"port 65536 is out of range \(0-65535\)"),
        ("-1", r"port -1 is out of range \(0-65535\)"),
        ("geneve", r"'geneve' is not a port number \(decimal or 0x-hex\)"),
        ("", r"'' is not a port number"),
        ("6081.0", r"'6081.0' is not a port number"),
        ("0x", r"'0x' is not a port number"),
        ("017", r"'017' is not a port number"),  # no octal guess: refused, not 15 or 17
    ],
)
def test_parse_port_refuses_junk_with_a_clear_message(text: str, says: str) -> None:
    with pytest.raises(PortError, match=says):
        parse_port(text)
    assert issubclass(PortError, ValueError)  # argparse's type= turns it into a usage error



def test_the_vectorised_scan_stats_and_filter_read_a_registered_kind(
    toy: Encapsulation, tmp_path: Path
) -> None:
    """The batch path hands a registered kind's packets to the decoder: scan (vectorised),
    compute_stats and filter_capture read them as the reference records do."""
    from scapy_geneve.capture.scan import PacketFilter, compute_stats, filter_capture

    path = tmp_path / "toy.pcap"
    _write_pcap(path, [FRAME, outer(TOY_HEADER[:5])] * 20)

    def key(r: Any) -> Any:
        return (r.kind, r.vni, r.malformed, r.reason, r.inner_src, r.inner_sport)

    fast = [key(r) for r in scan(path)]
    assert fast == [key(r) for r in scan(path, vectorised=False)]
    assert fast[:2] == [("toy", 0xABCDEF, False, None, "192.168.1.1", 1000),
                        ("toy", None, True, "truncated Toy header", None, None)]
    stats = compute_stats(path).to_dict()
    assert stats["encapsulations"]["toy"]["packets"] == 40, stats["encapsulations"]
    assert {(v["kind"], v["vni"]) for v in stats["vnis"]} == {("toy", 0xABCDEF)}
    out = tmp_path / "out.pcap"
    with open(out, "wb") as handle:
        filter_capture(path, handle, PacketFilter(kind=["toy"]))
    assert [key(r) for r in scan(out)] == fast


def test_the_columnar_scan_names_a_registered_kind(toy: Encapsulation, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from scapy_geneve.capture.columnar import scan_table

    path = tmp_path / "toy.pcap"
    _write_pcap(path, [FRAME, outer(b"\x00" * 8, dport=4789)])
    table = scan_table(path, columns=["kind", "vni"]).to_pydict()
    assert table["kind"] == ["toy", "vxlan"] and table["vni"] == [0xABCDEF, 0]
