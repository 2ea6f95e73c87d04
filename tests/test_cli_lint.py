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
    return (
        Ether(**ETH)
        / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
        / UDP(sport=50123, dport=6081, **udp)
        / Raw(bytes.fromhex(hexhdr.replace(" ", "")))
        / INNER
    )


GOOD = "02 40 6558 001388 00  ffff 80 01 1234abcd"  # known-good header, one critical option
VERSION1 = "42 40 6558 001388 00  ffff 80 01 1234abcd"  # Ver = 1
OAM = "02 c0 6558 001388 00  ffff 80 01 1234abcd"  # O bit


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
    wrpcap(
        path,
        [
            Ether(**ETH)
            / IP(flags="DF")
            / UDP(sport=50123, dport=6082)
            / Raw(bytes.fromhex(VERSION1.replace(" ", "")))
            / INNER
        ],
    )
    assert main(["lint", path]) == 0  # plain UDP: not looked at
    assert main(["lint", "--geneve-port", "6082", path]) == 1
    out = capsys.readouterr().out
    assert "GNV009" in out and "GNV001" in out


def test_unreadable_file_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    res = subprocess.run(
        [sys.executable, "-m", "scapy_geneve", "lint", str(bad)], capture_output=True, text=True
    )
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
    assert doc == [
        {
            "vector": "geneve-oam",
            "protocol": "geneve",
            "level": "MUST",
            "section": "RFC 8926 §3.4",
            "expected": "not-forwarded-as-data",
            "family": 4,
            "requirement": doc[0]["requirement"],
        }
    ]
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
    assert (
        main(
            [
                "conform",
                "--write",
                out,
                "--protocol",
                "vxlan",
                "--dst-mac",
                "52:54:00:00:00:01",
                "--dst-ip",
                "10.0.0.1",
                "--vni",
                "77",
            ]
        )
        == 0
    )
    assert "%d vectors" % len(vectors(["vxlan"])) in capsys.readouterr().out
    records = list(pcapio.iter_records(out))
    assert len(records) == len(vectors(["vxlan"]))
    first = Ether(records[0].data)
    assert first.dst == "52:54:00:00:00:01" and first[IP].dst == "10.0.0.1"
    assert records[0].data[42 + 4 : 42 + 7] == (77).to_bytes(3, "big")  # the VNI asked for
    assert main(["conform", "--write", out + ".2", "--vector", "no-such-vector"]) == 2


def test_conform_write_never_replaces_a_file_unasked(tmp_path, capsys):
    out = tmp_path / "precious.pcap"
    out.write_bytes(b"keep me")
    assert main(["conform", "--write", str(out), "--protocol", "vxlan"]) == 2
    assert out.read_bytes() == b"keep me" and "--force" in capsys.readouterr().err
    assert main(["conform", "--write", str(out), "--protocol", "vxlan", "--force"]) == 0
    assert out.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")  # a nanosecond pcap now


def test_conform_interface_refuses_the_same_interface_both_ways(capsys):
    assert (
        main(
            [
                "conform",
                "interface",
                "--send-iface",
                "lo",
                "--recv-iface",
                "lo",
                "--dst-mac",
                "02:00:00:00:00:01",
                "--dst-ip",
                "10.0.0.1",
                "--src-ip",
                "10.0.0.2",
            ]
        )
        == 2
    )
    assert "same interface" in capsys.readouterr().err


# -- lint on bytes: options, formats, pipes ------------------------------------------------
def test_select_and_ignore_take_ids_and_prefixes(pcaps, capsys):
    assert main(["lint", "--select", "GNV013", pcaps[1]]) == 1
    out = capsys.readouterr().out
    assert "GNV013" in out and "GNV001" not in out and "GNV011" not in out
    assert main(["lint", "--ignore", "GNV", pcaps[1]]) == 0
    assert "0 with findings" in capsys.readouterr().out
    assert main(["lint", "--select", "gnv00", "--ignore", "GNV001", pcaps[1]]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["lint", "--select", "XYZ", pcaps[1]])
    assert exc.value.code == 2 and "matches no rule" in capsys.readouterr().err


def test_junit_xml_has_one_failure_per_finding(pcaps, capsys):
    import xml.etree.ElementTree as ET

    assert main(["lint", "--format", "junit", pcaps[1]]) == 1
    root = ET.fromstring(capsys.readouterr().out)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert root.get("failures") == "3" and len(cases) == 3
    assert [c.get("classname") for c in cases] == ["lint.GNV001", "lint.GNV013", "lint.GNV011"]
    assert cases[0].find("failure").get("type") == "MUST"
    assert main(["lint", "--format", "junit", pcaps[0]]) == 0
    clean = ET.fromstring(capsys.readouterr().out)
    assert clean.get("failures") == "0" and len(clean.find("testsuite").findall("testcase")) == 1


def test_sarif_results_point_at_the_rule_and_byte(pcaps, capsys):
    assert main(["lint", "--format", "sarif", pcaps[1]]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    first = run["results"][0]
    assert first["ruleId"] == "GNV001" and first["level"] == "error"
    assert rules[first["ruleIndex"]]["id"] == "GNV001"
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region["byteOffset"] == 42 and first["properties"]["packet"] == 2
    assert [r["level"] for r in run["results"]] == ["error", "note", "error"]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_ports_add_to_the_defaults_and_take_hex(tmp_path, capsys):
    """--geneve-port adds a port (0x hex as every command takes it): a bad
    Geneve header on 6081 is still found (today's lint replaced the defaults)."""
    path = str(tmp_path / "p.pcap")
    wrpcap(
        path,
        [
            geneve(VERSION1),
            Ether(**ETH)
            / IP(flags="DF")
            / UDP(sport=50123, dport=6082)
            / Raw(bytes.fromhex(VERSION1.replace(" ", "")))
            / INNER,
        ],
    )
    assert main(["lint", "--geneve-port", "0x17c2", path]) == 1
    out = capsys.readouterr().out
    assert out.startswith("#1 ") and "#2 " in out and "GNV009" in out


def test_count_stops_after_n_packets(pcaps, capsys):
    assert main(["lint", "-c", "2", pcaps[1]]) == 1
    out = capsys.readouterr().out
    assert "2 packets, 1 with findings" in out and "GNV013" not in out


def test_gre_as_settles_the_nvgre_guess(tmp_path, capsys):
    """OVS's gre port with key 456 (0x1c8): read as NVGRE it is VSID 1 (reserved);
    lint says the reading is a guess; --gre-as gre reads it as the key it is."""
    from scapy.layers.l2 import GRE

    path = str(tmp_path / "gre.pcap")
    wrpcap(
        path,
        [
            Ether(**ETH)
            / IP(src="192.0.2.1", dst="192.0.2.2")
            / GRE(key_present=1, key=456, proto=0x6558)
            / INNER
        ],
    )
    assert main(["lint", path]) == 1
    out = capsys.readouterr().out
    assert "NVG008" in out and "a guess" in out and "--gre-as" in out
    assert main(["lint", "--gre-as", "gre", path]) == 0
    assert main(["lint", "--all-gre-is-nvgre", path]) == 1
    assert "a guess" not in capsys.readouterr().out


def test_gpe_port_reads_ovs_exts_gpe_on_4789(tmp_path, capsys):
    """OVS exts=gpe on 4789 carries VXLAN-GPE: read as RFC 7348 it breaks two
    MUSTs (P bit, Next Protocol byte); --gpe-port 4789 says what the port carries."""
    path = str(tmp_path / "gpe.pcap")
    # flags 0x0c (I, P) | Reserved 0 | Next Protocol 3 (Ethernet) | VNI 0x1388 | Reserved
    wrpcap(
        path,
        [
            Ether(**ETH)
            / IP(flags="DF")
            / UDP(sport=50123, dport=4789, chksum=0)
            / Raw(bytes.fromhex("0c000003 00138800"))
            / INNER
        ],
    )
    assert main(["lint", path]) == 1
    assert {"VXL002", "VXL003"} <= set(capsys.readouterr().out.split())
    assert main(["lint", "--gpe-port", "4789", path]) == 0


def _flagged_capture(path, n):
    """N Geneve packets, every one with the O bit (GNV013)."""
    from scapy_geneve.capture.pcapio import PcapWriter

    frame = bytes(geneve(OAM))
    with open(path, "wb") as handle:
        w = PcapWriter(handle)
        for i in range(n):
            w.write(frame, ts_ns=i * 1000)


def test_json_memory_does_not_grow_with_flagged_packets(tmp_path, capsys):
    """--json is streamed: peak memory with 4,000 flagged packets is about that with 400
    (today's lint kept every flagged packet: 60k of them took 121 MB)."""
    import tracemalloc

    peaks = []
    for n in (400, 4000):
        path = tmp_path / ("f%d.pcap" % n)
        _flagged_capture(path, n)
        tracemalloc.start()
        assert main(["lint", "--json", "-q", str(path)]) == 1
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        doc = json.loads(capsys.readouterr().out)
        assert len(doc["packets"]) == n and doc["summary"]["rules"] == {"GNV013": n}
    assert peaks[1] < peaks[0] * 1.5 + 200_000, peaks


def test_lint_into_head_exits_non_zero(tmp_path):
    """`lint | head -1` found problems: the exit status says so (today it was 0)."""
    path = tmp_path / "many.pcap"
    _flagged_capture(path, 3000)
    res = subprocess.run(
        ["bash", "-c", "set -o pipefail; %s -m scapy_geneve lint %s | head -1" % (sys.executable, path)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and res.stdout.startswith("#1 ") and "GNV013" in res.stdout
    assert "Traceback" not in res.stderr and "unable to write output: Broken pipe" in res.stderr


class _Tty:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_bar_leaves_no_blank_lines():
    """The bar (with an ETA) is cleared in place before each finding and at the end:
    never a newline."""
    from scapy_geneve.cli.lint import _Bar

    tty = _Tty()
    bar = _Bar(1000, "lint", stream=tty, delay=0)
    for i in range(3):
        bar.last = 0
        bar.progress(100 * (i + 1), 1000, 10 * (i + 1))
        bar.clear()
    bar.close()
    assert "\n" not in tty.text and tty.text.count("\r\033[K") >= 3 and "lint [" in tty.text
    assert "ETA " in tty.text


def _producer(count, gap, hold, start=6.0):
    """A process writing a pcap header, then (after START s: lint's start-up) COUNT
    flagged packets (O bit: GNV013) to stdout, GAP s apart, then keeping the pipe open HOLD s."""
    code = (
        "import sys, time\n"
        "from scapy_geneve.capture.pcapio import PcapWriter\n"
        "out = sys.stdout.buffer\n"
        "w = PcapWriter(out); out.flush(); time.sleep(%r)\n"
        "for i in range(%d):\n"
        "    w.write(bytes.fromhex(%r), 10**18 + i); out.flush(); time.sleep(%r)\n"
        "time.sleep(%r)\n"
    ) % (start, count, bytes(geneve(OAM)).hex(), gap, hold)
    return [sys.executable, "-c", code]


def _lines_within(stream, count, seconds):
    import select
    import time

    lines, deadline = [], time.monotonic() + seconds
    while len(lines) < count:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = stream.readline()
        if not line:
            break
        lines.append(line)
    return lines


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_live_pipe_findings_come_as_packets_arrive_and_a_signal_keeps_the_summary(signum, code):
    """producer | lint -: each finding is printed when its packet arrives (the producer
    still holds the pipe open); SIGINT/SIGTERM then stops lint with the summary of
    the packets read, marked INCOMPLETE, and the signal's exit status."""
    producer = subprocess.Popen(_producer(3, 0.5, 60.0), stdout=subprocess.PIPE)
    lint = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "lint", "-"],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    producer.stdout.close()
    try:
        first = _lines_within(lint.stdout, 3, 45.0)
        assert producer.poll() is None
        assert [line.split()[:2] for line in first] == [["#1", "GNV013"], ["#2", "GNV013"], ["#3", "GNV013"]]
        lint.send_signal(signum)
        rest, err = lint.communicate(timeout=30)
        assert lint.returncode == code and "Traceback" not in err
        assert "-: 3 packets, 3 with findings" in rest and "INCOMPLETE" in rest
    finally:
        producer.kill()
        producer.wait()
        if lint.poll() is None:
            lint.kill()
            lint.wait()


def test_a_capture_is_linted_without_building_scapy_packets(pcaps, capsys, monkeypatch):
    """The CLI judges the bytes: no Scapy packet is built while it lints a capture."""
    from scapy.packet import Packet

    def refuse(*args, **kwargs):
        raise AssertionError("a Scapy packet was built")

    monkeypatch.setattr(Packet, "__init__", refuse)
    assert main(["lint", pcaps[1]]) == 1
    assert "4 packets, 3 with findings" in capsys.readouterr().out
