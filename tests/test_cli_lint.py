"""``scapy-geneve lint`` and ``scapy-geneve conform`` on the command line."""

import json
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from scapy_geneve.cli import main
from scapy_geneve.conformance.lint import RULES
from scapy_geneve.conformance.vectors import vectors

ETH = dict(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")
INNER = Ether(**ETH) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"x")


def geneve(hexhdr, **udp):
    return (Ether(**ETH) / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
            / UDP(sport=50123, dport=6081, **udp) / Raw(bytes.fromhex(hexhdr.replace(" ", ""))) / INNER)


GOOD = "02 40 6558 001388 00  ffff 80 01 1234abcd"        # known-good header, one critical option
VERSION1 = "42 40 6558 001388 00  ffff 80 01 1234abcd"    # Ver = 1
OAM = "02 c0 6558 001388 00  ffff 80 01 1234abcd"         # O bit


@pytest.fixture
def pcaps(tmp_path):
    clean, dirty = str(tmp_path / "clean.pcap"), str(tmp_path / "dirty.pcap")
    wrpcap(clean, [geneve(GOOD), geneve(GOOD)])
    wrpcap(dirty, [geneve(GOOD), geneve(VERSION1), geneve(OAM), geneve(GOOD, chksum=0xBEEF)])
    return clean, dirty


def test_clean_capture_exits_0_with_a_summary(pcaps, capsys):
    assert main(["lint", pcaps[0]]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("2 packets, 0 with findings")


def test_findings_exit_1_one_line_each_with_packet_number(pcaps, capsys):
    assert main(["lint", pcaps[1]]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("#2") and "GNV001" in lines[0] and "MUST" in lines[0]
    assert "@42" in lines[0] and "RFC 8926 §3.4" in lines[0]
    assert lines[1].startswith("#3") and "GNV013" in lines[1]
    assert lines[2].startswith("#4") and "GNV011" in lines[2]
    assert "4 packets, 3 with findings" in lines[-1] and "GNV001 x1" in lines[-1]


def test_json_output(pcaps, capsys):
    assert main(["lint", "--json", pcaps[1]]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["packets"] == 4 and doc["summary"]["packets_with_findings"] == 3
    assert [p["number"] for p in doc["packets"]] == [2, 3, 4]
    first = doc["packets"][0]["findings"][0]
    assert first["rule"] == "GNV001" and first["offset"] == 42 and first["field"] == "Geneve.version"


def test_level_filter_drops_informational_findings(pcaps, capsys):
    assert main(["lint", "--level", "MUST", pcaps[1]]) == 1
    out = capsys.readouterr().out
    assert "GNV013" not in out and "GNV001" in out


def test_understood_classes(tmp_path, capsys):
    path = str(tmp_path / "ovn.pcap")
    wrpcap(path, [geneve(GOOD)])
    assert main(["lint", "--understood", "0x0102", path]) == 1
    assert "GNV014" in capsys.readouterr().out
    assert main(["lint", "--understood", "0xffff:0x80", path]) == 0


def test_geneve_on_another_port(tmp_path, capsys):
    path = str(tmp_path / "p.pcap")
    wrpcap(path, [Ether(**ETH) / IP(flags="DF") / UDP(sport=50123, dport=6082)
                  / Raw(bytes.fromhex(VERSION1.replace(" ", ""))) / INNER])
    assert main(["lint", path]) == 0                      # plain UDP: not looked at
    assert main(["lint", "--geneve-port", "6082", path]) == 1
    out = capsys.readouterr().out
    assert "GNV009" in out and "GNV001" in out


def test_unreadable_file_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    res = subprocess.run([sys.executable, "-m", "scapy_geneve", "lint", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "not a pcap or pcapng file" in res.stderr and str(bad) in res.stderr
    assert "Traceback" not in res.stderr


def test_truncated_file_names_the_offset(pcaps, tmp_path, capsys):
    data = open(pcaps[1], "rb").read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])
    assert main(["lint", str(cut)]) == 2
    out, err = capsys.readouterr()
    assert "offset" in err and "cut.pcap" in err and "packet 4" in err
    # the packets before the damage are still reported, and the report says it is partial
    assert [line.split()[1] for line in out.splitlines()[:2]] == ["GNV001", "GNV013"]
    assert "3 packets, 2 with findings" in out and "INCOMPLETE" in out


def test_truncated_file_json_says_incomplete(pcaps, tmp_path, capsys):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(open(pcaps[1], "rb").read()[:-10])
    assert main(["lint", "--json", str(cut)]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["complete"] is False and "packet 4" in doc["summary"]["error"]
    assert [p["number"] for p in doc["packets"]] == [2, 3]
    assert "cut.pcap" in err


def test_not_a_capture_prints_no_partial_report(tmp_path, capsys):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 64)
    assert main(["lint", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "bad.pcap" in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["lint", str(tmp_path / "nope.pcap")]) == 2
    assert "nope.pcap" in capsys.readouterr().err


def test_list_rules(capsys):
    assert main(["lint", "--list-rules"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(RULES)


def test_conform_list_and_usage_errors(capsys):
    assert main(["conform", "--list", "--protocol", "vxlan"]) == 0
    out = capsys.readouterr().out
    assert "vxlan-reserved-flags-set" in out and "geneve-" not in out
    assert main(["conform", "--list", "--json", "--vector", "geneve-oam"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == [{"vector": "geneve-oam", "protocol": "geneve", "level": "MUST",
                    "section": "RFC 8926 §3.4", "expected": "not-forwarded-as-data", "family": 4,
                    "requirement": doc[0]["requirement"]}]
    assert main(["conform"]) == 2
    assert main(["conform", "interface"]) == 2
    assert "--send-iface" in capsys.readouterr().err


@pytest.mark.netns
def test_conform_linux_vxlan_end_to_end(netns_capable, capsys):
    rc = main(["conform", "linux-vxlan", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["endpoint"] == "linux-vxlan" and len(doc["results"]) == len(vectors(["vxlan"]))
    assert rc == (0 if doc["ok"] else 1)


def test_conform_write_puts_every_selected_vector_in_a_pcap(tmp_path, capsys):
    """Vectors for a device the harness cannot drive: replay the file into it."""
    from scapy_geneve.capture import pcapio
    from scapy_geneve.conformance.vectors import vectors

    out = str(tmp_path / "vxlan-vectors.pcap")
    assert main(["conform", "--write", out, "--protocol", "vxlan", "--dst-mac", "52:54:00:00:00:01",
                 "--dst-ip", "10.0.0.1", "--vni", "77"]) == 0
    assert "%d vectors" % len(vectors(["vxlan"])) in capsys.readouterr().out
    records = list(pcapio.iter_records(out))
    assert len(records) == len(vectors(["vxlan"]))
    first = Ether(records[0].data)
    assert first.dst == "52:54:00:00:00:01" and first[IP].dst == "10.0.0.1"
    assert records[0].data[42 + 4:42 + 7] == (77).to_bytes(3, "big")     # the VNI asked for
    assert main(["conform", "--write", out + ".2", "--vector", "no-such-vector"]) == 2


def test_conform_write_never_replaces_a_file_unasked(tmp_path, capsys):
    out = tmp_path / "precious.pcap"
    out.write_bytes(b"keep me")
    assert main(["conform", "--write", str(out), "--protocol", "vxlan"]) == 2
    assert out.read_bytes() == b"keep me" and "--force" in capsys.readouterr().err
    assert main(["conform", "--write", str(out), "--protocol", "vxlan", "--force"]) == 0
    assert out.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")      # a nanosecond pcap now


def test_conform_interface_refuses_the_same_interface_both_ways(capsys):
    assert main(["conform", "interface", "--send-iface", "lo", "--recv-iface", "lo", "--dst-mac",
                 "02:00:00:00:00:01", "--dst-ip", "10.0.0.1", "--src-ip", "10.0.0.2"]) == 2
    assert "same interface" in capsys.readouterr().err
