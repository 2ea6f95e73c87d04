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

One process is different: the ``scapy-geneve`` command's own (its console script
enters through the top-level module ``scapy_geneve_main``, and ``python -m
scapy_geneve`` is recognised while it imports this package).  There the public
names, and with them every Scapy layer, are imported on first use (PEP 562), so
the commands that read captures with the Scapy-free wire decoder start without
importing Scapy; a command that dissects or builds with Scapy imports
:mod:`scapy_geneve.layers` itself.  The names, objects and bindings are the same.
"""

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, List

__version__ = "0.2.0"

# The console script's entry module; importing it is running the command.
_ENTRY_MODULE = "scapy_geneve_main"


def _layers_on_demand() -> bool:
    """True in the ``scapy-geneve`` command's process only: its console script imported
    ``scapy_geneve_main`` first, or Python is importing this package to run ``python -m
    scapy_geneve`` (``sys.argv[0]`` is ``"-m"`` until runpy has found ``__main__``;
    ``sys.orig_argv``, Python 3.10+, names the module).  No environment variable: a
    subprocess the user starts from a command sees nothing of it."""
    if getattr(sys.modules.get(_ENTRY_MODULE), "LAYERS_ON_DEMAND", False) is True:
        return True
    if sys.argv[:1] != ["-m"]:
        return False
    given = getattr(sys, "orig_argv", [])
    before = given[: len(given) - len(sys.argv) + 1]  # python's options and the -m module
    if before[-1:] == [__name__]:  # ... -m scapy_geneve  (or -Bm scapy_geneve)
        return len(before) >= 2 and before[-2].startswith("-") and before[-2].endswith("m")
    return bool(before) and before[-1].startswith("-") and before[-1].endswith("m" + __name__)


def _load_api() -> ModuleType:
    """Bind every layer into Scapy and define the public names (:mod:`scapy_geneve._api`):
    at import, or in the command's process on the first public name asked for."""
    api = importlib.import_module(__name__ + "._api")
    namespace = globals()
    if "__all__" not in namespace:
        for name in api.__all__ + api.NOT_STARRED:
            if name not in api.ON_FIRST_USE:
                namespace[name] = getattr(api, name)
        namespace["__all__"] = api.__all__
        _alias_old_paths()
    return api


def __getattr__(name: str) -> Any:
    """PEP 562: the harness and the columnar scan on first use; in the command's process
    every public name (a submodule not imported yet is left to the import system)."""
    if name.startswith("__") and name != "__all__":
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    if "__all__" not in globals() and importlib.util.find_spec(__name__ + "." + name) is not None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    api = _load_api()
    module = api.ON_FIRST_USE.get(name)
    if module is None:
        try:
            return globals()[name]
        except KeyError:
            raise AttributeError("module %r has no attribute %r" % (__name__, name)) from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_load_api().ON_FIRST_USE))


def scapy_ext(plg):  # noqa: ANN001 - Scapy's plugin object
    """Scapy's extension hook: ``conf.load_extensions = ["scapy-geneve"]``.

    Registers :mod:`scapy_geneve._contrib` so ``load_contrib("scapy_geneve")``
    works in the Scapy shell.
    """
    plg.config("scapy-geneve", __version__)
    plg.register(
        name="scapy_geneve",
        mode=plg.MODE.CONTRIB,
        path=__path__[0] + "/_contrib.py",  # noqa: F405  (the package's own; ruff sees the star import)
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


if TYPE_CHECKING:
    from scapy_geneve._api import *  # noqa: F401,F403
    from scapy_geneve._api import PcapngWriter, PcapWriter, __all__  # noqa: F401
elif not _layers_on_demand():
    _load_api()  # binds every layer into Scapy
