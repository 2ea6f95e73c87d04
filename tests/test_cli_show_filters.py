"""`scapy-geneve show` with the scan filters: packets are chosen on the fast
path and only those are decoded (or, with --detail, dissected by Scapy);
numbers stay the file's own."""

from pathlib import Path
from typing import List

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from scapy_geneve.cli import main
from scapy_geneve.cli import show as show_cli
from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.stt import STT
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapWriter

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80)
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    frames = []
    for i in range(6):  # 1..6: Geneve VNI 10 (odd numbers carry the OVN option) / 20
        opts = [GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02")] if i % 2 == 0 else []
        frames.append(
            OUTER
            / UDP(sport=5000 + i, dport=6081)
            / Geneve(vni=10 if i % 2 == 0 else 20, options=opts)
            / INNER
        )
    frames.append(OUTER / UDP(sport=7000, dport=4789) / VXLAN(flags=8, vni=10) / INNER)  # 7
    frames.append(
        OUTER / TCP(sport=7001, dport=7471, seq=(18 + len(INNER)) << 16) / STT(context_id=0xABCDEF) / INNER
    )  # 8
    bad = bytearray(bytes(frames[0]))
    bad[14 + 20 + 8] = 0x41  # Geneve version 1                                # 9
    frames.append(bytes(bad))
    path = tmp_path / "in.pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET)
        for i, frame in enumerate(frames):
            writer.write(bytes(frame), 10**18 + i * 1000)
    return path


def _numbers(out: str) -> List[int]:
    return [int(line.split()[0]) for line in out.splitlines() if line.strip()]


def test_vni_selects_and_keeps_file_numbers(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    assert main(["show", str(pcap), "--vni", "10"]) == 0
    out = capsys.readouterr().out
    assert _numbers(out) == [1, 3, 5, 7, 9]
    assert "Geneve vni 10 " in out and "VXLAN vni 10 " in out


def test_option_class_and_type(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap), "--option-class", "0x0102", "--option-type", "0x80"])
    assert _numbers(capsys.readouterr().out) == [1, 3, 5]


def test_option_class_by_its_iana_name(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap), "--option-class", "ovn"])
    out = capsys.readouterr().out
    assert _numbers(out) == [1, 3, 5]
    assert "OVN 0x0102/0x80(C) [ingress_port=1 egress_port=2]" in out


def test_out_of_range_identifier_is_refused(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["show", str(pcap), "--kind", "vxlan", "--vni", str(1 << 24)])
    assert info.value.code == 2
    assert "24 bits" in capsys.readouterr().err


def test_kind_and_count(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap), "--kind", "vxlan,stt"])
    assert _numbers(capsys.readouterr().out) == [7, 8]
    main(["show", str(pcap), "--vni", "10", "--count", "2"])
    assert _numbers(capsys.readouterr().out) == [1, 3]  # --count counts shown packets


def test_malformed(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap), "--malformed"])
    out = capsys.readouterr().out
    assert _numbers(out) == [9]


def test_stt_context_id(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap), "--vni", "0xabcdef", "--detail"])
    out = capsys.readouterr().out
    assert out.startswith("#8 ") and "context_id" in out


def test_only_matching_packets_are_dissected(
    capsys: pytest.CaptureFixture, pcap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    real = show_cli.dissect

    def counting(record):  # type: ignore[no-untyped-def]
        seen.append(record.number)
        return real(record)

    monkeypatch.setattr(show_cli, "dissect", counting)
    main(["show", str(pcap), "--vni", "20", "--detail"])
    capsys.readouterr()
    assert seen == [2, 4, 6]


def test_one_liners_never_use_scapy(
    capsys: pytest.CaptureFixture, pcap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(record):  # type: ignore[no-untyped-def]
        raise AssertionError("show without --detail dissected packet %d" % record.number)

    monkeypatch.setattr(show_cli, "dissect", refuse)
    assert main(["show", str(pcap)]) == 0
    assert main(["show", str(pcap), "--vni", "20", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 9 + 3


def test_without_filters_unchanged(capsys: pytest.CaptureFixture, pcap: Path) -> None:
    main(["show", str(pcap)])
    assert _numbers(capsys.readouterr().out) == list(range(1, 10))


def test_extra_ports_are_dissected_too(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """`--geneve-port 7000 --vxlan-port 48880`: the selection finds those packets
    and Scapy dissects them as Geneve/VXLAN, without a lasting binding."""
    path = tmp_path / "ports.pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET)
        writer.write(bytes(OUTER / UDP(sport=50000, dport=7000) / Geneve(vni=33) / INNER))
        writer.write(bytes(OUTER / UDP(sport=50001, dport=48880) / VXLAN(flags=8, vni=33) / INNER))
    before = list(UDP.payload_guess)
    assert main(["show", str(path), "--vni", "33", "--geneve-port", "7000", "--vxlan-port", "48880"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2"]
    assert "Geneve vni 33" in lines[0] and "VXLAN vni 33" in lines[1]
    assert "10.0.0.1:1000 > 10.0.0.2:http TCP Flags [S]" in lines[0]  # names without -n
    assert (
        main(["show", str(path), "--vni", "33", "--geneve-port", "7000", "--vxlan-port", "48880", "--detail"])
        == 0
    )
    detail = capsys.readouterr().out
    assert "###[ Geneve ]###" in detail and "###[ VXLAN ]###" in detail
    assert UDP.payload_guess == before
    # 6081 is Geneve's own port: asking for it again changes nothing
    assert main(["show", str(path), "--geneve-port", "6081"]) == 0
    capsys.readouterr()
    assert UDP.payload_guess == before
