"""One line per packet, and the same facts as fields, from the wire decoder (no Scapy).

``Summarizer(numeric=True)(decoded, data)`` gives ``show``'s one-liner::

    outer | tunnel | inner

- outer: ``src:sport > dst:dport UDP`` (IPv6 ``[addr]:port``), or the link/IP
  description of a packet that carries no tunnel;
- tunnel: the registry title, the identifier under the kind's own name (``vni``,
  ``vsid``, ``context_id``, ``session_id``), flags (Geneve ``[O,C]``, VXLAN flags
  other than I, GPE ``[O]``), the protocol when it is not Ethernet, and the Geneve
  options by class and type with their IANA names and, for the options
  scapy_geneve has typed layers for (OVN, AWS GWLB, GCP, INT, Cilium, cPacket),
  their fields (``OVN 0x0102/0x80(C) [ingress_port=1 egress_port=2]``); plain
  GRE shows as ``GRE`` with its protocol and key;
- inner: the inner 5-tuple and, as tcpdump prints them, TCP ``Flags [S.]``,
  ``seq A:B``, ``ack``, ``win`` and ``length`` (payload bytes), UDP ``length``,
  ICMP type names; non-IP frames by EtherType;
- ``[malformed: WHY at offset N]`` as ``stats`` counts it, ``[snapped at N
  bytes]`` when the capture cut the frame.

:meth:`Summarizer.fields` gives every value of the line as a flat dict; its keys
are :data:`FIELDS` (the names ``show -T fields -e`` and ``show --json`` use).

Typed Geneve option fields are read from the layers' declarations
(``scapy_geneve.layers.geneve.registered_options``): the bit layout of each typed
option is taken once from its ``fields_desc`` and applied to the wire bytes,
so the facts stay in the layer and no packet is built.
"""

import socket
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

from scapy_geneve import registry
from scapy_geneve.capture.decode import Decoded, GeneveOptionHeader, IPHeader, L4Header
from scapy_geneve.consts import option_class_name

__all__ = ["Summarizer", "FastSummarizer", "FIELDS", "tcp_flags", "option_fields"]

#: ``show -T fields -e NAME`` / ``show --json`` keys, in output order, with their meaning.
FIELDS: Dict[str, str] = {
    "number": "packet number in the file (1-based)",
    "time": "seconds since the epoch (decimal string, µs; empty: no timestamp)",
    "time_ns": "nanoseconds since the epoch",
    "caplen": "bytes captured",
    "wirelen": "bytes on the wire",
    "linktype": "link type of the record",
    "vlans": "outer VLAN IDs (comma-separated)",
    "outer.version": "outer IP version (4 or 6)",
    "outer.src": "outer source address",
    "outer.dst": "outer destination address",
    "outer.proto": "outer IP protocol (17 UDP, 6 TCP, 47 GRE, 115 L2TP)",
    "outer.sport": "outer UDP/TCP source port",
    "outer.dport": "outer UDP/TCP destination port",
    "kind": "encapsulation (registry name: geneve, vxlan, vxlan-gpe, nvgre, stt, l2tpv3)",
    "id": "identifier: VNI, NVGRE VSID, STT context ID, L2TPv3 session ID",
    "id.name": "the kind's name for it (vni, vsid, context_id, session_id)",
    "flags": "tunnel flags (Geneve O,C; VXLAN flags byte; GRE flags)",
    "oam": "Geneve / VXLAN-GPE O bit",
    "critical": "Geneve C bit",
    "proto": "Geneve Protocol Type / GPE Next Protocol / GRE Protocol Type",
    "flow_id": "NVGRE FlowID",
    "gre.key": "GRE key (plain GRE and NVGRE)",
    "options": "Geneve options as the one-liner shows them",
    "option.class": "Geneve option classes (comma-separated, 0x hex)",
    "option.type": "Geneve option types (comma-separated, 0x hex; 0x80 = critical)",
    "inner.ethertype": "inner EtherType",
    "inner.src": "inner source address",
    "inner.dst": "inner destination address",
    "inner.proto": "inner IP protocol",
    "inner.sport": "inner source port",
    "inner.dport": "inner destination port",
    "tcp.flags": "inner TCP flags as tcpdump prints them (S, F, R, P, ., U, E, W)",
    "tcp.seq": "inner TCP sequence number",
    "tcp.ack": "inner TCP acknowledgment number",
    "tcp.win": "inner TCP window",
    "length": "inner L4 payload bytes (what tcpdump's length says)",
    "malformed": "1 if the bytes contradict a header",
    "reason": "why it is malformed",
    "reason.offset": "byte offset in the frame where",
    "snapped": "1 if the capture's snaplen cut the frame before its headers ended",
    "summary": "the whole one-liner",
}

ETHERTYPE_NAMES = {
    0x0800: "IPv4",
    0x86DD: "IPv6",
    0x0806: "ARP",
    0x8035: "RARP",
    0x88CC: "LLDP",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x894F: "NSH",
    0x88E5: "MACsec",
    0x8809: "Slow protocols",
    0x6558: "TEB",
    0x88F7: "PTP",
    0x8100: "802.1Q",
    0x88A8: "802.1ad",
}
GPE_NEXT_NAMES = {1: "IPv4", 2: "IPv6", 3: "Ethernet", 4: "NSH", 5: "MPLS"}
PROTO_NAMES = {
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMP6",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    115: "L2TP",
    132: "SCTP",
}
ICMP_NAMES = {
    (4, 0): "echo reply",
    (4, 8): "echo request",
    (4, 3): "unreachable",
    (4, 11): "time exceeded",
    (4, 5): "redirect",
    (6, 128): "echo request",
    (6, 129): "echo reply",
    (6, 1): "unreachable",
    (6, 2): "packet too big",
    (6, 3): "time exceeded",
    (6, 133): "router solicitation",
    (6, 134): "router advertisement",
    (6, 135): "neighbor solicitation",
    (6, 136): "neighbor advertisement",
}
# tcpdump's tcp_flag_values order: FIN SYN RST PUSH ACK URG ECE CWR
_TCP_FLAG_CHARS = (
    (0x01, "F"),
    (0x02, "S"),
    (0x04, "R"),
    (0x08, "P"),
    (0x10, "."),
    (0x20, "U"),
    (0x40, "E"),
    (0x80, "W"),
)
_U16 = struct.Struct("!H").unpack_from
_RECORDS = {int(rec.kind): rec for rec in registry.records()}


def tcp_flags(flags: int) -> str:
    """TCP flags as tcpdump prints them inside ``Flags [...]`` (``none`` when none)."""
    text = "".join(ch for bit, ch in _TCP_FLAG_CHARS if flags & bit)
    return text or "none"


_TCP_FLAGS = [tcp_flags(i) for i in range(256)]


class _Addresses(Dict[bytes, str]):
    """Address bytes -> text, memoised (a capture repeats its addresses)."""

    def __missing__(self, raw: bytes) -> str:
        text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
        if len(self) < 1 << 16:
            self[raw] = text
        return text


def _flat_int(value: Optional[int]) -> Any:
    return None if value is None or value < 0 else value


class Summarizer:
    """Formats decoded packets; holds the caches of one pass (addresses, options, ports).

    ``numeric``: ports as numbers (else service names where the system knows one).
    """

    def __init__(self, numeric: bool = True) -> None:
        self.numeric = numeric
        self._addr = _Addresses()
        self._ports: Dict[Tuple[int, str], str] = {}
        self._options: Dict[bytes, str] = {}

    # -- pieces -------------------------------------------------------------------------
    def port(self, port: int, proto: str) -> str:
        if self.numeric:
            return str(port)
        key = (port, proto)
        text = self._ports.get(key)
        if text is None:
            try:
                text = socket.getservbyport(port, proto)
            except (OSError, OverflowError):
                text = str(port)
            self._ports[key] = text
        return text

    def endpoints(self, ip: IPHeader, l4: Optional[L4Header]) -> str:
        """``src:sport > dst:dport`` (IPv6 ``[src]:sport``), or ``src > dst`` without ports."""
        src, dst = self._addr[ip.src_b], self._addr[ip.dst_b]
        if l4 is None or l4.sport < 0 or l4.proto not in (6, 17, 132):
            return "%s > %s" % (src, dst)
        name = "tcp" if l4.proto == 6 else "udp"
        if ip.version == 6:
            return "[%s]:%s > [%s]:%s" % (src, self.port(l4.sport, name), dst, self.port(l4.dport, name))
        return "%s:%s > %s:%s" % (src, self.port(l4.sport, name), dst, self.port(l4.dport, name))

    def transport(self, ip: IPHeader, l4: Optional[L4Header], data: bytes, payload_len: int) -> str:
        """What follows the addresses: ``TCP Flags [P.], seq 1:40, ack 1, win 227, length 39``."""
        proto = ip.proto
        if l4 is not None and proto == 6 and l4.flags >= 0:
            flags = l4.flags
            parts = ["TCP Flags [%s]" % _TCP_FLAGS[flags & 0xFF]]
            length = max(payload_len, 0)
            if length or flags & 0x07:
                parts.append(
                    "seq %d:%d" % (l4.seq, (l4.seq + length) & 0xFFFFFFFF) if length else "seq %d" % l4.seq
                )
            if flags & 0x10:
                parts.append("ack %d" % l4.ack)
            parts.append("win %d" % _U16(data, l4.off + 14)[0])
            parts.append("length %d" % length)
            return ", ".join(parts)
        if proto == 17:
            return "UDP length %d" % payload_len if payload_len >= 0 else "UDP"
        if proto in (1, 58) and ip.l4_off + 2 <= len(data) and not ip.frag:
            typ, code = data[ip.l4_off], data[ip.l4_off + 1]
            name = ICMP_NAMES.get((ip.version, typ))
            what = name if name and (code == 0 or typ in (3, 1, 11)) else "type %d code %d" % (typ, code)
            return "%s %s, length %d" % ("ICMP" if proto == 1 else "ICMP6", what, max(ip.end - ip.l4_off, 0))
        return PROTO_NAMES.get(proto, "proto %d" % proto)

    def ip_line(self, ip: IPHeader, l4: Optional[L4Header], data: bytes, payload_len: int) -> str:
        return "%s %s" % (self.endpoints(ip, l4), self.transport(ip, l4, data, payload_len))

    def ethertype(self, ethertype: int) -> str:
        name = ETHERTYPE_NAMES.get(ethertype)
        return name if name else "ethertype 0x%04x" % ethertype

    def options(self, dec: Decoded, data: bytes) -> str:
        """``OVN 0x0102/0x80(C) [ingress_port=1 egress_port=2]``, one per option."""
        cache, texts = self._options, []
        for opt in dec.options:
            end = opt.offset + 4 + opt.length * 4
            raw = data[opt.offset : end]
            text = cache.get(raw)
            if text is None:
                text = _option_text(opt, raw)
                if len(cache) >= 1 << 16:
                    cache.clear()
                cache[raw] = text
            texts.append(text)
        return ", ".join(texts)

    def tunnel(self, dec: Decoded, data: bytes) -> str:
        """The tunnel column (empty for a packet without one)."""
        code = dec.kind_code
        if not code:
            if dec.gre_proto >= 0:
                return _gre_text(dec)
            return ""
        rec = _RECORDS[code]
        parts = [rec.title]
        if code == registry.Kind.L2TPV3 and dec.control:
            return "L2TPv3 control"
        if code == registry.Kind.STT and dec.stt_offset > 0:
            parts.append("continuation offset %d" % dec.stt_offset)
        if dec.vni is not None:
            parts.append("%s %s" % (rec.id_name, "0x%x" % dec.vni if rec.id_bits > 32 else str(dec.vni)))
        if code == registry.Kind.NVGRE and dec.flow_id is not None:
            parts.append("flowid %d" % dec.flow_id)
        flags = _flag_text(dec)
        if flags:
            parts.append(flags)
        proto = _proto_text(dec)
        if proto:
            parts.append(proto)
        if dec.options:
            parts.append("options [%s]" % self.options(dec, data))
        return " ".join(parts)

    def inner(self, dec: Decoded, data: bytes) -> str:
        ip = dec.inner_ip
        if ip is not None:
            return self.ip_line(ip, dec.inner_l4, data, dec.payload_len)
        if dec.inner_ethertype >= 0:
            return self.ethertype(dec.inner_ethertype)
        return ""

    def outer(self, dec: Decoded, data: bytes) -> str:
        """The outer column: addresses and ports; what the packet is when it is no tunnel."""
        ip = dec.ip
        if ip is None:
            if dec.skipped:
                return "link type %d (not decoded), %d bytes" % (dec.linktype, dec.caplen)
            if dec.ethertype >= 0:
                return self.ethertype(dec.ethertype)
            return "%d bytes %s" % (dec.caplen, data[:16].hex())
        l4 = dec.l4
        if dec.kind_code or dec.gre_proto >= 0:
            name = PROTO_NAMES.get(ip.proto, "proto %d" % ip.proto)
            return "%s %s" % (self.endpoints(ip, l4), name)
        return self.ip_line(ip, l4, data, dec.payload_len)

    # -- the line -----------------------------------------------------------------------
    def __call__(self, dec: Decoded, data: bytes) -> str:
        """``outer | tunnel | inner`` and the malformed / snapped notes."""
        outer = self.outer(dec, data)
        tunnel = self.tunnel(dec, data)
        if tunnel:
            line = "%s | %s" % (outer, tunnel)
            inner = self.inner(dec, data)
            if inner:
                line = "%s | %s" % (line, inner)
        else:
            line = outer
        if dec.malformed:
            line += " [malformed: %s at offset %d]" % (dec.reason, dec.reason_offset)
        elif dec.snapped:
            line += " [snapped at %d of %d bytes]" % (dec.caplen, dec.wirelen)
        return line

    def fields(self, dec: Decoded, data: bytes, number: int, ts_ns: Optional[int]) -> Dict[str, Any]:
        """Every value of the one-liner (keys: :data:`FIELDS`); absent values are None."""
        ip, l4, iip, il4 = dec.ip, dec.l4, dec.inner_ip, dec.inner_l4
        tcp = il4 is not None and il4.proto == 6 and il4.flags >= 0
        rec = _RECORDS.get(dec.kind_code)
        out: Dict[str, Any] = {
            "number": number,
            "time": None if ts_ns is None else "%d.%06d" % divmod(ts_ns // 1000, 1000000),
            "time_ns": ts_ns,
            "caplen": dec.caplen,
            "wirelen": dec.wirelen,
            "linktype": dec.linktype,
            "vlans": list(dec.vlans),
            "outer.version": ip.version if ip else None,
            "outer.src": self._addr[ip.src_b] if ip and ip.src_b else None,
            "outer.dst": self._addr[ip.dst_b] if ip and ip.dst_b else None,
            "outer.proto": _flat_int(ip.proto) if ip else None,
            "outer.sport": _flat_int(l4.sport) if l4 else None,
            "outer.dport": _flat_int(l4.dport) if l4 else None,
            "kind": dec.kind,
            "id": dec.vni,
            "id.name": rec.id_name if rec else None,
            "flags": _flat_int(dec.flags) if dec.kind else _flat_int(dec.gre_flags),
            "oam": dec.oam,
            "critical": dec.critical,
            "proto": _flat_int(dec.proto),
            "flow_id": dec.flow_id,
            "gre.key": _flat_int(dec.gre_key),
            "options": [option_fields(opt, data) for opt in dec.options],
            "inner.ethertype": _flat_int(dec.inner_ethertype),
            "inner.src": self._addr[iip.src_b] if iip else None,
            "inner.dst": self._addr[iip.dst_b] if iip else None,
            "inner.proto": iip.proto if iip else None,
            "inner.sport": _flat_int(il4.sport) if il4 else None,
            "inner.dport": _flat_int(il4.dport) if il4 else None,
            "tcp.flags": _TCP_FLAGS[il4.flags & 0xFF] if tcp and il4 else None,
            "tcp.seq": il4.seq if tcp and il4 else None,
            "tcp.ack": il4.ack if tcp and il4 else None,
            "tcp.win": _U16(data, il4.off + 14)[0] if tcp and il4 else None,
            "length": _flat_int(dec.payload_len),
            "malformed": dec.malformed,
            "reason": dec.reason,
            "reason.offset": _flat_int(dec.reason_offset),
            "snapped": dec.snapped,
            "summary": self(dec, data),
        }
        return out


# -- tunnel details ---------------------------------------------------------------------
def _flag_text(dec: Decoded) -> str:
    code = dec.kind_code
    if code == registry.Kind.GENEVE:
        names = [n for n, on in (("O", dec.oam), ("C", dec.critical)) if on]
        return "[%s]" % ",".join(names) if names else ""
    if code == registry.Kind.VXLAN:
        return "flags 0x%02x" % dec.flags if dec.flags >= 0 and dec.flags != 0x08 else ""
    if code == registry.Kind.VXLAN_GPE:
        return "[O]" if dec.oam else ""
    return ""


def _proto_text(dec: Decoded) -> str:
    code, proto = dec.kind_code, dec.proto
    if proto < 0:
        return ""
    if code == registry.Kind.GENEVE:
        return "" if proto == 0x6558 else "proto %s" % ETHERTYPE_NAMES.get(proto, "0x%04x" % proto)
    if code == registry.Kind.VXLAN_GPE:
        return "" if proto == 3 else "next %s" % GPE_NEXT_NAMES.get(proto, "0x%02x" % proto)
    return ""


def _gre_text(dec: Decoded) -> str:
    parts = ["GRE"]
    if dec.gre_flags & 0x0007:
        parts.append("version %d" % (dec.gre_flags & 0x0007))
    parts.append("proto %s" % ETHERTYPE_NAMES.get(dec.gre_proto, "0x%04x" % dec.gre_proto))
    if dec.gre_key >= 0:
        parts.append("key 0x%x" % dec.gre_key)
    if dec.gre_seq >= 0:
        parts.append("seq %d" % dec.gre_seq)
    return " ".join(parts)


def _class_label(classid: int) -> str:
    """The short name of an option class: ``OVN`` from "Open Virtual Networking (OVN)"."""
    name = option_class_name(classid)
    if "(" in name and name.endswith(")"):
        return name[name.rindex("(") + 1 : -1]
    return name.split(",")[0].split(" ")[0] if not name.startswith("Unassigned") else "class"


def _option_text(opt: GeneveOptionHeader, raw: bytes) -> str:
    head = "%s 0x%04x/0x%02x%s" % (
        _class_label(opt.classid),
        opt.classid,
        opt.type,
        "(C)" if opt.critical else "",
    )
    typed = _typed_values(opt.classid, opt.type, raw)
    if typed is not None:
        return "%s [%s]" % (head, " ".join("%s=%s" % kv for kv in typed.items()))
    if opt.length:
        return "%s len %d" % (head, opt.length * 4)
    return head


def option_fields(opt: GeneveOptionHeader, data: bytes) -> Dict[str, Any]:
    """One option in full: class, its IANA name, type, critical, length, data, typed fields."""
    raw = data[opt.offset : opt.offset + 4 + opt.length * 4]
    out: Dict[str, Any] = {
        "class": opt.classid,
        "class_name": option_class_name(opt.classid),
        "type": opt.type,
        "critical": opt.critical,
        "length": opt.length * 4,
        "data": raw[4:].hex(),
    }
    typed = _typed_values(opt.classid, opt.type, raw, numbers=True)
    if typed is not None:
        out["fields"] = typed
    return out


# -- typed option layouts, taken from the layers' declarations --------------------------
Layout = List[Tuple[str, int, Callable[[int, bytes], str]]]
_LAYOUTS: Dict[Tuple[int, int, int], Optional[Layout]] = {}


def _typed_values(classid: int, otype: int, raw: bytes, numbers: bool = False) -> Optional[Dict[str, Any]]:
    """The typed fields of an option (name -> text, or integers for integer fields
    with NUMBERS), None when no typed layer reads it."""
    words = (len(raw) - 4) // 4
    key = (classid, otype, words)
    layout = _LAYOUTS.get(key, ...)
    if layout is ...:
        layout = _LAYOUTS[key] = _layout_for(classid, otype, words)
    if layout is None:
        return None
    out: Dict[str, Any] = {}
    value = int.from_bytes(raw[4:], "big")
    shift = (len(raw) - 4) * 8
    for name, bits, show in layout:
        shift -= bits
        if shift < 0:
            return None
        field = (value >> shift) & ((1 << bits) - 1)
        if name:
            out[name] = field if numbers and show in (_dec, _hex) else show(field, raw[4:])
    return out


def _layout_for(classid: int, otype: int, words: int) -> Optional[Layout]:
    """(name, bits, formatter) per data field of the typed layer for this option, or None
    when there is none or its fields are not all fixed-width (then the data shows as hex)."""
    from scapy_geneve.layers.geneve import registered_options

    for cls in reversed(registered_options.get((classid, otype), [])):
        if not cls.fits(words):
            continue
        layout = _fixed_layout(cls.fields_desc[4:])
        if layout is not None and sum(bits for _n, bits, _s in layout) == words * 32:
            return layout
    return None


def _fixed_layout(fields: List[Any]) -> Optional[Layout]:
    layout: Layout = []
    for fld in fields:
        cls_name = type(fld).__name__
        bits = _bits(fld)
        if bits is None:
            return None
        name = "" if "reserved" in fld.name or fld.name == "pad" else fld.name
        if cls_name == "IPField":
            layout.append((name, 32, _ipv4_text))
        elif cls_name == "IP6Field":
            layout.append((name, 128, _ipv6_text))
        elif cls_name.endswith("EnumField") and hasattr(fld, "i2s") and fld.i2s:
            layout.append((name, bits, _enum(dict(fld.i2s))))
        elif cls_name.startswith("X"):
            layout.append((name, bits, _hex))
        else:
            layout.append((name, bits, _dec))
    return layout


def _bits(fld: Any) -> Optional[int]:
    cls_name = type(fld).__name__
    if cls_name == "IPField":
        return 32
    if cls_name == "IP6Field":
        return 128
    size = getattr(fld, "size", None)
    if isinstance(size, int) and "Bit" in cls_name:
        return size
    fmt = getattr(fld, "fmt", "")
    if fmt and fmt[-1] in "BHIQ" and "Str" not in cls_name:
        return int(fld.sz) * 8
    return None


def _enum(names: Dict[int, str]) -> Callable[[int, bytes], str]:
    def show(value: int, _raw: bytes) -> str:
        return str(names.get(value, value))

    return show


def _dec(value: int, _raw: bytes) -> str:
    return str(value)


def _hex(value: int, _raw: bytes) -> str:
    return "0x%x" % value


def _ipv4_text(value: int, _raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))


def _ipv6_text(value: int, _raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


# -- the fast path: the common tunnel shape without the general decoder --------------------
# Ethernet + IPv4 (no options) + UDP, 42 bytes: EtherType, Ver/IHL, Total Length, flags and
# Fragment Offset, Protocol, the addresses, source and destination port, UDP Length.
_OUTER = struct.Struct("!12xHBxH2xH1xB2x8sHHH2x")
# inner IPv4 (no options): Ver/IHL, Total Length, flags and Fragment Offset, Protocol
_INNER_IP = struct.Struct("!BxH2xH1xB")
_TCP = struct.Struct("!HHIIBBH")


class FastSummarizer(Summarizer):
    """:class:`Summarizer` lines for whole captured frames, with a fast path.

    ``line(data, linktype, wirelen)`` (or ``line_at(buf, offset, caplen, ...)`` for a
    frame inside a larger buffer) gives exactly ``self(decode(data, ...), data)``.
    Frames of the shape that fills real tunnel captures (Ethernet, IPv4 without
    options or fragments, UDP to a Geneve or VXLAN port, a well-formed tunnel header,
    inner Ethernet or (Geneve) IP, IPv4 without options, then TCP, UDP or ICMP, every
    length consistent and nothing cut) take the fast path: the ``outer | tunnel |``
    text is memoised by the bytes it comes from (outer addresses and ports, the whole
    tunnel header), computed once by the reference
    :func:`~scapy_geneve.capture.decode.decode` and :class:`Summarizer`; the inner
    endpoints are memoised by address and port bytes; only the per-packet TCP, UDP
    and ICMP fields are formatted.  Everything else goes through the reference.
    tests/test_cli_show.py proves the two equal (hypothesis).
    """

    def __init__(
        self,
        numeric: bool = True,
        ports: registry.Ports = registry.DEFAULT_PORTS,
        l2tp_cookie: int = 0,
        l2tp_l2ss: bool = False,
        state: Optional[Any] = None,
    ) -> None:
        from scapy_geneve.capture.decode import DecodeState

        super().__init__(numeric)
        self.ports, self.cookie, self.l2ss = ports, l2tp_cookie, l2tp_l2ss
        self.state = state if state is not None else DecodeState()
        self._prefix: Dict[bytes, Optional[str]] = {}
        self._inner_ep: Dict[bytes, str] = {}
        self._geneve, self._vxlan = ports.geneve, ports.vxlan - ports.gpe
        self.fast = self.slow = 0

    def decode(self, data: bytes, linktype: int, wirelen: int) -> Decoded:
        from scapy_geneve.capture.decode import decode

        return decode(data, linktype, self.ports, self.cookie, self.l2ss, self.state, wirelen)

    def line(self, data: bytes, linktype: int, wirelen: int) -> str:
        """The one-liner of a captured frame."""
        return self.line_at(data, 0, len(data), linktype, wirelen)

    def line_at(self, buf: bytes, off: int, caplen: int, linktype: int, wirelen: int) -> str:
        """The one-liner of the frame at ``buf[off:off + caplen]``."""
        if linktype == 1 and wirelen == caplen and caplen >= 42:
            text = self._fast(buf, off, off + caplen)
            if text is not None:
                self.fast += 1
                return text
        self.slow += 1
        data = bytes(buf[off : off + caplen])
        return self(self.decode(data, linktype, wirelen), data)

    def _fast(self, buf: bytes, d: int, cap_end: int) -> Optional[str]:
        (ethertype, vihl, total, frag, proto, _addrs, _sport, dport, ulen) = _OUTER.unpack_from(buf, d)
        if ethertype != 0x0800 or vihl != 0x45 or proto != 17 or frag & 0x1FFF or total < 28:
            return None
        ip_end = d + 14 + total
        end = d + 34 + ulen
        if ip_end > cap_end or ulen < 8 or end > ip_end:
            return None
        t = d + 42  # the tunnel header
        if t + 8 > end:
            return None
        if dport in self._geneve:
            if buf[t] & 0xC0:  # version != 0
                return None
            inner = t + 8 + (buf[t] & 0x3F) * 4
            proto = _U16(buf, t + 2)[0]
            if proto == 0x6558:  # Ethernet, then IPv4
                ip = inner + 14
            elif proto == 0x0800:  # IPv4 directly (AWS GWLB)
                ip = inner
            else:
                return None
        elif dport in self._vxlan:
            if not buf[t] & 0x08:  # I flag clear
                return None
            inner, ip = t + 8, t + 22
        else:
            return None
        if ip + 20 > end or (ip > inner and _U16(buf, inner + 12)[0] != 0x0800):
            return None
        key = buf[d + 26 : d + 38] + buf[t:inner]  # addresses, ports, tunnel header
        prefix = self._prefix.get(key, "")
        if prefix == "":
            prefix = self._learn(key, bytes(buf[d:cap_end]))
        if prefix is None:
            return None
        rest = self._inner_fast(buf, ip, end)
        return None if rest is None else prefix + rest

    def _learn(self, key: bytes, data: bytes) -> Optional[str]:
        """``outer | tunnel | `` for these outer addresses, ports and tunnel header (None:
        a shape the fast path does not take, e.g. options that do not add up)."""
        dec = self.decode(data, 1, len(data))
        prefix: Optional[str] = None
        inner = dec.tunnel_off + dec.tunnel_len
        if (
            (not dec.malformed or dec.reason_offset >= inner)
            and not dec.snapped
            and dec.kind in ("geneve", "vxlan")
            and dec.inner_off == inner
            and sum(4 + o.length * 4 for o in dec.options) == (dec.opt_len * 4 if dec.kind == "geneve" else 0)
        ):
            prefix = "%s | %s | " % (self.outer(dec, data), self.tunnel(dec, data))
        if len(self._prefix) >= 1 << 16:
            self._prefix.clear()
        self._prefix[key] = prefix
        return prefix

    def _inner_fast(self, buf: bytes, ip: int, end: int) -> Optional[str]:
        """Inner IPv4 (no options, not a fragment) + TCP/UDP/ICMP, or None."""
        vihl, total, frag, proto = _INNER_IP.unpack_from(buf, ip)
        ip_end = ip + total
        if vihl != 0x45 or frag & 0x1FFF or total < 20 or ip_end > end:
            return None
        l4 = ip + 20
        if proto == 6:
            if l4 + 20 > ip_end:
                return None
            _sp, _dp, seq, ack, doff, flags, win = _TCP.unpack_from(buf, l4)
            doff = (doff >> 4) * 4
            if doff < 20 or l4 + doff > ip_end:
                return None
            length = ip_end - l4 - doff
            if length:
                rest = "TCP Flags [%s], seq %d:%d" % (_TCP_FLAGS[flags], seq, (seq + length) & 0xFFFFFFFF)
            elif flags & 0x07:
                rest = "TCP Flags [%s], seq %d" % (_TCP_FLAGS[flags], seq)
            else:
                rest = "TCP Flags [%s]" % _TCP_FLAGS[flags]
            if flags & 0x10:
                rest = "%s, ack %d, win %d, length %d" % (rest, ack, win, length)
            else:
                rest = "%s, win %d, length %d" % (rest, win, length)
            key = buf[ip + 12 : l4 + 4] + b"\x06"
        elif proto == 17:
            if l4 + 8 > ip_end:
                return None
            ulen = _U16(buf, l4 + 4)[0]
            uend = min(ip_end, l4 + ulen) if ulen >= 8 else ip_end
            rest = "UDP length %d" % max(0, uend - l4 - 8)
            key = buf[ip + 12 : l4 + 4] + b"\x11"
        elif proto == 1:
            if l4 + 2 > ip_end:
                return None
            typ, code = buf[l4], buf[l4 + 1]
            name = ICMP_NAMES.get((4, typ))
            what = name if name and (code == 0 or typ in (3, 1, 11)) else "type %d code %d" % (typ, code)
            rest = "ICMP %s, length %d" % (what, ip_end - l4)
            key = buf[ip + 12 : ip + 20]
        else:
            return None
        ep = self._inner_ep.get(key)
        if ep is None:
            ep = self._endpoints_text(key, proto)
        return "%s %s" % (ep, rest)

    def _endpoints_text(self, key: bytes, proto: int) -> str:
        src, dst = self._addr[key[:4]], self._addr[key[4:8]]
        if proto in (6, 17):
            name = "tcp" if proto == 6 else "udp"
            text = "%s:%s > %s:%s" % (
                src,
                self.port(_U16(key, 8)[0], name),
                dst,
                self.port(_U16(key, 10)[0], name),
            )
        else:
            text = "%s > %s" % (src, dst)
        if len(self._inner_ep) >= 1 << 16:
            self._inner_ep.clear()
        self._inner_ep[key] = text
        return text
