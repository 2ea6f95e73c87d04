"""Installing or importing scapy-geneve changes nobody else's Scapy session or test run.

Each check runs in a fresh interpreter (or a fresh pytest run of an unrelated
project), as a new user would meet it.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# An unrelated project's test: GRE with a key and protocol 0x6558 is Scapy's GRE,
# and load_contrib("geneve") puts Scapy's contrib GENEVE on UDP 6081.
UNRELATED_TEST = """
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Ether
from scapy.main import load_contrib
from scapy.packet import Raw


def test_gre_stays_gre():
    wire = bytes(IP() / GRE(key_present=1, key=0x1C8, proto=0x6558) / Ether() / Raw(b"x" * 20))
    assert type(IP(wire).payload).__name__ == "GRE"


def test_contrib_geneve_gets_its_port():
    load_contrib("geneve")
    wire = bytes(IP() / UDP(sport=1, dport=6081) / Raw(bytes.fromhex("0000655800000100")))
    assert type(IP(wire)[UDP].payload).__module__ == "scapy.contrib.geneve"
"""


def _run(args, cwd, **kw):
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(args, cwd=str(cwd), capture_output=True, text=True, timeout=180, env=env, **kw)


def test_an_unrelated_pytest_project_is_untouched(tmp_path):
    (tmp_path / "test_theirs.py").write_text(UNRELATED_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
    assert "conformance" not in res.stdout


def test_the_plugin_is_opt_in(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "def test_x(request):\n"
        "    print(request.config.pluginmanager.has_plugin("
        "'scapy_geneve.pytest_plugin'))\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    off = _run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", str(tmp_path)], tmp_path
    )
    on = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-s",
            "-p",
            "scapy_geneve.pytest_plugin",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert "False" in off.stdout and "True" in on.stdout, off.stdout + on.stdout


def _py(code: str) -> str:
    res = _run([sys.executable, "-c", textwrap.dedent(code)], ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


def test_star_import_shadows_no_scapy_name():
    out = _py("""
    import scapy.all as sa
    import scapy_geneve
    clash = [n for n in scapy_geneve.__all__
             if hasattr(sa, n) and getattr(sa, n) is not getattr(scapy_geneve, n)]
    print(clash)
    """)
    assert out == "[]"


def test_scapys_pcapwriter_survives_our_star_import(tmp_path):
    out = _py(
        """
    from scapy.all import *
    from scapy_geneve import *
    path = %r
    w = PcapWriter(path, append=True)
    w.write(Ether() / IP())
    w.close()
    w = PcapWriter(path, append=True)
    w.write(Ether() / IP())
    w.close()
    print(len(rdpcap(path)), PcapWriter.__module__)
    """
        % str(tmp_path / "x.pcap")
    )
    assert out == "2 scapy.utils"


def test_importing_the_capture_side_leaves_the_lab_alone():
    out = _py("""
    import sys, time
    t = time.perf_counter()
    import scapy_geneve.capture.scan
    took = time.perf_counter() - t
    lab = [m for m in ("scapy_geneve.conformance.endpoints", "scapy_geneve.conformance.harness",
                       "scapy_geneve.cli", "IPython", "scapy.all", "pyarrow", "matplotlib")
           if m in sys.modules]
    print(lab, file=sys.stdout)
    print("cold import %.3f s" % took, file=sys.stderr)
    """)
    assert out == "[]"


def test_old_module_paths_still_import():
    out = _py("""
    import warnings
    import scapy_geneve
    from scapy_geneve.scan import parse_packet
    from scapy_geneve.segment import segment_bytes
    from scapy_geneve.pcapio import open_capture
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from scapy_geneve.endpoints import Endpoint
    print(callable(scapy_geneve.segment), caught[0].category.__name__)
    """)
    assert out == "True DeprecationWarning"


def test_tests_do_not_write_into_home():
    # conftest.py points HOME and the XDG directories at a temporary folder.
    assert (
        os.environ["HOME"] != os.path.expanduser("~root") or "scapy-geneve-tests-home" in os.environ["HOME"]
    )
    assert "scapy-geneve-tests-home" in os.environ["XDG_CACHE_HOME"]
