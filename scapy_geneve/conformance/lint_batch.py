"""Lint a capture without a Python object per clean packet.

:func:`lint_capture` reads a capture batch by batch.  :func:`judge` reads a
whole batch at once (numpy) and proves which packets the engine
(:func:`~scapy_geneve.conformance.lint.lint_report`) would give no finding, and
which it would give only findings the batch writes itself with the engine's
own functions (GNV015 DF clear, GNV012 zero checksum over IPv6, VXL007 port,
VXL008 source port).  It judges the common shapes only: Ethernet with up to two
tags, raw IP, SLL or SLL2; IPv4 or IPv6 without extension headers; then no
tunnel, plain GRE or clean NVGRE, Geneve on 6081 or RFC 7348 VXLAN with every
bit as the specs want (a non-zero UDP checksum verified, one sum per packet),
carrying a frame that holds no further tunnel.  Every other packet goes through
the engine, so the findings are the engine's by construction;
tests/test_lint_batch.py proves with Hypothesis that what the batch calls clean
has no finding and what it writes is what the engine finds.
"""

from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

import numpy as np

from scapy_geneve.capture.pcapio import open_capture
from scapy_geneve.capture.scan_batch import header_arrays
from scapy_geneve.checksum import csum_add, csum_block, csum_fold, pseudo_header_sum
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, GENEVE_PORT, VXLAN_PORT
from scapy_geneve.conformance.lint import DEFAULT_OPTIONS, LintOptions, PacketReport, lint_report
from scapy_geneve.conformance.lint_checks import (
    outer_df_clear,
    vxlan_port,
    vxlan_source_port,
    zero_checksum_over_ipv6,
)
from scapy_geneve.conformance.lint_rules import Finding

__all__ = [
    "judge",
    "Judgement",
    "clean_mask",
    "known_findings",
    "lint_capture",
    "CaptureTotals",
    "udp_checksum_verifies",
]

_ETHERNET, _SLL, _SLL2 = 1, 113, 276
_RAW_IP = (101, 12, 14, 228, 229)
_VLAN = (0x8100, 0x88A8, 0x9100)  # the decoder's VLAN TPIDs
_IPV6_EXT = (0, 43, 44, 60, 51, 135, 139, 140, 253, 254)
_MAX_OPTIONS = 8  # Geneve options walked in the batch (more: the engine)


class _Bytes:
    """Big-endian reads at many offsets of one buffer at once (clipped to it)."""

    def __init__(self, buf: bytes) -> None:
        self.b = np.frombuffer(buf, dtype=np.uint8)

    def u8(self, pos: Any) -> Any:
        return self.b.take(pos, mode="clip").astype(np.int64)

    def u16(self, pos: Any) -> Any:
        return (self.u8(pos) << 8) | self.u8(pos + 1)


@dataclass
class _Frames:
    """Per packet: where its network header is, its EtherType, where it ends."""

    et: Any
    pos: Any
    end: Any


def _link(rd: _Bytes, off: Any, cap: Any, linktype: Any) -> Tuple[_Frames, Any]:
    """The link layer of every packet; the second array marks packets the batch cannot judge."""
    end = off + cap
    et, pos = np.zeros(len(off), np.int64), off.copy()
    unknown = ~np.isin(linktype, (_ETHERNET, _SLL, _SLL2) + _RAW_IP)
    eth, sll, sll2 = linktype == _ETHERNET, linktype == _SLL, linktype == _SLL2
    raw = np.isin(linktype, _RAW_IP)
    et = np.where(eth & (cap >= 14), rd.u16(off + 12), et)
    et = np.where(sll & (cap >= 16), rd.u16(off + 14), et)
    et = np.where(sll2 & (cap >= 20), rd.u16(off), et)
    version = rd.u8(off) >> 4
    et = np.where(raw & (cap >= 1) & (version == 4), ETH_P_IP, et)
    et = np.where(raw & (cap >= 1) & (version == 6), ETH_P_IPV6, et)
    pos = np.where(eth, off + 14, np.where(sll, off + 16, np.where(sll2, off + 20, off)))
    frames = _Frames(et, pos, end)
    return frames, unknown | _vlans(rd, frames)


def _vlans(rd: _Bytes, f: _Frames) -> Any:
    """Skip up to two 802.1Q/802.1ad tags in place; True where more (or a cut tag) remain."""
    for _ in range(2):
        tag = np.isin(f.et, _VLAN) & (f.end - f.pos >= 4)
        f.et = np.where(tag, rd.u16(f.pos + 2), f.et)
        f.pos = np.where(tag, f.pos + 4, f.pos)
    return np.isin(f.et, _VLAN)


@dataclass
class _IP:
    """Per packet: the IP header's facts the clean test needs."""

    ip: Any  # an IP header was read (else: nothing to lint)
    v4: Any
    l4: Any
    end: Any
    proto: Any
    ecn: Any
    df: Any
    frag: Any  # MF or a fragment offset
    later: Any  # a non-first fragment (no transport header)
    odd: Any  # the batch cannot judge it (extension headers, BIG TCP lengths)


def _ip(rd: _Bytes, f: _Frames) -> _IP:
    room = f.end - f.pos
    b0 = rd.u8(f.pos)
    v4 = (f.et == ETH_P_IP) & (room >= 20) & (b0 >> 4 == 4)
    ihl = (b0 & 0x0F) * 4
    total = rd.u16(f.pos + 2)
    v4 &= (ihl >= 20) & (room >= ihl)
    v4_odd = v4 & ((total == 0) | (total < ihl))
    v6 = (f.et == ETH_P_IPV6) & (room >= 40) & (b0 >> 4 == 6)
    plen, nh = rd.u16(f.pos + 4), rd.u8(f.pos + 6)
    v6_odd = v6 & ((plen == 0) | np.isin(nh, _IPV6_EXT))
    word = rd.u16(f.pos + 6)
    end = np.where(v4, np.minimum(f.pos + total, f.end), np.minimum(f.pos + 40 + plen, f.end))
    return _IP(
        ip=v4 | v6,
        v4=v4,
        l4=np.where(v4, f.pos + ihl, f.pos + 40),
        end=end,
        proto=np.where(v4, rd.u8(f.pos + 9), nh),
        ecn=np.where(v4, rd.u8(f.pos + 1) & 3, (rd.u16(f.pos) >> 4) & 3),
        df=v4 & ((word & 0x4000) != 0),
        frag=v4 & ((word & 0x3FFF) != 0),
        later=v4 & ((word & 0x1FFF) != 0),
        odd=v4_odd | v6_odd,
    )


def _geneve_clean(rd: _Bytes, ip: _IP, udp: Any, options: LintOptions) -> Tuple[Any, Any]:
    """(clean header but for its UDP checksum, where its inner frame starts) of Geneve on
    6081: no fragment, every bit as RFC 8926 wants, options adding up.  (DF clear over
    IPv4, GNV015, and a zero checksum over IPv6, GNV012, the batch writes itself.)"""
    base, ulen = udp + 8, rd.u16(udp + 4)
    b0, b1 = rd.u8(base), rd.u8(base + 1)
    opt_end = base + 8 + (b0 & 0x3F) * 4
    ok = ~ip.frag & (ulen >= 16) & (udp + ulen <= ip.end)
    ok &= (b0 >> 6 == 0) & ((b1 & 0xBF) == 0) & (rd.u8(base + 7) == 0)
    ok &= (opt_end <= udp + ulen) & (ip.ecn == 0)
    pos, critical = base + 8, np.zeros(len(base), bool)
    for _ in range(_MAX_OPTIONS):
        more = ok & (pos < opt_end)
        if not more.any():
            break
        typ, b3 = rd.u8(pos + 2), rd.u8(pos + 3)
        ok &= ~more | (((b3 & 0xE0) == 0) & (pos + 4 + (b3 & 0x1F) * 4 <= opt_end))
        critical |= more & ((typ & 0x80) != 0)
        pos = np.where(more, pos + 4 + (b3 & 0x1F) * 4, pos)
    ok &= (pos == opt_end) & (critical == ((b1 & 0x40) != 0))  # C set iff an option is critical
    if options.understood is not None:
        ok &= ~critical
    return ok, opt_end


def _vxlan_clean(rd: _Bytes, ip: _IP, udp: Any) -> Any:
    """Clean RFC 7348 VXLAN but for its UDP checksum and ports (I flag only, zero
    reserved fields, no fragment, no inner 802.1Q tag).  VXL007 (not 4789) and
    VXL008 (source port below 49152) the batch writes itself."""
    base, ulen = udp + 8, rd.u16(udp + 4)
    ok = ~ip.frag & (ulen >= 16) & (udp + ulen <= ip.end)
    ok &= (rd.u8(base) == 0x08) & (rd.u16(base + 1) == 0) & (rd.u8(base + 3) == 0)
    ok &= (rd.u8(base + 7) == 0) & (ip.ecn == 0)
    inner_tag = (udp + ulen - base - 8 >= 14) & np.isin(rd.u16(base + 20), _VLAN)
    return ok & ~inner_tag


def _no_tunnel(rd: _Bytes, ip: _IP, options: LintOptions) -> Any:
    """IP packets that carry nothing the engine lints (judged from the IP header and ports)."""
    proto, l4, room, ports = ip.proto, ip.l4, ip.end - ip.l4, options.ports
    tunnel_ports = np.array(sorted(frozenset().union(*ports)), dtype=np.int64)
    on_port = np.isin(rd.u16(l4 + 2), tunnel_ports) | np.isin(rd.u16(l4), tunnel_ports)
    udp_plain = (proto == 17) & ((room < 8) | ~on_port)
    stt = np.isin(rd.u16(l4 + 2), np.array(sorted(ports.stt), dtype=np.int64)) & (room >= 20)
    tcp_plain = (proto == 6) & ~(stt & options.stt)
    l2tp_plain = (proto == 115) & (not options.l2tpv3)
    other = ~np.isin(proto, (17, 6, 47, 115, 4, 41))
    return ip.later | udp_plain | tcp_plain | l2tp_plain | other  # GRE: _gre_tunnels


@dataclass
class _Known:
    """Findings the batch writes itself for packets otherwise clean (one flag per rule)."""

    gnv015: Any  # outer IPv4 without DF (Geneve)
    gnv012: Any  # zero UDP checksum over IPv6 (Geneve)
    vxl007: Any  # VXLAN not on 4789
    vxl008: Any  # VXLAN source port below 49152

    def any(self) -> Any:
        return self.gnv015 | self.gnv012 | self.vxl007 | self.vxl008


def _ports_array(ports: Any) -> Any:
    return np.array(sorted(ports), dtype=np.int64)


def _inner_frames(rd: _Bytes, start: Any, end: Any, proto: Any) -> _Frames:
    """The frames tunnels carry at START..END: Ethernet for 0x6558, raw IP for 0x0800 /
    0x86dd (read by its version nibble, as the decoder does), nothing else."""
    ether = proto == ETH_P_TEB
    version = rd.u8(start) >> 4
    raw_et = np.where(version == 4, ETH_P_IP, np.where(version == 6, ETH_P_IPV6, 0))
    raw = ((proto == ETH_P_IP) | (proto == ETH_P_IPV6)) & (end > start)
    et = np.where(ether & (end - start >= 14), rd.u16(start + 12), np.where(raw, raw_et, 0))
    return _Frames(et, np.where(ether, start + 14, start), end)


def _udp_tunnels(rd: _Bytes, ip: _IP, options: LintOptions) -> Tuple[Any, Any, _Frames, _Known]:
    """(UDP tunnels, clean but for the UDP checksum and the known findings, inner
    frames, known findings) for Geneve on 6081 and RFC 7348 VXLAN on its ports."""
    l4, ports = ip.l4, options.ports
    udp = ip.ip & ~ip.odd & ~ip.later & (ip.proto == 17) & (ip.end - l4 >= 8)
    sport, dport = rd.u16(l4), rd.u16(l4 + 2)
    geneve = udp & (dport == GENEVE_PORT)
    vxlan = udp & np.isin(dport, _ports_array(ports.vxlan - ports.geneve - ports.gpe))
    g_ok, g_inner = _geneve_clean(rd, ip, l4, options)
    clean = (geneve & g_ok) | (vxlan & _vxlan_clean(rd, ip, l4))
    known = _Known(
        gnv015=geneve & ip.v4 & ~ip.df,
        gnv012=geneve & ~ip.v4 & (rd.u16(l4 + 6) == 0),
        vxl007=vxlan & (dport != VXLAN_PORT),
        vxl008=vxlan & (sport < 49152),
    )
    proto = np.where(geneve, rd.u16(l4 + 10), ETH_P_TEB)
    inner = _inner_frames(rd, np.where(geneve, g_inner, l4 + 16), l4 + rd.u16(l4 + 4), proto)
    return geneve | vxlan, clean, inner, known


def _gre_tunnels(rd: _Bytes, ip: _IP, options: LintOptions) -> Tuple[Any, Any, Any, _Frames]:
    """(GRE, clean, read as NVGRE by guess, inner frames).  Clean NVGRE: K only, 0x6558,
    a VSID outside the reserved ranges, no inner 802.1Q tag; plain GRE (not read as
    NVGRE) has nothing to judge but the frame it carries."""
    l4, room = ip.l4, ip.end - ip.l4
    gre = ip.ip & ~ip.odd & ~ip.later & (ip.proto == 47) & (room >= 4)
    word, proto = rd.u16(l4), rd.u16(l4 + 2)
    hlen = 4 + 4 * ((word & 0x8000) != 0) + 4 * ((word & 0x2000) != 0) + 4 * ((word & 0x1000) != 0)
    if options.gre_as == "nvgre":
        nvgre = gre
    else:
        keyed_teb = ((word & 0x2000) != 0) & (proto == ETH_P_TEB)
        nvgre = gre & keyed_teb & (options.gre_as == "auto")
    vsid = (rd.u16(l4 + 4) << 8) | rd.u8(l4 + 6)
    inner_tag = (room - 8 >= 14) & np.isin(rd.u16(l4 + 20), _VLAN)
    nvgre_ok = (word == 0x2000) & (proto == ETH_P_TEB) & (room >= 8) & (vsid > 0xFFF)
    nvgre_ok &= (vsid != 0xFFFFFF) & ~inner_tag
    carries = ((word & 0x4007) == 0) & (room >= hlen)  # no routing, version 0
    clean = np.where(nvgre, nvgre_ok, True) & gre
    inner = _inner_frames(rd, l4 + hlen, ip.end, np.where(carries | nvgre, proto, 0))
    guessed = nvgre & (options.gre_as == "auto")
    return gre, clean, guessed, inner


def _tunnels(rd: _Bytes, ip: _IP, options: LintOptions) -> Tuple[Any, Any, _Frames, _Known, Any]:
    """(clean but for the UDP checksum and known findings, UDP tunnels, inner frames,
    known findings, GRE read as NVGRE by guess) for the tunnels the batch judges."""
    udp, u_ok, u_inner, known = _udp_tunnels(rd, ip, options)
    gre, g_ok, guessed, g_inner = _gre_tunnels(rd, ip, options)
    inner = _Frames(
        np.where(gre, g_inner.et, u_inner.et),
        np.where(gre, g_inner.pos, u_inner.pos),
        np.where(gre, g_inner.end, u_inner.end),
    )
    return (udp & u_ok) | (gre & g_ok), udp, inner, known, guessed


def _level(rd: _Bytes, f: _Frames, options: LintOptions) -> Tuple[Any, ...]:
    """(no tunnel, tunnel clean but for checksum and known findings, UDP tunnels, inner
    frames, known findings, guessed NVGRE) for one nesting level."""
    ip = _ip(rd, f)
    plain = ip.ip & ~ip.odd & _no_tunnel(rd, ip, options)
    return (~ip.ip | plain,) + _tunnels(rd, ip, options)


def _checksums_ok(buf: bytes, data_off: Any, udp: Any, which: Any) -> Any:
    """The UDP checksums of the packets WHICH marks verify (one sum per packet, in C)."""
    out = np.zeros(len(udp), bool)
    for i in np.nonzero(which)[0].tolist():
        out[i] = udp_checksum_verifies(buf, int(data_off[i]), int(udp[i]))
    return out


@dataclass
class Judgement:
    """What the batch proved: ``clean`` packets have no finding; ``known`` packets
    have exactly the findings :func:`known_findings` writes; the rest need the engine."""

    clean: Any
    known: Any
    rules: _Known
    udp: Any  # offset of the outer UDP header in the packet
    ip_off: Any  # offset of the outer IP header in the packet
    guessed: Any  # clean, read as NVGRE by guess (keyed GRE carrying Ethernet)


def judge(
    buf: bytes, data_off: Any, caplen: Any, linktype: Any, options: LintOptions = DEFAULT_OPTIONS
) -> Judgement:
    """Judge every packet of a batch at once (see the module docstring)."""
    rd = _Bytes(buf)
    frames, unknown = _link(rd, data_off, caplen, linktype)
    outer = _ip(rd, frames)
    no_tunnel, tunnel_ok, udp, inner, known, guessed = _level(rd, frames, options)
    inner_tagged = _vlans(rd, inner)
    clean_inner = _level(rd, inner, options)[0]
    tunnel_ok &= clean_inner & ~inner_tagged & ~unknown
    to_sum = tunnel_ok & udp & (rd.u16(outer.l4 + 6) != 0)
    tunnel_ok &= ~to_sum | _checksums_ok(buf, frames.pos, outer.l4, to_sum)
    has_known = known.any()
    return Judgement(
        clean=(no_tunnel & ~unknown) | (tunnel_ok & ~has_known),
        known=tunnel_ok & has_known,
        rules=known,
        udp=outer.l4 - data_off,
        ip_off=frames.pos - data_off,
        guessed=tunnel_ok & guessed,
    )


def clean_mask(
    buf: bytes, data_off: Any, caplen: Any, linktype: Any, options: LintOptions = DEFAULT_OPTIONS
) -> Any:
    """True for each packet the engine would certainly give no finding (see the module doc)."""
    return judge(buf, data_off, caplen, linktype, options).clean


def known_findings(buf: bytes, data_off: int, j: Judgement, i: int) -> List[Finding]:
    """The findings of packet I of a judged batch that is ``known`` (in the engine's order)."""
    udp = int(j.udp[i])
    at = data_off + udp
    if j.rules.gnv015[i]:
        return [outer_df_clear(int(j.ip_off[i]))]
    if j.rules.gnv012[i]:
        return [zero_checksum_over_ipv6(udp)]
    out = []
    if j.rules.vxl007[i]:
        out.append(vxlan_port((buf[at + 2] << 8) | buf[at + 3], udp))
    if j.rules.vxl008[i]:
        out.append(vxlan_source_port((buf[at] << 8) | buf[at + 1], udp))
    return out


def udp_checksum_verifies(buf: bytes, ip_off: int, udp: int) -> bool:
    """Does the UDP checksum of the datagram at UDP (IP header at IP_OFF, no
    extension headers, the UDP Length within the datagram) verify?"""
    length = (buf[udp + 4] << 8) | buf[udp + 5]
    if buf[ip_off] >> 4 == 4:
        src, dst = buf[ip_off + 12 : ip_off + 16], buf[ip_off + 16 : ip_off + 20]
    else:
        src, dst = buf[ip_off + 8 : ip_off + 24], buf[ip_off + 24 : ip_off + 40]
    total = csum_add(
        pseudo_header_sum(bytes(src), bytes(dst), 17, length), csum_block(buf[udp : udp + length])
    )
    return csum_fold(total) == 0


def _header_arrays(batch: Any) -> Tuple[Any, Any, Any]:
    """(data_off, caplen, linktype) int64 arrays of a batch's packets."""
    data_off, caplen, _wirelen, _ts_ns, linktype = header_arrays(np, batch)
    return data_off, caplen, linktype


@dataclass
class CaptureTotals:
    """What :func:`lint_capture` read: packets, and packets the batch could judge alone."""

    packets: int = 0
    judged_in_batch: int = 0
    guessed: int = 0  # packets with a kind read by guess (keyed 0x6558 GRE as NVGRE)


def lint_capture(
    path: Union[str, Any],
    options: LintOptions = DEFAULT_OPTIONS,
    count: Optional[int] = None,
    totals: Optional[CaptureTotals] = None,
    progress: Optional[Callable[[int, int, int], None]] = None,
) -> Iterator[Tuple[int, PacketReport]]:
    """(packet number, report) for every packet of PATH with findings, in order.

    Reads at most COUNT packets.  TOTALS (updated as the file is read) counts
    every packet (and the packets read as NVGRE by guess).  ``progress(bytes_read,
    file_size, packets)`` is called once a batch.  A damaged capture raises
    :class:`~scapy_geneve.errors.CaptureError` after the packets before the
    damage have been yielded.
    """
    totals = totals if totals is not None else CaptureTotals()
    with open_capture(path) as reader:
        for batch in reader.batches():
            n = len(batch) if count is None else min(len(batch), count - totals.packets)
            off, cap, lt = (a[:n] for a in _header_arrays(batch))
            j = judge(batch.buf, off, cap, lt, options)
            totals.judged_in_batch += int(j.clean.sum() + j.known.sum())
            totals.guessed += int(j.guessed.sum())
            for i in np.nonzero(~j.clean)[0].tolist():
                if j.known[i]:
                    found = [f for f in known_findings(batch.buf, int(off[i]), j, i) if options.keeps(f)]
                    report = PacketReport(found)
                else:
                    report = lint_report(batch.buf[off[i] : off[i] + cap[i]], int(lt[i]), options)
                    totals.guessed += bool(report.guessed)
                if report.findings:
                    yield batch.first + i, report
            totals.packets += n
            if progress is not None:
                progress(reader.bytes_read, reader.file_size, totals.packets)
            if count is not None and totals.packets >= count:
                return
