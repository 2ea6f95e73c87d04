"""Fast scanning of tunnel captures without building Scapy packets.

``scan(path)`` yields one light :class:`ScanRecord` per packet: outer
addresses and ports, the encapsulation (Geneve, VXLAN, VXLAN-GPE, NVGRE, STT,
L2TPv3), its identifier (VNI, VSID, context ID or session ID), the Geneve
options as class/type/critical/length, the inner 5-tuple, and a malformed flag
with its reason.  No Scapy is imported.

The module is the front of four smaller ones, whose names stay importable from
here:

- :mod:`~scapy_geneve.capture.scan_record`: :class:`ScanRecord` and
  :func:`parse_packet`, built on the one wire decoder
  (:func:`scapy_geneve.capture.decode.decode`);
- :mod:`~scapy_geneve.capture.scan_batch`: the vectorised path,
  :func:`analyse_batch`, each chunk parsed for all its packets at once with
  numpy; the packets that are not plain go through the decoder, and a
  hypothesis test proves both paths equal;
- :mod:`~scapy_geneve.capture.scan_stats`: :class:`ScanStats` (mergeable) and
  :func:`compute_stats`;
- :mod:`~scapy_geneve.capture.scan_filter`: :class:`PacketFilter` and
  :func:`filter_capture`.

Wire formats recognised (the ports are the registry's, extended with
:meth:`Ports.extended <scapy_geneve.registry.Ports.extended>`):

========== ================================ ======================================
kind       where                            identifier (``vni``)
========== ================================ ======================================
geneve     UDP dport 6081 (RFC 8926)        VNI, 24 bits
vxlan      UDP dport 4789, 8472, 48879      VNI, 24 bits (RFC 7348)
vxlan-gpe  UDP dport 4790                   VNI, 24 bits (draft-ietf-nvo3-vxlan-gpe)
nvgre      GRE with K=1, C=R=S=0, 0x6558    VSID = key >> 8; ``flow_id`` = key & 0xFF
           (other GRE is plain GRE: no kind)
stt        TCP dport 7471                   context ID, 64 bits, read in the segment
                                            whose offset (seq & 0xFFFF) is 0; later
                                            segments of that frame inherit it
l2tpv3     IP proto 115; UDP 1701 with      session ID, 32 bits (0 over IP, or the T
           version nibble 3 (RFC 3931)      bit over UDP, is a control message)
========== ================================ ======================================
"""

import os
import socket
from typing import Any, Dict, Iterator, List, Tuple, Union

from scapy_geneve.capture.decode import SUPPORTED_LINKTYPES, DecodeState
from scapy_geneve.capture.pcapio import Batch
from scapy_geneve.capture.scan_batch import DETAIL_COLUMNS, BatchResult, analyse_batch, numpy
from scapy_geneve.capture.scan_filter import (
    FilterResult,
    PacketFilter,
    filter_capture,
    matching_packets,
    matching_records,
)
from scapy_geneve.capture.scan_io import batches
from scapy_geneve.capture.scan_record import (
    KINDS,
    NO_TS,
    GeneveOptionInfo,
    ScanRecord,
    ScanState,
    inner_protocol_name,
    parse_packet,
)
from scapy_geneve.capture.scan_stats import ScanStats, compute_stats
from scapy_geneve import registry
from scapy_geneve.registry import DEFAULT_PORTS, Kind, Ports

__all__ = [
    "KINDS",
    "Ports",
    "DEFAULT_PORTS",
    "GeneveOptionInfo",
    "ScanRecord",
    "ScanState",
    "parse_packet",
    "scan",
    "ScanStats",
    "compute_stats",
    "PacketFilter",
    "filter_capture",
    "warm_up",
    "matching_packets",
    "matching_records",
    "analyse_batch",
    "BatchResult",
    "FilterResult",
    "inner_protocol_name",
    "SUPPORTED_LINKTYPES",
]


def warm_up() -> None:
    """Import what the first pass over a capture imports on first use (numpy), so
    that worker processes forked after this start with it."""
    numpy()


def scan(
    path: Union[str, "os.PathLike[str]"],
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    vectorised: bool = True,
) -> Iterator[ScanRecord]:
    """Yield a :class:`ScanRecord` for every packet of a pcap/pcapng file.

    Streams: memory does not grow with the file.  A damaged file raises
    :class:`~scapy_geneve.errors.CaptureError` (naming the file, byte offset
    and packet number) after every packet before the damage has been yielded.
    So does a pcap of a link type scan cannot read; in a pcapng, the packets of
    such an interface are yielded with ``skipped`` set (the reason) and the
    other interfaces are read as usual.

    Each chunk is first parsed for all its packets at once (numpy) and the
    records are built from those columns; packets that are not plain go
    through the wire decoder.  ``vectorised=False`` runs :func:`parse_packet`
    (the decoder) on every packet: the reference, with the same records.
    """
    state = DecodeState()
    for batch in batches(path):
        if vectorised:
            res = analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state, detail=True)
            yield from _Builder(batch, res).records()
            del res
            continue
        for record in batch.records():
            rec = ScanRecord(
                record.number,
                record.offset,
                record.ts_ns,
                record.caplen,
                record.wirelen,
                record.linktype,
                record.interface,
            )
            yield parse_packet(
                record.data,
                record.linktype,
                ports=ports,
                l2tp_cookie=l2tp_cookie,
                l2tp_l2ss=l2tp_l2ss,
                record=rec,
                state=state,
            )


_ntop, _AF4, _AF6 = socket.inet_ntop, socket.AF_INET, socket.AF_INET6
_KIND_NAMES = {int(record.kind): record.name for record in registry.records()}
_COLUMNS = ("l3",) + DETAIL_COLUMNS  # the detail columns a record is built from


class _Builder:
    """ScanRecords of one batch from :func:`analyse_batch`'s detail columns."""

    def __init__(self, batch: Batch, res: BatchResult) -> None:
        np = numpy()
        self.batch, self.res = batch, res
        self.det: Dict[str, Any] = res.detail or {}
        self.iface = [0] * res.n if batch.pcap_linktype >= 0 else list(batch.fields[6])
        self.ts, self.caplen, self.wirelen, self.linktype = (
            res.ts_ns.tolist(),
            res.caplen.tolist(),
            res.wirelen.tolist(),
            res.linktype.tolist(),
        )
        self.kind, self.vni, self.has_vni = res.kind.tolist(), res.vni.tolist(), res.has_vni.tolist()
        self.crit, self.oam, self.outer = res.crit.tolist(), res.oam.tolist(), res.outer_ip.tolist()
        self.opts = _options_by_packet(np, res, self.det["ok"]) if res.n else {}
        self.outer_proto = self._outer_protocols(np)

    def _outer_protocols(self, np: Any) -> List[int]:
        """The outer IP protocol (IPv4) or next header (IPv6) of each plain packet."""
        B = np.frombuffer(self.batch.buf, dtype=np.uint8)
        at = np.where(self.res.outer_ip == 6, self.det["l3"] + 6, self.det["l3"] + 9)
        out: List[int] = B.take(at, mode="clip").tolist()
        return out

    def records(self) -> Iterator[ScanRecord]:
        res, batch = self.res, self.batch
        if not res.n:
            return
        base, first, starts = batch.base, batch.first, batch.starts
        ok, fallback = self.det["ok"].tolist(), self.det["records"]
        columns = zip(*(self.det[name].tolist() for name in _COLUMNS))
        for i, row in enumerate(columns):
            ts = self.ts[i]
            if ok[i]:
                rec = ScanRecord(
                    first + i,
                    base + starts[i],
                    None if ts == NO_TS else ts,
                    self.caplen[i],
                    self.wirelen[i],
                    self.linktype[i],
                    self.iface[i],
                )
                self._fill(rec, i, *row)
            else:
                rec = fallback[i]
                rec.number, rec.offset = first + i, base + starts[i]
                rec.ts_ns = None if ts == NO_TS else ts
                rec.interface = self.iface[i]
            yield rec

    def _fill(
        self,
        rec: ScanRecord,
        i: int,
        l3: int,
        vlan_n: int,
        vlan1: int,
        vlan2: int,
        sport: int,
        dport: int,
        proto: int,
        flow: int,
        control: int,
        iet: int,
        ipos: int,
        iver: int,
        iproto: int,
        isport: int,
        idport: int,
    ) -> None:
        buf = self.batch.buf
        if vlan_n:
            rec.vlans = (vlan1,) if vlan_n == 1 else (vlan1, vlan2)
        outer = self.outer[i]
        if outer == 4:
            rec.outer_ip, rec.outer_proto = 4, self.outer_proto[i]
            rec.outer_src, rec.outer_dst = (
                _ntop(_AF4, buf[l3 + 12 : l3 + 16]),
                _ntop(_AF4, buf[l3 + 16 : l3 + 20]),
            )
        elif outer:
            rec.outer_ip, rec.outer_proto = 6, self.outer_proto[i]
            rec.outer_src, rec.outer_dst = (
                _ntop(_AF6, buf[l3 + 8 : l3 + 24]),
                _ntop(_AF6, buf[l3 + 24 : l3 + 40]),
            )
        if sport >= 0:
            rec.outer_sport, rec.outer_dport = sport, dport
        code = self.kind[i]
        if not code:
            return
        self._fill_tunnel(rec, i, code, proto, flow, control)
        if iet >= 0:
            rec.inner_ethertype = iet
            if ipos >= 0:
                if iver == 4:
                    rec.inner_src = _ntop(_AF4, buf[ipos + 12 : ipos + 16])
                    rec.inner_dst = _ntop(_AF4, buf[ipos + 16 : ipos + 20])
                else:
                    rec.inner_src = _ntop(_AF6, buf[ipos + 8 : ipos + 24])
                    rec.inner_dst = _ntop(_AF6, buf[ipos + 24 : ipos + 40])
                rec.inner_proto = iproto
                if isport >= 0:
                    rec.inner_sport, rec.inner_dport = isport, idport

    def _fill_tunnel(self, rec: ScanRecord, i: int, code: int, proto: int, flow: int, control: int) -> None:
        rec.kind = _KIND_NAMES[code]
        if self.has_vni[i]:
            rec.vni = self.vni[i]
        if code == Kind.GENEVE:
            rec.oam, rec.critical, rec.proto = self.oam[i], self.crit[i], proto
            rec.options = self.opts.get(i, ())
        elif code == Kind.VXLAN_GPE:
            rec.oam = self.oam[i]
            if proto >= 0:
                rec.proto = proto
        elif code == Kind.NVGRE:
            rec.flow_id = flow
        elif code == Kind.L2TPV3:
            rec.control = bool(control)


def _options_by_packet(np: Any, res: BatchResult, ok: Any) -> Dict[int, Tuple[GeneveOptionInfo, ...]]:
    """Geneve options of the plain packets, grouped per packet in wire order."""
    opts: Dict[int, Tuple[GeneveOptionInfo, ...]] = {}
    if not len(res.opt_pkt):
        return opts
    mine = ok[res.opt_pkt]
    pkt = res.opt_pkt[mine]
    order = np.argsort(pkt, kind="stable")
    owners = pkt[order].tolist()
    triples = list(
        zip(
            res.opt_class[mine][order].tolist(),
            res.opt_type[mine][order].tolist(),
            res.opt_len[mine][order].tolist(),
        )
    )
    cache: Dict[Tuple[Tuple[int, int, int], ...], Tuple[GeneveOptionInfo, ...]] = {}
    k, total = 0, len(owners)
    while k < total:
        j = k
        while j < total and owners[j] == owners[k]:
            j += 1
        key = tuple(triples[k:j])
        value = cache.get(key)
        if value is None:
            value = cache[key] = tuple(GeneveOptionInfo(c, t, bool(t & 0x80), ln) for c, t, ln in key)
        opts[owners[k]] = value
        k = j
    return opts
