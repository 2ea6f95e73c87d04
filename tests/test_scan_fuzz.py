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
from scapy_geneve.capture.pcapio import (LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureReader, PcapngWriter,
                                 PcapWriter, iter_records)
from scapy_geneve.capture.scan import (SUPPORTED_LINKTYPES, PacketFilter, ScanStats, compute_stats,
                               filter_capture, parse_packet, scan)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
SEEDS = [bytes(f) for f in [
    OUTER / UDP(sport=1, dport=6081) / Geneve(vni=5, options=[
        GeneveOption(classid=0x0102, type=0x80, data=b"abcd"),
        GeneveOption(classid=0x0108, type=3, data=b"wxyz")]) / INNER,
    OUTER / UDP(sport=1, dport=6081) / Geneve(vni=6, proto=0x86DD) /
    IPv6(src="fd00::1", dst="fd00::2") / UDP(),
    Ether(**MACS) / Dot1Q(vlan=5) / IPv6(src="2001:db8::1", dst="2001:db8::2") /
    UDP(sport=2, dport=4789) / VXLAN(flags=8, vni=7) / INNER,
    OUTER / UDP(sport=3, dport=4790) / VXLAN(flags=0x0C, NextProtocol=1, vni=8) / INNER[IP],
    OUTER / NVGRE(vsid=9, flowid=1) / INNER,
    OUTER / TCP(sport=4, dport=7471, seq=(18 + len(INNER)) << 16) / STT(context_id=10) / INNER,
    OUTER / L2TPv3(session_id=11) / INNER,
]]


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


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)),
                     min_size=1, max_size=8)


def _mutate(data: bytes, edits: List[Tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:len(buf) - cut % 64]) if cut else bytes(buf)


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
                out.append([(batch.first + k, bytes(batch.buf[start:end]))
                            for k, start, end in batch.blocks])
                out.extend(batch.records())
    except CaptureError as exc:
        return out, (exc.message, exc.offset, exc.packet)
    return out, None


VALID_GZ = __import__("gzip").compress(VALID_PCAPNG)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200), junk=st.binary(max_size=40))
def test_mutated_gzip(fuzz_file: Path, edits: List[Tuple[int, int]], cut: int,
                      junk: bytes) -> None:
    """Broken gzip streams (and junk after the gzip magic) raise only CaptureError."""
    fuzz_file.write_bytes(_mutate(VALID_GZ, edits, cut))
    _exercise(fuzz_file)
    fuzz_file.write_bytes(b"\x1f\x8b" + junk)
    _exercise(fuzz_file)


@FUZZ
@given(edits=mutations, cut=st.integers(0, 200), chunk=st.sampled_from([64, 300, 1 << 20]))
def test_pcapng_hot_loop_equals_plain_walk(fuzz_file: Path, edits: List[Tuple[int, int]],
                                           cut: int, chunk: int) -> None:
    """The vectorised pcapng walk gives the same records, blocks and errors
    (message, offset, packet number) as the plain block-by-block walk."""
    fuzz_file.write_bytes(_mutate(VALID_PCAPNG, edits, cut))
    assert _walk(fuzz_file, True, chunk) == _walk(fuzz_file, False, chunk)


@FUZZ
@given(which=st.integers(0, len(SEEDS) - 1),
       edits=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 150))
def test_mutated_headers_fast_equals_slow(fuzz_file: Path, which: int,
                                          edits: List[Tuple[int, int]], cut: int) -> None:
    """Byte edits aimed at the headers of one frame, cut anywhere: both paths agree."""
    frame = bytearray(SEEDS[which])
    for pos, value in edits:
        if pos < len(frame):
            frame[pos] = value
    frame = frame[:max(0, len(frame) - cut)]
    fuzz_file.write_bytes(_pcap_bytes([bytes(frame)] * 2 + SEEDS[:2]))
    fast, slow = _stats_pair(fuzz_file)
    assert fast == slow
    fast_records, slow_records = _scan_both(fuzz_file)
    assert fast_records == slow_records


@FUZZ
@given(data=st.binary(max_size=200),
       linktype=st.one_of(st.sampled_from(sorted(SUPPORTED_LINKTYPES)), st.integers(0, 300)))
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
