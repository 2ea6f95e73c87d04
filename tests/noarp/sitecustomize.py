"""Test-only start-up hook: Scapy resolves no MAC address by ARP or Neighbor
Discovery in the processes the tests start (CLI runs, examples, README blocks).

conftest.py puts this folder first on PYTHONPATH, so every Python the tests start
imports it; building ``Ether()/IP(dst=...)`` then broadcasts as Scapy's fallback
does, instead of asking the machine's gateway.  Network traffic in tests goes only
to loopback or to namespaces the test made itself.
"""

import importlib.abc
import importlib.machinery
import sys

_PATCH = {
    "scapy.layers.l2": "getmacbyip",
    "scapy.layers.inet": "getmacbyip",
    "scapy.layers.inet6": "getmacbyip6",
}


def _no_resolution(*_args, **_kw):
    return "ff:ff:ff:ff:ff:ff"


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        setattr(module, _PATCH[module.__name__], _no_resolution)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _PATCH:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


sys.meta_path.insert(0, _Finder())
