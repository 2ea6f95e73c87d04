"""STT (draft-davie-stt-08): frame header, TCP-like segment encoding, reassembly rules."""

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from scapy_geneve import STT, BuildError, STTFragment
from scapy_geneve.offload.stt import stt_reassemble, stt_segment

FUZZ_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
INNER = (
    Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
    / IP(src="192.168.1.1", dst="192.168.1.2")
    / TCP(sport=40000, dport=80, flags="PA", seq=1000)
    / Raw(bytes(i & 0xFF for i in range(3000)))
)

# STT frame header, 18 bytes (draft-davie-stt-08): ver, flags, L4 offset, reserved, MSS,
# PCP|V|VLAN ID, Context ID (64), padding (16)
# fmt: off
STT_HDR = bytes.fromhex(
    "00"                  # Version 0
    "04"                  # Flags: 0x04 IPv4 (0x01 csum verified, 0x02 partial, 0x08 TCP)
    "00"                  # L4 Offset
    "00"                  # Reserved
    "0000"                # Max. Segment Size
    "1064"                # PCP 0, V 1, VLAN ID 100
    "0102030405060708"    # Context ID
    "0000"                # Padding
)
# fmt: on


def test_frame_header_vector_builds_exactly():
    hdr = STT(flags="ipv4", v=1, vlan_id=100, context_id=0x0102030405060708)
    assert bytes(hdr) == STT_HDR


def test_frame_header_vector_dissects_field_by_field():
    stt = STT(STT_HDR + bytes(INNER))
    assert (stt.version, stt.flags.ipv4, stt.flags.tcp, stt.l4_offset, stt.mss) == (0, True, False, 0, 0)
    assert (stt.pcp, stt.v, stt.vlan_id) == (0, 1, 100)
    assert stt.context_id == 0x0102030405060708 and stt.padding == 0
    assert bytes(stt[Ether]) == bytes(INNER)


def test_single_segment_uses_the_tcp_like_header_as_the_draft_says():
    (seg,) = stt_segment(
        Ether() / IP() / UDP(), context_id=5, identifier=0xBEEF, sport=50000, src="10.0.0.1", dst="10.0.0.2"
    )
    tcp = seg[TCP]
    frame_len = 18 + len(bytes(Ether() / IP() / UDP()))
    assert tcp.dport == 7471 and tcp.sport == 50000
    assert tcp.seq == frame_len << 16  # length << 16 | offset 0
    assert tcp.ack == 0xBEEF  # frame identifier
    assert tcp.dataofs == 5 and tcp.window == 0xFFFF and tcp.urgptr == 0
    assert str(tcp.flags) == "PA"
    assert seg[IP].flags.DF
    assert isinstance(tcp.payload, STT) and tcp[STT].context_id == 5


def test_segments_carry_length_offset_identifier_and_valid_checksums():
    segs = stt_segment(INNER, context_id=9, mss=1000, identifier=0xC0FFEE, ip_id=0x100)
    frame_len = 18 + len(bytes(INNER))
    assert len(segs) == (frame_len + 999) // 1000
    for k, seg in enumerate(segs):
        assert seg[TCP].seq == frame_len << 16 | k * 1000
        assert seg[TCP].ack == 0xC0FFEE
        assert seg[IP].id == 0x100 + k
        assert str(seg[TCP].flags) == ("PA" if k == len(segs) - 1 else "A")
        # Scapy recomputes the checksums from scratch: they must match.
        again = seg.copy()
        del again[IP].chksum
        del again[TCP].chksum
        assert IP(bytes(again))[TCP].chksum == seg[TCP].chksum
    assert isinstance(segs[0][TCP].payload, STT)
    for seg in segs[1:]:
        frag = seg[STTFragment]
        assert not seg.haslayer(STT)
        assert frag.frame_length == frame_len and frag.identifier == 0xC0FFEE


def test_checksum_partial_sets_flags_and_l4_offset_from_the_inner_frame():
    (seg,) = stt_segment(Ether() / IP() / TCP() / b"x", csum_partial=True, inner_mss=1448)
    stt = seg[STT]
    assert stt.flags.csum_partial and stt.flags.ipv4 and stt.flags.tcp
    assert stt.l4_offset == 14 + 20 and stt.mss == 1448


def test_ipv6_underlay():
    segs = stt_segment(INNER, context_id=3, src="2001:db8::1", dst="2001:db8::2", identifier=7)
    assert all(isinstance(s, IPv6) for s in segs)
    assert len(segs[0]) <= 1500
    done = stt_reassemble(segs)
    assert bytes(done.frames[0].stt[Ether]) == bytes(INNER)


def test_first_segment_cut_inside_the_inner_headers_does_not_raise():
    segs = stt_segment(INNER, mss=40)  # the cut falls in the inner IP header
    again = IP(bytes(segs[0]))
    assert bytes(again) == bytes(segs[0])
    assert isinstance(again[TCP].payload, STT)


def test_frame_over_64k_is_refused():
    with pytest.raises(BuildError, match="16 bits"):
        stt_segment(Ether() / Raw(b"\x00" * 65600))


# -- reassembly ----------------------------------------------------------------------
def _frame_bytes(segs):
    done = stt_reassemble(segs)
    assert not done.incomplete and len(done.frames) == 1, done
    return bytes(done.frames[0].stt)


def test_reassembles_in_order_and_reversed():
    segs = stt_segment(INNER, context_id=1, mss=700, identifier=1)
    want = bytes(STT(context_id=1) / INNER)
    assert _frame_bytes(segs) == want
    assert _frame_bytes(segs[::-1]) == want
    assert stt_reassemble(segs).frames[0].segments == len(segs)


def test_duplicate_segment_is_dropped_not_doubled():
    segs = stt_segment(INNER, mss=700, identifier=2)
    done = stt_reassemble([segs[0], segs[1], segs[1]] + segs[2:])
    assert len(done.frames) == 1
    assert done.dropped == [(2, "duplicate segment")]


def _seg(frame: bytes, total: int, offset: int, ident: int, src="10.0.0.1") -> IP:
    return IP(
        bytes(
            IP(src=src, dst="10.0.0.2")
            / TCP(sport=50000, dport=7471, seq=total << 16 | offset, ack=ident, flags="A", window=0xFFFF)
            / Raw(frame)
        )
    )


def test_overlapping_segment_is_dropped():
    data = bytes(STT() / INNER)
    total = len(data)
    parts = [
        _seg(data[:1000], total, 0, 5),
        _seg(data[500:1500], total, 500, 5),
        _seg(data[1000:], total, 1000, 5),
    ]
    done = stt_reassemble(parts)
    assert done.dropped[0][0] == 1 and "overlapping" in done.dropped[0][1]
    assert bytes(done.frames[0].stt) == data


@pytest.mark.parametrize(
    "total, offset, chunk, reason",
    [
        (100, 90, b"x" * 20, "runs past the frame length"),
        (100, 0, b"", "empty segment"),
    ],
)
def test_out_of_bounds_and_empty_segments_are_dropped(total, offset, chunk, reason):
    done = stt_reassemble([_seg(chunk, total, offset, 9)])
    assert not done.frames and reason in done.dropped[0][1]


def test_frame_length_must_agree_across_segments():
    done = stt_reassemble([_seg(b"a" * 10, 30, 0, 4), _seg(b"b" * 10, 40, 10, 4)])
    assert "differs" in done.dropped[0][1]
    assert done.incomplete[0].missing == [(10, 30)]


def test_bad_tcp_checksum_is_dropped_unless_told_not_to_check():
    seg = _seg(b"z" * 18, 18, 0, 1)
    seg[TCP].chksum ^= 0xFFFF
    bad = IP(bytes(seg))
    assert stt_reassemble([bad]).dropped == [(0, "bad TCP checksum")]
    assert len(stt_reassemble([bad], verify_checksum=False).frames) == 1


def test_a_missing_segment_is_reported_never_invented():
    segs = stt_segment(INNER, mss=1000, identifier=3)
    done = stt_reassemble(segs[:1] + segs[2:])
    assert done.frames == []
    (hole,) = done.incomplete
    assert hole.missing == [(1000, 2000)]
    assert hole.received == hole.total_length - 1000


def test_the_key_is_source_destination_and_identifier():
    data = bytes(STT() / INNER)
    a = [
        _seg(data[:2000], len(data), 0, 8, src="10.0.0.1"),
        _seg(data[2000:], len(data), 2000, 8, src="10.0.0.1"),
    ]
    b = [
        _seg(data[:2000], len(data), 0, 8, src="10.0.0.9"),
        _seg(data[2000:], len(data), 2000, 8, src="10.0.0.9"),
    ]
    done = stt_reassemble([a[0], b[1], b[0], a[1]])
    assert sorted(f.src for f in done.frames) == ["10.0.0.1", "10.0.0.9"]
    mixed = stt_reassemble([a[0], b[1]])
    assert len(mixed.incomplete) == 2 and not mixed.frames


def test_non_stt_packets_are_reported():
    # (explicit UDP ports: with scapy.all loaded, UDP 53 would dissect b"x" as DNS)
    done = stt_reassemble([IP() / UDP(sport=1234, dport=5678) / b"x", Ether() / IP() / TCP(dport=80) / b"y"])
    assert [r for _, r in done.dropped] == ["not TCP", "not STT (destination port 80)"]


@settings(max_examples=60, deadline=None, suppress_health_check=FUZZ_OK)
@given(
    size=st.integers(1, 5000),
    mss=st.integers(8, 1600),
    seed=st.integers(0, 2**32),
    dup=st.integers(0, 3),
    lose=st.booleans(),
)
def test_segment_reassemble_round_trip_under_reorder_duplication_loss(
    no_debug_dissector, size, mss, seed, dup, lose
):
    rng = random.Random(seed)
    inner = Ether() / Raw(bytes(rng.getrandbits(8) for _ in range(size)))
    segs = stt_segment(inner, context_id=seed, mss=mss, identifier=seed & 0xFFFFFFFF)
    sent = list(segs) + [rng.choice(segs) for _ in range(dup)]
    lost = None
    if lose and len(segs) > 1:
        lost = rng.randrange(len(segs))
        sent = [s for s in sent if bytes(s) != bytes(segs[lost])]
    rng.shuffle(sent)
    done = stt_reassemble(sent)
    if lost is None:
        assert len(done.frames) == 1 and not done.incomplete
        assert bytes(done.frames[0].stt[Ether]) == bytes(inner)
        assert done.frames[0].stt.context_id == seed
    else:
        assert not done.frames
        start = lost * mss
        assert done.incomplete[0].missing == [(start, min(start + mss, done.incomplete[0].total_length))]


@settings(max_examples=200, deadline=None, suppress_health_check=FUZZ_OK)
@given(st.integers(0, 2**32 - 1), st.binary(max_size=80))
def test_any_tcp_7471_payload_dissects_losslessly(no_debug_dissector, seq, data):
    wire = bytes(IP() / TCP(sport=50000, dport=7471, seq=seq) / Raw(data))
    pkt = IP(wire)
    assert bytes(pkt) == wire
    if seq & 0xFFFF and data:
        assert isinstance(pkt[TCP].payload, STTFragment)
    elif len(data) >= 18:
        assert isinstance(pkt[TCP].payload, STT)


# -- reassembly bounds (OVS: 30 s expiry, LRU eviction under memory pressure) --------
def _timed(packets, start, step=0.001):
    for n, pkt in enumerate(packets):
        pkt.time = start + n * step
    return packets


def test_a_frame_waiting_longer_than_the_timeout_is_given_up():
    slow = _timed(stt_segment(INNER, mss=1000, identifier=0x51), 100.0)
    late = _timed(stt_segment(INNER, mss=1000, identifier=0x52), 131.0)
    last = _timed([slow[-1]], 131.5)[0]
    # 0x51's last segment comes 31 s after the others: the frame has expired.
    done = stt_reassemble(slow[:-1] + late + [last])
    assert [f.identifier for f in done.frames] == [0x52]
    first, second = done.incomplete
    cut = 1000 * (len(slow) - 1)
    assert (first.identifier, first.expired, first.missing) == (0x51, True, [(cut, first.total_length)])
    assert (second.identifier, second.expired, second.missing) == (0x51, False, [(0, cut)])
    # With no timeout, the same segments make the frame.
    assert len(stt_reassemble(slow[:-1] + late + [last], timeout=None).frames) == 2


def test_at_most_max_pending_frames_wait_the_least_recently_fed_goes_first():
    a, b, c = [stt_segment(INNER, mss=1000, identifier=0x60 + k) for k in range(3)]
    # A, B and C start; C is one frame too many, so A (fed least recently) goes.
    done = stt_reassemble([a[0], b[0], c[0]] + b[1:] + c[1:], max_pending=2)
    assert [(i.identifier, i.expired) for i in done.incomplete] == [(0x60, True)]
    assert [f.identifier for f in done.frames] == [0x61, 0x62]
    everything = stt_reassemble([a[0], b[0], c[0]] + a[1:] + b[1:] + c[1:])
    assert len(everything.frames) == 3 and not everything.incomplete


def test_an_identifier_used_again_for_another_frame_is_a_new_frame():
    one = stt_segment(Ether() / Raw(b"a" * 100), context_id=1, identifier=7)
    two = stt_segment(Ether() / Raw(b"b" * 100), context_id=2, identifier=7)
    done = stt_reassemble(one + one + two)  # same key and length, other bytes
    assert [f.stt.context_id for f in done.frames] == [1, 2]
    assert done.dropped == [(1, "duplicate segment of an already reassembled frame")]


# -- the overlap check is n log n, not n² (issue 12: 32k one-byte segments took 36 s) -------
class _CountingDict(dict):
    """A chunk table that counts how many chunks the overlap check looks at."""

    reads = 0

    def __getitem__(self, key):
        _CountingDict.reads += 1
        return super().__getitem__(key)


def test_overlap_check_looks_at_two_neighbours_per_segment_not_every_chunk():
    from scapy_geneve.offload.stt import _Pending

    n = 32768  # one frame, 32k one-byte segments
    state = _Pending(n, chunks=_CountingDict())
    order = list(range(n))
    random.Random(7).shuffle(order)
    _CountingDict.reads = 0
    for offset in order:
        assert state.clash(offset, b"x") is None
        state.add(offset, b"x", False)
    assert state.received == n and state.holes() == []
    assert _CountingDict.reads <= 2 * n  # a scan of every chunk would read ~n²/2
    assert state.clash(5, b"x") == "duplicate segment"
    assert state.clash(5, b"xy").startswith("overlapping segment")


def test_a_frame_in_512_one_byte_segments_in_any_order_reassembles():
    frame = Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22", type=0x88B5) / Raw(
        bytes(i & 0xFF for i in range(512 - 18 - 14))
    )
    segs = stt_segment(frame, context_id=3, identifier=11, mss=1)
    assert len(segs) == 512
    random.Random(3).shuffle(segs)
    segs.insert(100, segs[7])  # one duplicate
    done = stt_reassemble(segs, verify_checksum=False)
    assert [(f.identifier, f.segments) for f in done.frames] == [(11, 512)]
    assert bytes(done.frames[0].stt.payload) == bytes(frame)
    assert [why for _, why in done.dropped] == ["duplicate segment"]


def test_old_import_path_forwards_with_a_deprecation_warning():
    import scapy_geneve.layers.stt as layer

    with pytest.warns(DeprecationWarning, match="moved to scapy_geneve.offload.stt"):
        assert layer.stt_reassemble is stt_reassemble
    with pytest.raises(AttributeError):
        layer.no_such_name  # noqa: B018


def _naive_clash(chunks, offset, data):
    """The reference: scan every chunk (the check stt_reassemble had before)."""
    end = offset + len(data)
    clash = [(o, c) for o, c in chunks.items() if o < end and offset < o + len(c)]
    if not clash:
        return None
    if len(clash) == 1 and clash[0] == (offset, data):
        return "duplicate segment"
    return "overlapping segment (offset %d, length %d)" % (offset, len(data))


@settings(max_examples=150, deadline=None, suppress_health_check=FUZZ_OK)
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(1, 12), st.sampled_from([b"a", b"b"])),
        max_size=40,
    )
)
def test_overlap_check_equals_the_scan_of_every_chunk(segments):
    from scapy_geneve.offload.stt import _Pending

    state, reference = _Pending(80), {}
    for offset, length, fill in segments:
        data = fill * length
        want = _naive_clash(reference, offset, data)
        assert state.clash(offset, data) == want
        if want is None:
            state.add(offset, data, False)
            reference[offset] = data
    assert state.frame() == b"".join(reference[o] for o in sorted(reference))
