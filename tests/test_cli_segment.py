"""``scapy-geneve segment IN OUT [--mtu N | --mss N] [--coalesce] [--finish-checksums]``."""

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import wrpcap

from scapy_geneve.cli import main
from scapy_geneve.capture.pcapio import iter_records
from scapy_geneve.offload.gro import coalesce_bytes
from scapy_geneve.offload.segment import finish_checksums_bytes, segment_bytes

from .test_gro import as_captured
from .test_segment import geneve_super, plain_tcp, vxlan_super


def frames(path: Path) -> List[bytes]:
    return [r.data for r in iter_records(path)]


@pytest.fixture
def capture(tmp_path):
    """Three super-packets as a sender captures them, an ARP, a small packet."""
    pkts = [
        Ether(as_captured(geneve_super(9000))),
        Ether() / ARP(),
        Ether(as_captured(vxlan_super(5000, udp_csum=True))),
        Ether(as_captured(plain_tcp(200))),
        Ether(as_captured(plain_tcp(4000, v6=True))),
    ]
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i
    path = tmp_path / "in.pcap"
    wrpcap(str(path), pkts)
    return path, [bytes(p) for p in pkts]


def test_segment_writes_what_segment_bytes_gives(capture, tmp_path, capsys):
    path, raw = capture
    out = tmp_path / "out.pcap"
    assert main(["segment", str(path), str(out), "--mtu", "1500"]) == 0
    want = (
        segment_bytes(raw[0], mtu=1500)
        + [raw[1]]
        + segment_bytes(raw[2], mtu=1500)
        + [raw[3]]
        + segment_bytes(raw[4], mtu=1500)
    )
    assert frames(out) == want
    err = capsys.readouterr().err
    assert "5 packets in, %d out: 3 super-packets cut, 2 copied unchanged" % len(want) in err


def test_a_packet_that_needs_no_cutting_keeps_its_checksums(tmp_path, capsys):
    """Issue 10: a plain TCP packet with checksum 0xbeef is evidence, not something to fix;
    --finish-checksums is the way to ask for it."""
    bad = Ether(bytes(plain_tcp(200)))
    bad[TCP].chksum = 0xBEEF
    path = tmp_path / "in.pcap"
    wrpcap(str(path), [bad])
    out = tmp_path / "out.pcap"
    assert main(["segment", str(path), str(out)]) == 0
    assert frames(out) == [bytes(bad)]
    assert "1 packets in, 1 out: 0 super-packets cut, 1 copied unchanged" in capsys.readouterr().err
    assert main(["segment", "-q", str(path), str(out), "--finish-checksums"]) == 0
    assert Ether(frames(out)[0])[TCP].chksum == Ether(bytes(plain_tcp(200)))[TCP].chksum


def test_segments_keep_the_super_packet_time(capture, tmp_path):
    path, raw = capture
    out = tmp_path / "out.pcap"
    main(["segment", "-q", str(path), str(out), "--mss", "1000"])
    recs = list(iter_records(out))
    assert {r.ts_ns for r in recs[:9]} == {1700000000 * 10**9}  # 9000 bytes / 1000
    assert recs[9].ts_ns == 1700000001 * 10**9  # the ARP


def test_coalesce_turns_the_segments_back_into_the_capture(capture, tmp_path):
    path, raw = capture
    out, back = tmp_path / "out.pcap", tmp_path / "back.pcap"
    main(["segment", "-q", str(path), str(out), "--mtu", "1500"])
    assert main(["segment", "-q", str(out), str(back), "--coalesce"]) == 0
    got = frames(back)
    assert got == raw  # the lone packet went through both untouched
    assert [r.ts_ns for r in iter_records(back)] == [(1700000000 + i) * 10**9 for i in range(5)]


def test_coalesce_with_finish_checksums_gives_finished_super_packets(capture, tmp_path):
    """--coalesce --finish-checksums: the GRO packets with every checksum finished, i.e.
    exactly what --finish-checksums makes of the original captured super-packets."""
    path, raw = capture
    out, back = tmp_path / "out.pcap", tmp_path / "back.pcap"
    main(["segment", "-q", str(path), str(out), "--mtu", "1500"])
    assert main(["segment", "-q", str(out), str(back), "--coalesce", "--finish-checksums"]) == 0
    # the ARP and the lone packet (never cut, never merged) are copied as they are
    assert frames(back) == [finish_checksums_bytes(r) if i not in (1, 3) else r for i, r in enumerate(raw)]


def test_finish_checksums_only(capture, tmp_path):
    path, raw = capture
    out = tmp_path / "out.pcap"
    assert main(["segment", "-q", str(path), str(out), "--finish-checksums"]) == 0
    assert frames(out) == [finish_checksums_bytes(r) for r in raw]


def test_tshark_finds_a_bad_checksum_only_in_the_packet_copied_unchanged(capture, tmp_path, tshark):
    """Every segment is valid; the small packet captured before the NIC keeps its partial
    checksum (the evidence), and tshark flags that one frame only."""
    path, raw = capture
    out = tmp_path / "out.pcap"
    main(["segment", "-q", str(path), str(out)])
    res = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(out),
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-Y",
            "ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    flagged = [int(n) for n in res.stdout.split()]
    assert [frames(out)[n - 1] for n in flagged] == [raw[3]]


def test_fixed_id(capture, tmp_path):
    path, raw = capture
    out = tmp_path / "out.pcap"
    main(["segment", "-q", str(path), str(out), "--mss", "1000", "--fixed-id"])
    ids = {Ether(f)[IP].id for f in frames(out)[:9]}
    assert len(ids) == 1


def test_linux_cooked_capture_keeps_its_link_header(tmp_path):
    """tcpdump -i any writes LINKTYPE_LINUX_SLL (113): 16-byte header, then IP."""
    ip = bytes(plain_tcp(3000))[14:]
    sll = struct.pack("!HHH8sH", 4, 1, 6, b"\x02" * 6 + b"\0\0", 0x0800)
    path = tmp_path / "sll.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 113))
        f.write(struct.pack("<IIII", 1, 0, len(sll + ip), len(sll + ip)) + sll + ip)
    out = tmp_path / "out.pcap"
    assert main(["segment", "-q", str(path), str(out), "--mss", "1000"]) == 0
    got = list(iter_records(out))
    assert [r.linktype for r in got] == [113] * 3
    assert [r.data[16:] for r in got] == segment_bytes(ip, mss=1000, link="ip")


# -- errors: named, no traceback, no damaged or overwritten file -----------------------


def test_refuses_to_overwrite_the_input(capture, capsys):
    path, _ = capture
    before = path.read_bytes()
    assert main(["segment", str(path), str(path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_truncated_file_is_an_error_and_out_is_not_written(capture, tmp_path, capsys):
    path, _ = capture
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(path.read_bytes()[:1000])
    out = tmp_path / "out.pcap"
    assert main(["segment", str(cut), str(out)]) == 2
    err = capsys.readouterr().err
    assert "offset 24, packet 1" in err and "truncated" in err
    assert not out.exists() and list(tmp_path.glob(".out.pcap*")) == []


def test_snaplen_cut_super_packet_names_the_packet(tmp_path, capsys):
    raw = bytes(geneve_super(3000))
    path = tmp_path / "snap.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 200, 1))
        f.write(struct.pack("<IIII", 1, 0, 200, len(raw)) + raw[:200])
    out = tmp_path / "out.pcap"
    assert main(["segment", str(path), str(out)]) == 2
    err = capsys.readouterr().err
    assert "offset 24, packet 1: only 200 of %d bytes were captured (snaplen)" % len(raw) in err
    assert main(["segment", "--keep-going", str(path), str(out)]) == 0
    assert frames(out) == [raw[:200]]


def test_mtu_too_small_is_a_named_build_error(capture, tmp_path, capsys):
    path, _ = capture
    assert main(["segment", str(path), str(tmp_path / "o.pcap"), "--mtu", "100"]) == 2
    assert "segment.mtu: value 100" in capsys.readouterr().err


def test_coalesce_with_mss_is_refused(capture, tmp_path, capsys):
    """A usage error: exit code 2 (as argparse's own), the reason, no OUT."""
    path, _ = capture
    assert main(["segment", str(path), str(tmp_path / "o.pcap"), "--coalesce", "--mss", "100"]) == 2
    assert "--coalesce takes no --mtu/--mss/--fixed-id" in capsys.readouterr().err
    assert not (tmp_path / "o.pcap").exists()


def test_console_script_runs(capture, tmp_path):
    path, _ = capture
    res = subprocess.run(
        [sys.executable, "-m", "scapy_geneve", "segment", "-q", str(path), str(tmp_path / "o.pcap")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.pcap").exists()


def test_geneve_on_another_port(tmp_path):
    sup = geneve_super(3000)
    sup[UDP].dport = 16081
    path, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(path), [sup])
    main(["segment", "-q", str(path), str(out), "--mss", "1000"])
    # unknown port: a UDP datagram bigger than the MSS can only be UDP GSO: cut as such.
    # UDP payload: Geneve 8 + options 20 + Ethernet 14 + IPv4 20 + TCP 32 + 3000 = 3094
    assert [len(f) - 14 - 20 - 8 for f in frames(out)] == [1000, 1000, 1000, 94]
    # the port option adds to the defaults and takes hex, as in every command (16081 = 0x3ed1)
    main(["segment", "-q", str(path), str(out), "--mss", "1000", "--geneve-port", "0x3ed1"])
    got = frames(out)
    assert len(got) == 3 and all(len(f) == len(got[0]) for f in got)


def test_napi_budget_cuts_super_packets(capture, tmp_path):
    path, raw = capture
    out, back = tmp_path / "out.pcap", tmp_path / "back.pcap"
    main(["segment", "-q", str(path), str(out), "--mss", "1000"])
    main(["segment", "-q", str(out), str(back), "--coalesce", "--napi-budget", "4"])
    assert len(frames(back)) > 5
    assert main(["segment", str(path), str(back), "--napi-budget", "4"]) == 2


@pytest.mark.parametrize(
    "flag, says",
    [(["--geneve-port", "70000"], "out of range"), (["--vxlan-port", "0x1zz"], "not a port number")],
)
def test_a_bad_port_is_a_usage_error(capture, tmp_path, capsys, flag, says):
    path, _ = capture
    with pytest.raises(SystemExit) as stop:
        main(["segment", str(path), str(tmp_path / "o.pcap"), *flag])
    assert stop.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "o.pcap").exists()


def test_out_errors_name_out_not_a_temporary_file(capture, tmp_path, capsys):
    path, _ = capture
    assert main(["segment", str(path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "is a directory" in err and ".part" not in err
    assert main(["segment", str(path), str(tmp_path / "nodir" / "o.pcap")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and ".part" not in err


def test_standard_input_and_output(capture, tmp_path):
    """``-`` reads standard input and writes standard output (a pipe, as with tcpdump -w -)."""
    path, raw = capture
    res = subprocess.run(
        [sys.executable, "-m", "scapy_geneve", "segment", "-q", "-", "-", "--mss", "1000"],
        stdin=open(path, "rb"),
        capture_output=True,
        check=True,
    )
    out = tmp_path / "piped.pcap"
    out.write_bytes(res.stdout)
    want = []
    for r in raw:
        segs = segment_bytes(r, mss=1000)  # the ARP and the small packet: copied unchanged
        want += segs if len(segs) > 1 else [r]
    assert frames(out) == want
    assert not (Path.cwd() / "-").exists()


def test_pcapng_in_gives_pcapng_out_with_every_interface(tmp_path):
    """Two interfaces of different link types (Ethernet and raw IP): each packet is cut
    on its own link and lands on its own interface, with its nanosecond time."""
    from scapy_geneve.capture.pcapio import PcapngWriter

    eth = as_captured(geneve_super(5000))
    raw_ip = as_captured(plain_tcp(3000))[14:]
    src = tmp_path / "in.pcapng"
    with open(src, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1, tsresol=9)
        w.add_interface(101, tsresol=9)
        w.write(eth, 1_700_000_000_123_456_789, 0)
        w.write(raw_ip, 1_700_000_001_000_000_001, 1)
    out = tmp_path / "out.pcapng"
    assert main(["segment", "-q", str(src), str(out), "--mss", "1000"]) == 0
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header
    recs = list(iter_records(out))
    want_eth, want_ip = segment_bytes(eth, mss=1000), segment_bytes(raw_ip, mss=1000, link="ip")
    assert [r.data for r in recs] == want_eth + want_ip
    assert [(r.linktype, r.interface, r.ts_ns) for r in recs] == [(1, 0, 1_700_000_000_123_456_789)] * len(
        want_eth
    ) + [(101, 1, 1_700_000_001_000_000_001)] * len(want_ip)
    back = tmp_path / "back.pcapng"
    assert main(["segment", "-q", str(out), str(back), "--coalesce"]) == 2  # two link types


def test_tshark_reads_the_pcapng_output_per_interface_with_good_checksums(tmp_path, tshark):
    from scapy_geneve.capture.pcapio import PcapngWriter

    src = tmp_path / "in.pcapng"
    with open(src, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1, tsresol=9)
        w.add_interface(101, tsresol=9)
        w.write(as_captured(geneve_super(5000)), 1_700_000_000_123_456_789, 0)
        w.write(as_captured(plain_tcp(3000))[14:], 1_700_000_001_000_000_001, 1)
    out = tmp_path / "out.pcapng"
    assert main(["segment", "-q", str(src), str(out), "--mss", "1000"]) == 0
    res = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(out),
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.interface_id",
            "-e",
            "frame.time_epoch",
            "-e",
            "tcp.checksum.status",
            "-e",
            "ip.checksum.status",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert [r[0] for r in rows] == ["0"] * 5 + ["1"] * 3
    assert rows[0][1].startswith("1700000000.123456789") and rows[-1][1].startswith("1700000001.000000001")
    assert all(r[2] == "1" for r in rows)  # 1: good (0 bad, 2 unverified)
    assert all(set(r[3].split(",")) == {"1"} for r in rows)


# -- hostile and odd input (issue 12), tcpdump's habits (issue 10) --------------------------


@pytest.mark.parametrize("mode", [[], ["--finish-checksums"], ["--coalesce"], ["--keep-going"]])
def test_an_empty_udp_datagram_to_4789_is_copied_in_every_mode(tmp_path, mode):
    """A 42-byte frame (an empty datagram to the VXLAN port, as the sender captures it)
    crashed every mode with IndexError; it is plain UDP, copied as it is.  So is an
    802.3/LLC frame."""
    from scapy.layers.l2 import LLC, Dot3

    from .test_segment import EMPTY_TO_4789

    llc = bytes(Dot3(dst="01:80:c2:00:00:00", src="02:00:00:00:00:01") / LLC() / (b"\0" * 35))
    path, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(path), [Ether(EMPTY_TO_4789), Ether(llc)])
    assert main(["segment", "-q", str(path), str(out), *mode]) == 0
    assert frames(out) == [EMPTY_TO_4789, llc]


def _pcap_header(path: Path) -> bytes:
    return path.read_bytes()[:24]


def test_a_microsecond_pcap_stays_a_microsecond_pcap_with_its_snaplen(capture, tmp_path):
    """Issue 10: segment turned a µs pcap into a ns one with another snaplen."""
    path, _ = capture  # Scapy's wrpcap: µs, snaplen 65535
    out = tmp_path / "out.pcap"
    assert main(["segment", "-q", str(path), str(out), "--mss", "1000"]) == 0
    assert _pcap_header(out) == _pcap_header(path)
    magic, _, _, _, _, snaplen, linktype = struct.unpack("<IHHiIII", _pcap_header(out))
    assert (magic, snaplen, linktype) == (0xA1B2C3D4, 65535, 1)


def test_a_pcap_time_the_format_cannot_normalise_is_copied_as_stored(tmp_path, tshark):
    """A µs field of 1,500,000 in the last second a pcap can hold: the reader accepts it
    (4294967296.5 s) but a normalised record cannot say it; segment crashed (struct.error).
    The record's seconds and fraction are copied as stored; tshark reads the same time."""
    frame = bytes(plain_tcp(3000))
    path, out = tmp_path / "top.pcap", tmp_path / "out.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.write(struct.pack("<IIII", 0xFFFFFFFF, 1_500_000, len(frame), len(frame)) + frame)
    assert [r.ts_ns for r in iter_records(path)] == [4294967296_500000000]
    assert main(["segment", "-q", str(path), str(out), "--mss", "1000"]) == 0
    assert [r.ts_ns for r in iter_records(out)] == [4294967296_500000000] * 3
    assert {out.read_bytes()[24 + i * (16 + 1066) : 24 + i * (16 + 1066) + 8] for i in range(2)} == {
        struct.pack("<II", 0xFFFFFFFF, 1_500_000)
    }
    assert set(_tshark_times(tshark, out)) == set(_tshark_times(tshark, path))


def _tshark_times(tshark: str, path: Path) -> List[str]:
    res = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.split()


def test_a_pcapng_with_a_negative_if_tsoffset_keeps_its_times(tmp_path, tshark):
    """Times before 1970 (a negative if_tsoffset): segment crashed (struct.error) while
    stats read them.  The interface and its offset are copied; every time stays."""
    from scapy_geneve.capture.pcapio import PcapngWriter

    path, out = tmp_path / "neg.pcapng", tmp_path / "out.pcapng"
    when = -1_000_000_000 * 10**9 + 123_456_000
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(1, tsresol=6, tsoffset=-3_000_000_000)
        w.write(bytes(plain_tcp(3000)), when, 0)
    assert main(["segment", "-q", str(path), str(out), "--mss", "1000"]) == 0
    assert [r.ts_ns for r in iter_records(out)] == [when] * 3
    assert set(_tshark_times(tshark, out)) == set(_tshark_times(tshark, path))
    assert main(["segment", "-q", str(path), str(tmp_path / "o.pcap"), "--mss", "1000"]) == 2  # pcap: no


def _one_interface_pcapng(path: Path, linktype: int, frame: bytes, ts_ns: int) -> None:
    from scapy_geneve.capture.pcapio import PcapngWriter

    with open(path, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(linktype, tsresol=9)
        # a Name Resolution Block: 10.0.0.1 is "host" (record type 1, 9 bytes, padded), end
        w.write_block(4, struct.pack("<HH", 1, 9) + bytes([10, 0, 0, 1]) + b"host\0\0\0\0" + b"\0" * 4)
        w.write(frame, ts_ns, 0)


def test_each_pcapng_section_keeps_its_own_interfaces(tmp_path, tshark):
    """``cat eth.pcapng rawip.pcapng``: section 2's raw-IP packets came out as section 1's
    Ethernet frames.  Each section is written with its own header and interfaces, and
    the other blocks (here a name resolution block) are copied."""
    eth, raw_ip = as_captured(geneve_super(3000)), as_captured(plain_tcp(3000))[14:]
    a, b, cat = tmp_path / "eth.pcapng", tmp_path / "rawip.pcapng", tmp_path / "cat.pcapng"
    _one_interface_pcapng(a, 1, eth, 1_700_000_000 * 10**9)
    _one_interface_pcapng(b, 101, raw_ip, 1_700_000_001 * 10**9)
    cat.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "out.pcapng"
    assert main(["segment", "-q", str(cat), str(out), "--mss", "1000"]) == 0
    data = out.read_bytes()
    assert data.count(b"\x0a\x0d\x0d\x0a") == 2 and data.count(b"host\0") == 2
    recs = list(iter_records(out))
    want_eth, want_ip = segment_bytes(eth, mss=1000), segment_bytes(raw_ip, mss=1000, link="ip")
    assert [(r.linktype, r.interface, r.data) for r in recs] == [(1, 0, f) for f in want_eth] + [
        (101, 0, f) for f in want_ip
    ]
    res = subprocess.run(
        [tshark, "-n", "-r", str(out), "-T", "fields", "-e", "ip.src"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.split()[-len(want_ip) :] == ["192.168.1.1"] * len(want_ip)  # read as IP
    back = tmp_path / "back.pcapng"
    assert main(["segment", "-q", str(out), str(back), "--coalesce"]) == 0  # one link a section
    assert [r.data for r in iter_records(back)] == [eth, raw_ip]


@pytest.mark.parametrize(
    "name, flag, magic",
    [
        ("out.pcapng", [], b"\x0a\x0d\x0d\x0a"),
        ("out.bin", ["-F", "pcapng"], b"\x0a\x0d\x0d\x0a"),
        ("out.pcap.gz", [], b"\x1f\x8b"),
        ("out.pcapng.gz", [], b"\x1f\x8b"),
    ],
)
def test_output_format_follows_the_name_or_dash_f(capture, tmp_path, name, flag, magic):
    path, raw = capture
    out, same = tmp_path / name, tmp_path / "same.pcap"
    assert main(["segment", "-q", str(path), str(out), "--mss", "1000", *flag]) == 0
    assert main(["segment", "-q", str(path), str(same), "--mss", "1000"]) == 0
    assert out.read_bytes()[: len(magic)] == magic
    got, want = list(iter_records(out)), list(iter_records(same))
    assert [(r.data, r.ts_ns, r.linktype) for r in got] == [(r.data, r.ts_ns, r.linktype) for r in want]


def test_count_stops_after_n_packets(capture, tmp_path, capsys):
    path, raw = capture
    out = tmp_path / "out.pcap"
    assert main(["segment", "-c", "2", "-r", str(path), "-w", str(out), "--mss", "1000"]) == 0
    assert frames(out) == segment_bytes(raw[0], mss=1000) + [raw[1]]
    assert "2 packets in" in capsys.readouterr().err


def test_quiet_says_nothing(capture, tmp_path, capsys):
    path, _ = capture
    assert main(["segment", "-q", str(path), str(tmp_path / "o.pcap")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mode", [["--coalesce"], ["--mss", "1000"]])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_keeps_every_packet_read_even_those_gro_holds(tmp_path, signum, mode):
    """``producer | segment - OUT``, stopped while it waits for more: OUT is a valid capture
    of every packet read; with --coalesce the super-packet GRO still holds (its last segment
    never came) is flushed and written too.  Exit 128 + the signal, no traceback."""
    from .test_live import GUARD, PCAP_HEADER, wait_until_drained

    sent = segment_bytes(bytes(geneve_super(3000)), mss=1000)[:2] + [bytes(Ether() / ARP())]
    out = tmp_path / "out.pcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "segment", "-", str(out), *mode],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(PCAP_HEADER)  # alone first: the reader holds records that share the
        proc.stdin.flush()  # header's write until more input comes (reported to capture/)
        wait_until_drained(proc.stdin)
        for i, data in enumerate(sent):
            proc.stdin.write(struct.pack("<IIII", 1_700_000_000, i, len(data), len(data)) + data)
            proc.stdin.flush()
            wait_until_drained(proc.stdin)
        time.sleep(1.0)  # not a measurement: lets the last record be handed out and processed
        proc.send_signal(signum)
        code = proc.wait(GUARD)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
    assert code == 128 + signum, err
    assert "Traceback" not in err and "(stopped)" in err
    want = (
        coalesce_bytes(sent)
        if "--coalesce" in mode
        else [f for s in sent for f in segment_bytes(s, mss=1000)]
    )
    assert frames(out) == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pcap"]


def test_finish_checksums_with_a_size_is_refused(capture, tmp_path, capsys):
    """--finish-checksums cuts nothing: an --mss beside it would be silently ignored."""
    path, _ = capture
    assert main(["segment", str(path), str(tmp_path / "o.pcap"), "--finish-checksums", "--mss", "100"]) == 2
    assert "--finish-checksums cuts nothing" in capsys.readouterr().err
