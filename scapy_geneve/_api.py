"""Everything ``import scapy_geneve`` exposes, in one place: importing this module binds
every layer into Scapy.

:mod:`scapy_geneve` (``__init__``) imports it at once, which is what a script, the Scapy
shell and pytest see; in the ``scapy-geneve`` command's own process it imports it on the
first public name asked for (see ``scapy_geneve._layers_on_demand``), so the commands
that read captures with the Scapy-free wire decoder start without Scapy.

``__all__`` here is the package's ``__all__``; the package imports the names of
``ON_FIRST_USE`` (the conformance harness, the columnar scan) when first asked for, as
this module never defines them.
"""

from typing import Dict, List

from scapy_geneve import __version__
from scapy_geneve.errors import BuildError, CaptureError, GeneveError
from scapy_geneve.consts import (
    GENEVE_PORT,
    OPTION_CLASSES,
    name_option_class,
    option_class_name,
)
from scapy_geneve.layers import *  # noqa: F401,F403  (binds every layer)
from scapy_geneve.layers import __all__ as _layers_all
from scapy_geneve.tunnels.tunnel import (
    NotATunnel,
    TunnelInfo,
    decapsulate,
    encapsulate,
    entropy_sport,
)
from scapy_geneve.tunnels.compare import Comparison, compare
from scapy_geneve.tunnels.l2tpv3 import (
    L2TPv3Session,
    SessionKey,
    l2tpv3_default,
    l2tpv3_forget,
    l2tpv3_learn,
    l2tpv3_lookup,
    l2tpv3_session,
    l2tpv3_sessions,
)
from scapy_geneve.offload.stt import (
    STT_MAX_PENDING,
    STT_REASSEMBLY_TIMEOUT,
    STTFrame,
    STTIncomplete,
    STTReassembly,
    stt_reassemble,
    stt_segment,
)
from scapy_geneve.offload.segment import finish_checksums, segment
from scapy_geneve.offload.gro import coalesce
from scapy_geneve.conformance.lint import RULES, Finding, lint
from scapy_geneve.conformance.vectors import (
    Expect,
    Target,
    Vector,
    register_vector,
    vectors,
)
from scapy_geneve.capture.pcapio import (  # noqa: F401  (PcapWriter: not in __all__,
    PcapngWriter,
    PcapWriter,
    iter_records,
    open_capture,  # it would shadow Scapy's)
)
from scapy_geneve.capture.scan import (
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
# Imported by the package on first use (PEP 562): the harness needs namespaces and raw
# sockets, the columnar scan pyarrow.  ``scan_batches`` is not in ``__all__``: ``import *``
# never pulls in pyarrow; ``from scapy_geneve import scan_batches`` names it.
ON_FIRST_USE: Dict[str, str] = {
    "run_vectors": "scapy_geneve.conformance.harness",
    "VerdictTable": "scapy_geneve.conformance.harness",
    "scan_batches": "scapy_geneve.capture.columnar",
}

# Reached as ``scapy_geneve.<name>`` but kept out of ``__all__``: ``import *`` would
# shadow Scapy's writers of the same name.
NOT_STARRED: List[str] = ["PcapWriter", "PcapngWriter"]
