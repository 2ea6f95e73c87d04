"""Scapy-level helpers over every encapsulation: encapsulate/decapsulate, the
comparison, STT segmentation and reassembly, the L2TPv3 session table.

Depends on the layers (Scapy) and the registry; never on capture, offload,
conformance or the CLI.
"""

# The L2TPv3 session table becomes the L2TPv3 layer's session resolver.
from scapy_geneve.tunnels import l2tpv3 as _l2tpv3  # noqa: E402,F401
