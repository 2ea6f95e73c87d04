"""scapy-geneve: overlay-network encapsulations for Scapy.

``import scapy_geneve`` binds every layer into Scapy (RFC 8926 Geneve on UDP
6081, VXLAN/GPE/GBP, NVGRE, STT, L2TPv3) and exposes the verbs:
encapsulate/decapsulate, segment/coalesce, lint, vectors/run_vectors, compare,
scan/compute_stats/filter_capture, scan_batches.

What is public is ``__all__``: the layers, the verbs and the types they
return, the errors and the option-class registry.  ``from scapy_geneve import
*`` never shadows a Scapy name with a different object (a test checks it).
The conformance harness (namespaces, Open vSwitch, raw sockets) and the
columnar export (pyarrow) are imported on first use; the CLI
(:mod:`scapy_geneve.cli`) is a leaf and is never imported here.
"""

import importlib
import sys
from typing import Any, Dict, List

__version__ = "0.2.0"

from scapy_geneve.errors import BuildError, CaptureError, GeneveError  # noqa: E402
from scapy_geneve.consts import (  # noqa: E402
    GENEVE_PORT,
    OPTION_CLASSES,
    name_option_class,
    option_class_name,
)
from scapy_geneve.layers import *  # noqa: E402,F401,F403  (binds every layer)
from scapy_geneve.layers import __all__ as _layers_all  # noqa: E402
from scapy_geneve.tunnels.tunnel import (  # noqa: E402
    NotATunnel,
    TunnelInfo,
    decapsulate,
    encapsulate,
    entropy_sport,
)
from scapy_geneve.tunnels.compare import Comparison, compare  # noqa: E402
from scapy_geneve.tunnels.l2tpv3 import (  # noqa: E402
    L2TPv3Session,
    SessionKey,
    l2tpv3_default,
    l2tpv3_forget,
    l2tpv3_learn,
    l2tpv3_lookup,
    l2tpv3_session,
    l2tpv3_sessions,
)
from scapy_geneve.offload.stt import (  # noqa: E402
    STT_MAX_PENDING,
    STT_REASSEMBLY_TIMEOUT,
    STTFrame,
    STTIncomplete,
    STTReassembly,
    stt_reassemble,
    stt_segment,
)
from scapy_geneve.offload.segment import finish_checksums, segment  # noqa: E402
from scapy_geneve.offload.gro import coalesce  # noqa: E402
from scapy_geneve.conformance.lint import RULES, Finding, lint  # noqa: E402
from scapy_geneve.conformance.vectors import (  # noqa: E402
    Expect,
    Target,
    Vector,
    register_vector,
    vectors,
)
from scapy_geneve.capture.pcapio import (  # noqa: E402,F401  (PcapWriter: not in __all__,
    PcapngWriter,
    PcapWriter,
    iter_records,
    open_capture,  # it would shadow Scapy's)
)
from scapy_geneve.capture.scan import (  # noqa: E402
    PacketFilter,
    Ports,
    ScanRecord,
    ScanStats,
    compute_stats,
    filter_capture,
    parse_packet,
    scan,
)

__all__: List[str] = (
    [
        "__version__",
        "BuildError",
        "CaptureError",
        "GeneveError",
        "GENEVE_PORT",
        "OPTION_CLASSES",
        "name_option_class",
        "option_class_name",
    ]
    + list(_layers_all)
    + [
        # tunnels
        "encapsulate",
        "decapsulate",
        "TunnelInfo",
        "NotATunnel",
        "entropy_sport",
        "compare",
        "Comparison",
        "L2TPv3Session",
        "SessionKey",
        "l2tpv3_session",
        "l2tpv3_forget",
        "l2tpv3_sessions",
        "l2tpv3_lookup",
        "l2tpv3_default",
        "l2tpv3_learn",
        # STT segmentation and reassembly (offload)
        "stt_segment",
        "stt_reassemble",
        "STTFrame",
        "STTIncomplete",
        "STTReassembly",
        "STT_REASSEMBLY_TIMEOUT",
        "STT_MAX_PENDING",
        # offload
        "segment",
        "finish_checksums",
        "coalesce",
        # conformance
        "lint",
        "Finding",
        "RULES",
        "vectors",
        "Vector",
        "Expect",
        "Target",
        "register_vector",
        "run_vectors",
        "VerdictTable",
        # captures
        "scan",
        "ScanRecord",
        "ScanStats",
        "compute_stats",
        "PacketFilter",
        "filter_capture",
        "parse_packet",
        "Ports",
        "open_capture",
        "iter_records",
    ]
)
# ``scan_batches`` (the columnar scan) needs the [analytics] extra: import it by name,
# ``from scapy_geneve import scan_batches``; ``import *`` never pulls in pyarrow.

# -- imported on first use (PEP 562) ------------------------------------------------------
_LAZY: Dict[str, str] = {
    "run_vectors": "scapy_geneve.conformance.harness",
    "VerdictTable": "scapy_geneve.conformance.harness",
    "scan_batches": "scapy_geneve.capture.columnar",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'scapy_geneve' has no attribute %r" % name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


def scapy_ext(plg):  # noqa: ANN001 - Scapy's plugin object
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
    "tunnel": "tunnels.tunnel",
    "compare": "tunnels.compare",
    "segment": "offload.segment",
    "gro": "offload.gro",
    "lint": "conformance.lint",
    "vectors": "conformance.vectors",
    "pcapio": "capture.pcapio",
    "scan": "capture.scan",
}


def _alias_old_paths() -> None:
    for old, new in _OLD_PATHS.items():
        module = sys.modules.get(__name__ + "." + new)
        if module is not None:
            sys.modules.setdefault(__name__ + "." + old, module)


_alias_old_paths()
