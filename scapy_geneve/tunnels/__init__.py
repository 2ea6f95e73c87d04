"""Scapy-level helpers over every encapsulation: encapsulate/decapsulate (one adapter
per kind, named by the registry), the comparison, the L2TPv3 session table.

Depends on the layers (Scapy), the registry and offload's STT segmentation; never
on capture, conformance or the CLI.
"""

# The L2TPv3 session table becomes the L2TPv3 layer's session resolver.
from scapy_geneve.tunnels import l2tpv3 as _l2tpv3  # noqa: E402,F401
