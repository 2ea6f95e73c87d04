"""Installation hooks and living beside Scapy's own contrib Geneve."""

import subprocess
import sys
import textwrap


def run_py(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


WIRE = """
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    wire = bytes(IP() / UDP(sport=1, dport=6081) / Raw(bytes.fromhex("0000655800000100")))
"""


def test_ours_wins_when_imported_first():
    out = run_py(
        WIRE
        + """
    import scapy_geneve
    from scapy.main import load_contrib
    load_contrib("geneve")
    print(type(IP(wire)[UDP].payload).__module__)
    """
    )
    assert out == "scapy_geneve.layers.geneve"


def test_contrib_wins_when_loaded_first_until_claimed():
    out = run_py(
        WIRE
        + """
    from scapy.main import load_contrib
    load_contrib("geneve")
    import scapy_geneve
    before = type(IP(wire)[UDP].payload).__module__
    scapy_geneve.claim_geneve_port()
    after = type(IP(wire)[UDP].payload).__module__
    print(before, after)
    """
    )
    assert out == "scapy.contrib.geneve scapy_geneve.layers.geneve"


def test_scapy_extension_and_load_contrib():
    out = run_py("""
    from scapy.config import conf
    conf.exts.load("scapy-geneve")
    # every top-level module of the distribution has the hook (scapy_geneve_main too):
    # else Scapy warns it is no plugin and leaves it out of conf.exts
    assert "scapy-geneve" in conf.exts._loaded, repr(conf.exts)
    assert "scapy-geneve" in repr(conf.exts), repr(conf.exts)
    from scapy.main import load_contrib
    load_contrib("scapy_geneve")
    import builtins
    print(builtins.Geneve.__module__, builtins.GeneveOptionOVN.__name__)
    """)
    assert out == "scapy_geneve.layers.geneve GeneveOptionOVN"


def test_import_does_not_pull_in_scapy_all():
    out = run_py("""
    import sys
    import scapy_geneve
    print("scapy.all" in sys.modules)
    """)
    assert out == "False"
