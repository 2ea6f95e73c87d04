"""scapy-geneve: overlay-network encapsulations for Scapy.

``import scapy_geneve`` binds every layer into Scapy (RFC 8926 Geneve on UDP
6081, VXLAN/GPE/GBP, NVGRE, STT, L2TPv3) and exposes the helpers:
encapsulate/decapsulate, segment/coalesce, lint, scan.

The CLI (:mod:`scapy_geneve.cli`) is a leaf and is never imported here.
"""

__version__ = "0.1.0"

from scapy_geneve.errors import BuildError, CaptureError, GeneveError  # noqa: F401
from scapy_geneve.consts import (  # noqa: F401
    GENEVE_PORT, OPTION_CLASSES, name_option_class, option_class_name,
)
from scapy_geneve.layers import *  # noqa: F401,F403
from scapy_geneve.layers import __all__ as _layers_all

__all__ = [
    "__version__", "BuildError", "CaptureError", "GeneveError", "GENEVE_PORT",
    "OPTION_CLASSES", "name_option_class", "option_class_name",
] + list(_layers_all)

# -- helpers (each block: one module's public API) ------------------------------
# (tunnel API, segmentation, lint/conformance and scan add their imports here)
from scapy_geneve.tunnels.tunnel import (  # noqa: E402
    NotATunnel, TunnelInfo, decapsulate, encapsulate, entropy_sport,
)
__all__ += ["encapsulate", "decapsulate", "TunnelInfo", "NotATunnel", "entropy_sport"]
from scapy_geneve.tunnels.compare import Comparison, compare  # noqa: E402
__all__ += ["compare", "Comparison"]
from scapy_geneve.offload.segment import finish_checksums, segment  # noqa: E402
from scapy_geneve.offload.gro import coalesce  # noqa: E402
__all__ += ["segment", "finish_checksums", "coalesce"]
from scapy_geneve.conformance.lint import RULES, Finding, lint  # noqa: E402
from scapy_geneve.conformance.vectors import Expect, Target, Vector, register_vector, vectors  # noqa: E402
from scapy_geneve.conformance.harness import VerdictTable, run_vectors  # noqa: E402
__all__ += ["lint", "Finding", "RULES", "vectors", "Vector", "Expect", "Target",
            "register_vector", "run_vectors", "VerdictTable"]
from scapy_geneve.capture.pcapio import PcapngWriter, PcapWriter, iter_records, open_capture  # noqa: E402
from scapy_geneve.capture.scan import (  # noqa: E402
    PacketFilter, Ports, ScanRecord, ScanStats, compute_stats, filter_capture, parse_packet, scan,
)
__all__ += ["scan", "ScanRecord", "ScanStats", "compute_stats", "PacketFilter", "filter_capture",
            "parse_packet", "Ports", "open_capture", "iter_records", "PcapWriter", "PcapngWriter"]


def scapy_ext(plg):  # type: ignore[no-untyped-def]
    """Scapy's extension hook: ``conf.load_extensions = ["scapy-geneve"]``.

    Registers :mod:`scapy_geneve._contrib` so ``load_contrib("scapy_geneve")``
    works in the Scapy shell.
    """
    plg.config("scapy-geneve", __version__)
    plg.register(
        name="scapy_geneve",
        mode=plg.MODE.CONTRIB,
        path=__path__[0] + "/_contrib.py",
    )


# -- old module paths (before 0.2), kept for one release ---------------------------------
# Registered in sys.modules so that ``import scapy_geneve.segment`` finds the moved
# module without importing a shim: a shim would rebind ``scapy_geneve.segment`` (the
# function) to a module.  ``harness`` and ``endpoints`` are lazy shim files instead.
_OLD_PATHS = {
    "tunnel": "tunnels.tunnel", "compare": "tunnels.compare", "segment": "offload.segment",
    "gro": "offload.gro", "lint": "conformance.lint", "vectors": "conformance.vectors",
    "pcapio": "capture.pcapio", "scan": "capture.scan",
}


def _alias_old_paths() -> None:
    import sys
    for old, new in _OLD_PATHS.items():
        module = sys.modules.get(__name__ + "." + new)
        if module is not None:
            sys.modules.setdefault(__name__ + "." + old, module)


_alias_old_paths()
