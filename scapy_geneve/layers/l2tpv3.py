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
Sublayer are *not on the wire*: they are per-session configuration.  This
module reads them from a session table kept in
``conf.contribs["scapy_geneve"]`` (see :func:`l2tpv3_session`); a session not
in the table uses the default (``l2tpv3_default``), which is no cookie and
no sublayer, as Wireshark's "Detect" falls back to.  :func:`l2tpv3_learn`
fills the table from the control messages of a capture (AVP 63 Local Session
ID with 65 Assigned Cookie, 68 Pseudowire Type, 69 L2-Specific Sublayer).

A Session ID is chosen by, and significant only at, the LCCE that *receives*
the data (RFC 3931 §4.1), and so is the cookie it expects: two LCCEs may use
the same Session ID with different layouts.  An entry may therefore be keyed
by ``(receiver address, session ID)`` (``dst=`` in :func:`l2tpv3_session`;
what :func:`l2tpv3_learn` records, the receiver being the sender of the
control message) or by the session ID alone (any receiver).  A data packet
is looked up by its outer destination first, then by session ID alone.  An
entry may also hold the expected cookie *value*; the layer still dissects
whatever cookie is there, and :func:`scapy_geneve.tunnels.tunnel.decapsulate`
refuses a mismatch, as the receiving LCCE would.

On UDP 1701 the version nibble decides: 3 is dissected here, anything else
(L2TPv2, L2F) is left to Scapy's ``L2TP``.
"""

# scapy.contrib.description = L2TPv3 (RFC 3931/4719) data and control over IP and UDP
# scapy.contrib.status = loads

import ipaddress
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type, Union

from scapy.config import conf
from scapy.fields import (BitField, BitFieldLenField, ConditionalField, PacketListField,
                          ShortEnumField, ShortField, StrLenField, XIntField)
from scapy.packet import Packet, bind_layers, bind_top_down
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.l2tp import L2TP

from scapy_geneve.consts import IPPROTO_L2TP, L2TP_PORT
from scapy_geneve.errors import BuildError

__all__ = ["L2TPv3", "L2TPv3UDP", "L2TPv3Control", "L2TPv3AVP", "L2TPv3Session", "SessionKey",
           "l2tpv3_session", "l2tpv3_forget", "l2tpv3_sessions", "l2tpv3_lookup",
           "l2tpv3_default", "l2tpv3_learn", "L2TPV3_AVP_TYPES", "L2TPV3_MESSAGE_TYPES",
           "PW_TYPE_ETHERNET_VLAN", "PW_TYPE_ETHERNET"]

PW_TYPE_ETHERNET_VLAN = 0x0004   # RFC 4719
PW_TYPE_ETHERNET = 0x0005        # RFC 4719
_ETHERNET_PW = (0, PW_TYPE_ETHERNET_VLAN, PW_TYPE_ETHERNET)   # 0: unknown, decode as Ethernet

L2TPV3_MESSAGE_TYPES = {
    1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 6: "HELLO", 7: "OCRQ",
    8: "OCRP", 9: "OCCN", 10: "ICRQ", 11: "ICRP", 12: "ICCN", 14: "CDN",
    15: "WEN", 16: "SLI", 20: "ACK",
}
L2TPV3_AVP_TYPES = {
    0: "Message Type", 1: "Result Code", 7: "Host Name", 8: "Vendor Name",
    58: "Extended Vendor ID", 59: "Message Digest", 60: "Router ID",
    61: "Assigned Control Connection ID", 62: "Pseudowire Capabilities List",
    63: "Local Session ID", 64: "Remote Session ID", 65: "Assigned Cookie",
    66: "Remote End ID", 68: "Pseudowire Type", 69: "L2-Specific Sublayer",
    70: "Data Sequencing", 71: "Circuit Status",
}
AVP_LOCAL_SESSION_ID, AVP_ASSIGNED_COOKIE = 63, 65
AVP_PW_TYPE, AVP_L2SS = 68, 69
L2SS_FIELDS = ("l2ss_x", "l2ss_s", "l2ss_reserved", "l2ss_seq")


# -- the session table ------------------------------------------------------------
@dataclass(frozen=True)
class L2TPv3Session:
    """What the receiver of a session's data needs and the wire does not say."""

    cookie_len: int = 0              # 0, 4 or 8 bytes
    l2ss: bool = False               # Default L2-Specific Sublayer present
    pw_type: int = PW_TYPE_ETHERNET  # RFC 4719 Ethernet (5) or Ethernet VLAN (4)
    cookie: Optional[bytes] = None   # the expected cookie value, when known


#: A session table key: the session ID, or (receiver address, session ID).
SessionKey = Union[int, Tuple[str, int]]


def _address(addr: Any) -> str:
    """ADDR in its canonical text form (so 2001:DB8::1 and 2001:db8::1 agree)."""
    try:
        return str(ipaddress.ip_address(str(addr)))
    except ValueError:
        raise BuildError("L2TPv3", "dst", addr, "is not an IPv4 or IPv6 address") from None


def _config() -> Dict[str, Any]:
    cfg = conf.contribs.setdefault("scapy_geneve", {})
    cfg.setdefault("l2tpv3_sessions", {})
    cfg.setdefault("l2tpv3_default", L2TPv3Session())
    cfg.setdefault("l2tpv3_learn", False)
    return cfg  # type: ignore[no-any-return]


def _check(session_id: int, cookie_len: int, pw_type: int) -> None:
    if not 0 < session_id < 1 << 32:
        raise BuildError("L2TPv3", "session_id", session_id,
                         "must be 1..2**32-1 (0 marks a control message)")
    if cookie_len not in (0, 4, 8):
        raise BuildError("L2TPv3", "cookie", cookie_len,
                         "is not a valid cookie length: 0, 4 or 8 bytes are allowed "
                         "(RFC 3931 §4.1)")
    if not 0 <= pw_type <= 0xFFFF:
        raise BuildError("L2TPv3", "pw_type", pw_type, "16 bits")


def l2tpv3_session(session_id: int, cookie_len: Optional[int] = None, l2ss: bool = False,
                   pw_type: int = PW_TYPE_ETHERNET, *, cookie: Optional[bytes] = None,
                   dst: Optional[str] = None) -> L2TPv3Session:
    """Declare how data of SESSION_ID is laid out (as ``ip l2tp add session``).

    ``cookie_len`` 0/4/8 bytes (default: the length of ``cookie``, else 0),
    ``l2ss`` the Default L2-Specific Sublayer, ``cookie`` the value the
    receiver expects (checked by ``decapsulate``), ``dst`` the address of
    the receiving LCCE (the outer destination of the data), for a Session ID
    that only that receiver defines.  Replaces any earlier entry for the same
    key; returns the new one.
    """
    if cookie is not None:
        cookie = bytes(cookie)
        if cookie_len is not None and cookie_len != len(cookie):
            raise BuildError("L2TPv3", "cookie", cookie,
                             "is %d bytes but cookie_len=%d" % (len(cookie), cookie_len))
        cookie_len = len(cookie)
    cookie_len = 0 if cookie_len is None else cookie_len
    _check(session_id, cookie_len, pw_type)
    entry = L2TPv3Session(cookie_len, bool(l2ss), pw_type, cookie)
    key: SessionKey = session_id if dst is None else (_address(dst), session_id)
    _config()["l2tpv3_sessions"][key] = entry
    return entry


def l2tpv3_forget(session_id: Optional[int] = None, dst: Optional[str] = None) -> None:
    """Remove sessions from the table: all of them, one session ID (under
    every receiver address), or one ``(dst, session_id)`` entry."""
    sessions = _config()["l2tpv3_sessions"]
    if session_id is None and dst is None:
        sessions.clear()
        return
    address = None if dst is None else _address(dst)
    for key in list(sessions):
        sid, addr = (key[1], key[0]) if isinstance(key, tuple) else (key, None)
        if session_id is not None and sid != session_id:
            continue
        if address is not None and addr != address:
            continue
        del sessions[key]


def l2tpv3_sessions() -> Dict[SessionKey, L2TPv3Session]:
    """A copy of the session table: {session ID or (receiver, session ID): entry}."""
    return dict(_config()["l2tpv3_sessions"])


def l2tpv3_default(cookie_len: Optional[int] = None,
                   l2ss: Optional[bool] = None) -> L2TPv3Session:
    """Read, or change, the layout assumed for sessions not in the table.

    The shipped default is no cookie and no sublayer.
    """
    cfg = _config()
    cur: L2TPv3Session = cfg["l2tpv3_default"]
    if cookie_len is not None or l2ss is not None:
        new_len = cur.cookie_len if cookie_len is None else cookie_len
        if new_len not in (0, 4, 8):
            raise BuildError("L2TPv3", "cookie", new_len,
                             "is not a valid cookie length: 0, 4 or 8 bytes are allowed "
                             "(RFC 3931 §4.1)")
        cur = L2TPv3Session(new_len, cur.l2ss if l2ss is None else bool(l2ss), cur.pw_type)
        cfg["l2tpv3_default"] = cur
    return cur


def l2tpv3_lookup(session_id: int, dst: Optional[str] = None) -> L2TPv3Session:
    """The layout of SESSION_ID's data sent to DST.

    The ``(dst, session_id)`` entry, else the session-ID entry, else the
    default.  Without ``dst``: the session-ID entry, else the only
    per-receiver entry of that session ID (when exactly one exists).
    """
    cfg = _config()
    sessions = cfg["l2tpv3_sessions"]
    entry = None
    if dst is not None:
        try:
            entry = sessions.get((str(ipaddress.ip_address(str(dst))), session_id))
        except ValueError:
            entry = None
    if entry is None:
        entry = sessions.get(session_id)
    if entry is None and dst is None:
        keyed = [e for k, e in sessions.items() if isinstance(k, tuple) and k[1] == session_id]
        if len(keyed) == 1:
            entry = keyed[0]
    return entry if entry is not None else cfg["l2tpv3_default"]  # type: ignore[no-any-return]


def _outer_address(layer: Optional[Packet], which: str) -> Optional[str]:
    """The source or destination ("src"/"dst") of the IP header below LAYER."""
    while layer is not None and not isinstance(layer, (IP, IPv6)):
        layer = layer.underlayer
    return None if layer is None else str(getattr(layer, which))


def _learn_from(ctrl: "L2TPv3Control") -> Optional[int]:
    values: Dict[int, bytes] = {}
    for avp in ctrl.avps:
        if isinstance(avp, L2TPv3AVP) and avp.vendor_id == 0 and not avp.h:
            values.setdefault(int(avp.attr_type), bytes(avp.value))
    sid_raw = values.get(AVP_LOCAL_SESSION_ID)
    if sid_raw is None or len(sid_raw) != 4:
        return None
    sid = int.from_bytes(sid_raw, "big")
    if sid == 0:
        return None
    # The sender of the control message is the LCCE that will receive this
    # session's data: the entry is keyed by its address.
    receiver = _outer_address(ctrl.underlayer, "src")
    old = l2tpv3_lookup(sid, receiver)
    cookie = values.get(AVP_ASSIGNED_COOKIE)
    if cookie is None or len(cookie) not in (0, 4, 8):
        cookie = old.cookie if old.cookie is not None else None
        cookie_len = old.cookie_len
    else:
        cookie_len = len(cookie)
    l2ss_raw = values.get(AVP_L2SS)
    l2ss = (int.from_bytes(l2ss_raw, "big") == 1) if l2ss_raw and len(l2ss_raw) == 2 else old.l2ss
    pw_raw = values.get(AVP_PW_TYPE)
    pw_type = int.from_bytes(pw_raw, "big") if pw_raw and len(pw_raw) == 2 else old.pw_type
    l2tpv3_session(sid, cookie_len, l2ss, pw_type, cookie=cookie, dst=receiver)
    return sid


def l2tpv3_learn(packets: Iterable[Packet]) -> List[int]:
    """Fill the session table from the control messages among PACKETS.

    A control message (ICRQ, ICRP, OCRQ, OCRP, ...) whose sender announces
    its Local Session ID (AVP 63) also says, for that session, the cookie it
    wants to receive (AVP 65 Assigned Cookie), the pseudowire type (AVP 68)
    and whether it requires the Default L2-Specific Sublayer (AVP 69 = 1).
    The entry is keyed by the sender's address (the receiver of the data),
    when the message has an IP header.  Hidden (H=1) and vendor AVPs are
    skipped.  Returns the session IDs learned.  Dissect the data packets
    *after* learning.
    """
    learned = []
    for pkt in packets:
        layer = pkt.getlayer(L2TPv3Control)
        if layer is not None:
            sid = _learn_from(layer)
            if sid is not None:
                learned.append(sid)
    return learned


# -- layers ---------------------------------------------------------------------------
def _data(pkt: Packet) -> bool:
    return pkt.session_id != 0


def _layout(pkt: Packet, session_id: int) -> L2TPv3Session:
    """The session table entry for PKT's data: by outer destination, then ID.

    Looked up once per dissection (the fields ask several times).
    """
    cached = pkt.__dict__.get("_l2tpv3_layout")
    if cached is not None and cached[0] == session_id:
        return cached[1]  # type: ignore[no-any-return]
    layout = l2tpv3_lookup(session_id, _outer_address(pkt.underlayer, "dst"))
    pkt.__dict__["_l2tpv3_layout"] = (session_id, layout)
    return layout


def _cookie_len(pkt: Packet) -> int:
    return _layout(pkt, pkt.session_id).cookie_len


def _has_l2ss(pkt: Packet) -> bool:
    """Dissecting: the session's layout says.  Building: the fields set say."""
    if pkt.session_id == 0:
        return False
    if any(name in pkt.fields for name in L2SS_FIELDS):
        return True
    cached = pkt.__dict__.get("_l2tpv3_layout")    # set by do_dissect only
    return cached is not None and cached[0] == pkt.session_id and cached[1].l2ss


class L2TPv3(Packet):
    """L2TPv3 data message: Session ID, Cookie, optional Default L2SS, Ethernet.

    Over IP protocol 115 this is the whole header; over UDP it follows
    :class:`L2TPv3UDP`.  Session ID 0 (over IP) introduces a control message.
    The cookie and L2SS are read per the session table when dissecting; when
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
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any,
                      **kargs: Any) -> Type[Packet]:
        if _pkt is not None and len(_pkt) < 4:
            return conf.raw_layer
        return cls

    def do_dissect(self, s: bytes) -> bytes:
        # The sublayer is 4 bytes; a shorter remainder stays payload (lossless).
        sid = int.from_bytes(s[:4], "big") if len(s) >= 4 else 0
        self.__dict__.pop("_l2tpv3_layout", None)     # the table may have changed
        layout = _layout(self, sid)
        if sid and layout.l2ss and len(s) < 4 + layout.cookie_len + 4:
            self.raw_packet_cache_fields = {}
            self.fields["session_id"] = sid
            cookie = s[4:4 + layout.cookie_len]
            self.fields["cookie"] = cookie
            self.raw_packet_cache = s[:4 + len(cookie)]
            self.explicit = 1
            return s[4 + len(cookie):]
        return super().do_dissect(s)  # type: ignore[no-any-return]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.session_id != 0 and len(self.cookie or b"") not in (0, 4, 8):
            raise BuildError("L2TPv3", "cookie", self.cookie, "has a length other than 0, 4 or 8 "
                             "(RFC 3931 §4.1)")
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
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any,
                      **kargs: Any) -> Type[Packet]:
        if _pkt is None:
            return cls
        if len(_pkt) < 2 or _pkt[1] & 0x0F != 3:
            return L2TP              # L2TPv2 (and L2F): Scapy's own layer, as before
        if _pkt[0] & 0x80:
            return L2TPv3Control     # T=1: the control header starts here
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
        BitFieldLenField("length", None, 10, length_of="value",
                         adjust=lambda pkt, x: x + 6),
        ShortField("vendor_id", 0),
        ShortEnumField("attr_type", 0, L2TPV3_AVP_TYPES),
        # A Length below 6 is malformed: keep the rest of the message as the
        # value so that nothing is lost.
        StrLenField("value", b"",
                    length_from=lambda pkt: pkt.length - 6 if pkt.length >= 6 else 1 << 20),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any,
                      **kargs: Any) -> Type[Packet]:
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
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any,
                      **kargs: Any) -> Type[Packet]:
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
        if _config()["l2tpv3_learn"]:
            _learn_from(self)

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
def _bind_bottom_up_first(lower: Type[Packet], upper: Type[Packet], **fval: Any) -> None:
    """``bind_bottom_up`` that puts the candidate first (see module docstring).

    On UDP 1701 L2TPv3UDP is tried before Scapy's L2TP, and hands every
    non-v3 packet back to it by the version nibble; Scapy's classes are not
    modified.
    """
    guesses = [(f, c) for f, c in lower.payload_guess if not (c is upper and f == fval)]
    lower.payload_guess = [(fval, upper)] + guesses


_config()
# IP protocol 115 / IPv6 next header 115.
bind_layers(IP, L2TPv3, frag=0, proto=IPPROTO_L2TP)
bind_layers(IPv6, L2TPv3, nh=IPPROTO_L2TP)
# UDP 1701: dissection by version nibble (v3 here, v2 Scapy's L2TP).
_bind_bottom_up_first(UDP, L2TPv3UDP, sport=L2TP_PORT)
_bind_bottom_up_first(UDP, L2TPv3UDP, dport=L2TP_PORT)
bind_top_down(UDP, L2TPv3UDP, sport=L2TP_PORT, dport=L2TP_PORT)
bind_top_down(UDP, L2TPv3Control, sport=L2TP_PORT, dport=L2TP_PORT)
bind_layers(L2TPv3UDP, L2TPv3)
