"""`scapy-geneve stats` and `scapy-geneve filter` as a user runs them: output,
exit codes, byte-exact copies (pcap and pcapng), damaged inputs (partial
results, exit 2, no traceback), atomic output that never overwrites the input,
and peers (tcpdump, tshark) reading what filter writes."""

import io
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from scapy_geneve.cli import main
from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
    iter_records,
)

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80)
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
OVN = GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02")
GWLB = GeneveOption(classid=0x0108, type=0x03, data=b"\xca\xfe\xf0\x0d")


def frames() -> List[bytes]:
    """12 packets: VNI 100 with OVN (x4), VNI 200 with GWLB (x4), VXLAN, NVGRE,
    a plain UDP packet and a malformed Geneve packet (option overruns Opt Len)."""
    out = []
    for i in range(4):
        out.append(OUTER / UDP(sport=5000 + i, dport=6081) / Geneve(vni=100, options=[OVN]) / INNER)
        out.append(OUTER / UDP(sport=6000 + i, dport=6081) / Geneve(vni=200, options=[GWLB]) / INNER)
    out.append(OUTER / UDP(sport=7000, dport=4789) / VXLAN(flags=8, vni=100) / INNER)
    out.append(OUTER / NVGRE(vsid=300, flowid=4) / INNER)
    out.append(OUTER / UDP(sport=7001, dport=53) / (b"\x00" * 20))
    bad = bytearray(bytes(OUTER / UDP(sport=7002, dport=6081) / Geneve(vni=100, options=[OVN]) / INNER))
    bad[14 + 20 + 8 + 8 + 3] = 0x05  # option Length 5 words in a 2-word Opt Len
    out.append(bytes(bad))
    return [bytes(f) for f in out]


FRAMES = frames()


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    path = tmp_path / "in.pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=True)
        for i, frame in enumerate(FRAMES):
            writer.write(frame, 1_700_000_000_000_000_007 + i * 1_000_000)
    return path


@pytest.fixture
def pcapng(tmp_path: Path) -> Path:
    path = tmp_path / "in.pcapng"
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        eth = writer.add_interface(LINKTYPE_ETHERNET)
        raw = writer.add_interface(LINKTYPE_RAW, tsresol=9)
        for i, frame in enumerate(FRAMES):
            writer.write(frame, 1_700_000_000_000_000_000 + i * 1000, eth)
            writer.write(frame[14:], 1_700_000_000_000_000_000 + i * 1000 + 1, raw)
    return path


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TestStats:
    def test_tables(self, capsys: pytest.CaptureFixture, pcap: Path) -> None:
        code, out, err = run_cli(capsys, "stats", str(pcap))
        assert code == 0 and err == ""
        assert "12 packets" in out
        assert "geneve" in out and "vxlan" in out and "nvgre" in out
        assert "100 (0x000064)" in out and "300 (0x00012c)" in out
        assert "Open Virtual Networking (OVN)" in out and "Amazon.com, Inc." in out
        assert "malformed: 1 packet\n" in out and "Geneve option 1 overruns Opt Len" in out
        assert "1 packets" not in out

    def test_dates_with_their_zone(self, capsys: pytest.CaptureFixture, pcap: Path) -> None:
        """Dates, not epoch seconds; the zone is said (nanoseconds kept)."""
        _code, out, _err = run_cli(capsys, "stats", "--utc", str(pcap))
        assert (
            "time: 2023-11-14 22:13:20.000000007 UTC to 2023-11-14 22:13:20.011000007 UTC (0.011000 s)" in out
        )
        _code, out, _err = run_cli(capsys, "stats", "--json", str(pcap))
        data = json.loads(out)
        assert data["first_date"] == "2023-11-14T22:13:20.000000007Z"
        assert data["last_date"] == "2023-11-14T22:13:20.011000007Z"

    def test_json(self, capsys: pytest.CaptureFixture, pcap: Path) -> None:
        code, out, _err = run_cli(capsys, "stats", "--json", str(pcap))
        data = json.loads(out)
        assert code == 0 and data["packets"] == 12
        assert data["encapsulations"]["geneve"]["packets"] == 9
        vnis = {(v["kind"], v["vni"]): v["packets"] for v in data["vnis"]}
        assert vnis == {("geneve", 100): 5, ("geneve", 200): 4, ("vxlan", 100): 1, ("nvgre", 300): 1}
        options = {(o["class"], o["type"]): o["count"] for o in data["options"]}
        assert options == {(0x0102, 0x80): 5, (0x0108, 0x03): 4}
        assert data["critical"]["c_bit_packets"] == 5
        assert data["inner_protocols"] == {"TCP": 10, "none": 2}
        assert data["malformed"]["packets"] == 1 and data["error"] is None

    def test_pcapng(self, capsys: pytest.CaptureFixture, pcapng: Path) -> None:
        code, out, _err = run_cli(capsys, "stats", "--json", str(pcapng))
        data = json.loads(out)
        assert code == 0 and data["packets"] == 24 and data["format"] == "pcapng"
        assert data["linktypes"] == {"EN10MB": 12, "RAW": 12}

    def test_damaged_file_reports_what_was_read(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path
    ) -> None:
        offsets = [r.offset for r in iter_records(pcap)]
        damaged = tmp_path / "damaged.pcap"
        damaged.write_bytes(pcap.read_bytes()[: offsets[6] + 20])  # packet 7 cut
        code, out, err = run_cli(capsys, "stats", "--json", str(damaged))
        assert code == 2
        data = json.loads(out)
        assert data["packets"] == 6 and "packet 7" in data["error"]
        assert err.startswith(
            "scapy-geneve stats: error: %s, offset %d, packet 7: truncated record" % (damaged, offsets[6])
        )
        assert "Traceback" not in err

    @pytest.mark.parametrize(
        "content, message",
        [
            (b"\x00" * 64, "not a pcap or pcapng file"),
            (
                b"\xd4\xc3\xb2\xa1"
                + b"\x02\x00\x04\x00"
                + bytes(8)
                + b"\xff\xff\x00\x00"
                + b"\x93\x00\x00\x00",
                "unsupported link type 147",
            ),
        ],
    )
    def test_bad_files(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, content: bytes, message: str
    ) -> None:
        bad = tmp_path / "bad.pcap"
        header_only = content
        if b"\x93" in content:  # a link type we do not read, with one packet
            header_only += bytes(8) + b"\x04\x00\x00\x00" * 2 + b"abcd"
        bad.write_bytes(header_only)
        code, _out, err = run_cli(capsys, "stats", str(bad))
        assert code == 2 and message in err and str(bad) in err

    def test_ports_from_the_registry(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        """Cisco ACI's VXLAN port (48879) is VXLAN by default, as in show and lint; a
        private Geneve port counts when named (hex too); --gpe-port says a port
        carries VXLAN-GPE (OVS exts=gpe on 4789), the same option as lint's."""
        path = tmp_path / "ports.pcap"
        with open(path, "wb") as handle:
            writer = PcapWriter(handle)
            writer.write(bytes(OUTER / UDP(sport=1, dport=48879) / VXLAN(flags=8, vni=9) / INNER))
            writer.write(bytes(OUTER / UDP(sport=2, dport=6082) / Geneve(vni=8) / INNER))
            writer.write(
                bytes(OUTER / UDP(sport=3, dport=4789) / VXLAN(flags=0x0C, NextProtocol=3, vni=7) / INNER)
            )
        _code, out, _err = run_cli(capsys, "stats", "--json", str(path))
        assert {(v["kind"], v["vni"]) for v in json.loads(out)["vnis"]} == {("vxlan", 9), ("vxlan", 7)}
        _code, out, _err = run_cli(
            capsys, "stats", "--json", str(path), "--geneve-port", "0x17c2", "--gpe-port", "4789"
        )
        assert {(v["kind"], v["vni"]) for v in json.loads(out)["vnis"]} == {
            ("vxlan", 9),
            ("geneve", 8),
            ("vxlan-gpe", 7),
        }

    def test_gzip_capture(self, capsys: pytest.CaptureFixture, pcapng: Path, tmp_path: Path) -> None:
        import gzip

        packed = tmp_path / "in.pcapng.gz"
        packed.write_bytes(gzip.compress(pcapng.read_bytes()))
        _code, out, _err = run_cli(capsys, "stats", "--json", str(packed))
        assert json.loads(out)["packets"] == 24
        out_path = tmp_path / "geneve.pcapng"  # filter output is not compressed
        code, _o, err = run_cli(capsys, "filter", str(packed), str(out_path), "--vni", "200")
        assert code == 0 and "8 of 24 packets written" in err
        assert out_path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"

    def test_missing_file(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        code, _out, err = run_cli(capsys, "stats", str(tmp_path / "nope.pcap"))
        assert code == 2 and "No such file" in err

    def test_no_progress_bar_when_not_a_tty(self, pcap: Path) -> None:
        res = subprocess.run(
            [sys.executable, "-m", "scapy_geneve", "stats", str(pcap)], capture_output=True, text=True
        )
        assert res.returncode == 0 and res.stderr == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path, quiet: bool
) -> None:
    """On a terminal the bar shows (here without the 2 s delay); --quiet hides it."""
    import functools
    from scapy_geneve.cli import _common, filter as filter_cli, stats as stats_cli

    term = _Terminal()
    bar = functools.partial(_common.Progress, delay=0.0, stream=term)
    monkeypatch.setattr(stats_cli, "Progress", bar)
    monkeypatch.setattr(filter_cli, "Progress", bar)
    extra = ["--quiet"] if quiet else []
    assert main(["stats", str(pcap)] + extra) == 0
    assert main(["filter", str(pcap), str(tmp_path / "o.pcap"), "--vni", "100"] + extra) == 0
    capsys.readouterr()
    shown = term.getvalue()
    assert (shown == "") if quiet else ("stats [" in shown and "filter [" in shown and "100.0%" in shown)


def _records(path: Path) -> List[Tuple[bytes, int, int]]:
    return [(r.data, r.ts_ns, r.interface) for r in iter_records(path)]


class TestFilter:
    def test_vni_and_option(self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path) -> None:
        out = tmp_path / "out.pcap"
        code, _o, err = run_cli(
            capsys, "filter", str(pcap), str(out), "--vni", "100", "--option-class", "0x0102"
        )
        # the malformed packet's first option header (0x0102) still counts as one
        assert code == 0 and "5 of 12 packets written" in err
        originals = _records(pcap)
        assert _records(out) == [originals[i] for i in (0, 2, 4, 6, 11)]
        # the global header is kept as it was (nanosecond magic, link type)
        assert out.read_bytes()[:24] == pcap.read_bytes()[:24]

    def test_records_are_byte_identical(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "out.pcap"
        run_cli(capsys, "filter", str(pcap), str(out), "--kind", "geneve,nvgre")
        raw = pcap.read_bytes()
        expected = raw[:24]
        records = list(iter_records(pcap))
        for i in (0, 1, 2, 3, 4, 5, 6, 7, 9, 11):
            rec = records[i]
            expected += raw[rec.offset : rec.offset + 16 + rec.caplen]
        assert out.read_bytes() == expected

    def test_malformed_and_type(self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path) -> None:
        out = tmp_path / "bad.pcap"
        run_cli(capsys, "filter", str(pcap), str(out), "--malformed")
        assert [r.number for r in iter_records(out)] == [1]
        assert _records(out)[0][0] == FRAMES[11]
        run_cli(capsys, "filter", str(pcap), str(out), "--option-type", "0x03")
        assert len(_records(out)) == 4

    def test_invert(self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path) -> None:
        out = tmp_path / "rest.pcap"
        code, _o, err = run_cli(capsys, "filter", str(pcap), str(out), "--kind", "geneve", "--invert")
        assert code == 0 and "3 of 12 packets written" in err
        assert [rec.data for rec in iter_records(out)] == FRAMES[8:11]

    def test_pcapng_in_pcapng_out(self, capsys: pytest.CaptureFixture, pcapng: Path, tmp_path: Path) -> None:
        out = tmp_path / "out.pcapng"
        code, _o, err = run_cli(capsys, "filter", str(pcapng), str(out), "--vni", "200")
        assert code == 0 and "8 of 24 packets written" in err
        got = _records(out)
        originals = _records(pcapng)
        assert got == [r for r in originals if r in got] and len(got) == 8
        assert {iface for _d, _t, iface in got} == {0, 1}  # both interfaces kept

    def test_two_sections_keep_their_blocks(
        self, capsys: pytest.CaptureFixture, pcapng: Path, tmp_path: Path
    ) -> None:
        """A second section (its own SHB and IDBs) is copied too, in place."""
        both = tmp_path / "both.pcapng"
        both.write_bytes(pcapng.read_bytes() * 2)
        out = tmp_path / "out.pcapng"
        code, _o, err = run_cli(capsys, "filter", str(both), str(out), "--kind", "nvgre")
        assert code == 0 and "4 of 48 packets written" in err
        raw = out.read_bytes()
        assert raw.count(b"\x0a\x0d\x0d\x0a") == 2  # both Section Header Blocks
        assert [iface for _d, _t, iface in _records(out)] == [0, 1, 0, 1]

    def test_pipes(self, pcapng: Path, tmp_path: Path) -> None:
        """`tcpdump -w - | scapy-geneve filter - - ... | scapy-geneve stats -`."""
        with open(pcapng, "rb") as stdin:
            res = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "scapy_geneve",
                    "filter",
                    "-",
                    "-",
                    "--vni",
                    "100",
                    "--kind",
                    "geneve",
                ],
                stdin=stdin,
                capture_output=True,
                check=True,
            )
        out = tmp_path / "piped.pcapng"
        out.write_bytes(res.stdout)
        assert len(_records(out)) == 10 and b"10 of 24 packets written to -" in res.stderr
        res = subprocess.run(
            [sys.executable, "-m", "scapy_geneve", "stats", "--json", "-"],
            input=res.stdout,
            capture_output=True,
            check=True,
        )
        assert json.loads(res.stdout)["vnis"] == [
            {"kind": "geneve", "vni": 100, "packets": 10, "bytes": sum(len(d) for d, _t, _i in _records(out))}
        ]

    def test_refuses_to_overwrite_input(self, capsys: pytest.CaptureFixture, pcap: Path) -> None:
        before = pcap.read_bytes()
        link = pcap.parent / "same.pcap"
        os.symlink(pcap, link)
        code, _o, err = run_cli(capsys, "filter", str(pcap), str(link), "--vni", "100")
        assert code == 2 and "refusing to overwrite the input file" in err
        assert pcap.read_bytes() == before
        assert not [p for p in pcap.parent.iterdir() if p.name.endswith(".part")]

    def test_output_that_cannot_be_a_file(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path
    ) -> None:
        """The error names OUT and what is wrong with it (not the temporary file)."""
        code, _o, err = run_cli(capsys, "filter", str(pcap), str(tmp_path), "--vni", "100")
        assert code == 2 and err.startswith("scapy-geneve filter: error: %s: is a directory" % tmp_path)
        missing = tmp_path / "no" / "out.pcap"
        code, _o, err = run_cli(capsys, "filter", str(pcap), str(missing), "--vni", "100")
        assert code == 2 and err.startswith(
            "scapy-geneve filter: error: %s: directory %s does not exist" % (missing, missing.parent)
        )
        assert "Traceback" not in err and ".part" not in err

    def test_damaged_input_leaves_output_alone(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path
    ) -> None:
        offsets = [r.offset for r in iter_records(pcap)]
        damaged = tmp_path / "damaged.pcap"
        damaged.write_bytes(pcap.read_bytes()[: offsets[8] + 5])
        out = tmp_path / "out.pcap"
        out.write_bytes(b"previous content")
        code, _o, err = run_cli(capsys, "filter", str(damaged), str(out), "--vni", "100")
        assert code == 2 and out.read_bytes() == b"previous content"
        assert "8 packets read, 4 matched before the damage" in err
        assert "offset %d, packet 9" % offsets[8] in err and "Traceback" not in err
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        code, _o, err = run_cli(capsys, "filter", str(damaged), str(out), "--vni", "100", "--keep-partial")
        assert code == 2 and "4 of 8 packets written" in err
        assert len(_records(out)) == 4

    @pytest.mark.parametrize(
        "argv, message",
        [
            (["--kind", "gre"], "unknown encapsulation 'gre'"),
            (["--vni", "ten"], "'ten' is not a number"),
            (["--vni", "-1"], "identifier -1 is out of range"),
            (["--vni", "16777216", "--kind", "geneve"], "--vni 16777216 does not fit in Geneve's VNI"),
            (["--option-class", "0x10000"], "not a 16-bit value"),
            (["--jobs", "0"], "must be at least 1"),
        ],
    )
    def test_bad_selection_values(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path, argv: List[str], message: str
    ) -> None:
        """Usage errors exit 2 with the option named, never a traceback, nothing written."""
        with pytest.raises(SystemExit) as exc:
            main(["filter", str(pcap), str(tmp_path / "o.pcap")] + argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "o.pcap").exists()

    @pytest.mark.oracle
    def test_tcpdump_and_tshark_read_the_output(
        self,
        capsys: pytest.CaptureFixture,
        pcap: Path,
        pcapng: Path,
        tmp_path: Path,
        tcpdump: str,
        tshark: str,
    ) -> None:
        out = tmp_path / "out.pcap"
        run_cli(capsys, "filter", str(pcap), str(out), "--vni", "200")
        res = subprocess.run(
            [tcpdump, "-nn", "-r", str(out), "geneve 200"], capture_output=True, text=True, check=True
        )
        assert len(res.stdout.splitlines()) == 4
        outng = tmp_path / "out.pcapng"
        run_cli(capsys, "filter", str(pcapng), str(outng), "--vni", "200")
        res = subprocess.run(
            [tshark, "-n", "-r", str(outng), "-T", "fields", "-e", "geneve.vni"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert [int(v, 0) for v in res.stdout.split()] == [200] * 8


# -- a pcapng interface scan cannot read -------------------------------------------------
LINKTYPE_USB_LINUX = 189  # e.g. `dumpcap -i eth0 -i usbmon0` writes one of these beside Ethernet
USB_RECORD = bytes(range(48))  # an opaque 48-byte usbmon record: never parsed by scan


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """pcapng: interface 0 Ethernet (the 12 FRAMES), interface 1 usbmon (5 records),
    interleaved; packet 2 is the first usbmon record."""
    path = tmp_path / "mixed.pcapng"
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        eth = writer.add_interface(LINKTYPE_ETHERNET)
        usb = writer.add_interface(LINKTYPE_USB_LINUX)
        for i, frame in enumerate(FRAMES):
            writer.write(frame, 1_700_000_000_000_000_000 + i * 1000, eth)
            if i < 5:
                writer.write(USB_RECORD, 1_700_000_000_000_000_000 + i * 1000 + 1, usb)
    return path


class TestUnsupportedInterface:
    """A pcapng interface of a link type scan cannot read: its packets are skipped,
    counted and reported; the other interfaces are read in full."""

    def test_stats_reads_the_rest(self, capsys: pytest.CaptureFixture, mixed: Path, pcap: Path) -> None:
        code, out, _err = run_cli(capsys, "stats", "--json", str(mixed))
        data = json.loads(out)
        code_ref, out_ref, _ = run_cli(capsys, "stats", "--json", str(pcap))
        ref = json.loads(out_ref)
        assert code == code_ref == 0
        assert data["packets"] == 17 and data["linktypes"] == {"EN10MB": 12, "189": 5}
        assert data["skipped"] == {"packets": 5, "linktypes": {"189": 5}, "first_packet": 2}
        # everything about the Ethernet interface is what the plain pcap of it says
        for key in ("vnis", "options", "option_classes", "critical", "malformed"):
            assert data[key] == ref[key], key
        code, out, _err = run_cli(capsys, "stats", str(mixed))
        assert (
            "skipped (link type not supported, not examined): 5 packets "
            "(link type 189: 5), the first is packet 2" in out
        )

    def test_filter_copies_blocks_and_tshark_reads_them(
        self, capsys: pytest.CaptureFixture, mixed: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "geneve.pcapng"
        code, _o, err = run_cli(capsys, "filter", str(mixed), str(out), "--kind", "geneve")
        assert code == 0 and "9 of 17 packets written" in err
        assert "5 packets were not examined" in err
        assert [r.interface for r in iter_records(out)] == [0] * 9
        rest = tmp_path / "rest.pcapng"
        code, _o, err = run_cli(capsys, "filter", str(mixed), str(rest), "--kind", "geneve", "--invert")
        assert code == 0 and "8 of 17 packets written" in err
        kept = list(iter_records(rest))
        assert [r.data for r in kept if r.interface == 1] == [USB_RECORD] * 5

    @pytest.mark.oracle
    def test_tshark_agrees_on_the_filtered_file(
        self, capsys: pytest.CaptureFixture, mixed: Path, tmp_path: Path, tshark: str
    ) -> None:
        rest = tmp_path / "rest.pcapng"
        run_cli(capsys, "filter", str(mixed), str(rest), "--kind", "geneve", "--invert")
        lines = subprocess.run(
            [
                tshark,
                "-n",
                "-r",
                str(rest),
                "-T",
                "fields",
                "-e",
                "frame.interface_id",
                "-e",
                "frame.protocols",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert [line.split("\t")[0] for line in lines].count("1") == 5
        assert all("usb" in line for line in lines if line.startswith("1\t"))
        assert not any("geneve" in line for line in lines)

    def test_only_unsupported_interfaces_is_an_error(
        self, capsys: pytest.CaptureFixture, tmp_path: Path
    ) -> None:
        path = tmp_path / "usb.pcapng"
        with open(path, "wb") as handle:
            writer = PcapngWriter(handle)
            writer.add_interface(LINKTYPE_USB_LINUX)
            for i in range(3):
                writer.write(USB_RECORD, 1_700_000_000_000_000_000 + i)
        first = next(iter_records(path)).offset
        code, out, err = run_cli(capsys, "stats", "--json", str(path))
        assert code == 2 and "Traceback" not in err
        assert err.startswith(
            "scapy-geneve stats: error: %s, offset %d, packet 1: no packet "
            "scan can read: every interface has an unsupported link type "
            "189" % (path, first)
        )
        data = json.loads(out)  # what was read is still reported
        assert data["packets"] == 3 and data["skipped"]["packets"] == 3


# -- many files, many processes ---------------------------------------------------------------
@pytest.fixture
def many(tmp_path: Path) -> List[Path]:
    """Four captures: the 12 FRAMES split 5/4/3 over three pcaps (µs, ns, big-endian ns
    would differ: all little-endian ns here) and a pcapng of all of them."""
    paths = []
    for k, chunk in enumerate((FRAMES[:5], FRAMES[5:9], FRAMES[9:])):
        path = tmp_path / ("part%d.pcap" % k)
        with open(path, "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=True)
            for i, frame in enumerate(chunk):
                writer.write(frame, 1_700_000_000_000_000_000 + (k * 100 + i) * 1000)
        paths.append(path)
    ng = tmp_path / "all.pcapng"
    with open(ng, "wb") as handle:
        ngw = PcapngWriter(handle)
        ngw.add_interface(LINKTYPE_ETHERNET)
        for i, frame in enumerate(FRAMES):
            ngw.write(frame, 1_700_000_001_000_000_000 + i * 1000)
    paths.append(ng)
    return paths


class TestManyFiles:
    def test_stats_over_a_glob_equals_the_sum(self, capsys: pytest.CaptureFixture, many: List[Path]) -> None:
        _code, out, _err = run_cli(capsys, "stats", "--json", str(many[0].parent / "part*.pcap"))
        data = json.loads(out)
        assert [f["file"] for f in data["files"]] == [str(p) for p in many[:3]]
        assert [f["packets"] for f in data["files"]] == [5, 4, 3]
        _code, out, _err = run_cli(capsys, "stats", "--json", str(many[3]))
        whole = json.loads(out)
        for key in (
            "packets",
            "bytes",
            "encapsulations",
            "vnis",
            "options",
            "option_classes",
            "critical",
            "inner_protocols",
            "malformed",
        ):
            assert data[key] == whole[key], key
        _code, out, _err = run_cli(capsys, "stats", *map(str, many[:3]))
        assert out.startswith("3 files (pcap 3), 12 packets")
        assert "  %s: pcap, 3 packets" % many[2] in out

    def test_jobs_give_the_same_counts(self, capsys: pytest.CaptureFixture, many: List[Path]) -> None:
        outs = []
        for jobs in ("1", "2", "3"):
            code, out, _err = run_cli(capsys, "stats", "--json", "--jobs", jobs, *map(str, many))
            assert code == 0
            outs.append(out)
        assert outs[0] == outs[1] == outs[2]

    def test_a_damaged_file_among_others(
        self, capsys: pytest.CaptureFixture, many: List[Path], tmp_path: Path
    ) -> None:
        """The others are counted in full, the damaged one up to the damage; exit 2."""
        offsets = [r.offset for r in iter_records(many[1])]
        damaged = tmp_path / "damaged.pcap"
        damaged.write_bytes(many[1].read_bytes()[: offsets[2] + 5])
        for jobs in ("1", "2"):
            code, out, err = run_cli(
                capsys, "stats", "--json", "-j", jobs, str(many[0]), str(damaged), str(many[2])
            )
            data = json.loads(out)
            assert code == 2 and data["packets"] == 5 + 2 + 3
            assert data["files"][1]["error"].startswith("%s, offset %d, packet 3" % (damaged, offsets[2]))
            assert "Traceback" not in err and "packet 3" in err

    def test_missing_glob(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        code, _out, err = run_cli(capsys, "stats", str(tmp_path / "nothing*.pcap"))
        assert code == 2 and "no file matches the pattern" in err

    def test_filter_many_inputs_in_order(
        self, capsys: pytest.CaptureFixture, many: List[Path], tmp_path: Path
    ) -> None:
        """Three pcaps with one header: one pcap holding their matches in input order,
        records byte for byte; --jobs 2 writes the same bytes."""
        outs = []
        for jobs in ("1", "2"):
            out = tmp_path / ("out%s.pcap" % jobs)
            code, _o, err = run_cli(
                capsys, "filter", "-j", jobs, *map(str, many[:3]), str(out), "--kind", "geneve"
            )
            assert code == 0 and "9 of 12 packets written" in err
            outs.append(out.read_bytes())
        assert outs[0] == outs[1]
        expected = many[0].read_bytes()[:24] + b"".join(
            raw[r.offset : r.offset + 16 + r.caplen]
            for path in many[:3]
            for raw in [path.read_bytes()]
            for r in iter_records(path)
            if r.data in FRAMES[:8] or r.data == FRAMES[11]
        )
        assert outs[0] == expected

    def test_filter_mixed_formats_to_pcapng(
        self, capsys: pytest.CaptureFixture, many: List[Path], tmp_path: Path
    ) -> None:
        """pcap + pcapng into a .pcapng: the pcapng is copied as is, the pcap becomes a
        section of its own; every packet keeps its bytes and nanosecond time."""
        out = tmp_path / "mixed.pcapng"
        code, _o, err = run_cli(capsys, "filter", str(many[1]), str(many[3]), str(out), "--vni", "200")
        assert code == 0 and "6 of 16 packets written" in err
        got = [(r.data, r.ts_ns) for r in iter_records(out)]
        want = [
            (r.data, r.ts_ns)
            for path in (many[1], many[3])
            for r in iter_records(path)
            if r.data in (FRAMES[1], FRAMES[3], FRAMES[5], FRAMES[7])
        ]
        assert got == want and len(got) == 6
        assert out.read_bytes().count(b"\x0a\x0d\x0d\x0a") == 2


class TestOutputFormat:
    """OUT's format follows -F or its name; the same format is copied byte for byte."""

    def test_pcapng_in_pcap_out(self, capsys: pytest.CaptureFixture, pcapng: Path, tmp_path: Path) -> None:
        out = tmp_path / "out.pcap"
        code, _o, err = run_cli(capsys, "filter", str(pcapng), str(out), "--vni", "200")
        assert code == 2 and "a pcap holds one link type" in err and "-F pcapng" in err
        assert not out.exists()
        eth_only = tmp_path / "eth.pcapng"
        run_cli(capsys, "filter", str(pcapng), str(eth_only), "--vni", "200")
        code, _o, err = run_cli(capsys, "filter", str(pcapng), str(out), "--vni", "200", "--kind", "geneve")
        assert code == 2  # both interfaces still match: one is raw IP
        single = tmp_path / "single.pcapng"
        with open(single, "wb") as handle:
            writer = PcapngWriter(handle)
            writer.add_interface(LINKTYPE_ETHERNET, tsresol=9)
            for i, frame in enumerate(FRAMES):
                writer.write(frame, 1_700_000_000_000_000_001 + i, 0)
        code, _o, err = run_cli(capsys, "filter", str(single), str(out), "--vni", "200")
        assert code == 0 and "4 of 12 packets written" in err
        raw = out.read_bytes()
        assert raw[:4] == bytes.fromhex("4d3cb2a1")  # pcap, nanosecond, little endian
        assert [(r.data, r.ts_ns) for r in iter_records(out)] == [
            (FRAMES[i], 1_700_000_000_000_000_001 + i) for i in (1, 3, 5, 7)
        ]

    def test_pcap_in_pcapng_out_and_F(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "out.pcapng"
        code, _o, _err = run_cli(capsys, "filter", str(pcap), str(out), "--vni", "100")
        assert code == 0 and out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
        assert [(r.data, r.ts_ns) for r in iter_records(out)] == [
            (r.data, r.ts_ns)
            for r in iter_records(pcap)
            if r.data in (FRAMES[0], FRAMES[2], FRAMES[4], FRAMES[6], FRAMES[8], FRAMES[11])
        ]
        forced = tmp_path / "forced.out"
        run_cli(capsys, "filter", "-F", "pcapng", str(pcap), str(forced), "--vni", "100")
        assert forced.read_bytes() == out.read_bytes()
        same = tmp_path / "same.bin"  # no name, no -F: the input's format, as is
        run_cli(capsys, "filter", str(pcap), str(same), "--vni", "100")
        assert same.read_bytes()[:24] == pcap.read_bytes()[:24]

    def test_gzip_by_name(self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path) -> None:
        import gzip

        out = tmp_path / "out.pcap.gz"
        plain = tmp_path / "out.pcap"
        run_cli(capsys, "filter", str(pcap), str(out), "--vni", "100")
        run_cli(capsys, "filter", str(pcap), str(plain), "--vni", "100")
        assert gzip.decompress(out.read_bytes()) == plain.read_bytes()

    def test_quiet_and_one_packet(self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path) -> None:
        code, _o, err = run_cli(capsys, "filter", str(pcap), str(tmp_path / "o.pcap"), "--kind", "nvgre")
        assert code == 0 and "1 of 12 packets written" in err
        code, _o, err = run_cli(
            capsys, "filter", "-q", str(pcap), str(tmp_path / "o.pcap"), "--kind", "nvgre"
        )
        assert code == 0 and err == ""

    @pytest.mark.oracle
    def test_peers_read_the_converted_files(
        self, capsys: pytest.CaptureFixture, pcap: Path, tmp_path: Path, tcpdump: str, tshark: str
    ) -> None:
        ng = tmp_path / "out.pcapng"
        run_cli(capsys, "filter", str(pcap), str(ng), "--vni", "200")
        res = subprocess.run(
            [tshark, "-n", "-r", str(ng), "-T", "fields", "-e", "geneve.vni", "-e", "frame.time_epoch"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert [int(line.split("\t")[0], 0) for line in res.stdout.splitlines()] == [200] * 4
        assert res.stdout.splitlines()[0].split("\t")[1].startswith("1700000000.001000007")
        back = tmp_path / "back.pcap"
        run_cli(capsys, "filter", str(ng), str(back))
        res = subprocess.run(
            [tcpdump, "-nn", "--nano", "-tt", "-r", str(back), "geneve 200"],
            capture_output=True,
            text=True,
            check=True,
        )
        lines = res.stdout.splitlines()
        assert len(lines) == 4 and lines[0].startswith("1700000000.001000007")


def test_early_writeback_keeps_the_output_and_ignores_what_it_cannot_write_back(tmp_path: Path) -> None:
    """filter --jobs starts the writeback of its output after each piece: the bytes stay
    as written (and more can follow); a pipe or an in-memory stream is left alone."""
    from scapy_geneve.cli.filter import _start_writeback

    path = tmp_path / "out.pcap"
    with open(path, "wb") as out:
        out.write(b"first piece " * 1000)
        _start_writeback(out)  # type: ignore[arg-type]
        out.write(b"second piece")
    assert path.read_bytes() == b"first piece " * 1000 + b"second piece"
    memory = io.BytesIO(b"kept")
    _start_writeback(memory)
    assert memory.getvalue() == b"kept"
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe, os.fdopen(read_end, "rb") as reader:
        pipe.write(b"through a pipe")
        _start_writeback(pipe)  # type: ignore[arg-type]
        pipe.close()
        assert reader.read() == b"through a pipe"


def test_early_writeback_only_on_the_temporary_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advice goes to the temporary file a regular output is written through, in
    whole pages, never to standard output or a file written directly (it would drop
    the user's pages from the cache)."""
    from scapy_geneve.cli._common import through_temporary

    inputs = []
    for k in range(2):
        path = tmp_path / ("in%d.pcap" % k)
        with open(path, "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_ETHERNET)
            for n in range(200):
                writer.write(bytes(Ether() / IP() / UDP(sport=n, dport=6081) / Geneve(vni=k)), n)
        inputs.append(str(path))
    advised: List[Tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda _fd, start, length, _how: advised.append((start, length)))
    assert main(["filter", "-q", "--jobs", "2", *inputs, str(tmp_path / "out.pcap")]) == 0
    assert advised
    assert all(start == 0 and length > 0 and length % mmap.PAGESIZE == 0 for start, length in advised)
    assert (through_temporary(str(tmp_path / "out.pcap")), through_temporary("-")) == (True, False)
    assert not through_temporary("/dev/null") and not through_temporary("/dev/stdout")
