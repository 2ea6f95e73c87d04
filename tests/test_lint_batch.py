"""The batch path of ``scapy-geneve lint`` gives the engine's findings, packet for packet.

:func:`judge` reads whole batches in numpy: packets it proves clean, packets whose
only findings it knows (GNV015, GNV012, VXL007, VXL008: it writes them with the engine's
own functions), and the rest, which go to the engine.  These tests prove that
nothing it calls clean has a finding and that its known findings are the
engine's (Hypothesis, on right and mutated tunnel packets of every kind), and
that :func:`lint_capture` equals the engine on every record of real captures.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scapy_geneve.capture import pcapio
from scapy_geneve.conformance.lint import RULES, LintOptions, lint_bytes, lint_report
from scapy_geneve.conformance.lint_batch import CaptureTotals, clean_mask, judge, known_findings, lint_capture
from scapy_geneve.registry import DEFAULT_PORTS
from tests.lint_packets import tunnel_packets
from tests.test_lint_corpus import PCAPS

OPTIONS = [
    LintOptions(),
    LintOptions(gre_as="nvgre"),
    LintOptions(gre_as="gre"),
    LintOptions(understood={0x0102}),
    LintOptions(stt=False, l2tpv3=False),
    LintOptions(ports=DEFAULT_PORTS.extended(geneve=[6082], gpe=[4789])),
]


def _batch(frames):
    """FRAMES laid out in one buffer, as a reader's batch is: (buf, offsets, lengths)."""
    buf, offsets = b"", []
    for frame in frames:
        buf += b"\x00" * 16  # a record header's worth of other bytes between frames
        offsets.append(len(buf))
        buf += frame
    return buf, np.array(offsets, np.int64), np.array([len(f) for f in frames], np.int64)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(st.one_of(tunnel_packets(), tunnel_packets(near_clean=True)), min_size=1, max_size=8),
    options=st.sampled_from(OPTIONS),
    linktype=st.sampled_from([1, 1, 113]),
)
def test_what_the_batch_calls_clean_has_no_finding(frames, options, linktype):
    if linktype == 113:  # Linux cooked: a 16-byte header ending in the EtherType
        frames = [b"\x00" * 14 + f[12:] for f in frames]
    buf, off, cap = _batch(frames)
    j = judge(buf, off, cap, np.full(len(frames), linktype, np.int64), options)
    for i, frame in enumerate(frames):
        if j.clean[i]:
            assert lint_bytes(frame, linktype, options) == [], frame.hex()
        elif j.known[i]:
            assert known_findings(buf, int(off[i]), j, i) == lint_bytes(frame, linktype, options)


def test_the_batch_judges_the_common_packets_itself():
    """Clean Geneve (options, C bit right, zero or right checksum) and VXLAN never reach the engine."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    inner = bytes(Ether() / IP() / UDP())
    frames = [
        bytes(
            Ether()
            / IP(flags="DF")
            / UDP(sport=50000, dport=6081, chksum=0)
            / Raw(bytes.fromhex("02406558001388000102800100010002") + inner)
        ),
        bytes(
            Ether()
            / IP(flags="DF")
            / UDP(sport=50000, dport=6081)
            / Raw(bytes.fromhex("0000655800138800") + inner)
        ),
        bytes(Ether() / IP() / UDP(sport=50000, dport=4789) / Raw(bytes.fromhex("0800000000138800") + inner)),
    ]
    buf, off, cap = _batch(frames)
    assert clean_mask(buf, off, cap, np.ones(3, np.int64)).tolist() == [True, True, True]


def _engine(path, options):
    out = {}
    for rec in pcapio.iter_records(str(path)):
        found = lint_bytes(rec.data, rec.linktype, options)
        if found:
            out[rec.number] = found
    return out


@pytest.mark.parametrize("name", sorted(p.name for p in PCAPS.glob("*.pcap")))
def test_lint_capture_equals_the_engine_on_pcaps(name):
    totals = CaptureTotals()
    got = {n: r.findings for n, r in lint_capture(PCAPS / name, totals=totals) if r.findings}
    assert got == _engine(PCAPS / name, LintOptions())
    assert totals.packets == sum(1 for _ in pcapio.iter_records(str(PCAPS / name)))


def test_lint_capture_equals_the_engine_on_the_corpus(corpus):
    files = sorted(corpus.glob("*.pcap"))
    if not files:
        pytest.skip("tcpdump corpus not found")
    for path in files:
        for options in (LintOptions(), LintOptions(gre_as="nvgre")):
            got = {n: r.findings for n, r in lint_capture(path, options) if r.findings}
            assert got == _engine(path, options), path.name


def _engine_guesses(path, options):
    return sum(
        bool(lint_report(rec.data, rec.linktype, options).guessed) for rec in pcapio.iter_records(str(path))
    )


@pytest.mark.parametrize("name", ["nvgre.pcap", "nvgre_malformed.pcap"])
def test_guessed_nvgre_counts_equal_the_engine(name):
    """Keyed GRE carrying Ethernet read as NVGRE by guess: the batch counts the clean
    ones it judges itself, the engine the rest; together, the engine's count."""
    totals = CaptureTotals()
    list(lint_capture(PCAPS / name, totals=totals))
    assert totals.guessed == _engine_guesses(PCAPS / name, LintOptions()) > 0


def test_count_and_totals(tmp_path):
    totals = CaptureTotals()
    list(lint_capture(PCAPS / "geneve_malformed.pcap", count=4, totals=totals))
    assert totals.packets == 4


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=120), min_size=1, max_size=6),
    linktype=st.sampled_from([0, 1, 101, 108, 113, 228, 229, 276, 147]),
)
def test_arbitrary_bytes_never_raise(frames, linktype):
    """Any bytes under any link type: the engine and the batch judge them without an
    exception, and what the batch calls clean the engine finds clean."""
    buf, off, cap = _batch(frames)
    j = judge(buf, off, cap, np.full(len(frames), linktype, np.int64))
    for i, frame in enumerate(frames):
        found = lint_bytes(frame, linktype)
        assert all(f.rule in RULES for f in found)
        if j.clean[i]:
            assert found == []


def test_pcapng_with_two_link_types_lints_as_the_engine(tmp_path):
    """A pcapng holding Ethernet and raw-IP interfaces: every record is judged under
    its own interface's link type, as the engine judges it."""
    from scapy_geneve.capture.pcapio import PcapngWriter

    records = list(pcapio.iter_records(str(PCAPS / "geneve_malformed.pcap")))
    records += list(pcapio.iter_records(str(PCAPS / "vxlan_malformed.pcap")))
    path = tmp_path / "mixed.pcapng"
    with open(path, "wb") as handle:
        w = PcapngWriter(handle)
        eth, raw = w.add_interface(1), w.add_interface(101)
        for i, rec in enumerate(records):
            if i % 2:
                w.write(rec.data[14:], ts_ns=i, interface=raw)  # the same packet without Ethernet
            else:
                w.write(rec.data, ts_ns=i, interface=eth)
    got = {n: r.findings for n, r in lint_capture(path) if r.findings}
    want = _engine(path, LintOptions())
    assert got == want and len(want) >= 10


def _captures(corpus):
    return sorted(PCAPS.glob("*.pcap")) + sorted(corpus.glob("*.pcap"))


def test_lint_judges_the_kind_the_decoder_reads(corpus):
    """lint, show, stats and filter read the same kinds: the first tunnel lint judges
    is the wire decoder's, on every record of pcaps/ and the corpus -- but keyed GRE
    carrying Ethernet with C or S set, which the decoder calls plain GRE and lint
    reads as NVGRE (by guess) to say which RFC 7637 bit it breaks."""
    from scapy_geneve.capture.decode import decode

    for path in _captures(corpus):
        for rec in pcapio.iter_records(str(path)):
            decoded, report = decode(rec.data, rec.linktype), lint_report(rec.data, rec.linktype)
            first = report.kinds[0] if report.kinds else None
            if first == "nvgre" and decoded.kind is None and decoded.gre_flags & 0x9000:
                assert {f.rule for f in report.findings} & {"NVG002", "NVG003"}
                continue
            assert first == decoded.kind, (path.name, rec.number)
