"""L2TPv3 data and control messages (RFC 3931) carrying Ethernet (RFC 4719).

https://www.rfc-editor.org/rfc/rfc3931 , https://www.rfc-editor.org/rfc/rfc4719

Over IP (protocol 115), RFC 3931 §4.1.1 (data and control)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Session ID (32 bits, non-zero)                |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               Cookie (optional, maximum 64 bits)...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |x|S|x|x|x|x|x|x|              Sequence Number                  |  Default L2-Specific
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  Sublayer (§4.6), optional
    |                 Ethernet frame (RFC 4719) ...                 |

    Session ID 0 marks a control message: |0 (32)| then the control header.

Over UDP (port 1701), RFC 3931 §4.1.2.1 (data header, then as above)::

    |T|x|x|x|x|x|x|x|x|x|x|x|  Ver  |             Reserved          |
    |                 Session ID (32 bits)                          |

Control message header (over UDP at offset 0, over IP after the zero)::

    |T|L|x|x|S|x|x|x|x|x|x|x|  Ver  |             Length            |
    |                 Control Connection ID                         |
    |               Ns              |               Nr              |
    |  AVPs: |M|H| rsvd  |  Length (10) | Vendor ID | Attribute Type | value...

The cookie length (0, 4 or 8 bytes) and the presence of the L2-Specific
Sublayer are *not on the wire*: they are per-session configuration.  The layer
asks a *session resolver* for them at dissection time
(:func:`set_session_resolver`: a callable ``(session_id, outer destination)
-> layout`` with ``cookie_len``, ``l2ss`` and ``pw_type``).  Without one it
assumes no cookie and no sublayer, as Wireshark's "Detect" falls back to.
:mod:`scapy_geneve.tunnels.l2tpv3` installs the session table
(``l2tpv3_session``, ``l2tpv3_lookup``, ``l2tpv3_learn``, ...) as the resolver
when ``scapy_geneve`` is imported, and a *control hook*
(:func:`set_control_hook`) that learns sessions from dissected control
messages when asked to.  The layer never imports it: imports flow from the
helpers to the layers.

On UDP 1701 the version nibble decides: 3 is dissected here, anything else
(L2TPv2, L2F) is left to Scapy's ``L2TP``.
"""

# scapy.contrib.description = L2TPv3 (RFC 3931/4719) data and control over IP and UDP
# scapy.contrib.status = loads

import importlib
import warnings
from typing import Any, Callable, Dict, NamedTuple, Optional, Type

from scapy.config import conf
from scapy.fields import (
    BitField,
    BitFieldLenField,
    ConditionalField,
    PacketListField,
    ShortEnumField,
    ShortField,
    StrLenField,
    XIntField,
)
from scapy.packet import Packet, bind_layers, bind_top_down
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.l2tp import L2TP

from scapy_geneve.compat import layer_note, set_dissection_cache, set_layer_note
from scapy_geneve.consts import IPPROTO_L2TP, L2TP_PORT
from scapy_geneve.errors import BuildError
from scapy_geneve.layers._bind import bind_bottom_up_first

__all__ = [
    "L2TPv3",
    "L2TPv3UDP",
    "L2TPv3Control",
    "L2TPv3AVP",
    "L2TPv3Layout",
    "set_session_resolver",
    "set_control_hook",
    "resolve_session",
    "L2TPV3_AVP_TYPES",
    "L2TPV3_MESSAGE_TYPES",
    "PW_TYPE_ETHERNET_VLAN",
    "PW_TYPE_ETHERNET",
]

PW_TYPE_ETHERNET_VLAN = 0x0004  # RFC 4719
PW_TYPE_ETHERNET = 0x0005  # RFC 4719
_ETHERNET_PW = (0, PW_TYPE_ETHERNET_VLAN, PW_TYPE_ETHERNET)  # 0: unknown, decode as Ethernet

L2TPV3_MESSAGE_TYPES = {
    1: "SCCRQ",
    2: "SCCRP",
    3: "SCCCN",
    4: "StopCCN",
    6: "HELLO",
    7: "OCRQ",
    8: "OCRP",
    9: "OCCN",
    10: "ICRQ",
    11: "ICRP",
    12: "ICCN",
    14: "CDN",
    15: "WEN",
    16: "SLI",
    20: "ACK",
}
L2TPV3_AVP_TYPES = {
    0: "Message Type",
    1: "Result Code",
    7: "Host Name",
    8: "Vendor Name",
    58: "Extended Vendor ID",
    59: "Message Digest",
    60: "Router ID",
    61: "Assigned Control Connection ID",
    62: "Pseudowire Capabilities List",
    63: "Local Session ID",
    64: "Remote Session ID",
    65: "Assigned Cookie",
    66: "Remote End ID",
    68: "Pseudowire Type",
    69: "L2-Specific Sublayer",
    70: "Data Sequencing",
    71: "Circuit Status",
}
AVP_LOCAL_SESSION_ID, AVP_ASSIGNED_COOKIE = 63, 65
AVP_PW_TYPE, AVP_L2SS = 68, 69
L2SS_FIELDS = ("l2ss_x", "l2ss_s", "l2ss_reserved", "l2ss_seq")


# -- hooks: what the layer asks of the session table -------------------------------
class L2TPv3Layout(NamedTuple):
    """How a session's data is laid out: what the wire does not say."""

    cookie_len: int = 0  # 0, 4 or 8 bytes
    l2ss: bool = False  # Default L2-Specific Sublayer present
    pw_type: int = PW_TYPE_ETHERNET  # RFC 4719 Ethernet (5) or Ethernet VLAN (4)


#: ``(session_id, outer destination or None) -> layout`` (any object with
#: ``cookie_len``, ``l2ss`` and ``pw_type``).
SessionResolver = Callable[[int, Optional[str]], Any]
ControlHook = Callable[[Packet], None]


def _no_sessions(session_id: int, dst: Optional[str]) -> L2TPv3Layout:
    return L2TPv3Layout()


_hooks: Dict[str, Any] = {"resolve": _no_sessions, "control": None}


def set_session_resolver(resolver: Optional[SessionResolver]) -> SessionResolver:
    """Install RESOLVER as the layout source for dissection; returns the previous one.

    None restores the default (no cookie, no sublayer, Ethernet).
    """
    previous: SessionResolver = _hooks["resolve"]
    _hooks["resolve"] = resolver if resolver is not None else _no_sessions
    return previous


def set_control_hook(hook: Optional[ControlHook]) -> Optional[ControlHook]:
    """Call HOOK with every dissected :class:`L2TPv3Control`; returns the previous one."""
    previous: Optional[ControlHook] = _hooks["control"]
    _hooks["control"] = hook
    return previous


def resolve_session(session_id: int, dst: Optional[str] = None) -> Any:
    """The layout the installed resolver gives SESSION_ID's data sent to DST."""
    return _hooks["resolve"](session_id, dst)


def outer_address(layer: Optional[Packet], which: str) -> Optional[str]:
    """The source or destination ("src"/"dst") of the IP header below LAYER."""
    while layer is not None and not isinstance(layer, (IP, IPv6)):
        layer = layer.underlayer
    return None if layer is None else str(getattr(layer, which))


# -- layers ---------------------------------------------------------------------------
def _data(pkt: Packet) -> bool:
    return pkt.session_id != 0


#: The note (see compat.layer_note) holding (session ID, layout) of a dissected layer.
_LAYOUT_NOTE = "l2tpv3_layout"


def _layout(pkt: Packet, session_id: int) -> Any:
    """The layout of PKT's data from the session resolver: by outer destination, then ID.

    Looked up once per dissection (the fields ask several times).
    """
    cached = layer_note(pkt, _LAYOUT_NOTE)
    if cached is not None and cached[0] == session_id:
        return cached[1]
    layout = _hooks["resolve"](session_id, outer_address(pkt.underlayer, "dst"))
    set_layer_note(pkt, _LAYOUT_NOTE, (session_id, layout))
    return layout


def _cookie_len(pkt: Packet) -> int:
    return _layout(pkt, pkt.session_id).cookie_len


def _has_l2ss(pkt: Packet) -> bool:
    """Dissecting: the session's layout says.  Building: the fields set say."""
    if pkt.session_id == 0:
        return False
    if any(name in pkt.fields for name in L2SS_FIELDS):
        return True
    cached = layer_note(pkt, _LAYOUT_NOTE)  # set by do_dissect only
    return cached is not None and cached[0] == pkt.session_id and cached[1].l2ss


class L2TPv3(Packet):
    """L2TPv3 data message: Session ID, Cookie, optional Default L2SS, Ethernet.

    Over IP protocol 115 this is the whole header; over UDP it follows
    :class:`L2TPv3UDP`.  Session ID 0 (over IP) introduces a control message.
    The cookie and L2SS are read per the session resolver when dissecting; when
    building, the values you set are written (setting any ``l2ss_*`` field
    adds the sublayer).
    """

    name = "L2TPv3"
    fields_desc = [
        XIntField("session_id", 0),
        ConditionalField(StrLenField("cookie", b"", length_from=_cookie_len), _data),
        ConditionalField(BitField("l2ss_x", 0, 1), _has_l2ss),
        ConditionalField(BitField("l2ss_s", 0, 1), _has_l2ss),
        ConditionalField(BitField("l2ss_reserved", 0, 6), _has_l2ss),
        ConditionalField(BitField("l2ss_seq", 0, 24), _has_l2ss),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt is not None and len(_pkt) < 4:
            return conf.raw_layer
        return cls

    def do_dissect(self, s: bytes) -> bytes:
        # The sublayer is 4 bytes; a shorter remainder stays payload (lossless).
        sid = int.from_bytes(s[:4], "big") if len(s) >= 4 else 0
        set_layer_note(self, _LAYOUT_NOTE, None)  # the table may have changed
        layout = _layout(self, sid)
        if sid and layout.l2ss and len(s) < 4 + layout.cookie_len + 4:
            cookie = s[4 : 4 + layout.cookie_len]
            self.fields["session_id"] = sid
            self.fields["cookie"] = cookie
            set_dissection_cache(self, s[: 4 + len(cookie)], {})
            return s[4 + len(cookie) :]
        return super().do_dissect(s)

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.session_id != 0 and len(self.cookie or b"") not in (0, 4, 8):
            raise BuildError(
                "L2TPv3", "cookie", self.cookie, "has a length other than 0, 4 or 8 (RFC 3931 §4.1)"
            )
        if not 0 <= self.session_id < 1 << 32:
            raise BuildError("L2TPv3", "session_id", self.session_id, "32 bits")
        return pkt + pay

    def guess_payload_class(self, payload: bytes) -> Type[Packet]:
        if self.session_id == 0:
            return L2TPv3Control
        if _layout(self, self.session_id).pw_type in _ETHERNET_PW:
            return Ether
        return conf.raw_layer

    def mysummary(self) -> str:
        if self.session_id == 0:
            return "L2TPv3 control"
        return self.sprintf("L2TPv3 (session_id=%L2TPv3.session_id%)")


class L2TPv3UDP(Packet):
    """The 4-byte L2TPv3-over-UDP data header (T=0, Ver=3), then :class:`L2TPv3`."""

    name = "L2TPv3 over UDP"
    fields_desc = [
        BitField("t", 0, 1),
        BitField("reserved_flags", 0, 11),
        BitField("version", 3, 4),
        ShortField("reserved", 0),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt is None:
            return cls
        if len(_pkt) < 2 or _pkt[1] & 0x0F != 3:
            return L2TP  # L2TPv2 (and L2F): Scapy's own layer, as before
        if _pkt[0] & 0x80:
            return L2TPv3Control  # T=1: the control header starts here
        if len(_pkt) < 4:
            return conf.raw_layer
        return cls


class L2TPv3AVP(Packet):
    """One Attribute-Value Pair; the value is kept raw."""

    name = "L2TPv3 AVP"
    fields_desc = [
        BitField("m", 0, 1),
        BitField("h", 0, 1),
        BitField("reserved", 0, 4),
        BitFieldLenField("length", None, 10, length_of="value", adjust=lambda pkt, x: x + 6),
        ShortField("vendor_id", 0),
        ShortEnumField("attr_type", 0, L2TPV3_AVP_TYPES),
        # A Length below 6 is malformed: keep the rest of the message as the
        # value so that nothing is lost.
        StrLenField("value", b"", length_from=lambda pkt: pkt.length - 6 if pkt.length >= 6 else 1 << 20),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt is not None and len(_pkt) < 6:
            return conf.raw_layer
        return cls

    def extract_padding(self, s: bytes) -> Any:
        return b"", s

    def mysummary(self) -> str:
        return self.sprintf("AVP %attr_type%")


def _avps_len(pkt: Packet) -> int:
    if pkt.l and pkt.length is not None:
        return max(0, int(pkt.length) - 12)
    return 1 << 20


class L2TPv3Control(Packet):
    """The control message header and its AVPs (the value of each kept raw)."""

    name = "L2TPv3 control"
    fields_desc = [
        BitField("t", 1, 1),
        BitField("l", 1, 1),
        BitField("x1", 0, 2),
        BitField("s", 1, 1),
        BitField("x2", 0, 7),
        BitField("version", 3, 4),
        ShortField("length", None),
        XIntField("ccid", 0),
        ShortField("ns", 0),
        ShortField("nr", 0),
        PacketListField("avps", [], L2TPv3AVP, length_from=_avps_len),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt is not None and len(_pkt) < 12:
            return conf.raw_layer
        return cls

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None and self.l:
            pkt = pkt[:2] + len(pkt).to_bytes(2, "big") + pkt[4:]
        return pkt + pay

    def extract_padding(self, s: bytes) -> Any:
        return b"", s

    def post_dissection(self, pkt: Packet) -> None:
        hook = _hooks["control"]
        if hook is not None:
            hook(self)

    def message_type(self) -> Optional[int]:
        """The Message Type AVP value (the first AVP), or None (a ZLB ACK)."""
        for avp in self.avps:
            if isinstance(avp, L2TPv3AVP) and avp.attr_type == 0 and len(avp.value) == 2:
                return int.from_bytes(avp.value, "big")
        return None

    def mysummary(self) -> str:
        mtype = self.message_type()
        name = L2TPV3_MESSAGE_TYPES.get(mtype, str(mtype)) if mtype is not None else "ZLB"
        return "L2TPv3 control %s (ccid=0x%08x)" % (name, self.ccid)


# -- bindings -------------------------------------------------------------------------
# IP protocol 115 / IPv6 next header 115.
bind_layers(IP, L2TPv3, frag=0, proto=IPPROTO_L2TP)
bind_layers(IPv6, L2TPv3, nh=IPPROTO_L2TP)
# UDP 1701: dissection by version nibble (v3 here, v2 Scapy's L2TP): L2TPv3UDP is
# tried before Scapy's L2TP and hands every non-v3 packet back to it.
bind_bottom_up_first(UDP, L2TPv3UDP, sport=L2TP_PORT)
bind_bottom_up_first(UDP, L2TPv3UDP, dport=L2TP_PORT)
bind_top_down(UDP, L2TPv3UDP, sport=L2TP_PORT, dport=L2TP_PORT)
bind_top_down(UDP, L2TPv3Control, sport=L2TP_PORT, dport=L2TP_PORT)
bind_layers(L2TPv3UDP, L2TPv3)


# -- old import paths (before 0.2), kept for one release ---------------------------------
_MOVED = (
    "L2TPv3Session",
    "SessionKey",
    "l2tpv3_session",
    "l2tpv3_forget",
    "l2tpv3_sessions",
    "l2tpv3_lookup",
    "l2tpv3_default",
    "l2tpv3_learn",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            "scapy_geneve.layers.l2tpv3.%s moved to scapy_geneve.tunnels.l2tpv3 "
            "(the old path goes in the next release)" % name,
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("scapy_geneve.tunnels.l2tpv3"), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
