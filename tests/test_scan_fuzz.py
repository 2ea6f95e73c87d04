"""Fuzzing the readers and the scanner with hypothesis.

Properties:
- any bytes, and any mutation of a valid pcap or pcapng file, raise nothing
  but CaptureError from the readers, scan(), compute_stats() and filter;
- whatever parses, the vectorised stats equal the per-record stats, and the
  records scan() builds from the vectorised columns equal parse_packet's (the
  fast path never disagrees with the reference parser, even on garbage);
- parse_packet() never raises, on any bytes and any link type.
"""

import io
import struct
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from scapy_geneve.errors import CaptureError
from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.l2tpv3 import L2TPv3
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.stt import STT
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    CaptureReader,
    PcapngWriter,
    PcapWriter,
    iter_records,
)
from scapy_geneve.capture.scan import (
    SUPPORTED_LINKTYPES,
    PacketFilter,
    ScanStats,
    analyse_batch,
    compute_stats,
    filter_capture,
    parse_packet,
    scan,
)
from scapy_geneve.capture.decode import decode
from scapy_geneve.capture.scan_batch import _decoded_inner
from scapy_geneve.registry import DEFAULT_PORTS

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
SEEDS = [
    bytes(f)
    for f in [
        OUTER
        / UDP(sport=1, dport=6081)
        / Geneve(
            vni=5,
            options=[
                GeneveOption(classid=0x0102, type=0x80, data=b"abcd"),
                GeneveOption(classid=0x0108, type=3, data=b"wxyz"),
            ],
        )
        / INNER,
        OUTER
        / UDP(sport=1, dport=6081)
        / Geneve(vni=6, proto=0x86DD)
        / IPv6(src="fd00::1", dst="fd00::2")
        / UDP(),
        Ether(**MACS)
        / Dot1Q(vlan=5)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=2, dport=4789)
        / VXLAN(flags=8, vni=7)
        / INNER,
        OUTER / UDP(sport=3, dport=4790) / VXLAN(flags=0x0C, NextProtocol=1, vni=8) / INNER[IP],
        OUTER / NVGRE(vsid=9, flowid=1) / INNER,
        OUTER / TCP(sport=4, dport=7471, seq=(18 + len(INNER)) << 16) / STT(context_id=10) / INNER,
        OUTER / L2TPv3(session_id=11) / INNER,
    ]
]


def _stats_pair(path: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    fast = compute_stats(path).to_dict()
    slow = ScanStats(str(path))
    for rec in scan(path):
        slow.add_record(rec)
    slow_dict = slow.to_dict()
    slow_dict["format"] = fast["format"]
    return fast, slow_dict


def _scan_both(path: Path) -> Tuple[List[Any], List[Any]]:
    """scan()'s records built from the vectorised columns, and parse_packet's,
    as dicts, each list ending with the error (message, offset, packet) if any."""
    out: List[List[Any]] = []
    for vectorised in (True, False):
        got: List[Any] = []
        try:
            for rec in scan(path, vectorised=vectorised):
                got.append(rec.as_dict())
        except CaptureError as exc:
            got.append((exc.message, exc.offset, exc.packet))
        out.append(got)
    return out[0], out[1]


def _exercise(path: Path) -> None:
    """Every reader over PATH: only CaptureError may escape; fast == slow."""
    try:
        list(iter_records(path))
    except CaptureError:
        pass
    fast_records, slow_records = _scan_both(path)
    assert fast_records == slow_records
    try:
        fast, slow = _stats_pair(path)
    except CaptureError:
        pass
    else:
        assert fast == slow
    try:
        filter_capture(path, io.BytesIO(), PacketFilter(option_class=[0x0102]))
    except CaptureError:
        pass


def _pcap_bytes(frames: List[bytes], linktype: int = LINKTYPE_ETHERNET) -> bytes:
    out = io.BytesIO()
    writer = PcapWriter(out, linktype)
    for i, frame in enumerate(frames):
        writer.write(frame, i * 1000)
    return out.getvalue()


def _pcapng_bytes(frames: List[bytes]) -> bytes:
    out = io.BytesIO()
    writer = PcapngWriter(out)
    writer.add_interface(LINKTYPE_ETHERNET)
    writer.add_interface(LINKTYPE_RAW, tsresol=9)
    for i, frame in enumerate(frames):
        writer.write(frame, i, 0)
        writer.write(frame[14:], i, 1)
    writer.write_simple(frames[0])
    return out.getvalue()


VALID_PCAP = _pcap_bytes(SEEDS)
VALID_PCAPNG = _pcapng_bytes(SEEDS)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzz.cap"


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8)


def _mutate(data: bytes, edits: List[Tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[: len(buf) - cut % 64]) if cut else bytes(buf)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(fuzz_file: Path, data: bytes) -> None:
    fuzz_file.write_bytes(data)
    _exercise(fuzz_file)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_after_a_valid_header(fuzz_file: Path, data: bytes) -> None:
    for head in (VALID_PCAP[:24], VALID_PCAPNG[:28]):
        fuzz_file.write_bytes(head + data)
        _exercise(fuzz_file)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200))
def test_mutated_pcap(fuzz_file: Path, edits: List[Tuple[int, int]], cut: int) -> None:
    fuzz_file.write_bytes(_mutate(VALID_PCAP, edits, cut))
    _exercise(fuzz_file)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200))
def test_mutated_pcapng(fuzz_file: Path, edits: List[Tuple[int, int]], cut: int) -> None:
    fuzz_file.write_bytes(_mutate(VALID_PCAPNG, edits, cut))
    _exercise(fuzz_file)


def _walk(path: Path, vectorised: bool, chunk: int) -> Tuple[list, Any]:
    out = []
    try:
        with CaptureReader(path, chunk_size=chunk, vectorised=vectorised) as reader:
            for batch in reader.batches():
                out.append([(batch.first + k, bytes(batch.buf[start:end])) for k, start, end in batch.blocks])
                out.extend(batch.records())
    except CaptureError as exc:
        return out, (exc.message, exc.offset, exc.packet)
    return out, None


VALID_GZ = __import__("gzip").compress(VALID_PCAPNG)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200), junk=st.binary(max_size=40))
def test_mutated_gzip(fuzz_file: Path, edits: List[Tuple[int, int]], cut: int, junk: bytes) -> None:
    """Broken gzip streams (and junk after the gzip magic) raise only CaptureError."""
    fuzz_file.write_bytes(_mutate(VALID_GZ, edits, cut))
    _exercise(fuzz_file)
    fuzz_file.write_bytes(b"\x1f\x8b" + junk)
    _exercise(fuzz_file)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200), chunk=st.sampled_from([64, 300, 1 << 20]))
def test_pcapng_hot_loop_equals_plain_walk(
    fuzz_file: Path, edits: List[Tuple[int, int]], cut: int, chunk: int
) -> None:
    """The vectorised pcapng walk gives the same records, blocks and errors
    (message, offset, packet number) as the plain block-by-block walk."""
    fuzz_file.write_bytes(_mutate(VALID_PCAPNG, edits, cut))
    assert _walk(fuzz_file, True, chunk) == _walk(fuzz_file, False, chunk)


@FUZZ
@given(
    which=st.integers(0, len(SEEDS) - 1),
    edits=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 150),
)
def test_mutated_headers_fast_equals_slow(
    fuzz_file: Path, which: int, edits: List[Tuple[int, int]], cut: int
) -> None:
    """Byte edits aimed at the headers of one frame, cut anywhere: both paths agree."""
    frame = bytearray(SEEDS[which])
    for pos, value in edits:
        if pos < len(frame):
            frame[pos] = value
    frame = frame[: max(0, len(frame) - cut)]
    fuzz_file.write_bytes(_pcap_bytes([bytes(frame)] * 2 + SEEDS[:2]))
    fast, slow = _stats_pair(fuzz_file)
    assert fast == slow
    fast_records, slow_records = _scan_both(fuzz_file)
    assert fast_records == slow_records


@FUZZ
@given(
    data=st.binary(max_size=200),
    linktype=st.one_of(st.sampled_from(sorted(SUPPORTED_LINKTYPES)), st.integers(0, 300)),
)
def test_parse_packet_never_raises(data: bytes, linktype: int) -> None:
    """Any bytes, any link type: a record, never an exception; a link type scan
    cannot read gives a skipped record, never a malformed one."""
    rec = parse_packet(data, linktype)
    assert rec.malformed == (rec.reason is not None)
    assert (rec.skipped is None) == (linktype in SUPPORTED_LINKTYPES)
    assert not (rec.skipped and (rec.malformed or rec.kind))
    for opt in rec.options:
        assert 0 <= opt.classid <= 0xFFFF and opt.critical == bool(opt.type & 0x80)


def test_stats_pair_sanity(fuzz_file: Path) -> None:
    """The unmutated seeds: one of each kind, both paths equal (guards the fixtures)."""
    fuzz_file.write_bytes(VALID_PCAPNG)
    fast, slow = _stats_pair(fuzz_file)
    assert fast == slow and fast["packets"] == 2 * len(SEEDS) + 1
    assert struct.unpack("<I", VALID_PCAPNG[:4])[0] == 0x0A0D0D0A


# -- generated packets: the batch path equals the decoder, column by column -----------------
TUNNEL_PORTS = sorted(DEFAULT_PORTS.geneve | DEFAULT_PORTS.vxlan | DEFAULT_PORTS.gpe | DEFAULT_PORTS.l2tp) + [
    53,
    6082,
]


@st.composite
def _inner_frames(draw: Any) -> bytes:
    """Inner Ethernet + 0-3 VLAN tags + IPv4/IPv6 (lengths right, 0 or wrong) + TCP/UDP/ICMP."""
    l4 = draw(st.sampled_from([6, 17, 1, 132]))
    payload = struct.pack("!HHIIBBHHH", 1000, 2000, 1, 2, 0x50, 0x18, 0, 0, 0)[
        : draw(st.sampled_from([20, 8, 3]))
    ] + draw(st.binary(max_size=12))
    if draw(st.booleans()):
        length = draw(st.sampled_from([20 + len(payload), 0, 19, 20 + len(payload) + 7]))
        ip = (
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                length,
                1,
                draw(st.sampled_from([0, 0x20, 1])),
                64,
                l4,
                0,
                b"\x0a\x00\x00\x01",
                b"\x0a\x00\x00\x02",
            )
            + payload
        )
        ethertype = 0x0800
    else:
        length = draw(st.sampled_from([len(payload), 0, len(payload) + 5]))
        nh = draw(st.sampled_from([l4, l4, 0, 44]))
        ip = (
            struct.pack("!IHBB", 0x60000000, length, nh, 64)
            + bytes(15)
            + b"\x01"
            + bytes(15)
            + b"\x02"
            + (bytes([l4, 0, 0, 0, 0, 0, 0, 0]) if nh in (0, 44) else b"")
            + payload
        )
        ethertype = 0x86DD
    if draw(st.booleans()):
        return ip  # for tunnels carrying IP
    tags = b"".join(
        struct.pack("!HH", 0x8100, vid)  # TPID, TCI; then the EtherType
        for vid in draw(st.lists(st.integers(0, 4095), max_size=3))
    )
    return bytes(12) + tags + struct.pack("!H", ethertype) + ip


@st.composite
def _tunnel_headers(draw: Any) -> Tuple[int, int, bytes]:
    """(IP protocol, destination port or -1, tunnel header) of any kind, valid or not."""
    which = draw(st.sampled_from(["geneve", "vxlan", "gpe", "gre", "stt", "l2tp-ip", "l2tp-udp", "udp"]))
    if which == "geneve":
        opts = b"".join(
            struct.pack("!HBB", draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 255)), words)
            + bytes(4 * words)
            for words in draw(st.lists(st.integers(0, 3), max_size=3))
        )
        optlen = len(opts) // 4 + draw(st.sampled_from([0, 0, 0, 1, -1]))
        head = struct.pack(
            "!BBHI",
            (draw(st.sampled_from([0, 0, 0, 1])) << 6) | (optlen & 0x3F),
            draw(st.integers(0, 255)),
            draw(st.sampled_from([0x6558, 0x0800, 0x86DD, 0x1234])),
            draw(st.integers(0, (1 << 24) - 1)) << 8,
        )
        return 17, draw(st.sampled_from(sorted(DEFAULT_PORTS.geneve))), head + opts
    if which in ("vxlan", "gpe"):
        flags = draw(st.sampled_from([0x08, 0x08, 0x0C, 0x0D, 0x00, 0x28, 0xFF]))
        head = struct.pack(
            "!BHBI", flags, 0, draw(st.sampled_from([1, 2, 3, 4])), draw(st.integers(0, (1 << 24) - 1)) << 8
        )
        ports = DEFAULT_PORTS.vxlan if which == "vxlan" else DEFAULT_PORTS.gpe
        return 17, draw(st.sampled_from(sorted(ports))), head
    if which == "gre":
        flags = draw(st.sampled_from([0x2000, 0x2000, 0x0000, 0x3000, 0xA000, 0x2001, 0x4000]))
        words = bin(flags & 0xB000).count("1")
        proto = draw(st.sampled_from([0x6558, 0x6558, 0x0800, 0x880B]))
        return (
            47,
            -1,
            struct.pack("!HH", flags, proto) + draw(st.binary(min_size=4 * words, max_size=4 * words)),
        )
    if which == "stt":
        offset = draw(st.sampled_from([0, 0, 1448]))
        doff = draw(st.sampled_from([5, 5, 6, 4]))
        tcp = struct.pack("!HHIIBBHHH", 1, 7471, (100 << 16) | offset, 7, doff << 4, 0x18, 0, 0, 0) + bytes(
            max(0, doff * 4 - 20)
        )
        stt = (
            bytes([draw(st.sampled_from([0, 0, 1]))])
            + bytes(7)
            + struct.pack("!Q", draw(st.integers(0, (1 << 64) - 1)))
            + bytes(2)
        )
        return 6, -1, tcp + (stt if offset == 0 else b"")
    if which == "l2tp-ip":
        return (
            115,
            -1,
            struct.pack("!I", draw(st.sampled_from([0, 1, 0xABCDEF01])))
            + (bytes(12) if draw(st.booleans()) else b""),
        )
    if which == "l2tp-udp":
        word = draw(st.sampled_from([0x0003, 0x0003, 0xC803, 0x0002]))
        return 17, 1701, struct.pack("!HHI", word, 0, draw(st.integers(0, (1 << 32) - 1)))
    return 17, draw(st.sampled_from(TUNNEL_PORTS)), draw(st.binary(max_size=16))


@st.composite
def generated_frames(draw: Any) -> Tuple[bytes, int]:
    """(frame, wire length): Ethernet + 0-10 VLAN tags, IPv4/IPv6 outer (lengths right or
    wrong, BIG TCP), UDP with every Length variant, a tunnel of any kind, an inner frame,
    then maybe cut (snapped or malformed) or padded."""
    proto, dport, tunnel = draw(_tunnel_headers())
    body = tunnel + draw(_inner_frames())
    if proto == 17:
        length = draw(st.sampled_from([8 + len(body)] * 8 + [8, 0, 4, 8 + len(body) + 3, 9]))
        body = struct.pack("!HHHH", draw(st.integers(1, 65535)), dport, length, 0) + body
    if draw(st.booleans()):
        total = draw(st.sampled_from([20 + len(body)] * 8 + [0, 10, 20 + len(body) - 2]))
        ip = (
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                total,
                1,
                draw(st.sampled_from([0, 0x4000, 0x20, 5])),
                64,
                proto,
                0,
                b"\xc0\x00\x02\x01",
                b"\xc0\x00\x02\x02",
            )
            + body
        )
        ethertype = 0x0800
    else:
        plen = draw(st.sampled_from([len(body)] * 8 + [0, len(body) - 2]))
        ip = (
            struct.pack("!IHBB", 0x60000000, plen, proto, 64)
            + bytes(15)
            + b"\x01"
            + bytes(15)
            + b"\x02"
            + body
        )
        ethertype = 0x86DD
    tags = b"".join(
        struct.pack("!HH", draw(st.sampled_from([0x8100, 0x88A8, 0x9100])), vid)
        for vid in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3, 9])))
    )
    frame = (
        bytes(12) + tags + struct.pack("!H", ethertype) + ip + bytes(draw(st.sampled_from([0, 0, 6])))
    )  # maybe Ethernet padding
    cut = draw(st.sampled_from([0] * 6 + [1, 10, 30]))
    return frame[: len(frame) - cut] if cut < len(frame) else frame, len(frame)


def _decoder_columns(data: bytes, wirelen: int) -> Dict[str, Any]:
    dec = decode(data, LINKTYPE_ETHERNET, wirelen=wirelen)
    return {
        "kind": dec.kind_code,
        "vni": dec.vni,
        "crit": bool(dec.critical),
        "oam": bool(dec.oam),
        "outer_ip": 0 if dec.ip is None else dec.ip.version,
        "malformed": dec.malformed,
        "reason": dec.reason,
        "snapped": dec.snapped,
        "options": [(o.classid, o.type, o.length) for o in dec.options],
        "inner": _decoded_inner(dec),
    }


def _batch_columns(res: Any, i: int) -> Dict[str, Any]:
    mine = res.opt_pkt == i
    return {
        "kind": int(res.kind[i]),
        "vni": int(res.vni[i]) if res.has_vni[i] else None,
        "crit": bool(res.crit[i]),
        "oam": bool(res.oam[i]),
        "outer_ip": int(res.outer_ip[i]),
        "malformed": bool(res.malformed[i]),
        "reason": res.reasons.get(i),
        "snapped": bool(res.snapped[i]),
        "options": list(
            zip(res.opt_class[mine].tolist(), res.opt_type[mine].tolist(), res.opt_len[mine].tolist())
        ),
        "inner": int(res.inner[i]),
    }


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(generated_frames(), min_size=1, max_size=12))
def test_batch_path_equals_decoder(fuzz_file: Path, frames: List[Tuple[bytes, int]]) -> None:
    """Every column analyse_batch computes equals the wire decoder's reading of the
    same packet (and scan()'s records equal parse_packet's), on generated packets of
    every kind with VLAN stacks, options, wrong lengths, BIG TCP, cuts and padding."""
    out = io.BytesIO()
    writer = PcapWriter(out, LINKTYPE_ETHERNET)
    for k, (frame, wirelen) in enumerate(frames):
        writer.write(frame, k, wirelen)
    fuzz_file.write_bytes(out.getvalue())
    with CaptureReader(fuzz_file) as reader:
        batch = next(reader.batches())
        res = analyse_batch(batch)  # no state: STT on the vectorised path too
        for i, (frame, wirelen) in enumerate(frames):
            assert _batch_columns(res, i) == _decoder_columns(frame, wirelen), "packet %d" % i
    fast_records, slow_records = _scan_both(fuzz_file)
    assert fast_records == slow_records


def test_generated_frames_reach_the_vectorised_path(fuzz_file: Path) -> None:
    """Guards the strategy: plain generated packets are parsed by numpy, not the fallback."""
    frames = [_plain_geneve(vni) for vni in range(20)]
    fuzz_file.write_bytes(_pcap_bytes(frames))
    with CaptureReader(fuzz_file) as reader:
        res = analyse_batch(next(reader.batches()))
    assert res.fallback == 0 and res.vni.tolist() == list(range(20))


def _plain_geneve(vni: int) -> bytes:
    return bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=vni) / INNER)


# -- ScanStats.merge: associative and commutative ---------------------------------------------
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(generated_frames(), min_size=1, max_size=16), data=st.data())
def test_merged_stats_equal_one_pass(fuzz_file: Path, frames: List[Tuple[bytes, int]], data: Any) -> None:
    """Stats of chunks (each counted by add_result or add_record), merged in any grouping
    and order, equal the stats of one pass over every packet."""
    out = io.BytesIO()
    writer = PcapWriter(out, LINKTYPE_ETHERNET)
    for k, (frame, wirelen) in enumerate(frames):
        writer.write(frame, k * 10**9, wirelen)
    fuzz_file.write_bytes(out.getvalue())
    whole = compute_stats(fuzz_file).to_dict()
    records = list(scan(fuzz_file))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=4)))
    chunks = [records[a:b] for a, b in zip([0] + cuts, cuts + [len(records)])]
    parts = []
    for chunk in chunks:
        part = ScanStats(str(fuzz_file))
        for rec in chunk:
            part.add_record(rec)
        part.format = "pcap"
        parts.append(part)
    items = [parts[k] for k in data.draw(st.permutations(range(len(parts))))]
    while len(items) > 1:  # merge in a random tree, each pair in a random order
        k = data.draw(st.integers(0, len(items) - 2))
        left, right = items[k], items[k + 1]
        if data.draw(st.booleans()):
            left, right = right, left
        items[k : k + 2] = [ScanStats().merge(left).merge(right)]
    assert items[0].to_dict() == whole
