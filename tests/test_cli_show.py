"""``scapy-geneve show`` and ``shell`` as a user runs them.

The one-liners come from the wire decoder (no Scapy); tcpdump is the peer for
every field both print (the tcpdump corpus), and the fast path is proven equal to
the reference decoder + formatter by hypothesis.
"""

import csv
import datetime
import io
import json
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapNgWriter

from scapy_geneve import Geneve, GeneveOptionOVN
from scapy_geneve.capture.decode import decode
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapngWriter, PcapWriter
from scapy_geneve.capture.summary import FIELDS, FastSummarizer, Summarizer
from scapy_geneve.cli import main

ROOT = Path(__file__).resolve().parent.parent
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
INNER = (
    Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=22, flags="PA", seq=7, ack=9)
)


def cli(
    *args: str, stdin: Any = None, env: Optional[Dict[str, str]] = None, **kwargs: Any
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "scapy_geneve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        **({"input": stdin} if isinstance(stdin, str) else {"stdin": stdin}),
        **kwargs,
    )


def write_pcap(
    path: Path, frames: List[Any], snaplen: int = 262144, wirelen: Optional[List[int]] = None
) -> Path:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET, snaplen=snaplen)
        for i, frame in enumerate(frames):
            data = bytes(frame)
            writer.write(
                data[:snaplen],
                1234567890 * 10**9 + i * 1000,
                wirelen=len(data) if wirelen is None else wirelen[i],
            )
    return path


def body(line: str) -> str:
    """A text line without its number and time columns."""
    return re.split(r"^\s*\d+  \S+  ", line, maxsplit=1)[-1]


# -- the one-liner ------------------------------------------------------------------------
def test_geneve_line_reads_like_the_header(tmp_path: Path) -> None:
    path = write_pcap(
        tmp_path / "g.pcap",
        [
            OUTER
            / UDP(sport=50000, dport=6081)
            / Geneve(vni=0x123456, options=[GeneveOptionOVN(ingress_port=1, egress_port=2)])
            / INNER
        ],
    )
    res = cli("show", "-n", "--utc", str(path))
    assert res.returncode == 0, res.stderr
    assert res.stdout == (
        "    1  23:31:30.000000  192.0.2.1:50000 > 192.0.2.2:6081 UDP | Geneve vni 1193046 [C] "
        "options [OVN 0x0102/0x80(C) [ingress_port=1 egress_port=2]] | 10.0.0.1:1000 > "
        "10.0.0.2:22 TCP Flags [P.], ack 9, win 8192, length 0\n"
    )  # no data: no seq


def test_service_names_unless_n(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "g.pcap", [OUTER / UDP(sport=50000, dport=6081) / Geneve(vni=1) / INNER])
    named = cli("show", str(path)).stdout
    assert "10.0.0.2:ssh TCP" in named
    assert "10.0.0.2:22 TCP" in cli("show", "-n", str(path)).stdout


def test_ipv6_endpoints_are_bracketed(tmp_path: Path) -> None:
    from scapy.layers.inet6 import IPv6

    frame = (
        Ether(**MACS)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=5000, dport=6081)
        / Geneve(vni=5)
        / INNER
    )
    out = cli("show", "-n", str(write_pcap(tmp_path / "v6.pcap", [frame]))).stdout
    assert "[2001:db8::1]:5000 > [2001:db8::2]:6081 UDP | Geneve vni 5 |" in out


def test_every_kind_has_its_tunnel_column(tmp_path: Path) -> None:
    from scapy.layers.l2 import GRE

    frames = [
        OUTER / UDP(sport=1, dport=4790) / VXLAN(flags=0x0C, NextProtocol=3, vni=9) / INNER,
        OUTER / GRE(proto=0x0800) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2),
        # L2TPv3 data over UDP (RFC 3931 §4.1.2.2): T=0 Ver=3, Reserved, Session ID 77
        OUTER / UDP(sport=1701, dport=1701) / bytes.fromhex("000300000000004d") / INNER,
        OUTER / UDP(sport=1, dport=4789) / VXLAN(flags=0x08, vni=8) / INNER,
    ]
    lines = cli("show", "-n", str(write_pcap(tmp_path / "k.pcap", frames))).stdout.splitlines()
    assert "| VXLAN-GPE vni 9 |" in lines[0]  # not plain VXLAN
    assert "GRE | GRE proto IPv4 | 10.0.0.1:1 > 10.0.0.2:2 UDP" in lines[1]
    assert "UDP | L2TPv3 session_id 77 | 10.0.0.1:1000 > 10.0.0.2:22 TCP" in lines[2]
    assert "| VXLAN vni 8 |" in lines[3]


def test_l2tpv3_cookie_and_l2ss_are_honoured(tmp_path: Path) -> None:
    # L2TPv3 over IP (115): session 0x1234, a 4-byte cookie, then Ethernet: without the
    # out-of-band cookie length the inner frame is misread (as stats would).
    frame = (
        Ether(**MACS)
        / IP(src="192.0.2.1", dst="192.0.2.2", proto=115)
        / bytes.fromhex("00001234c0c0c0c0")
        / INNER
    )
    path = write_pcap(tmp_path / "l2.pcap", [frame])
    assert "10.0.0.1" not in cli("show", "-n", str(path)).stdout
    out = cli("show", "-n", "--l2tp-cookie", "4", str(path)).stdout
    assert "L2TPv3 session_id 4660 | 10.0.0.1:1000 > 10.0.0.2:22 TCP" in out


def test_malformed_says_why_as_stats(tmp_path: Path) -> None:
    bad = bytearray(bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=3) / INNER))
    bad[42] = 0x40  # Geneve version 1
    out = cli("show", "-n", str(write_pcap(tmp_path / "m.pcap", [bytes(bad)]))).stdout
    assert "[malformed: Geneve version 1 (only 0 is defined) at offset 42]" in out


@pytest.mark.parametrize("size", [0, 1, 7, 13])
def test_runts_print_what_is_there(tmp_path: Path, size: int) -> None:
    frame = bytes(range(1, size + 1))
    res = cli("show", "-n", str(write_pcap(tmp_path / "r.pcap", [frame])))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    line = body(res.stdout.strip())
    assert line.startswith("%d bytes %s" % (size, frame.hex()))
    assert "malformed: truncated Ethernet header" in line


def test_snaplen_10_capture(tmp_path: Path) -> None:
    frame = bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=3) / INNER)
    path = write_pcap(tmp_path / "s.pcap", [frame], snaplen=10, wirelen=[len(frame)])
    res = cli("show", "-n", str(path))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert body(res.stdout.strip()).startswith("10 bytes " + frame[:10].hex())
    assert "[snapped at 10 of %d bytes]" % len(frame) in res.stdout


def test_corpus_l2tp_avp_overflow_records_7_and_13(corpus: Path) -> None:
    res = cli("show", "-n", str(corpus / "l2tp-avp-overflow.pcap"))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    lines = {int(line.split()[0]): line for line in res.stdout.splitlines()}
    for number in (7, 13):
        assert "bytes" in lines[number] or "malformed" in lines[number]


def test_packet_without_timestamp_shows_none(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        writer.add_interface(LINKTYPE_ETHERNET)
        writer.write_simple(bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=4) / INNER))
        writer.write(bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=5) / INNER), ts_ns=10**18)
    lines = cli("show", "-n", "--utc", str(path)).stdout.splitlines()
    assert lines[0].split()[:2] == ["1", "-"]
    assert lines[1].split()[1] == "01:46:40.000000"
    assert json.loads(cli("show", "--json", str(path)).stdout.splitlines()[0])["time"] is None


@pytest.mark.parametrize(
    "flags, first, second",
    [
        (["-t"], "192.0.2.1:1", "192.0.2.1:1"),
        (["-tt"], "1234567890.000000", "1234567890.000001"),
        (["-ttt"], "00:00:00.000000", "00:00:00.000001"),
        (["-tttt", "--utc"], "2009-02-13 23:31:30.000000 UTC", "2009-02-13 23:31:30.000001 UTC"),
        (["-ttttt"], "00:00:00.000000", "00:00:00.000001"),
    ],
)
def test_time_family(tmp_path: Path, flags: List[str], first: str, second: str) -> None:
    frames = [OUTER / UDP(sport=1, dport=6081) / Geneve(vni=1) / INNER] * 2
    lines = cli("show", "-n", *flags, str(write_pcap(tmp_path / "t.pcap", frames))).stdout
    one, two = lines.splitlines()
    assert one.split(None, 1)[1].startswith(first) and two.split(None, 1)[1].startswith(second)


def test_count_and_its_refusals(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "c.pcap", [OUTER / UDP(sport=1, dport=6081) / Geneve(vni=1) / INNER] * 5)
    assert len(cli("show", "-c", "2", str(path)).stdout.splitlines()) == 2
    for bad in ("0", "-1"):
        res = cli("show", "-c", bad, str(path))
        assert res.returncode == 2 and "count" in res.stderr


def test_r_is_the_input(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "r.pcap", [OUTER / UDP(sport=1, dport=6081) / Geneve(vni=1) / INNER])
    assert cli("show", "-r", str(path)).stdout == cli("show", str(path)).stdout
    assert cli("show", "-r", str(path), str(path)).returncode == 2


# -- input: a file, standard input, or the bundled sample ------------------------------
def test_stdin_not_a_terminal_is_read(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", [OUTER / UDP(sport=1, dport=6081) / Geneve(vni=42) / INNER])
    with open(path, "rb") as handle:
        res = cli("show", "-n", stdin=handle)
    assert res.returncode == 0, res.stderr
    assert "Geneve vni 42" in res.stdout and "sample" not in res.stderr


@pytest.mark.parametrize("stdin", ["terminal", "devnull"])
def test_the_sample_at_a_terminal_says_so(stdin: str) -> None:
    """At a terminal, or with nothing to read (cron, CI: /dev/null), the sample is shown."""
    master, slave = pty.openpty()
    try:
        res = cli("show", "-n", stdin=slave if stdin == "terminal" else subprocess.DEVNULL)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 0, res.stderr
    assert "showing the bundled sample" in res.stderr and "sample.pcap" in res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 30
    assert "192.0.2.1:50123 > 192.0.2.2:6081 UDP | Geneve vni 1193046" in lines[0]
    assert "proto MPLS" in res.stdout


def test_bad_files_give_a_clear_error_and_exit_2(tmp_path: Path) -> None:
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


def test_every_capture_shows_one_line_per_packet(corpus: Path) -> None:
    from scapy_geneve.capture.pcapio import iter_records

    for path in sorted((ROOT / "pcaps").glob("*.pcap")) + sorted(corpus.glob("*.pcap")):
        res = cli("show", "-n", str(path))
        assert "Traceback" not in res.stderr, (path, res.stderr)
        if res.returncode == 0:
            assert len(res.stdout.splitlines()) == sum(1 for _ in iter_records(path)), path


# -- --detail is Scapy's -------------------------------------------------------------------
def test_show_count_and_detail(capsys: pytest.CaptureFixture) -> None:
    assert main(["show", str(ROOT / "pcaps" / "geneve_basic.pcap"), "--count", "2", "--detail"]) == 0
    out = capsys.readouterr().out
    assert out.count("###[ Geneve ]###") == 2
    assert out.count("#1 ") + out.count("#2 ") == 2 and "#3 " not in out


def test_show_detail_shows_the_critical_bit(capsys: pytest.CaptureFixture) -> None:
    assert main(["show", str(ROOT / "pcaps" / "geneve_options.pcap"), "-c", "1", "--detail"]) == 0
    out = capsys.readouterr().out
    assert "Geneve Option OVN" in out and "critical, type 0x00" in out


def test_show_reads_pcapng(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "x.pcapng"
    with PcapNgWriter(str(path)) as out:
        out.write(Ether() / IP() / UDP() / Geneve(vni=77, options=[GeneveOptionOVN()]) / Ether())
    assert main(["show", str(path)]) == 0
    assert "Geneve vni 77 [C] options [OVN" in capsys.readouterr().out


# -- output for machines --------------------------------------------------------------------
def test_json_lines_carry_every_field_and_the_options_in_full() -> None:
    res = cli("show", "--json", str(ROOT / "pcaps" / "geneve_options.pcap"))
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    # every field but the two -T fields conveniences, which "options" holds in full
    assert rows and all(set(row) == set(FIELDS) - {"option.class", "option.type"} for row in rows)
    gwlb = rows[1]
    assert gwlb["kind"] == "geneve" and gwlb["id.name"] == "vni"
    assert [o["type"] for o in gwlb["options"]] == [1, 2, 3]
    assert gwlb["options"][2] == {
        "class": 0x0108,
        "class_name": "Amazon.com, Inc.",
        "type": 3,
        "critical": False,
        "length": 4,
        "data": "5eed5eed",
        "fields": {"flow_cookie": 0x5EED5EED},
    }
    text = cli("show", "-n", str(ROOT / "pcaps" / "geneve_options.pcap")).stdout.splitlines()
    assert [body(line) for line in text] == [row["summary"] for row in rows]


def test_fields_as_tshark() -> None:
    path = str(ROOT / "pcaps" / "geneve_options.pcap")
    res = cli(
        "show",
        "-T",
        "fields",
        "-e",
        "number",
        "-e",
        "kind",
        "-e",
        "id",
        "-e",
        "option.class",
        "-E",
        "separator=,",
        "-E",
        "header=y",
        "-c",
        "2",
        path,
    )
    assert res.stdout.splitlines() == [
        "number,kind,id,option.class",
        "1,geneve,5,0x0102",
        "2,geneve,0,0x0108,0x0108,0x0108",
    ]
    quoted = cli("show", "-T", "fields", "-e", "inner.src", "-E", "quote=d", "-c", "1", path)
    assert quoted.stdout == '"10.0.0.1"\n'
    for bad in (["-T", "fields"], ["-T", "fields", "-e", "nosuch"], ["-e", "id", "-E", "x=y"]):
        res = cli("show", *bad, "-T", "fields", path) if "-T" not in bad else cli("show", *bad, path)
        assert res.returncode == 2 and "Traceback" not in res.stderr


def test_csv_parses_back() -> None:
    res = cli("show", "-T", "csv", str(ROOT / "pcaps" / "geneve_options.pcap"))
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == list(FIELDS)
    assert rows[1]["options"].count("Amazon.com 0x0108") == 3
    assert rows[0]["critical"] == "1" and rows[1]["critical"] == "0"


def test_list_fields_documents_every_name() -> None:
    listed = cli("show", "--list-fields").stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(FIELDS)


# -- tcpdump agrees on every field both print -------------------------------------------------
# The installed tcpdump reads these; for BIG TCP (which it reads as "bad-len" or "[|udp]")
# the corpus's own .out files (tcpdump 4.99.6's decodes) are the peer instead.
TCPDUMP_FILES = [
    "geneve.pcap",
    "vxlan.pcap",
    "vxlan_port_8472.pcap",
    "nsh-over-vxlan-gpe.pcap",
    "gso-ipv4-geneve-ipv4.pcap",
    "gso-ipv4-vxlan-ipv4.pcap",
    "gso-ipv6-geneve-ipv4.pcap",
    "gso-ipv6-vxlan-ipv6.pcap",
]
OUT_FILES = [
    "bigtcp-%s-%s-%s" % (o, k, i)
    for o in ("ipv4", "ipv6")
    for k in ("geneve", "vxlan")
    for i in ("ipv4", "ipv6")
] + ["gso-ipv4-geneve-ipv6", "gso-ipv4-vxlan-ipv4", "gso-ipv6-geneve-ipv4"]
_OUTER_RE = re.compile(r"^(\S+) IP6? (\S+) > (\S+): (.*)$")
_TUNNEL_RE = re.compile(r"^(Geneve|VXLAN-GPE|VXLAN),.*?vni (0x[0-9a-f]+|\d+)")


def _ep(text: str) -> List[Any]:
    """tcpdump's ``addr.port`` (or bare address)."""
    addr, _, port = text.rpartition(".")
    if addr and port.isdigit() and (":" in addr or addr.count(".") == 3):
        return [addr, int(port)]
    return [text, None]


def _tcpdump_packets(tcpdump: str, path: Path) -> List[str]:
    out = subprocess.run(
        [tcpdump, "-nn", "-S", "-tt", "-r", str(path)], capture_output=True, text=True, timeout=60
    ).stdout
    packets: List[str] = []
    for line in out.splitlines():
        if re.match(r"^\d+\.\d+ ", line):
            packets.append(line)
        elif packets:
            packets[-1] += ": " + line.strip()
    return packets


def _out_packets(path: Path) -> List[str]:
    """A corpus .out (tcpdump -v) as one line per packet, in -tt form: the -v
    parentheses, checksum verdicts and BIG TCP notes taken out."""
    packets: List[str] = []
    for line in path.read_text().splitlines():
        head = re.match(r"^\s+\d+  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{6}) (.*)$", line)
        if head:
            when = datetime.datetime.strptime(head.group(1), "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=datetime.timezone.utc
            )
            packets.append("%d.%s %s" % (when.timestamp(), head.group(2), head.group(3)))
        elif packets and line.strip():
            packets[-1] += (" " if packets[-1].endswith(")") else ": ") + line.strip()
    clean = []
    for text in packets:
        text = re.sub(r"(IP6?) \([^()]*(\([^()]*\)[^()]*)*\)( \[[^\]]*\])?", r"\1", text)
        text = re.sub(r"\[bad udp cksum [^\]]*\] |cksum 0x\w+ \([^)]*\), ", "", text)
        clean.append(re.sub(r": (\S+ > \S+:)", r" \1", text, count=1))
    return clean


def _tcpdump_fields(text: str) -> Dict[str, Any]:
    got: Dict[str, Any] = {}
    m = _OUTER_RE.match(text)
    if not m or "[|" in text or "bad-len" in text:
        return got
    got["time"] = m.group(1)
    (got["outer.src"], got["outer.sport"]), (got["outer.dst"], got["outer.dport"]) = (
        _ep(m.group(2)),
        _ep(m.group(3)),
    )
    tunnel = _TUNNEL_RE.match(m.group(4))
    if not tunnel:
        return got
    got["kind"] = tunnel.group(1).lower()
    got["id"] = int(tunnel.group(2), 0)
    inner = re.match(r"^[^:]*: IP6? (\S+) > (\S+?): (.*)$", m.group(4))
    if inner:  # the tunnel carries IP directly, not NSH or MPLS
        (got["inner.src"], got["inner.sport"]), (got["inner.dst"], got["inner.dport"]) = (
            _ep(inner.group(1)),
            _ep(inner.group(2)),
        )
        rest = inner.group(3)
        if rest.startswith("Flags ["):
            for key, pattern in (
                ("tcp.flags", r"Flags \[([^\]]*)\]"),
                ("tcp.seq", r"seq (\d+)"),
                ("tcp.ack", r"ack (\d+)"),
                ("tcp.win", r"win (\d+)"),
                ("length", r"length (\d+)$"),
            ):
                found = re.search(pattern, rest)
                if found:
                    got[key] = found.group(1) if key == "tcp.flags" else int(found.group(1))
    return got


def _agree(path: Path, theirs: List[str]) -> int:
    ours = [json.loads(line) for line in cli("show", "--json", str(path)).stdout.splitlines()]
    assert len(ours) == len(theirs)
    compared = 0
    for row, text in zip(ours, theirs):
        for key, value in _tcpdump_fields(text).items():
            assert row[key] == value, (path.name, row["number"], key, text)
            compared += 1
    return compared


@pytest.mark.parametrize("name", TCPDUMP_FILES)
def test_fields_agree_with_tcpdump(corpus: Path, tcpdump: str, name: str) -> None:
    path = corpus / name
    packets = _tcpdump_packets(tcpdump, path)
    # at least the time and the outer endpoints (tcpdump reads 8472 as OTV, not VXLAN)
    assert _agree(path, packets) >= 5 * len(packets)


@pytest.mark.parametrize("name", OUT_FILES)
def test_fields_agree_with_the_corpus_decodes(corpus: Path, name: str) -> None:
    packets = _out_packets(corpus / (name + ".out"))
    assert _agree(corpus / (name + ".pcap"), packets) >= 12 * len(packets)


# -- the fast path equals the reference ----------------------------------------------------
def _frame(kind: int, options: bytes, proto: int, l4: bytes) -> bytes:
    inner_ip = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(l4),
            1,
            0,
            64,
            proto,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        + l4
    )
    inner = bytes.fromhex("0200000000020200000000010800") + inner_ip
    if kind == 0:  # Geneve, Ethernet payload
        tunnel = struct.pack("!BBHI", len(options) // 4, 0x40 if options else 0, 0x6558, 77 << 8) + options
    elif kind == 1:  # Geneve carrying IPv4 directly
        tunnel, inner = struct.pack("!BBHI", len(options) // 4, 0, 0x0800, 78 << 8) + options, inner_ip
    else:  # VXLAN
        tunnel = struct.pack("!II", 0x08000000, 79 << 8)
    dport = 4789 if kind == 2 else 6081
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(tunnel) + len(inner), 0) + tunnel + inner
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        1,
        0x4000,
        64,
        17,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 2]),
    )
    return bytes.fromhex("0200000000020200000000010800") + ip + udp


_L4 = st.one_of(
    st.builds(
        lambda sp, dp, seq, ack, flags, pay: (
            struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 0x50, flags, 512, 0, 0) + pay
        ),
        st.integers(0, 65535),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 255),
        st.binary(max_size=24),
    ).map(lambda b: (6, b)),
    st.builds(
        lambda sp, dp, pay: struct.pack("!HHHH", sp, dp, 8 + len(pay), 0) + pay,
        st.integers(0, 65535),
        st.integers(0, 65535),
        st.binary(max_size=24),
    ).map(lambda b: (17, b)),
    st.builds(
        lambda t, c, pay: bytes([t, c, 0, 0]) + pay,
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=12),
    ).map(lambda b: (1, b)),
)
_OPTIONS = st.sampled_from(
    [
        b"",
        bytes.fromhex("0102800100010002"),  # OVN: ports 1 -> 2
        bytes.fromhex("010801020a1b2c3d4e5f6071"),  # GWLB endpoint ID
        bytes.fromhex("010803015eed5eedffff0000"),  # flow cookie, then empty
    ]
)
_SHARED = FastSummarizer(numeric=True)  # its memos carry over between examples


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.integers(0, 2),
    options=_OPTIONS,
    l4=_L4,
    mutations=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 40),
    pad=st.binary(max_size=5),
)
def test_fast_path_equals_the_reference(
    kind: int, options: bytes, l4: Any, mutations: List[Any], cut: int, pad: bytes
) -> None:
    frame = bytearray(_frame(kind, options, l4[0], l4[1]))
    for at, value in mutations:
        if at < len(frame):
            frame[at] = value
    data = bytes(frame[: max(0, len(frame) - cut)] if cut < 20 else frame)
    expected = Summarizer()(decode(data), data)
    assert _SHARED.line(data, LINKTYPE_ETHERNET, len(data)) == expected
    assert _SHARED.line_at(pad + data + pad, len(pad), len(data), LINKTYPE_ETHERNET, len(data)) == expected


def test_fast_path_takes_the_common_shapes() -> None:
    fast = FastSummarizer()
    for kind in (0, 1, 2):
        data = _frame(kind, b"", 6, struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 0x50, 0x18, 5, 0, 0))
        assert fast.line(data, LINKTYPE_ETHERNET, len(data)) == Summarizer()(decode(data), data)
    assert fast.fast == 3


# -- live input and signals --------------------------------------------------------------------
# With the header apart, the producer pauses this long before the first packet (show
# is then usually waiting in its first read); with header_apart=False it does not.
SETTLE = 2.0


def _producer(count: int, gap: float, hold: float = 0.0, header_apart: bool = True) -> List[str]:
    """A process writing a pcap (struct only: it starts fast and imports nothing of ours)
    of COUNT Geneve packets GAP seconds apart, then keeping its end open HOLD seconds.
    HEADER_APART: the file header is flushed on its own, SETTLE seconds before the
    first packet; else with the first packet, in one write (as ``tcpdump -U -w -``)."""
    code = (
        "import struct, sys, time\n"
        "out = sys.stdout.buffer\n"
        "out.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))\n"
        "if %r:\n"
        "    out.flush(); time.sleep(%r)\n"
        "frame = bytes.fromhex(%r)\n"
        "for i in range(%d):\n"
        "    out.write(struct.pack('<IIII', 1234567890, i, len(frame), len(frame)) + frame)\n"
        "    out.flush(); time.sleep(%r)\n"
        "time.sleep(%r)\n"
    ) % (
        header_apart,
        SETTLE,
        bytes(OUTER / UDP(sport=1, dport=6081) / Geneve(vni=6) / INNER).hex(),
        count,
        gap,
        hold,
    )
    return [sys.executable, "-c", code]


class _Lines:
    """The lines of STREAM as they come, read by a thread (the stream's own buffer may
    hold lines select() cannot see)."""

    def __init__(self, stream: Any) -> None:
        self.queue: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put("")  # the end

    def take(self, count: int, seconds: float) -> List[str]:
        """COUNT lines, or fewer if they do not come within SECONDS or the stream ends."""
        lines: List[str] = []
        deadline = time.monotonic() + seconds
        while len(lines) < count:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break
            lines.append(line)
        return lines


@pytest.mark.parametrize(
    "header_apart",
    [
        True,
        False,  # header and first packet in one write: the reader must not wait
    ],
)
def test_live_pipe_prints_each_packet_as_it_arrives(header_apart: bool) -> None:
    """The producer keeps its end open for a minute after the fifth packet: lines
    that come before that were printed as their packets arrived, not at EOF."""
    producer = subprocess.Popen(
        _producer(5, 0.1, hold=60.0, header_apart=header_apart), stdout=subprocess.PIPE, cwd=ROOT
    )
    show = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "show", "-n", "-"],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert producer.stdout is not None and show.stdout is not None
    producer.stdout.close()
    try:
        lines = _Lines(show.stdout).take(5, 45.0)
        assert producer.poll() is None
        assert len(lines) == 5 and all("Geneve vni 6" in line for line in lines), lines
    finally:
        producer.kill()
        show.kill()
        producer.wait()
        show.wait()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_what_was_printed(signum: int, code: int) -> None:
    producer = subprocess.Popen(_producer(3, 0.05, hold=30.0), stdout=subprocess.PIPE, cwd=ROOT)
    show = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "show", "-n", "-"],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert producer.stdout is not None and show.stdout is not None
    producer.stdout.close()
    try:
        output = _Lines(show.stdout)
        first = output.take(3, 45.0)
        show.send_signal(signum)
        show.wait(timeout=30)
        rest, err = output.take(100, 5.0), show.stderr.read()
        assert show.returncode == code, err
        assert "Traceback" not in err
        assert len(first) == 3 and all("Geneve vni 6" in line for line in first), first
        assert rest == []
    finally:
        producer.kill()
        producer.wait()
        if show.poll() is None:
            show.kill()
            show.wait()


# -- the shell -------------------------------------------------------------------------------
def test_shell_python_is_plain_python_and_keeps_scapys_names(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        IPYTHONDIR=str(home / ".ipython"),
    )
    script = "print(PcapWriter.__module__, Geneve, GeneveOptionOVN, VXLAN)\n"
    res = cli("shell", "--python", stdin=script, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "scapy-geneve" in res.stderr and "GeneveOptionOVN" in res.stderr  # our banner
    assert "Using the default Python shell" in res.stderr  # code.InteractiveConsole
    assert "now exiting InteractiveConsole" in res.stderr
    assert "scapy.utils" in res.stdout  # Scapy's PcapWriter, not ours
    assert "scapy_geneve.layers.geneve.Geneve" in res.stdout
    created = {p.relative_to(home).parts[:2] for p in home.rglob("*") if p.is_file()}
    assert all(parts[0] == ".cache" for parts in created), created  # Scapy's own caches only


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "scapy-geneve"
    res = subprocess.run(
        [str(exe) if exe.exists() else "scapy-geneve", "--version"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert res.returncode == 0 and "scapy-geneve" in res.stdout
