"""The L2TPv3 session table: what a receiver knows about each session's data.

The cookie length (0, 4 or 8 bytes) and the presence of the Default
L2-Specific Sublayer are *not on the wire* (RFC 3931 §4.1, §4.6): they are
per-session configuration, as ``ip l2tp add session`` sets it.  This module
keeps that configuration in ``conf.contribs["scapy_geneve"]``:
:func:`l2tpv3_session` declares a session, :func:`l2tpv3_learn` fills the
table from the control messages of a capture (AVP 63 Local Session ID with 65
Assigned Cookie, 68 Pseudowire Type, 69 L2-Specific Sublayer),
:func:`l2tpv3_lookup` reads it, :func:`l2tpv3_forget` empties it.  A session
not in the table uses the default (:func:`l2tpv3_default`): no cookie and no
sublayer, as Wireshark's "Detect" falls back to.

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

Importing this module installs :func:`l2tpv3_lookup` as the L2TPv3 layer's
session resolver (:func:`scapy_geneve.layers.l2tpv3.set_session_resolver`)
and a control hook that learns from every dissected control message while
``conf.contribs["scapy_geneve"]["l2tpv3_learn"]`` is True.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from scapy.config import conf
from scapy.packet import Packet

from scapy_geneve.errors import BuildError
from scapy_geneve.layers.l2tpv3 import (
    AVP_ASSIGNED_COOKIE,
    AVP_L2SS,
    AVP_LOCAL_SESSION_ID,
    AVP_PW_TYPE,
    PW_TYPE_ETHERNET,
    L2TPv3AVP,
    L2TPv3Control,
    outer_address,
    set_control_hook,
    set_session_resolver,
)

__all__ = [
    "L2TPv3Session",
    "SessionKey",
    "l2tpv3_session",
    "l2tpv3_forget",
    "l2tpv3_sessions",
    "l2tpv3_lookup",
    "l2tpv3_default",
    "l2tpv3_learn",
]


# -- the session table ------------------------------------------------------------
@dataclass(frozen=True)
class L2TPv3Session:
    """What the receiver of a session's data needs and the wire does not say."""

    cookie_len: int = 0  # 0, 4 or 8 bytes
    l2ss: bool = False  # Default L2-Specific Sublayer present
    pw_type: int = PW_TYPE_ETHERNET  # RFC 4719 Ethernet (5) or Ethernet VLAN (4)
    cookie: Optional[bytes] = None  # the expected cookie value, when known


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
    return cfg


def _check(session_id: int, cookie_len: int, pw_type: int) -> None:
    if not 0 < session_id < 1 << 32:
        raise BuildError("L2TPv3", "session_id", session_id, "must be 1..2**32-1 (0 marks a control message)")
    if cookie_len not in (0, 4, 8):
        raise BuildError(
            "L2TPv3",
            "cookie",
            cookie_len,
            "is not a valid cookie length: 0, 4 or 8 bytes are allowed (RFC 3931 §4.1)",
        )
    if not 0 <= pw_type <= 0xFFFF:
        raise BuildError("L2TPv3", "pw_type", pw_type, "16 bits")


def l2tpv3_session(
    session_id: int,
    cookie_len: Optional[int] = None,
    l2ss: bool = False,
    pw_type: int = PW_TYPE_ETHERNET,
    *,
    cookie: Optional[bytes] = None,
    dst: Optional[str] = None,
) -> L2TPv3Session:
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
            raise BuildError(
                "L2TPv3", "cookie", cookie, "is %d bytes but cookie_len=%d" % (len(cookie), cookie_len)
            )
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


def l2tpv3_default(cookie_len: Optional[int] = None, l2ss: Optional[bool] = None) -> L2TPv3Session:
    """Read, or change, the layout assumed for sessions not in the table.

    The shipped default is no cookie and no sublayer.
    """
    cfg = _config()
    cur: L2TPv3Session = cfg["l2tpv3_default"]
    if cookie_len is not None or l2ss is not None:
        new_len = cur.cookie_len if cookie_len is None else cookie_len
        if new_len not in (0, 4, 8):
            raise BuildError(
                "L2TPv3",
                "cookie",
                new_len,
                "is not a valid cookie length: 0, 4 or 8 bytes are allowed (RFC 3931 §4.1)",
            )
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
    return entry if entry is not None else cfg["l2tpv3_default"]


def _learn_from(ctrl: Packet) -> Optional[int]:
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
    receiver = outer_address(ctrl.underlayer, "src")
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


def _learn_hook(ctrl: Packet) -> None:
    if _config()["l2tpv3_learn"]:
        _learn_from(ctrl)


_config()
set_session_resolver(l2tpv3_lookup)
set_control_hook(_learn_hook)
