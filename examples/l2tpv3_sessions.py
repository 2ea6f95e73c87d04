#!/usr/bin/env python3
"""L2TPv3: the cookie and sublayer are not on the wire, so the session table says them."""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve import L2TPv3, L2TPv3AVP, L2TPv3Control, NotATunnel, decapsulate, encapsulate
from scapy_geneve.tunnels.l2tpv3 import l2tpv3_forget, l2tpv3_learn, l2tpv3_session, l2tpv3_sessions

inner = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1000, dport=2000)
    / b"pseudowire"
)

# Data for session 0x1234, sent by LCCE 192.0.2.1 to LCCE 192.0.2.2.
wire = bytes(
    encapsulate(
        inner,
        "l2tpv3",
        session_id=0x1234,
        cookie=b"\xc0\x01\xc0\x01",
        sequence=7,
        src="192.0.2.1",
        dst="192.0.2.2",
        register=False,
    )
)
print("unknown session (default: no cookie):", IP(wire)[L2TPv3].payload.summary())

l2tpv3_session(0x1234, cookie_len=4, l2ss=True)  # like `ip l2tp add session ...`
inner_back, info = decapsulate(wire)
print("configured session:", inner_back.summary(), "| cookie", info.cookie.hex(), "| sequence", info.sequence)

# Or learn it from the control channel in the same capture (AVPs 63, 65, 68, 69).
# The Session ID and cookie belong to the LCCE that *receives* the data: here
# 192.0.2.2 announces them in its ICRQ, so the entry is keyed (192.0.2.2, 0x1234).
l2tpv3_forget()
icrq = IP(
    bytes(
        IP(src="192.0.2.2", dst="192.0.2.1")
        / L2TPv3(session_id=0)
        / L2TPv3Control(
            ccid=1,
            avps=[
                L2TPv3AVP(m=1, attr_type=0, value=b"\x00\x0a"),  # ICRQ
                L2TPv3AVP(m=1, attr_type=63, value=(0x1234).to_bytes(4, "big")),
                L2TPv3AVP(attr_type=65, value=b"\xc0\x01\xc0\x01"),
                L2TPv3AVP(attr_type=69, value=b"\x00\x01"),
            ],
        )
    )
)
print(icrq[L2TPv3Control].mysummary(), "-> learned sessions", l2tpv3_learn([icrq]))
print("  table:", {k: (v.cookie_len, v.l2ss, v.cookie.hex()) for k, v in l2tpv3_sessions().items()})
print("after learning:", decapsulate(wire)[0].summary())

# The learned cookie value is checked, as the receiving LCCE does.
forged = bytes(
    encapsulate(
        inner,
        "l2tpv3",
        session_id=0x1234,
        cookie=b"\xde\xad\xbe\xef",
        sequence=8,
        src="192.0.2.1",
        dst="192.0.2.2",
        register=False,
    )
)
try:
    decapsulate(forged)
except NotATunnel as exc:
    print("refused:", exc)

# On UDP 1701 the version nibble decides: v3 is ours, v2 stays Scapy's L2TP.
udp = IP(
    bytes(
        encapsulate(
            inner, "l2tpv3", session_id=0x1234, cookie=b"\xc0\x01\xc0\x01", sequence=8, transport="udp"
        )
    )
)
print(udp.summary(), "| UDP", udp[UDP].sport, "->", udp[UDP].dport)
