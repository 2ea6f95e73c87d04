"""The project's own captures: current, lossless, and readable by tshark."""

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from scapy_geneve import Geneve

ROOT = Path(__file__).resolve().parent.parent
PCAPS = sorted((ROOT / "pcaps").glob("geneve_*.pcap"))
SAMPLE = ROOT / "scapy_geneve" / "data" / "sample.pcap"


def test_generator_reproduces_the_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "pcaps" / "generate.py"), str(tmp_path), str(tmp_path / "sample.pcap")],
        check=True,
        capture_output=True,
    )
    for pcap in PCAPS:
        assert filecmp.cmp(pcap, tmp_path / pcap.name, shallow=False), pcap.name
    assert filecmp.cmp(SAMPLE, tmp_path / "sample.pcap", shallow=False)


@pytest.mark.parametrize("pcap", PCAPS + [SAMPLE], ids=lambda p: p.name)
def test_every_packet_is_lossless(pcap):
    for pkt in rdpcap(str(pcap)):
        wire = bytes(pkt)
        assert bytes(Ether(wire)) == wire


def test_options_file_decodes_every_known_option():
    names = [
        type(o).__name__
        for p in rdpcap(str(ROOT / "pcaps" / "geneve_options.pcap"))
        for o in p[Geneve].options
    ]
    for typed in (
        "GeneveOptionOVN",
        "GeneveOptionGWLBEndpointID",
        "GeneveOptionGWLBAttachmentID",
        "GeneveOptionGWLBFlowCookie",
        "GeneveOptionGCPVNID",
        "GeneveOptionGCPEndpointID",
        "GeneveOptionGCPProfileID",
        "GeneveOptionINTMD",
        "GeneveOptionCiliumDSR4",
        "GeneveOptionCiliumDSR6",
        "GeneveOptionCPacket",
    ):
        assert typed in names


@pytest.mark.oracle
def test_tshark_counts_the_same_geneve_packets(tshark):
    out = subprocess.run(
        [tshark, "-r", str(SAMPLE), "-Y", "geneve", "-T", "fields", "-e", "frame.number", "-e", "geneve.vni"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    theirs = {
        int(line.split("\t")[0]): int(line.split("\t")[1], 0)
        for line in out
        if line.strip() and line.split("\t")[1]
    }
    ours = {
        n: p[Geneve].vni
        for n, p in enumerate(rdpcap(str(SAMPLE)), 1)
        if Geneve in p and p[Geneve].version == 0
    }
    assert ours == {n: v for n, v in theirs.items() if n in ours}
    assert set(ours) <= set(theirs)
