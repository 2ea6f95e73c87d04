"""Hypothesis: every GSO rule of specs.md §7.3 over random super-packets.

Random payload sizes, MSS, TCP flags, IPv4/IPv6 outer and inner, Geneve with
random options, VXLAN, NVGRE, no tunnel, TCP and UDP GSO, zero and non-zero
outer UDP checksums, random IDs and sequence numbers (wrapping).
"""

import struct
from typing import Any, Dict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from scapy_geneve import compat
from scapy_geneve import BuildError, CaptureError, Geneve, finish_checksums, segment
from scapy_geneve.offload.gro import coalesce_bytes
from scapy_geneve.offload.segment import finish_checksums_bytes, parse_offsets, segment_bytes

from .strategies import options as geneve_options
from .test_gro import as_captured
from .test_segment import INNER_ETH, OUTER_ETH, scapy_rebuilds_identically

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TCP_FLAGS = "FSRPAUECN"


@st.composite
def supers(draw, gro_friendly: bool = False) -> Dict[str, Any]:
    """A super-packet and how it was made."""
    tunnel = draw(st.sampled_from(["geneve", "vxlan", "nvgre", "none"]))
    v6_outer, v6_inner = draw(st.booleans()), draw(st.booleans())
    l4 = draw(st.sampled_from(["tcp", "tcp", "udp"]))
    n = draw(st.integers(1 if gro_friendly else 0, 12000))
    mss = draw(st.integers(max(1, n // 40), 3000))
    udp_csum = draw(st.booleans())
    if gro_friendly:
        flags = draw(st.sets(st.sampled_from("APFCE"))) | {"A"}
    else:
        flags = draw(st.sets(st.sampled_from(TCP_FLAGS)))
    flags_s = "".join(f for f in TCP_FLAGS if f in flags)
    seq = draw(st.integers(0, 0xFFFFFFFF))
    data = draw(st.binary(min_size=n, max_size=n)) if n < 64 else bytes((i * 13) & 0xFF for i in range(n))
    ip_id, oid = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF))

    inner = (
        IPv6(src="fd00::1", dst="fd00::2", hlim=draw(st.integers(1, 255)))
        if v6_inner
        else IP(src="192.168.0.1", dst="192.168.0.2", id=ip_id, flags=draw(st.sampled_from(["", "DF"])))
    )
    if l4 == "tcp":
        inner = (
            inner
            / TCP(
                sport=1234,
                dport=80,
                seq=seq,
                ack=99,
                flags=flags_s,
                window=1000,
                urgptr=draw(st.integers(0, 0xFFFF)),
                options=draw(st.sampled_from([[], [("NOP", None)] * 4, [("Timestamp", (1, 2))]])),
            )
            / Raw(data)
        )
    else:
        inner = inner / UDP(sport=1234, dport=9999) / Raw(data)
    if tunnel == "none":
        return dict(pkt=OUTER_ETH / inner, n=n, mss=mss, l4=l4, flags=flags_s, tunnel=tunnel)
    outer = (
        IPv6(src="2001:db8::1", dst="2001:db8::2") if v6_outer else IP(src="10.0.0.1", dst="10.0.0.2", id=oid)
    )
    if tunnel == "nvgre":
        pkt = OUTER_ETH / outer / GRE(key_present=1, key=0x1234_56, proto=0x6558) / INNER_ETH / inner
    else:
        csum = None if (udp_csum or v6_outer and draw(st.booleans())) else 0
        if tunnel == "geneve":
            hdr = Geneve(vni=draw(st.integers(0, (1 << 24) - 1)), options=draw(geneve_options(max_total=64)))
            udp = UDP(sport=40000, dport=6081, chksum=csum)
        else:
            hdr, udp = VXLAN(flags=0x08, vni=7), UDP(sport=40000, dport=4789, chksum=csum)
        pkt = OUTER_ETH / outer / udp / hdr / INNER_ETH / inner
    return dict(pkt=pkt, n=n, mss=mss, l4=l4, flags=flags_s, tunnel=tunnel)


@SETTINGS
@given(supers())
def test_payloads_concatenate_and_all_but_the_last_carry_mss(s):
    raw = bytes(s["pkt"])
    o = parse_offsets(raw)
    segs = segment_bytes(raw, mss=s["mss"])
    sizes = [len(x) - o.payload_off for x in segs]
    assert b"".join(x[o.payload_off :] for x in segs) == raw[o.payload_off : o.end]
    assert all(z == s["mss"] for z in sizes[:-1]) and 0 <= sizes[-1] <= s["mss"]
    assert len(segs) == max(1, -(-s["n"] // s["mss"]))


@SETTINGS
@given(supers())
def test_every_segment_is_valid_and_differs_only_where_the_rules_say(s):
    raw = bytes(s["pkt"])
    o = parse_offsets(raw)
    segs = segment_bytes(raw, mss=s["mss"])
    last = len(segs) - 1
    for i, x in enumerate(segs):
        assert scapy_rebuilds_identically(x)
        xo = parse_offsets(x)
        assert xo._replace(wire=None) == o._replace(ip=xo.ip, outer=xo.outer, wire=None)  # same layout
        # bytes the kernel copies verbatim: Ethernet, tunnel header with options, ports
        assert x[: o.first_ip.off] == raw[: o.first_ip.off]
        if o.outer is not None:
            assert (
                x[o.tunnel_off + (0 if o.tunnel == "nvgre" else 8) : o.ip.off]
                == raw[o.tunnel_off + (0 if o.tunnel == "nvgre" else 8) : o.ip.off]
                or o.tunnel == "nvgre"
            )
            if o.outer.version == 4:
                oid = struct.unpack_from("!H", raw, o.outer.off + 4)[0]
                assert struct.unpack_from("!H", x, o.outer.off + 4)[0] == (oid + i) & 0xFFFF
                assert (
                    x[o.outer.off + 6 : o.outer.off + 10] == raw[o.outer.off + 6 : o.outer.off + 10]
                )  # DF, TTL
            if o.tunnel != "nvgre":
                zero = raw[o.tunnel_off + 6 : o.tunnel_off + 8] == b"\0\0"
                assert (x[o.tunnel_off + 6 : o.tunnel_off + 8] == b"\0\0") == zero
        if o.ip.version == 4:
            iid = struct.unpack_from("!H", raw, o.ip.off + 4)[0]
            assert struct.unpack_from("!H", x, o.ip.off + 4)[0] == (iid + i) & 0xFFFF
        if s["l4"] == "tcp":
            t = o.l4_off
            seq0 = struct.unpack_from("!I", raw, t + 4)[0]
            assert struct.unpack_from("!I", x, t + 4)[0] == (seq0 + i * s["mss"]) & 0xFFFFFFFF
            want = raw[t + 13]
            if i != last:
                want &= ~0x09  # FIN, PSH only on the last
            if i != 0:
                want &= ~0x80  # CWR only on the first
            assert x[t + 13] == want
            assert x[t + 8 : t + 13] == raw[t + 8 : t + 13] and x[t + 14 : t + 16] == raw[t + 14 : t + 16]
            assert x[t + 18 : o.payload_off] == raw[t + 18 : o.payload_off]  # urgent pointer, options


@SETTINGS
@given(supers(), st.booleans(), st.booleans(), st.booleans())
def test_fast_path_equals_the_straightforward_path(s, fixed_ids, csum_offload, cwr_all):
    """The template/precomputed-sum path gives the same bytes as computing
    every checksum of every segment from scratch (segment._cut)."""
    raw = bytes(s["pkt"])
    kw = dict(
        mss=s["mss"],
        csum_offload=csum_offload,
        cwr="all" if cwr_all else "first",
        ip_id="fixed" if fixed_ids else "increment",
        outer_ip_id="fixed" if fixed_ids else "increment",
    )
    assert segment_bytes(raw, **kw) == segment_bytes(raw, _fast=False, **kw)


@SETTINGS
@given(supers(gro_friendly=True))
def test_coalesce_of_segment_is_the_identity(s):
    sup = as_captured(s["pkt"])
    segs = segment_bytes(sup, mss=s["mss"])
    if len(segs) == 1:  # nothing to merge: GRO passes the (finished) packet unchanged
        assert coalesce_bytes(segs) == segs == [bytes(finish_checksums(Ether(sup)))]
    else:  # GRO hands up the super-packet with pseudo-header checksums
        assert coalesce_bytes(segs) == [sup]


@SETTINGS
@given(supers())
def test_finish_checksums_is_idempotent_and_commutes_with_segment(s):
    raw = as_captured(s["pkt"])
    fin = bytes(finish_checksums(Ether(raw)))
    assert scapy_rebuilds_identically(fin)
    assert bytes(finish_checksums(Ether(fin))) == fin
    assert segment_bytes(fin, mss=s["mss"]) == segment_bytes(raw, mss=s["mss"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(-5, 2000))
def test_any_bytes_segment_cleanly_or_raise_a_named_error(data, mss):
    try:
        segment_bytes(data, mss=mss)
    except (CaptureError, BuildError):
        pass
    coalesce_bytes([data, data])  # never raises: what it cannot read passes through


@SETTINGS
@given(supers(), st.data())
def test_truncated_super_packets_raise_capture_error(s, data):
    raw = bytes(s["pkt"])
    o = parse_offsets(raw)
    cut = data.draw(st.integers(14, o.end - 1)) if o.end > 15 else 14
    try:
        segment_bytes(raw[:cut], mss=s["mss"])
    except CaptureError as exc:
        assert "byte" in str(exc)
    except BuildError:
        pass
    else:  # only a cut inside the payload of an IP packet with length 0 could pass; none here
        raise AssertionError("truncated packet accepted at %d of %d" % (cut, o.end))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 40))
def test_checksum_sums_agree_with_scapy_and_split_anywhere(data, cut):
    """csum_block is RFC 1071's sum (Scapy's checksum() is the reference), and a
    block split at any point (odd or even) sums the same (RFC 1071 §2 (B))."""
    from scapy.utils import checksum as scapy_checksum

    from scapy_geneve.checksum import csum_add, csum_block, csum_fold

    assert csum_fold(csum_block(data)) == scapy_checksum(data)
    cut = min(cut, len(data))
    assert csum_fold(
        csum_add(csum_block(data[:cut]), csum_block(data[cut:], odd=bool(cut & 1)))
    ) == scapy_checksum(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=30000), st.integers(1, 3000))
def test_chunk_sums_numpy_and_pure_python_agree(data, size):
    from scapy_geneve.checksum import chunk_sums, csum_block

    want = [csum_block(data[a : a + size]) % 0xFFFF for a in range(0, len(data), size)]
    assert chunk_sums(data, size, force_int=True) == want
    assert chunk_sums(data, size) == want


@SETTINGS
@given(supers())
def test_segments_are_the_same_without_numpy(s):
    from scapy_geneve import checksum

    raw = bytes(s["pkt"])
    with_np = segment_bytes(raw, mss=s["mss"])
    checksum.USE_NUMPY = False
    try:
        assert segment_bytes(raw, mss=s["mss"]) == with_np
    finally:
        checksum.USE_NUMPY = True


def _layers(p):
    out = []
    while p.__class__.__name__ != "NoPayload":
        out.append(p)
        p = p.payload
    return out


@SETTINGS
@given(supers(), st.sampled_from(["none", "seq", "option", "load"]))
def test_segment_packets_are_what_dissecting_each_segment_gives(s, edit):
    """segment() dissects the first segment and copies it for the others,
    setting the fields that differ: every copy must be indistinguishable from
    ``Ether(bytes)`` of its segment: layer classes, field values, the caches
    Scapy builds from, ``original``, the layer links; and it must behave the
    same when edited (an edited copy builds what the edited dissection builds)
    without touching any other segment."""
    raw = bytes(s["pkt"])
    ours = segment(Ether(raw), mss=s["mss"])
    frames = segment_bytes(raw, mss=s["mss"])
    assert [bytes(p) for p in ours] == frames
    for p, frame in zip(ours, frames):
        full = Ether(frame)
        assert p == full
        for a, b in zip(_layers(p), _layers(full)):
            assert type(a) is type(b)
            assert a.fields == b.fields and compat.dissection_cache(a) == compat.dissection_cache(b)
            assert a.original == b.original and a.explicit == b.explicit
            assert a.payload.underlayer is a or a.payload.__class__.__name__ == "NoPayload"
            for v in a.fields.values():
                for sub in v if isinstance(v, list) else [v]:
                    if isinstance(sub, Packet):
                        assert sub.parent is a
        assert len(_layers(p)) == len(_layers(full))
    if len(ours) < 3 or edit == "none":
        return
    before = [bytes(p) for p in ours]
    victim, full = ours[1], Ether(frames[1])
    for q in (victim, full):
        if edit == "seq" and TCP in q:
            q[TCP].seq = 12345
        elif edit == "option" and Geneve in q and q[Geneve].options:
            q[Geneve].options[0].classid ^= 0x5A5A
        elif edit == "load" and Raw in q:
            q[Raw].load = b"edited"
    assert bytes(victim) == bytes(full)
    assert [bytes(p) for i, p in enumerate(ours) if i != 1] == [b for i, b in enumerate(before) if i != 1]


# -- hostile input (issue 12): random and mutated frames at every bytes entry point ----------
# Each entry point may raise CaptureError (what it cannot read, naming a byte) or BuildError
# (an impossible MSS) and nothing else; coalesce_bytes passes what it cannot read through.


def _seed_frames() -> Dict[str, bytes]:
    """Valid frames of every shape the bytes paths read (small payloads), to mutate."""
    from .test_segment import EMPTY_TO_4789, geneve_super, nvgre_super, plain_tcp, vxlan_super

    gpe = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=5, dport=4790)
        / VXLAN(flags=0x0C, NextProtocol=1, vni=7)
        / IP(src="192.168.0.1", dst="192.168.0.2")
        / TCP()
        / Raw(b"x" * 300)
    )
    return {
        "geneve": bytes(geneve_super(300)),
        "geneve6": bytes(geneve_super(300, v6_outer=True, v6_inner=True, udp_csum=True)),
        "vxlan": bytes(vxlan_super(300, udp_csum=True)),
        "gpe": bytes(gpe),
        "nvgre": bytes(nvgre_super(300, gre_csum=True)),
        "tcp": bytes(plain_tcp(300)),
        "tcp6": bytes(plain_tcp(300, v6=True)),
        "empty-vxlan": EMPTY_TO_4789,
    }


SEEDS = _seed_frames()
HOSTILE = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TUNNEL_CHOICES = [None, None, "none", "geneve", "vxlan", "vxlan-gpe", "nvgre"]


@st.composite
def hostile_frames(draw, link: str = "ether") -> bytes:
    """Random bytes, or a valid frame with a few header bytes flipped, set, cut, inserted
    or deleted (the headers live in the first 160 bytes)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=200))
    frame = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    if link == "ip":
        del frame[:14]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, min(len(frame), 160) - 1)))
        if op == "flip" and frame:
            frame[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and frame:
            frame[pos] = draw(st.sampled_from([0, 1, 0x40, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "cut":
            del frame[pos:]
        elif op == "insert":
            frame[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del frame[pos : pos + draw(st.integers(1, 8))]
    return bytes(frame)


@HOSTILE
@given(st.data(), st.sampled_from(["ether", "ip"]), st.sampled_from(TUNNEL_CHOICES), st.integers(-2, 1500))
def test_segment_bytes_on_hostile_frames_raises_only_named_errors(data, link, tunnel, mss):
    frame = data.draw(hostile_frames(link))
    try:
        segment_bytes(frame, mss=mss, link=link, tunnel=tunnel)
    except CaptureError as exc:
        assert "byte" in str(exc)
    except BuildError:
        pass


@HOSTILE
@given(st.data(), st.sampled_from(["ether", "ip"]), st.sampled_from(TUNNEL_CHOICES), st.booleans())
def test_finish_checksums_bytes_on_hostile_frames_raises_only_named_errors(data, link, tunnel, offload):
    frame = data.draw(hostile_frames(link))
    try:
        finish_checksums_bytes(frame, link=link, tunnel=tunnel, csum_offload=offload)
    except CaptureError as exc:
        assert "byte" in str(exc)


@HOSTILE
@given(st.data(), st.sampled_from(["ether", "ip"]), st.sampled_from([None, "none", "geneve"]))
def test_coalesce_bytes_on_hostile_frames_never_raises(data, link, tunnel):
    """Mutated frames among the valid segments of a super-packet: GRO merges what it can
    and passes the rest through; every input frame is accounted for."""
    base = SEEDS["geneve"] if link == "ether" else SEEDS["geneve"][14:]
    frames = segment_bytes(base, mss=100, link=link)
    for _ in range(data.draw(st.integers(1, 3))):
        frames.insert(data.draw(st.integers(0, len(frames))), data.draw(hostile_frames(link)))
    out = coalesce_bytes(
        frames, link=link, tunnel=tunnel, checksums=data.draw(st.sampled_from(["partial", "full"]))
    )
    assert 1 <= len(out) <= len(frames)
