"""Scapy-level helpers over every encapsulation: encapsulate/decapsulate, the
comparison, STT segmentation and reassembly, the L2TPv3 session table.

Depends on the layers (Scapy) and the registry; never on capture, offload,
conformance or the CLI.
"""
