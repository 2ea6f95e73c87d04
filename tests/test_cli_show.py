"""``scapy-geneve show`` and ``shell`` as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter

from scapy_geneve import Geneve, GeneveOptionOVN
from scapy_geneve.cli import main

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "scapy_geneve", *args], capture_output=True,
                          text=True, input=stdin, timeout=120)


def test_show_defaults_to_the_bundled_sample():
    res = cli("show")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 30
    assert "Geneve vni=0x123456 proto=TEB" in lines[0]
    assert "192.0.2.1:50123 > 192.0.2.2:6081 UDP" in lines[0]
    assert "options=1 [C]" in lines[3]  # the OVN option is critical
    assert "proto=MPLS | MPLS" in res.stdout  # contrib payloads load for show


def test_show_count_and_detail(capsys):
    assert main(["show", "--count", "2", "--detail"]) == 0
    out = capsys.readouterr().out
    assert out.count("###[ Geneve ]###") == 2
    assert out.count("#1 ") + out.count("#2 ") == 2 and "#3 " not in out


def test_show_detail_shows_the_critical_bit(capsys):
    assert main(["show", str(ROOT / "pcaps" / "geneve_options.pcap"), "-c", "1", "--detail"]) == 0
    out = capsys.readouterr().out
    assert "Geneve Option OVN" in out and "critical, type 0x00" in out


def test_show_reads_pcapng(tmp_path, capsys):
    path = tmp_path / "x.pcapng"
    with PcapNgWriter(str(path)) as out:
        out.write(Ether() / IP() / UDP() / Geneve(vni=77, options=[GeneveOptionOVN()]) / Ether())
    assert main(["show", str(path)]) == 0
    assert "Geneve vni=0x4d" in capsys.readouterr().out


def test_show_corpus_capture(corpus, capsys):
    assert main(["show", str(corpus / "geneve.pcap"), "-c", "1"]) == 0
    assert "Geneve vni=0xa proto=TEB options=1 [C]" in capsys.readouterr().out


def test_bad_files_give_a_clear_error_and_exit_2(tmp_path):
    missing = cli("show", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 2 and "nope.pcap" in missing.stderr
    assert "Traceback" not in missing.stderr
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture file at all")
    res = cli("show", str(garbage))
    assert res.returncode == 2 and "garbage.pcap" in res.stderr and "Traceback" not in res.stderr
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes((ROOT / "pcaps" / "geneve_basic.pcap").read_bytes()[:-10])
    res = cli("show", str(truncated))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "packet 3" in res.stderr and "offset" in res.stderr
    assert len(res.stdout.splitlines()) == 2  # what was read before the error is shown


def test_shell_starts_with_everything_loaded():
    res = cli("shell", "--python", stdin="print(Geneve, GeneveOptionOVN, VXLAN)\n")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "scapy-geneve" in res.stdout + res.stderr
    assert "scapy_geneve.layers.geneve.Geneve" in res.stdout


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "scapy-geneve"
    res = subprocess.run([str(exe) if exe.exists() else "scapy-geneve", "--version"],
                         capture_output=True, text=True, env=dict(os.environ))
    assert res.returncode == 0 and "scapy-geneve" in res.stdout
