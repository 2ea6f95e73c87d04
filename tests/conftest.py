"""Shared fixtures: where the peers (tshark, tcpdump, the kernel, OVS) and the
tcpdump corpus are, and a clean skip with the reason when one is missing."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

# Be a good guest: nothing the tests run (Scapy's caches, IPython, subprocesses)
# writes into the user's home.  Set before Scapy is imported.
_HOME = tempfile.mkdtemp(prefix="scapy-geneve-tests-home.")
for _var, _sub in (
    ("HOME", ""),
    ("XDG_CACHE_HOME", ".cache"),
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_DATA_HOME", ".local/share"),
    ("IPYTHONDIR", ".ipython"),
    ("MPLCONFIGDIR", ".matplotlib"),
):
    os.environ[_var] = os.path.join(_HOME, _sub) if _sub else _HOME

# ... and no process the tests start asks the network for a MAC address
# (tests/noarp/sitecustomize.py, first on PYTHONPATH for every child Python).
_NOARP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "noarp")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_NOARP] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

import pytest  # noqa: E402
import scapy.layers.inet as _scapy_inet  # noqa: E402
import scapy.layers.inet6 as _scapy_inet6  # noqa: E402
import scapy.layers.l2 as _scapy_l2  # noqa: E402
from scapy.config import conf  # noqa: E402


# Network traffic in tests goes only to loopback or to namespaces a test made: building
# Ether()/IP(dst=...) without a destination MAC must not ARP (or send Neighbor
# Solicitations) on the machine's own interfaces.  Unresolved MACs are broadcast,
# which is what Scapy falls back to anyway.
def _no_resolution(*_args: object, **_kw: object) -> str:
    return "ff:ff:ff:ff:ff:ff"


_scapy_l2.getmacbyip = _scapy_inet.getmacbyip = _no_resolution  # type: ignore[assignment]
_scapy_inet6.getmacbyip6 = _no_resolution  # type: ignore[assignment]

import scapy_geneve  # noqa: F401  (binds every layer)

ROOT = Path(__file__).resolve().parent.parent
#: tcpdump's captures: ../shared/corpus/tcpdump beside the checkout, or SCAPY_GENEVE_CORPUS.
CORPUS = Path(os.environ.get("SCAPY_GENEVE_CORPUS", ROOT.parent / "shared" / "corpus" / "tcpdump"))


@pytest.fixture(autouse=True)
def _debug_dissector():
    """Dissection bugs must surface as exceptions in tests, not hide in Raw."""
    old = conf.debug_dissector
    conf.debug_dissector = True
    yield
    conf.debug_dissector = old


@pytest.fixture
def no_debug_dissector():
    old = conf.debug_dissector
    conf.debug_dissector = False
    yield
    conf.debug_dissector = old


@pytest.fixture(scope="session")
def corpus() -> Path:
    """tcpdump's own test captures (../shared/corpus/tcpdump), read in place."""
    if not CORPUS.is_dir():
        pytest.skip(
            "tcpdump corpus not found at %s: set SCAPY_GENEVE_CORPUS to the folder "
            "holding tcpdump's tests/*.pcap and *.out" % CORPUS
        )
    return CORPUS


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip("%s is not installed (CI installs it through .ci/run)" % name)
    return path


@pytest.fixture(scope="session")
def tshark() -> str:
    return _tool("tshark")


@pytest.fixture(scope="session")
def tcpdump() -> str:
    return _tool("tcpdump")


@pytest.fixture(scope="session")
def netns_capable() -> None:
    """Root with iproute2 and namespaces; the test makes its own namespaces."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    _tool("ip")
    probe = "sgprobe%d" % os.getpid()
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("cannot create a network namespace: %s" % res.stderr.strip())
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


# Hypothesis: no per-example deadline (shared, noisy machines); in CI the
# examples are derandomized so a run is reproducible.
from hypothesis import settings as _hsettings  # noqa: E402

_hsettings.register_profile("default", deadline=None)
_hsettings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
_hsettings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest's hook signature
    shutil.rmtree(_HOME, ignore_errors=True)


@contextlib.contextmanager
def reaped(proc: "subprocess.Popen[Any]") -> "Iterator[subprocess.Popen[Any]]":
    """PROC, started with ``start_new_session=True``: if it still runs on the way out
    (a failed assertion, a timeout), its whole process group is killed and reaped."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
