"""Deprecated path: use :mod:`scapy_geneve.conformance.endpoints` (kept for one release)."""

import importlib
import sys
import warnings

warnings.warn(
    "scapy_geneve.endpoints moved to scapy_geneve.conformance.endpoints", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module("scapy_geneve.conformance.endpoints")
