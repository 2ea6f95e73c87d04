"""The vectorised path: every packet of a batch parsed at once with numpy.

:func:`analyse_batch` reads the packets of one :class:`~scapy_geneve.capture.pcapio.Batch`
with fancy indexing over the chunk's bytes, in named stages over a small
context (:class:`_Stages`):

    link → outer IP → transport (UDP tunnels, STT, NVGRE, L2TPv3/IP) → inner → fallback

A packet that is not plain (anything the wire decoder would call malformed or
truncated, a third VLAN tag, IPv6 extension headers, BIG TCP lengths, plain
GRE, loopback link types...) is marked for the *fallback* stage, which runs
:func:`~scapy_geneve.capture.decode.decode` on it: both paths give the same
answers by construction, and tests/test_scan_fuzz.py proves it with hypothesis
(every kind, VLAN stacks, IPv4/IPv6, options, UDP Length variants, mutations).

The ports come from :class:`~scapy_geneve.registry.Ports` (never constants) and
the kind codes from :class:`~scapy_geneve.registry.Kind`.

The same stages are compiled in ``_batch.c`` (one pass, each packet's headers read
once) where the extension was built: :func:`analyse_batch` runs that pass and keeps
these numpy stages as its reference (tests/test_batch_compiled.py proves them equal with
hypothesis; ``SCAPY_GENEVE_PURE_PYTHON=1`` runs the numpy stages).

Speed: each 16- or 32-bit header field is one gather for the whole batch (32-bit
words through :func:`words`, an overlapping big-endian view of the chunk), a stage
subsets its packets only when some fail, and what only ``detail`` needs (VLAN IDs,
inner ports...) is not computed for stats and filter.
"""

from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from scapy_geneve.capture.accel import compiled_module
from scapy_geneve.capture.decode import (
    GRE_C,
    GRE_K,
    GRE_R,
    GRE_S,
    GRE_VER,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT,
    STT_HDR_LEN,
    VLAN_TPIDS,
    DecodeState,
    Decoded,
    decode,
)
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Batch,
)
from scapy_geneve.capture.scan_record import INNER_NONIP, NO_INNER, ScanRecord, record_from_decoded
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB
from scapy_geneve import registry
from scapy_geneve.registry import DEFAULT_PORTS, IPPROTO_GRE, IPPROTO_L2TP, Kind, Ports

__all__ = ["BatchResult", "analyse_batch", "DETAIL_COLUMNS", "numpy"]

# link type -> (link header length, offset of the EtherType) for the Ethernet-like ones
_ETHER_LIKE = {LINKTYPE_ETHERNET: (14, 12), LINKTYPE_LINUX_SLL: (16, 14), LINKTYPE_LINUX_SLL2: (20, 0)}
_RAW_IP = (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14)
_TPIDS = sorted(VLAN_TPIDS)

#: The per-packet columns ``BatchResult.detail`` holds (int64, -1 when absent) besides
#: "ok" (bool: parsed here, not by the decoder), "l3" and "records".
DETAIL_COLUMNS = (
    "vlan_n",
    "vlan1",
    "vlan2",
    "sport",
    "dport",
    "proto",
    "flow",
    "control",
    "inner_ethertype",
    "inner_pos",
    "inner_version",
    "inner_proto",
    "inner_sport",
    "inner_dport",
)
#: Also in ``detail`` (the columnar scan's inner TCP flags): where the inner L4 header starts
#: and where the inner IP packet ends (its length fields), -1 without an inner IP header.
_INNER_ENDS = ("inner_l4", "inner_ipend")


def numpy() -> Any:
    """numpy, imported on first use (importing the capture side stays cheap)."""
    import numpy as np

    return np


class BatchResult:
    """Per-packet numpy columns for one batch: what stats, filter and the columnar export read.

    Stable columns (one item per packet unless said):

    ========== ======== ==================================================================
    n          int      packets in the batch; ``first``: number of the first one
    kind       int8     ``registry.Kind`` code (0: no tunnel)
    vni        uint64   the identifier (VNI, VSID, context ID, session ID) where ``has_vni``
    has_vni    bool     the packet has an identifier
    crit, oam  bool     Geneve C bit; Geneve / VXLAN-GPE O bit
    inner      int64    inner protocol key: IP protocol, 0x10000|EtherType, -1 (none)
    outer_ip   int8     0, 4 or 6
    malformed  bool     ``reasons``: dict packet index -> why
    snapped    bool     cut by the snaplen; ``skipped``: bool, link type not read
    wirelen    int64    also ``caplen``, ``ts_ns`` (-(1<<63): none), ``linktype``
    opt_*      int64    one item per Geneve option: ``opt_pkt`` (packet index),
                        ``opt_class``, ``opt_type``, ``opt_len`` (4-byte words)
    fallback   int      packets the decoder parsed
    detail     dict     with ``detail=True``: DETAIL_COLUMNS, "ok", "l3" (outer IP offset
                        in the chunk), "records" (index -> ScanRecord of fallback packets),
                        "inner_l4" and "inner_ipend" (where the inner L4 header starts and
                        the inner IP packet ends by its length field, -1: no inner IP) and
                        "opt_pos" (per option: its header's offset in the chunk, for the
                        first options of ``opt_*``, those parsed here) and "opt_data"
                        (the compiled pass: those options' data bytes one after the
                        other, packet by packet; None from the numpy stages)
    ========== ======== ==================================================================
    """

    __slots__ = (
        "n",
        "kind",
        "vni",
        "has_vni",
        "crit",
        "oam",
        "inner",
        "outer_ip",
        "malformed",
        "snapped",
        "skipped",
        "reasons",
        "wirelen",
        "caplen",
        "ts_ns",
        "linktype",
        "opt_pkt",
        "opt_class",
        "opt_type",
        "opt_len",
        "fallback",
        "first",
        "detail",
    )
    n: int
    first: int
    fallback: int
    reasons: Dict[int, str]
    detail: Optional[Dict[str, Any]]
    kind: Any
    vni: Any
    has_vni: Any
    crit: Any
    oam: Any
    inner: Any
    outer_ip: Any
    malformed: Any
    snapped: Any
    skipped: Any
    wirelen: Any
    caplen: Any
    ts_ns: Any
    linktype: Any
    opt_pkt: Any
    opt_class: Any
    opt_type: Any
    opt_len: Any


def header_arrays(np: Any, batch: Batch) -> Tuple[Any, ...]:
    """(data_off, caplen, wirelen, ts_ns, linktype) int64 arrays of BATCH's packets."""
    if batch.pcap_linktype < 0:  # pcapng: the reader's walk has them
        return tuple(
            np.frombuffer(f, dtype=np.int64) if len(f) else np.zeros(0, np.int64)
            for f in (batch.fields[i] for i in (0, 2, 3, 4, 5))
        )
    if not len(batch):
        return tuple(np.zeros(0, np.int64) for _ in range(5))
    starts = np.frombuffer(batch.starts, dtype=np.int64)
    u32 = words(np, batch.buf, batch.endian + "u4")
    # pcap records lie back to back: each one's captured length is where the next one starts
    caplen = np.empty(len(starts), np.int64)
    np.subtract(starts[1:], starts[:-1] + 16, out=caplen[:-1])
    caplen[-1] = int(u32[starts[-1] + 8])
    if batch.pcap_heads is not None:  # the compiled walk read them with the lengths
        n = len(starts)
        ts_ns, wirelen = (np.frombuffer(raw, dtype=np.int64)[:n] for raw in batch.pcap_heads)
    else:
        ts_ns, wirelen = pcap_stamps_and_lengths(np, batch, starts, u32)
    linktype = np.full(len(starts), batch.pcap_linktype, dtype=np.int64)
    return starts + 16, caplen, wirelen, ts_ns, linktype


def pcap_stamps_and_lengths(np: Any, batch: Batch, starts: Any, u32: Any) -> Tuple[Any, Any]:
    """(ts_ns, wirelen) of BATCH's pcap records, gathered from their headers (the
    reference for what the compiled walk reads on its way: tests/test_accel.py)."""
    wirelen = u32[starts + 12].astype(np.int64)
    stamp = words(np, batch.buf, batch.endian + "u8")[starts]  # seconds and fraction, one gather
    high, low = (stamp >> np.uint64(32)).astype(np.int64), (stamp & np.uint64(0xFFFFFFFF)).astype(np.int64)
    sec, frac = (high, low) if batch.endian == ">" else (low, high)
    return sec * 1000000000 + frac * batch.ts_mult, wirelen


def among(np: Any, values: Any, choices: Iterable[int]) -> Any:
    """VALUES in CHOICES (a few ``==`` beat ``np.isin`` for the small sets here)."""
    choices = sorted(choices)
    if len(choices) > 4:
        return np.isin(values, choices)
    out = values == choices[0] if choices else np.zeros(len(values), bool)
    for choice in choices[1:]:
        out |= values == choice
    return out


def words(np: Any, buf: Any, dtype: str) -> Any:
    """BUF as overlapping DTYPE words, one starting at every byte: ``words(...)[p]`` reads
    the word at byte p in one gather (p must leave room for the whole word)."""
    width = np.dtype(dtype).itemsize
    return np.ndarray((max(0, len(buf) - width + 1),), dtype=dtype, buffer=buf, strides=(1,))


class _Stages:
    """One batch on its way through the stages: the bytes, per-packet positions, outputs.

    ``ok[i]`` False hands packet i to the decoder (the fallback stage); ``end[i]``
    is where the current layer's bytes end (capture, IP length, UDP Length).
    """

    def __init__(self, np: Any, batch: Batch, ports: Ports, l2tp_skip: int, detail: bool) -> None:
        self.np, self.ports = np, ports
        self.l2tp_skip = l2tp_skip  # L2TPv3 cookie + L2-Specific Sublayer bytes
        self.B = np.frombuffer(batch.buf, dtype=np.uint8)
        self.batch = batch
        self.data_off, self.caplen, self.wirelen, self.ts_ns, self.linktype = header_arrays(np, batch)
        n = self.n = len(self.data_off)
        self.ok = np.ones(n, bool)
        self.kind = np.zeros(n, np.int8)
        self.vni = np.zeros(n, np.uint64)
        self.has_vni, self.crit, self.oam = (np.zeros(n, bool) for _ in range(3))
        self.inner = np.full(n, NO_INNER, np.int64)
        self.outer_ip = np.zeros(n, np.int8)
        self.l3 = np.zeros(n, np.int64)
        self.opt_pos: Any = None  # the options' positions (``_options``)
        self.opts: List[Tuple[Any, Any, Any, Any, Any]] = []  # (packet, class, type, length, position)
        self.flat_opts: Optional[Tuple[Any, Any, Any, Any, Any]] = None  # the compiled pass' options
        self.opt_data: Optional[bytes] = None  # and (detail) their data bytes
        self.inners: List[Tuple[Any, Any, Any]] = []  # (index, position, 0 = Ethernet / 4 / 6)
        self.det: Optional[Dict[str, Any]] = None
        self.det_rows: Any = None  # the detail columns as the rows of one array (the compiled pass')
        if detail:
            self.det_rows = np.full((len(DETAIL_COLUMNS + _INNER_ENDS), n), -1, np.int64)
            self.det = dict(zip(DETAIL_COLUMNS + _INNER_ENDS, self.det_rows))
            self.det["vlan_n"][:] = 0

    def start_numpy(self) -> None:
        """What only the numpy stages use: the big-endian word views, the link types present,
        and per packet the EtherType, L4 offset, IP end, protocol, first-fragment flag and
        the end of the current layer."""
        np, n = self.np, self.n
        self.u32 = words(np, self.batch.buf, ">u4")
        self.u64 = words(np, self.batch.buf, ">u8")
        pcap_linktype = self.batch.pcap_linktype
        self.linktypes = [pcap_linktype] if pcap_linktype >= 0 else np.unique(self.linktype).tolist()
        self.end = self.data_off + self.caplen
        self.et, self.l4, self.ipend = (np.zeros(n, np.int64) for _ in range(3))
        self.proto = np.full(n, -1, np.int64)
        self.first = np.zeros(n, bool)

    # -- gathering -----------------------------------------------------------------------
    def g8(self, p: Any) -> Any:
        """The bytes at P (uint8: widen before shifting or multiplying past 255)."""
        return self.B.take(p, mode="clip")

    def g16(self, p: Any) -> Any:
        B = self.B
        return (B.take(p, mode="clip").astype(self.np.int64) << 8) | B.take(p + 1, mode="clip")

    def g32(self, p: Any) -> Any:
        """The big-endian words at P (uint32), one gather; P past the buffer reads its last word."""
        return self.u32[self.np.minimum(p, len(self.u32) - 1)]

    def g64(self, p: Any) -> Any:
        """The big-endian 8-byte words at P as int64, one gather for two or three header fields
        (mask what is shifted down from the top: the top bit wraps); P past the buffer reads
        its last word."""
        np, u64 = self.np, self.u64
        if not len(u64):
            return np.zeros(len(p), np.int64)
        return u64[np.minimum(p, len(u64) - 1)].astype(np.int64)

    def fail(self, idx: Any, bad: Any) -> None:
        """Hand idx[bad] to the decoder."""
        if bad.any():
            self.ok[idx[bad]] = False

    def keep(self, idx: Any, bad: Any, *columns: Any) -> Tuple[Any, ...]:
        """Hand idx[bad] to the decoder; (idx, *columns) of the rest (as given if none is bad)."""
        if not bad.any():
            return (idx,) + columns
        self.ok[idx[bad]] = False
        good = ~bad
        return (idx[good],) + tuple(column[good] for column in columns)

    def among(self, values: Any, choices: Iterable[int]) -> Any:
        return among(self.np, values, choices)

    def put(self, name: str, idx: Any, values: Any) -> None:
        if self.det is not None:
            self.det[name][idx] = values

    def identify(self, idx: Any, code: Optional[Kind], values: Any) -> None:
        """Packets IDX carry identifiers VALUES (and are of kind CODE unless None: already set)."""
        if code is not None:
            self.kind[idx] = int(code)
        self.vni[idx] = values
        self.has_vni[idx] = True

    def add_inner(self, idx: Any, pos: Any, what: Union[int, Any]) -> None:
        """Packets IDX carry an inner frame at POS: 0 Ethernet, 4 IPv4, 6 IPv6 (one or each)."""
        if len(idx):
            self.inners.append((idx, pos, what))

    def select(self, mask: Any) -> Tuple[Any, Any, Any]:
        """(indices, L4 offsets, ends) of the packets in MASK."""
        idx = self.np.nonzero(mask)[0]
        return idx, self.l4[idx], self.end[idx]


# -- link layer ---------------------------------------------------------------------------
def _link(s: _Stages) -> None:
    np = s.np
    linktypes = s.linktypes
    for lt in linktypes:
        if len(linktypes) == 1:  # every packet: the columns themselves, no gather
            idx, start, e = np.arange(s.n), s.data_off, s.end
        else:
            idx = np.nonzero(s.linktype == lt)[0]
            start, e = s.data_off[idx], s.end[idx]
        if lt in _ETHER_LIKE:
            hlen, type_at = _ETHER_LIKE[lt]
            good, et, l3 = start + hlen <= e, s.g16(start + type_at), start + hlen
            good, et, l3 = _outer_vlans(s, idx, good, et, l3, e)
        elif lt in _RAW_IP:
            v = s.g8(start) >> 4
            good = (start < e) & ((v == 4) | (v == 6))
            et, l3 = np.where(v == 4, ETH_P_IP, ETH_P_IPV6), start.copy()
        else:  # loopback, or a link type the decoder skips
            s.ok[idx] = False
            continue
        s.ok[idx[~good]] = False
        if len(linktypes) == 1:
            s.et, s.l3 = np.asarray(et, np.int64), np.asarray(l3, np.int64)
        else:
            s.et[idx], s.l3[idx] = et, l3


def _outer_vlans(s: _Stages, idx: Any, good: Any, et: Any, l3: Any, e: Any) -> Tuple[Any, Any, Any]:
    """Up to two VLAN tags here; deeper stacks go to the decoder."""
    np = s.np
    for depth in (1, 2):
        tag = s.among(et, _TPIDS)
        if not tag.any():
            return good, et, l3
        if s.det is not None:
            s.put("vlan1" if depth == 1 else "vlan2", idx[tag], s.g16(l3[tag]) & 0x0FFF)
            s.put("vlan_n", idx[tag], depth)
        good = good & (~tag | (l3 + 4 <= e))
        et = np.where(tag, s.g16(l3 + 2), et)
        l3 = np.where(tag, l3 + 4, l3)
    return good & ~s.among(et, _TPIDS), et, l3


# -- outer IP -------------------------------------------------------------------------------
def _outer_ipv4(s: _Stages) -> None:
    idx = s.np.nonzero(s.ok & (s.et == ETH_P_IP))[0]
    if not len(idx):
        return
    l3, e = s.l3[idx], s.end[idx]
    version, ihl, tot, proto, first = _ipv4_header(s, l3)
    # Total Length 0 (BIG TCP) and anything the decoder would complain of: to the decoder.
    bad = (l3 + 20 > e) | (version != 4) | (ihl < 20) | (l3 + ihl > e) | (tot < ihl)
    idx, l3, ihl, tot, e, proto, first = s.keep(idx, bad, l3, ihl, tot, e, proto, first)
    s.ipend[idx] = l3 + tot
    s.end[idx] = s.np.minimum(e, l3 + tot)
    s.proto[idx], s.first[idx] = proto, first
    s.l4[idx] = l3 + ihl
    s.outer_ip[idx] = 4


def _ipv4_header(s: _Stages, l3: Any) -> Tuple[Any, Any, Any, Any, Any]:
    """Version, header length in bytes, Total Length, Protocol of the IPv4 headers at L3, and
    whether the Fragment Offset is 0 (the packet holds the L4 header): bytes 0-7 in one word
    (version and IHL, ToS, Total Length, ID, flags and Fragment Offset), byte 9 apart."""
    word = s.g64(l3)
    version, ihl = (word >> 60) & 0x0F, ((word >> 56) & 0x0F) * 4
    return version, ihl, (word >> 32) & 0xFFFF, s.g8(l3 + 9), (word & 0x1FFF) == 0


def _outer_ipv6(s: _Stages) -> None:
    idx = s.np.nonzero(s.ok & (s.et == ETH_P_IPV6))[0]
    if not len(idx):
        return
    l3, e = s.l3[idx], s.end[idx]
    nh, plen = s.g8(l3 + 6), s.g16(l3 + 4)
    bad = (l3 + 40 > e) | (s.g8(l3) >> 4 != 6) | s.among(nh, IPV6_EXT) | (plen == 0)
    idx, l3, e, nh, plen = s.keep(idx, bad, l3, e, nh, plen)
    s.ipend[idx] = l3 + 40 + plen
    s.end[idx] = s.np.minimum(e, l3 + 40 + plen)
    s.proto[idx] = nh
    s.l4[idx] = l3 + 40
    s.first[idx] = True
    s.outer_ip[idx] = 6


# -- transport and tunnels -------------------------------------------------------------------
def _udp(s: _Stages) -> None:
    np, ports = s.np, s.ports
    idx, u, e = s.select(s.ok & s.first & (s.proto == IPPROTO_UDP))
    if not len(idx):
        return
    idx, u, e = s.keep(idx, u + 8 > e, u, e)
    word = s.g64(u)  # Source Port, Destination Port, Length, Checksum
    sport, dport, length = (word >> 48) & 0xFFFF, (word >> 32) & 0xFFFF, (word >> 16) & 0xFFFF
    s.put("sport", idx, sport)
    s.put("dport", idx, dport)
    bad = (length < 8) | (u + length > s.ipend[idx])  # the UDP Length rules
    idx, u, sport, dport, e, length = s.keep(idx, bad, u, sport, dport, e, length)
    e = s.end[idx] = np.minimum(e, u + length)
    taken = s.among(dport, ports.geneve)
    if taken.all():
        _geneve(s, idx, u + 8, e)
        return
    _geneve(s, idx[taken], u[taken] + 8, e[taken])
    for kind, port_set in ((Kind.VXLAN_GPE, ports.gpe), (Kind.VXLAN, ports.vxlan)):
        mine = s.among(dport, port_set) & ~taken  # GPE first: the registry's order
        if mine.any():
            _vxlan(s, idx[mine], u[mine] + 8, e[mine], kind)
            taken |= mine
    mine = (s.among(dport, ports.l2tp) | s.among(sport, ports.l2tp)) & ~taken
    if mine.any():
        _l2tp_udp(s, idx[mine], u[mine] + 8, e[mine])
    _registered(s, idx, sport, dport, taken | mine, "udp")


def _registered(s: _Stages, idx: Any, sport: Any, dport: Any, taken: Any, transport: str) -> None:
    """Ports of kinds added with ``registry.register`` (``Ports.registered``): the
    decoder reads them from their records (the fallback stage)."""
    extra = sorted({port for proto, port, _name in s.ports.registered() if proto == transport})
    if extra:
        s.fail(idx, (s.among(dport, extra) | s.among(sport, extra)) & ~taken)


def _ip_kinds(s: _Stages) -> None:
    """Kinds added with ``registry.register`` directly over IP: the decoder reads them."""
    protos = _registered_ip_protocols()
    if protos:
        s.ok[s.ok & s.first & s.among(s.proto, protos)] = False


def _registered_ip_protocols() -> List[int]:
    """The IP protocols of kinds added with ``registry.register`` straight over IP."""
    return sorted(
        rec.ip_protocol
        for rec in registry.records()
        if rec.ip_protocol is not None and rec.ip_protocol not in (IPPROTO_GRE, IPPROTO_L2TP)
    )


def _geneve(s: _Stages, gi: Any, gp: Any, ge: Any) -> None:
    if not len(gi):
        return
    np = s.np
    s.kind[gi] = int(Kind.GENEVE)
    word = s.g64(gp)  # Ver, Opt Len, O, C, Rsvd., Protocol Type; VNI, Reserved (RFC 8926 §3.4)
    head = (word >> 32) & 0xFFFFFFFF
    oend = gp + 8 + ((head >> 24) & 0x3F) * 4
    bad = (gp + 8 > ge) | (head >> 30 != 0) | (oend > ge)
    gi, gp, oend, head, word = s.keep(gi, bad, gp, oend, head, word)
    s.crit[gi], s.oam[gi] = (head & 0x400000) != 0, (head & 0x800000) != 0
    s.identify(gi, None, (word >> 8) & 0xFFFFFF)
    _geneve_options(s, gi, gp + 8, oend)
    proto = head & 0xFFFF
    s.put("proto", gi, proto)
    what = np.where(
        proto == ETH_P_TEB, 0, np.where(proto == ETH_P_IP, 4, np.where(proto == ETH_P_IPV6, 6, -1))
    )
    sel = what >= 0
    if sel.all():
        s.add_inner(gi, oend, what)
    else:
        s.add_inner(gi[sel], oend[sel], what[sel])


def _geneve_options(s: _Stages, gi: Any, q: Any, oend: Any) -> None:
    """The options, walked one option index at a time for all packets."""
    more = q < oend
    if not more.all():
        gi, q, oend = gi[more], q[more], oend[more]
    while len(gi):
        head = s.g32(q)  # Option Class, Type, R R R and Length (RFC 8926 §3.5)
        cls, typ, ln = head >> 16, (head >> 8) & 0xFF, head & 0x1F
        s.opts.append((gi, cls, typ, ln, q))
        q = q + 4 + ln * 4
        over = q > oend
        if over.any():
            s.ok[gi[over]] = False
        more = q < oend  # not past the options, nor at their end
        if not more.all():
            gi, q, oend = gi[more], q[more], oend[more]


def _vxlan(s: _Stages, vi: Any, vp: Any, ve: Any, kind: Kind) -> None:
    if not len(vi):
        return
    np = s.np
    s.kind[vi] = int(kind)
    flags = s.g8(vp)
    bad = (vp + 8 > ve) | ((flags & 0x08) == 0)
    if kind == Kind.VXLAN_GPE:
        bad |= ((flags >> 4) & 0x03) != 0
    vi, vp, flags = s.keep(vi, bad, vp, flags)
    s.identify(vi, kind, s.g32(vp + 4) >> 8)
    if kind == Kind.VXLAN:
        s.add_inner(vi, vp + 8, 0)
        return
    s.oam[vi] = (flags & 0x01) != 0
    nxt = s.g8(vp + 3)
    pbit = (flags & 0x04) != 0
    s.put("proto", vi[pbit], nxt[pbit])
    what = np.where(~pbit | (nxt == 3), 0, np.where(nxt == 1, 4, np.where(nxt == 2, 6, -1)))
    sel = what >= 0
    s.add_inner(vi[sel], vp[sel] + 8, what[sel])


def _l2tp_udp(s: _Stages, li: Any, lp: Any, le: Any) -> None:
    if not len(li):
        return
    v3 = (lp + 2 <= le) & ((s.g16(lp) & 0x000F) == 3)  # else L2F / L2TPv2: no tunnel
    li, lp, le = li[v3], lp[v3], le[v3]
    s.kind[li] = int(Kind.L2TPV3)
    data = (s.g16(lp) & 0x8000) == 0
    s.put("control", li, s.np.where(data, 0, 1))
    s.fail(li, ~data & (lp + 12 > le))  # short control header
    li, lp, le = li[data], lp[data], le[data]
    li, lp = s.keep(li, lp + 8 > le, lp)
    s.identify(li, Kind.L2TPV3, s.g32(lp + 4))
    s.add_inner(li, lp + 8 + s.l2tp_skip, 0)


def _stt(s: _Stages, in_order: bool) -> None:
    idx, t, e = s.select(s.ok & s.first & (s.proto == IPPROTO_TCP))
    if not len(idx):
        return
    has = t + 4 <= e
    if s.det is not None:
        s.put("sport", idx[has], s.g16(t[has]))
        s.put("dport", idx[has], s.g16(t[has] + 2))
    sel = has & s.among(s.g16(t + 2), s.ports.stt)
    _registered(s, idx[has], s.g16(t[has]), s.g16(t[has] + 2), sel[has], "tcp")
    idx, t, e = idx[sel], t[sel], e[sel]
    s.kind[idx] = int(Kind.STT)
    if in_order:  # context IDs flow from first to later segments: the decoder, in order
        s.ok[idx] = False
        return
    doff = (s.g8(t + 12) >> 4) * 4
    idx, t, e, doff = s.keep(idx, (t + 20 > e) | (doff < 20) | (t + doff > e), t, e, doff)
    head = s.g16(t + 6) == 0  # segment offset 0: the STT header is here
    idx, hdr, e = idx[head], (t + doff)[head], e[head]
    idx, hdr = s.keep(idx, (hdr + STT_HDR_LEN > e) | (s.g8(hdr) != 0), hdr)
    np = s.np
    s.identify(
        idx, Kind.STT, (s.g32(hdr + 8).astype(np.uint64) << np.uint64(32)) | s.g32(hdr + 12).astype(np.uint64)
    )
    s.add_inner(idx, hdr + STT_HDR_LEN, 0)


def _nvgre(s: _Stages) -> None:
    idx, t, e = s.select(s.ok & s.first & (s.proto == IPPROTO_GRE))
    if not len(idx):
        return
    flags, proto = s.g16(t), s.g16(t + 2)
    # RFC 7637's exact header (K=1, C=R=S=0, version 0, TEB) here; any other GRE: the decoder
    exact = ((flags & (GRE_C | GRE_R | GRE_K | GRE_S | GRE_VER)) == GRE_K) & (proto == ETH_P_TEB)
    idx, t = s.keep(idx, ~exact | (t + 8 > e), t)
    key = s.g32(t + 4)
    s.identify(idx, Kind.NVGRE, key >> 8)
    s.put("flow", idx, key & 0xFF)
    s.add_inner(idx, t + 8, 0)


def _l2tp_ip(s: _Stages) -> None:
    idx, t, e = s.select(s.ok & s.first & (s.proto == IPPROTO_L2TP))
    if not len(idx):
        return
    s.kind[idx] = int(Kind.L2TPV3)
    idx, t, e = s.keep(idx, t + 4 > e, t, e)
    session = s.g32(t)
    data = session != 0  # Session ID 0: a control message
    s.put("control", idx, s.np.where(data, 0, 1))
    s.fail(idx, ~data & (t + 16 > e))
    idx, t, session = idx[data], t[data], session[data]
    s.identify(idx, Kind.L2TPV3, session)
    s.add_inner(idx, t + 4 + s.l2tp_skip, 0)


# -- inner frames ---------------------------------------------------------------------------
def _inner(s: _Stages) -> None:
    if not s.inners:
        return
    np = s.np
    idx, pos, what = (np.concatenate(column) for column in zip(*_inner_parts(np, s.inners)))
    keep = s.ok[idx]
    if not keep.all():
        idx, pos, what = idx[keep], pos[keep], what[keep]
    if s.det is not None:
        s.put("inner_ethertype", idx, np.where(what == 4, ETH_P_IP, np.where(what == 6, ETH_P_IPV6, -1)))
    eth = what == 0
    if eth.all():
        pos, what = _inner_ethernet(s, idx, pos)
    elif eth.any():
        pos[eth], what[eth] = _inner_ethernet(s, idx[eth], pos[eth])
    for version in (4, 6):
        sel = (what == version) & s.ok[idx]
        if sel.all():
            _inner_ip(s, idx, pos, version)
        elif sel.any():
            _inner_ip(s, idx[sel], pos[sel], version)


def _inner_parts(np: Any, parts: List[Tuple[Any, Any, Any]]) -> List[Tuple[Any, Any, Any]]:
    """The inner-frame parts with WHAT as an int64 array per packet (a writable copy)."""
    return [
        (idx, pos, np.full(len(idx), what, np.int64) if np.ndim(what) == 0 else what.astype(np.int64))
        for idx, pos, what in parts
    ]


def _inner_ethernet(s: _Stages, ii: Any, ep: Any) -> Tuple[Any, Any]:
    """Inner Ethernet and up to two VLAN tags: (IP offsets, 4 / 6 / -1 for non-IP)."""
    np = s.np
    ee = s.end[ii]
    good = ep + 14 <= ee
    et = s.g16(ep + 12)
    ep = ep + 14
    for _ in range(2):
        tag = s.among(et, _TPIDS)
        if not tag.any():
            break
        good &= ~tag | (ep + 4 <= ee)
        et = np.where(tag, s.g16(ep + 2), et)
        ep = np.where(tag, ep + 4, ep)
    good &= ~s.among(et, _TPIDS)
    s.fail(ii, ~good)
    s.put("inner_ethertype", ii, et)
    what = np.where(et == ETH_P_IP, 4, np.where(et == ETH_P_IPV6, 6, -1))
    nonip = good & (what == -1)
    if nonip.any():
        s.inner[ii[nonip]] = INNER_NONIP | et[nonip]
    return ep, what


def _inner_ip(s: _Stages, ii: Any, ip: Any, version: int) -> None:
    np = s.np
    ie = s.end[ii]
    if version == 4:
        ver, ihl, tot, proto, first = _ipv4_header(s, ip)
        bad = (ip + 20 > ie) | (ver != 4) | (ihl < 20) | (ip + ihl > ie) | (tot < ihl)
        ipend, l4 = ip + tot, ip + ihl
    else:
        proto, plen = s.g8(ip + 6), s.g16(ip + 4)
        bad = (ip + 40 > ie) | (s.g8(ip) >> 4 != 6) | s.among(proto, IPV6_EXT) | (plen == 0)
        ipend = ip + 40 + plen
        l4, first = ip + 40, np.ones(len(ii), bool)
    ie = np.minimum(ie, ipend)
    ported = first & s.among(proto, (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP))
    bad |= ported & (l4 + 4 > ie)
    if bad.any():
        s.ok[ii[bad]] = False
        s.inner[ii[~bad]] = proto[~bad]
    else:
        s.inner[ii] = proto
    if s.det is not None:
        s.put("inner_pos", ii, ip)
        s.put("inner_version", ii, version)
        s.put("inner_proto", ii, proto)
        s.put("inner_l4", ii, l4)
        s.put("inner_ipend", ii, ipend)
        port_pair = s.g32(l4[ported])
        s.put("inner_sport", ii[ported], port_pair >> 16)
        s.put("inner_dport", ii[ported], port_pair & 0xFFFF)


# -- options, fallback, result -----------------------------------------------------------------
def _options(s: _Stages) -> Tuple[Any, Any, Any, Any, Any]:
    """The options of the packets parsed here, flattened: (packet, class, type, length,
    position of the option header in the chunk)."""
    np = s.np
    if s.flat_opts is not None:
        return s.flat_opts
    if not s.opts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, empty
    cols = [np.concatenate([part[k] for part in s.opts]).astype(np.int64, copy=False) for k in range(5)]
    keep = s.ok[cols[0]]
    if keep.all():
        return cols[0], cols[1], cols[2], cols[3], cols[4]
    return cols[0][keep], cols[1][keep], cols[2][keep], cols[3][keep], cols[4][keep]


def _decoded_inner(dec: Decoded) -> int:
    """The inner protocol key of a decoded packet (as ``scan_record.inner_key``)."""
    if dec.kind is None:
        return NO_INNER
    if dec.inner_ip is not None:
        return dec.inner_ip.proto
    if dec.inner_ethertype >= 0 and dec.inner_ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return INNER_NONIP | dec.inner_ethertype
    return NO_INNER


class _Fallback:
    """The packets the decoder reads: their columns, options and (with detail) records."""

    def __init__(self, s: _Stages) -> None:
        self.idx = s.np.nonzero(~s.ok)[0]
        self.reasons: Dict[int, str] = {}
        self.records: Dict[int, ScanRecord] = {}
        self.options: List[Tuple[int, int, int, int]] = []

    def run(
        self,
        s: _Stages,
        batch: Batch,
        cookie: int,
        l2ss: bool,
        state: Optional[DecodeState],
        out: BatchResult,
    ) -> None:
        buf, ports = batch.buf, s.ports
        for i in self.idx.tolist():
            d, c = int(s.data_off[i]), int(s.caplen[i])
            dec = decode(
                bytes(buf[d : d + c]), int(s.linktype[i]), ports, cookie, l2ss, state, int(s.wirelen[i])
            )
            if s.det is not None:
                self.records[i] = record_from_decoded(
                    ScanRecord(caplen=c, wirelen=int(s.wirelen[i]), linktype=int(s.linktype[i])), dec
                )
            self.put(s, out, i, dec)

    def put(self, s: _Stages, out: BatchResult, i: int, dec: Decoded) -> None:
        s.kind[i] = dec.kind_code
        s.has_vni[i] = dec.vni is not None
        s.vni[i] = dec.vni or 0
        s.crit[i], s.oam[i] = bool(dec.critical), bool(dec.oam)
        s.outer_ip[i] = 0 if dec.ip is None else dec.ip.version
        s.inner[i] = _decoded_inner(dec)
        out.malformed[i], out.snapped[i] = dec.malformed, dec.snapped
        out.skipped[i] = dec.skipped is not None
        if dec.malformed:
            self.reasons[i] = dec.reason or "malformed"
        self.options.extend((i, o.classid, o.type, o.length) for o in dec.options)


def analyse_batch(
    batch: Batch,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    state: Optional[DecodeState] = None,
    detail: bool = False,
) -> BatchResult:
    """Parse every packet of BATCH at once; returns a :class:`BatchResult`.

    With a ``state``, STT packets go through the decoder, in order, so
    continuation segments inherit their frame's context ID.  With ``detail``,
    ``res.detail`` also holds what :func:`~scapy_geneve.capture.scan.scan` needs
    to build a full :class:`ScanRecord` per packet (see :class:`BatchResult`).
    """
    np = numpy()
    s = _Stages(np, batch, ports, l2tp_cookie + (4 if l2tp_l2ss else 0), detail)
    in_order = state is not None or detail
    if COMPILED_PASS is not None and s.n:
        _compiled_stages(COMPILED_PASS, s, batch, in_order)
    else:
        numpy_stages(s, in_order)
    res = _result(s, batch)
    fallback = _Fallback(s)
    fallback.run(s, batch, l2tp_cookie, l2tp_l2ss, state, res)
    _finish(s, res, fallback)
    return res


def numpy_stages(s: _Stages, in_order: bool) -> None:
    """The stages in numpy: the reference of the compiled pass (``_batch.c``)."""
    s.start_numpy()
    for stage in (_link, _outer_ipv4, _outer_ipv6, _ip_kinds, _udp, _nvgre, _l2tp_ip):
        stage(s)
    _stt(s, in_order)
    _inner(s)


# -- the compiled pass ---------------------------------------------------------------------------
#: The compiled pass (``_batch.c``), or None: the numpy stages run.
COMPILED_PASS = compiled_module("_batch")

# ``_batch.c``'s port table: one bit per port set (its P_* defines), and its protocol table's
_PORT_BITS = (("geneve", 1), ("gpe", 2), ("vxlan", 4), ("l2tp", 8), ("stt", 16))
_REGISTERED_BITS = {"udp": 32, "tcp": 64}
_IP_EXT, _IP_REGISTERED, _IP_PORTED = 1, 2, 4


def _c_constants() -> Tuple[int, ...]:
    """The protocol numbers and kind codes ``_batch.c`` reads (its Consts, in order)."""
    return (
        ETH_P_IP,
        ETH_P_IPV6,
        ETH_P_TEB,
        IPPROTO_UDP,
        IPPROTO_TCP,
        IPPROTO_GRE,
        IPPROTO_L2TP,
        GRE_C | GRE_R | GRE_K | GRE_S | GRE_VER,
        GRE_K,
        STT_HDR_LEN,
        INNER_NONIP,
        int(Kind.GENEVE),
        int(Kind.VXLAN),
        int(Kind.VXLAN_GPE),
        int(Kind.L2TPV3),
        int(Kind.NVGRE),
        int(Kind.STT),
    )


def _c_links() -> Tuple[Tuple[int, int, int], ...]:
    """(link type, link header length, EtherType offset; -1: raw IP) of the link types read here."""
    ether = tuple((lt, hlen, at) for lt, (hlen, at) in _ETHER_LIKE.items())
    return ether + tuple((lt, 0, -1) for lt in _RAW_IP)


def _port_table(np: Any, ports: Ports) -> Any:
    """65536 bytes: each port's bits (``_PORT_BITS``; the registered kinds' ports too; a port
    outside 0-65535, or a transport neither UDP nor TCP, matches no packet: left out)."""
    table = np.zeros(65536, np.uint8)
    for field, bit in _PORT_BITS:
        table[[port for port in getattr(ports, field) if 0 <= port <= 0xFFFF]] |= bit
    for transport, port, _name in ports.registered():  # a port no packet has matches nothing, as in numpy
        if transport in _REGISTERED_BITS and 0 <= port <= 0xFFFF:
            table[port] |= _REGISTERED_BITS[transport]
    return table


def _proto_table(np: Any) -> Any:
    """256 bytes: IPv6 extension headers, kinds registered over IP (as ``_ip_kinds``), ports."""
    table = np.zeros(256, np.uint8)
    table[sorted(IPV6_EXT)] |= _IP_EXT
    table[_registered_ip_protocols()] |= _IP_REGISTERED
    table[[IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP]] |= _IP_PORTED
    return table


def _compiled_stages(module: Any, s: _Stages, batch: Batch, in_order: bool) -> None:
    """Every stage in one compiled pass, filling the same arrays as :func:`numpy_stages`."""
    np = s.np
    out = (s.ok, s.kind, s.vni, s.has_vni, s.crit, s.oam, s.inner, s.outer_ip, s.l3)
    raw = module.analyse(
        batch.buf,
        np.ascontiguousarray(s.data_off),
        np.ascontiguousarray(s.caplen),
        np.ascontiguousarray(s.linktype),
        _c_links(),
        _TPIDS,
        _c_constants(),
        _port_table(np, s.ports),
        _proto_table(np),
        s.l2tp_skip,
        in_order,
        out,
        s.det_rows,
    )
    s.flat_opts = tuple(np.frombuffer(column, dtype=np.int64) for column in raw[:5])
    s.opt_data = raw[5] if s.det is not None else None


def _result(s: _Stages, batch: Batch) -> BatchResult:
    res = BatchResult()
    np, n = s.np, s.n
    res.n, res.first, res.detail = n, batch.first, None
    res.wirelen, res.caplen, res.ts_ns, res.linktype = s.wirelen, s.caplen, s.ts_ns, s.linktype
    res.malformed, res.snapped, res.skipped = (np.zeros(n, bool) for _ in range(3))
    res.opt_pkt, res.opt_class, res.opt_type, res.opt_len, s.opt_pos = _options(s)
    return res


def _finish(s: _Stages, res: BatchResult, fallback: _Fallback) -> None:
    np = s.np
    res.kind, res.vni, res.has_vni, res.crit, res.oam = s.kind, s.vni, s.has_vni, s.crit, s.oam
    res.inner, res.outer_ip, res.reasons = s.inner, s.outer_ip, fallback.reasons
    res.fallback = len(fallback.idx)
    if fallback.options:
        extra = np.array(fallback.options, dtype=np.int64)
        res.opt_pkt, res.opt_class, res.opt_type, res.opt_len = (
            np.concatenate([old, extra[:, k]])
            for k, old in enumerate((res.opt_pkt, res.opt_class, res.opt_type, res.opt_len))
        )
    if s.det is not None:
        res.detail = dict(
            s.det, ok=s.ok, l3=s.l3, records=fallback.records, opt_pos=s.opt_pos, opt_data=s.opt_data
        )
