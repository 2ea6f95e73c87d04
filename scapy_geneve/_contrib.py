# scapy.contrib.description = scapy-geneve: RFC 8926 Geneve, VXLAN/GPE/GBP, NVGRE, STT, L2TPv3, GSO/GRO, lint
# scapy.contrib.status = loads
"""Shim for Scapy's loader: ``load_contrib("scapy_geneve")`` after
``conf.exts.load("scapy-geneve")`` (or ``conf.load_extensions``) puts the whole
public API of :mod:`scapy_geneve` in the shell's namespace."""

from scapy_geneve import *  # noqa: F401,F403
from scapy_geneve import __all__  # noqa: F401
