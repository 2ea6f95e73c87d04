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
from scapy_geneve.tunnel import (  # noqa: E402
    NotATunnel, TunnelInfo, decapsulate, encapsulate, entropy_sport,
)
__all__ += ["encapsulate", "decapsulate", "TunnelInfo", "NotATunnel", "entropy_sport"]
from scapy_geneve.compare import Comparison, compare  # noqa: E402
__all__ += ["compare", "Comparison"]
from scapy_geneve.segment import finish_checksums, segment  # noqa: E402
from scapy_geneve.gro import coalesce  # noqa: E402
__all__ += ["segment", "finish_checksums", "coalesce"]
from scapy_geneve.lint import RULES, Finding, lint  # noqa: E402
from scapy_geneve.vectors import Expect, Target, Vector, register_vector, vectors  # noqa: E402
from scapy_geneve.harness import VerdictTable, run_vectors  # noqa: E402
__all__ += ["lint", "Finding", "RULES", "vectors", "Vector", "Expect", "Target",
            "register_vector", "run_vectors", "VerdictTable"]
from scapy_geneve.pcapio import PcapngWriter, PcapWriter, iter_records, open_capture  # noqa: E402
from scapy_geneve.scan import (  # noqa: E402
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
