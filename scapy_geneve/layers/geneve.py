# SPDX-License-Identifier: GPL-2.0-or-later
# This file is part of scapy-geneve.

# scapy.contrib.description = Geneve: Generic Network Virtualization Encapsulation (RFC 8926)
# scapy.contrib.status = loads

"""Geneve: Generic Network Virtualization Encapsulation, RFC 8926.

https://www.rfc-editor.org/rfc/rfc8926

Base header (§3.4)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        Virtual Network Identifier (VNI)       |    Reserved   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Variable-Length Options                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Option TLV (§3.5)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Option Class         |      Type     |R|R|R| Length  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                  Variable-Length Option Data                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Building is exact: ``optionlen`` and ``length`` are declared length fields
(``BitFieldLenField`` with ``adjust=``, in 4-byte words) derived when left to
None, option data is zero-padded to a multiple of 4 bytes, ``critical`` (the
C bit) is set exactly when some option has the critical bit, and ``proto``
follows the payload.  Anything that cannot be encoded raises
:class:`~scapy_geneve.errors.BuildError`; nothing is masked.  Values set
explicitly are written as set, for negative tests.

Dissection is lossless: whatever bytes follow a UDP header to port 6081,
``bytes(pkt)`` gives them back exactly.

UDP port 6081 beside Scapy's own ``scapy.contrib.geneve``: Scapy tries a
layer's bindings in the order they were made, so the Geneve bound first
dissects the port -- ours after ``import scapy_geneve`` then
``load_contrib("geneve")``, contrib's ``GENEVE`` in the other order (we never
unbind it on import).  :func:`claim_geneve_port` makes ours win either way,
:func:`release_geneve_port` gives the port to contrib's (loaded before or
after).  Building is unaffected: each class keeps its own bindings.
"""

import struct
import zlib
from typing import Any, Dict, List, Optional, Tuple, Type

from scapy.config import conf
from scapy.fields import (
    BitField,
    BitFieldLenField,
    PacketListField,
    StrLenField,
    X3BytesField,
    XByteField,
    XShortEnumField,
    XShortField,
)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ETHER_TYPES, Ether
from scapy.packet import Packet, RawVal, bind_bottom_up, bind_top_down, split_bottom_up

from scapy_geneve import compat
from scapy_geneve.consts import (
    ETH_P_TEB,
    GENEVE_CRITICAL,
    GENEVE_HDR_LEN,
    GENEVE_MAX_OPT_DATA,
    GENEVE_MAX_OPTIONS,
    GENEVE_OPT_HDR_LEN,
    GENEVE_PORT,
    option_class_name,
)
from scapy_geneve.errors import BuildError

__all__ = [
    "Geneve",
    "GeneveOption",
    "GENEVE",
    "GeneveOptions",
    "option_header",
    "flow_sport",
    "claim_geneve_port",
    "release_geneve_port",
    "registered_options",
]


# -- field helpers ----------------------------------------------------------


class _HexInt(int):
    """An int whose repr is hex, for defaults the RFC writes in hex: ``ls(Geneve)``
    and ``GeneveOptionOVN().classid`` show ``0x0102``, not ``258``."""

    digits = 1

    def __repr__(self) -> str:
        return "0x%0*x" % (self.digits, int(self))

    def __str__(self) -> str:  # str(), print() and f-strings stay decimal, as for int
        return int.__repr__(self)


class _Hex2(_HexInt):
    digits = 2


class _Hex4(_HexInt):
    digits = 4


class _CheckedPacket(Packet):
    """Refuses, with a :class:`BuildError`, any value too wide for its field.

    Scapy masks (``BitField``) or truncates (``X3BytesField``) silently; a
    Geneve VNI of 2**24 would go out as 0.  Here it names field and value.
    Widths come from :func:`scapy_geneve.compat.field_bits` (written out per
    field class, the same on every Scapy version).
    """

    __slots__: List[str] = []
    _limits: Dict[type, Dict[str, int]] = {}

    def self_build(self) -> bytes:
        if compat.has_dissection_cache(self):
            return super().self_build()  # Scapy's cache (checked against edits)
        self.check_widths()
        return self.fast_self_build() or super().self_build()

    def check_widths(self) -> None:
        """Raise BuildError for any set value too wide for its field."""
        limits = _CheckedPacket._limits.get(self.__class__)
        if limits is None:
            limits = {f.name: 1 << b for f in self.fields_desc if (b := compat.field_bits(f)) is not None}
            _CheckedPacket._limits[self.__class__] = limits
        for name, value in self.fields.items():
            limit = limits.get(name)
            if limit is not None and isinstance(value, int) and not 0 <= value < limit:
                raise BuildError(self.__class__.__name__, name, value, "%d bits" % (limit.bit_length() - 1))

    def fast_self_build(self) -> Optional[bytes]:
        """The header from one struct.pack, or None for Scapy's generic
        field-by-field build (tests/test_geneve_fastpath.py proves them equal)."""
        return None

    def _values(self, names: Tuple[str, ...]) -> Optional[List[Any]]:
        values = compat.field_values(self, names)
        for v in values:
            if v is not None and not isinstance(v, int):
                return None  # volatile or odd values: let Scapy resolve them
        return values


class XOptionClassField(XShortField):
    """Option Class, shown with its IANA registry name: ``0x0108 (Amazon.com, Inc.)``."""

    def i2repr(self, pkt: Optional[Packet], x: Optional[int]) -> str:
        if x is None:
            return "None"
        return "0x%04x (%s)" % (x, option_class_name(x))


class XOptionTypeField(XByteField):
    """Option Type: the 8-bit wire value; show() spells out the critical bit."""

    def i2repr(self, pkt: Optional[Packet], x: Optional[int]) -> str:
        if x is None:
            return "None"
        flag = "critical" if x & GENEVE_CRITICAL else "non-critical"
        return "0x%02x (%s, type 0x%02x)" % (x, flag, x & 0x7F)


class CriticalBitField(BitField):
    """The C bit: when None, set exactly when some option is critical (§3.5)."""

    def i2m(self, pkt: Optional[Packet], x: Optional[int]) -> int:
        if x is None:
            return int(pkt is not None and _any_critical(pkt.getfieldval("options")))
        return x


def _any_critical(options: List[Packet]) -> bool:
    return any(isinstance(o, GeneveOption) and (o.type or 0) & GENEVE_CRITICAL for o in options)


class XEtherTypeField(XShortEnumField):
    """Protocol Type: an EtherType, derived from the payload when None."""

    def i2m(self, pkt: Optional[Packet], x: Any) -> int:
        if x is None:
            return _payload_ethertype(pkt.payload) if pkt is not None else ETH_P_TEB
        return int(x)


def _payload_ethertype(payload: Packet) -> int:
    """The EtherType Scapy would put before PAYLOAD; 0x6558 for Ether/none."""
    if isinstance(payload, Ether):
        return ETH_P_TEB
    overload = payload.overload_fields
    own = overload.get(Geneve, {}).get("proto")
    if own is not None:
        return own
    ether = overload.get(Ether, {}).get("type")
    if ether is not None:
        return ether
    return ETH_P_TEB


class OptionLengthField(BitFieldLenField):
    """Length: 4-byte words of option data (RFC 8926 §3.5), declared.

    When None: the class's fixed ``option_length`` for a typed option with a
    fixed layout, else the bytes of ``length_of`` plus ``fixed`` bytes before
    it, rounded up to words (``adjust``); post_build zero-pads the data to
    match.  A class that declares neither (no ``option_length``, no field
    named by ``length_of``) gets the length of its data fields as built.
    """

    def i2m(self, pkt: Optional[Packet], x: Any) -> int:
        if x is None and pkt is not None:
            words = getattr(pkt, "option_length", None)
            if words is not None:
                return int(words)
            if all(f.name != self.length_of for f in pkt.fields_desc):
                return (len(_data_bytes(pkt)) + 3) // 4
        return int(super().i2m(pkt, x))


def _data_bytes(pkt: Packet) -> bytes:
    """The option data as PKT's fields after the 4-byte header build it."""
    out: Any = b""
    for fld in pkt.fields_desc[4:]:
        out = fld.addfield(pkt, out, pkt.getfieldval(fld.name))
    return bytes(out)


def _words(fixed: int) -> Any:
    return lambda pkt, x: (x + fixed + 3) // 4


# -- option TLV --------------------------------------------------------------

_BASE_HDR = struct.Struct("!BBHI")
_OPT_HDR = struct.Struct("!HBB")

registered_options: Dict[Tuple[int, int], List[Type["GeneveOption"]]] = {}


def option_header(
    classid: int = 0,
    type: int = 0,  # noqa: A002
    length_of: str = "data",
    fixed: int = 0,
) -> List[Any]:
    """The four option-header fields, with defaults, for a typed option.

    A decoder for your own option is a subclass; defining it registers it.
    A fixed layout says its data length in words (``option_length``)::

        class MyOption(GeneveOption):
            name = "My option"
            option_length = 1
            fields_desc = option_header(0xFF01, 0x05) + [IntField("value", 0)]

    A variable layout names the field whose length varies (LENGTH_OF) and the
    FIXED bytes of data before it: ``option_header(0x0103, 0x01,
    length_of="metadata", fixed=12)``.
    """
    return [
        XOptionClassField("classid", _Hex4(classid)),
        XOptionTypeField("type", _Hex2(type)),
        BitField("reserved", 0, 3),
        OptionLengthField("length", None, 5, length_of=length_of, adjust=_words(fixed)),
    ]


class GeneveOption(_CheckedPacket):
    """One Geneve option TLV (RFC 8926 §3.5).

    ``type`` is the wire byte: 0x80 is the critical bit, readable and
    settable on its own as ``opt.critical``.  ``length`` counts 4-byte words
    of data.  Options of a registered (class, type) dissect as their typed
    subclass; everything else stays generic and round-trips byte for byte.
    """

    name = "Geneve Option"
    match_subclass = True
    fields_desc = option_header() + [
        StrLenField("data", b"", length_from=lambda pkt: (pkt.length or 0) * 4),
    ]

    #: Data length in 4-byte words a typed subclass decodes; None = any.
    option_length: Optional[int] = None

    def __init__(self, *args: Any, critical: Optional[bool] = None, **kargs: Any) -> None:
        super().__init__(*args, **kargs)
        if critical is not None:
            self.critical = critical

    @property
    def critical(self) -> bool:
        """The option's critical bit (the high-order bit of ``type``)."""
        return bool((self.getfieldval("type") or 0) & GENEVE_CRITICAL)

    @critical.setter
    def critical(self, value: bool) -> None:
        base = (self.getfieldval("type") or 0) & 0x7F
        self.type = base | GENEVE_CRITICAL if value else base

    @classmethod
    def fits(cls, words: int) -> bool:
        """Whether this decoder reads an option of ``words`` data words."""
        return cls.option_length is None or cls.option_length == words

    @classmethod
    def register_variant(cls) -> None:
        if cls.__name__ == "GeneveOption":
            return
        defaults: Dict[str, Any] = {f.name: f.default for f in cls.fields_desc}
        key = (defaults["classid"], defaults["type"])
        variants = registered_options.setdefault(key, [])
        variants[:] = [v for v in variants if v.__name__ != cls.__name__] + [cls]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if not _pkt:
            return cls
        if len(_pkt) < GENEVE_OPT_HDR_LEN:
            return conf.raw_layer  # a truncated option header stays raw bytes
        variants = registered_options.get((_pkt[0] << 8 | _pkt[1], _pkt[2]))
        if variants:
            words = _pkt[3] & 0x1F
            if len(_pkt) >= GENEVE_OPT_HDR_LEN + 4 * words:
                for variant in reversed(variants):  # the latest registered wins
                    if variant.fits(words):
                        return variant
        return cls

    def fast_self_build(self) -> Optional[bytes]:
        values = self._values(("classid", "type", "reserved", "length"))
        if values is None or None in values[:3]:
            return None
        classid, otype, reserved, length = values
        if length is None:  # the declared derivation, masked as BitField masks it
            length = self.get_field("length").i2m(self, None) & 0x1F
        pkt = _OPT_HDR.pack(classid, otype, (reserved << 5) | length)
        for fld in self.fields_desc[4:]:
            val = self.getfieldval(fld.name)
            if isinstance(val, RawVal):
                pkt += bytes(val)
            else:
                pkt = fld.addfield(self, pkt, val)
        return pkt

    def do_dissect(self, s: bytes) -> bytes:
        # Fast path, same result as Packet.do_dissect (tests/test_geneve_fastpath.py
        # checks): the 4-byte header in one unpack, the class's own fields after.
        if len(s) < GENEVE_OPT_HDR_LEN:
            return super().do_dissect(s)
        raw = s
        classid, otype, last = _OPT_HDR.unpack_from(s)
        fields = self.fields
        fields["classid"] = classid
        fields["type"] = otype
        fields["reserved"] = last >> 5
        fields["length"] = last & 0x1F
        s = s[GENEVE_OPT_HDR_LEN:]
        for fld in self.fields_desc[4:]:
            if not s and compat.DISSECT_STOPS_AT_END:
                break
            s, fval = fld.getfield(self, s)
            fields[fld.name] = fval
        compat.set_dissection_cache(self, raw[: -len(s)] if s else raw, {})
        return s

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        # Length is declared (OptionLengthField); what a declaration cannot say:
        # the zero padding to a whole word, and data too long for 5 bits of words.
        if self.fields.get("length") is None:
            body = len(pkt) - GENEVE_OPT_HDR_LEN
            if body > GENEVE_MAX_OPT_DATA:
                raise BuildError(
                    self.__class__.__name__,
                    "data",
                    "%d bytes" % body,
                    "is over the 124 bytes an option can carry (Length is 5 bits "
                    "of 4-byte words, RFC 8926 §3.5)",
                )
            if body % 4:
                pkt += b"\x00" * (4 - body % 4)
        return pkt + pay

    def extract_padding(self, s: bytes) -> Tuple[bytes, bytes]:
        return b"", s

    def mysummary(self) -> str:
        head = "class=%s type=0x%02x%s len=%d" % (
            self.get_field("classid").i2repr(self, self.classid),
            self.type or 0,
            "(C)" if self.critical else "",
            self.get_field("length").i2m(self, self.length) & 0x1F,
        )
        values = " ".join(
            "%s=%s" % (fld.name, _summary_value(self, fld))
            for fld in self.fields_desc[4:]
            if not _is_filler(fld.name)
        )
        return head + " " + values if values else head


def _is_filler(name: str) -> bool:
    """Reserved and padding fields, left out of summaries."""
    return name == "pad" or name.endswith("reserved")


def _summary_value(pkt: Packet, fld: Any) -> str:
    """A field as a summary shows it: bytes in hex (as tcpdump prints option
    data), everything else as the field shows it."""
    value = pkt.getfieldval(fld.name)
    if isinstance(value, bytes):
        return value.hex()
    return str(fld.i2repr(pkt, value))


# -- base header -------------------------------------------------------------


def _options_len(pkt: Packet) -> int:
    # Version 0 is the only one defined: under any other version the layout
    # of what follows is unknown, so it stays payload (RFC 8926 §3.4).
    return pkt.optionlen * 4 if pkt.version == 0 else 0


class Geneve(_CheckedPacket):
    """Geneve base header and options (RFC 8926 §3.4, §3.5)."""

    name = "Geneve"
    fields_desc = [
        BitField("version", 0, 2),
        BitFieldLenField("optionlen", None, 6, length_of="options", adjust=lambda pkt, x: x // 4),
        BitField("oam", 0, 1),
        CriticalBitField("critical", None, 1),
        BitField("reserved", 0, 6),
        XEtherTypeField("proto", None, ETHER_TYPES),
        X3BytesField("vni", _HexInt(0)),
        XByteField("reserved2", _Hex2(0)),
        PacketListField("options", [], GeneveOption, length_from=_options_len),
    ]

    def fast_self_build(self) -> Optional[bytes]:
        values = self._values(
            ("version", "optionlen", "oam", "critical", "reserved", "proto", "vni", "reserved2")
        )
        if values is None:
            return None
        version, optionlen, oam, critical, reserved, proto, vni, reserved2 = values
        if None in (version, oam, reserved, vni, reserved2):
            return None
        options = self.getfieldval("options")
        body = b"".join(bytes(o) for o in options)
        if optionlen is None:  # the declared derivation, masked as BitField masks it
            optionlen = (len(body) // 4) & 0x3F
        if critical is None:
            critical = _any_critical(options)
        if proto is None:
            proto = _payload_ethertype(self.payload)
        return (
            _BASE_HDR.pack(
                (version << 6) | optionlen,
                (oam << 7) | (critical << 6) | reserved,
                proto,
                (vni << 8) | reserved2,
            )
            + body
        )

    def do_dissect(self, s: bytes) -> bytes:
        # Fast path, same result as Packet.do_dissect (tests/test_geneve_fastpath.py
        # checks): the 8-byte base header in one unpack, then the options.
        if len(s) < GENEVE_HDR_LEN:
            return super().do_dissect(s)
        raw = s
        first, flags, proto, vni_rsvd = _BASE_HDR.unpack_from(s)
        fields = self.fields
        fields["version"] = first >> 6
        fields["optionlen"] = first & 0x3F
        fields["oam"] = flags >> 7
        fields["critical"] = (flags >> 6) & 1
        fields["reserved"] = flags & 0x3F
        fields["proto"] = proto
        fields["vni"] = vni_rsvd >> 8
        fields["reserved2"] = vni_rsvd & 0xFF
        s = s[GENEVE_HDR_LEN:]
        if not s and compat.DISSECT_STOPS_AT_END:
            compat.set_dissection_cache(self, raw, {})
            return s
        options_field = self.fields_desc[-1]
        s, options = options_field.getfield(self, s)
        fields["options"] = options
        compat.set_dissection_cache(
            self,
            raw[: -len(s)] if s else raw,
            {"options": compat.cache_field_value(self, options_field, options)},
        )
        return s

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt and len(_pkt) < GENEVE_HDR_LEN:
            return conf.raw_layer  # not even a base header: raw UDP payload
        return cls

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        # Opt Len is declared (BitFieldLenField); what a declaration cannot say:
        # options it cannot describe are refused rather than masked.
        if self.fields.get("optionlen") is None:
            size = len(pkt) - GENEVE_HDR_LEN
            if size > GENEVE_MAX_OPTIONS:
                raise BuildError(
                    "Geneve",
                    "options",
                    "%d bytes" % size,
                    "is over the 252 bytes Opt Len can describe (6 bits of 4-byte words, RFC 8926 §3.4)",
                )
            if size % 4:
                raise BuildError(
                    "Geneve",
                    "options",
                    "%d bytes" % size,
                    "is not a whole number of 4-byte words: an option has an "
                    "explicit length that disagrees with its data; set "
                    "optionlen explicitly to send this",
                )
        return pkt + pay

    def guess_payload_class(self, payload: bytes) -> Type[Packet]:
        if self.version != 0:
            return conf.raw_layer
        cls = super().guess_payload_class(payload)
        if cls is conf.raw_layer:
            cls = compat.payload_layer_for(Ether, "type", self.proto) or conf.raw_layer
        return cls

    def hashret(self) -> bytes:
        return struct.pack("!I", self.vni) + self.payload.hashret()

    def answers(self, other: Packet) -> int:
        if isinstance(other, Geneve):
            if self.vni == other.vni:
                return self.payload.answers(other.payload)
            return 0
        return self.payload.answers(other)

    def mysummary(self) -> str:
        flags = "".join(f for f, on in (("O", self.oam), ("C", self.critical)) if on)
        return "Geneve vni=%#x proto=%s%s%s" % (
            self.vni,
            self.get_field("proto").i2repr(self, self.proto),
            " options=%d" % len(self.options) if self.options else "",
            " [%s]" % flags if flags else "",
        )


# scapy.contrib.geneve names, so users' scripts carry over.
GENEVE = Geneve
GeneveOptions = GeneveOption


# -- source-port entropy (RFC 8926 §3.3) ----------------------------------------


def flow_sport(inner: Packet, low: int = 49152, high: int = 65535) -> int:
    """An outer UDP source port from a hash of the inner flow (RFC 8926 §3.3).

    The same inner flow (addresses, protocol, ports; MACs and EtherType for
    non-IP frames) always gives the same port, spread over ``low..high``
    the way Linux's ``udp_flow_src_port()`` scales its hash.  The RFC lets
    Geneve use the whole 16-bit range; the default keeps to 49152-65535,
    which VXLAN (RFC 7348 §5) recommends and no well-known service uses.
    """
    if not 0 < low <= high <= 0xFFFF:
        raise BuildError("flow_sport", "low/high", (low, high), "must satisfy 0 < low <= high <= 65535")
    layer = inner.payload if isinstance(inner, Ether) else inner
    if isinstance(layer, (IP, IPv6)):
        proto = layer.proto if isinstance(layer, IP) else layer.nh
        key = b"%s|%s|%d" % (layer.src.encode(), layer.dst.encode(), proto)
        l4 = layer.payload
        if isinstance(l4, (TCP, UDP)):
            key += struct.pack("!HH", l4.sport, l4.dport)
    elif isinstance(inner, Ether):
        # Not IP: the MACs and EtherType (building only when they are needed).
        key = bytes(inner)[:14]
    else:
        key = b""
    hashed = zlib.crc32(key) & 0xFFFFFFFF
    return ((hashed * (high - low)) >> 32) + low


# -- bindings -----------------------------------------------------------------

# Dissection: the destination port only (RFC 8926 §3.3: "MUST NOT be reversed").
bind_bottom_up(UDP, Geneve, dport=GENEVE_PORT)
# Build: IP()/UDP()/Geneve() gets dport 6081, and sport 6081 rather than
# UDP's default 53, which would re-dissect as DNS.  encapsulate() and
# flow_sport() give a per-flow source port instead.
bind_top_down(UDP, Geneve, dport=GENEVE_PORT, sport=GENEVE_PORT)

# Payloads: Ether by 0x6558; every other EtherType through Ether's own
# bindings (see guess_payload_class), so ARP, MPLS, NSH, ... all dissect.
bind_bottom_up(Geneve, Ether, proto=ETH_P_TEB)
bind_top_down(Geneve, Ether, proto=ETH_P_TEB)
bind_top_down(Geneve, IP, proto=0x0800)
bind_top_down(Geneve, IPv6, proto=0x86DD)


def claim_geneve_port() -> None:
    """Make this package's Geneve win UDP port 6081 in this process.

    Scapy tries a layer's bindings in the order they were made, so whichever
    Geneve was bound first dissects port 6081: ours if ``import scapy_geneve``
    came before ``load_contrib("geneve")``, Scapy's contrib ``GENEVE``
    otherwise.  This unbinds the contrib class from dissection (if it is
    loaded) and puts ours first.  :func:`release_geneve_port` is the converse.
    """
    import sys

    contrib = sys.modules.get("scapy.contrib.geneve")
    if contrib is not None:
        split_bottom_up(UDP, contrib.GENEVE, dport=GENEVE_PORT)
    compat.move_binding_first(UDP, Geneve, dport=GENEVE_PORT)


def release_geneve_port() -> None:
    """Give UDP port 6081 back: this package's Geneve no longer dissects it.

    Scapy's contrib ``GENEVE`` then dissects port 6081 whether
    ``load_contrib("geneve")`` ran before or runs after this call (and if it
    is never loaded, the port's payload stays ``Raw``).  Building is not
    affected: ``UDP()/Geneve()`` still gets port 6081, and ``Geneve(data)``
    still dissects.  :func:`claim_geneve_port` takes the port back.
    """
    split_bottom_up(UDP, Geneve, dport=GENEVE_PORT)
