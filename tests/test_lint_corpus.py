"""Real captures lint to the findings their documentation predicts.

Every capture is linted on its bytes (``lint_bytes``: no Scapy dissection).

- The project's own pcaps/: the "what lint should say" column of
  pcaps/README.md, packet by packet.
- tcpdump's corpus (read in place): findings explained by what tcpdump's
  expected output (.out) shows, and every checksum/DF finding confirmed by
  tshark on the same packet.  Captures taken on the sending host (gso-*,
  bigtcp-*) hold partial checksums: INFO (GNV019/VXL013), never the MUST.
"""

import re
import subprocess
from pathlib import Path

import pytest

from scapy_geneve.capture import pcapio
from scapy_geneve.checksum import pseudo_header_sum
from scapy_geneve.conformance.lint import LintOptions, lint_bytes
from scapy_geneve.registry import DEFAULT_PORTS

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
GENEVE_6082 = LintOptions(ports=DEFAULT_PORTS.extended(geneve=[6082]))


def lint_file(path, **kw):
    out = {}
    for rec in pcapio.iter_records(str(path)):
        found = lint_bytes(rec.data, rec.linktype, **kw)
        if found:
            out[rec.number] = sorted({f.rule for f in found})
    return out


# pcaps/README.md, "what `lint` should say", transcribed to rule ids.
PROJECT = {
    "geneve_basic.pcap": {},
    "geneve_options.pcap": {},
    "geneve_payloads.pcap": {},
    "geneve_ipv6_underlay.pcap": {},
    "geneve_oam.pcap": {1: ["GNV013"]},  # O bit set (informational)
    "geneve_malformed.pcap": {
        1: ["GNV001"],  # version not 0 (§3.4)
        2: ["GNV002"],  # lengths do not sum to Opt Len (§3.5)
        3: ["GNV004"],  # C clear with a critical option (§3.5)
        4: ["GNV005", "GNV006", "GNV007"],  # reserved bits: header and option
        5: ["GNV011"],  # wrong non-zero UDP checksum (§4.3)
        6: ["GNV003"],  # truncated Geneve header
        7: ["GNV003"],  # option header truncated
        8: ["GNV012"],  # zero UDP checksum over IPv6 (§4.3.1)
        9: ["GNV009"],  # port 6082 (read as Geneve on request)
    },
    # pcaps/make_tunnels.py, the "expected" column of the comparison captures
    "vxlan.pcap": {
        3: ["VXL005"],  # VXLAN-GBP: G bit (informational)
        6: ["VXL007"],  # Linux legacy port 8472, not 4789
    },
    "vxlan_malformed.pcap": {
        1: ["VXL001"],  # I flag clear
        2: ["VXL002", "VXL003", "VXL004"],  # reserved bits (flags and both fields)
        3: ["VXL011"],  # 5-byte header: truncated
        4: ["VXL006"],  # wrong UDP checksum 0xBEEF
    },
    "nvgre.pcap": {},
    "nvgre_malformed.pcap": {
        1: ["NVG007"],  # inner 802.1Q tag
        2: ["NVG008"],  # reserved VSID 0xFFFFFF
        3: ["NVG009"],  # key cut short (6 bytes of GRE)
        4: ["NVG002"],  # C bit with TEB
    },
    "stt.pcap": {},
    "stt_malformed.pcap": {
        8: ["STT003"],  # segment past the frame length
        9: ["STT004"],  # bad TCP checksum
        10: ["STT001"],  # STT version 1
    },
    "l2tpv3_ip.pcap": {},
    "l2tpv3_udp.pcap": {},
    "l2tpv3_control.pcap": {},
    "l2tpv3_malformed.pcap": {
        1: ["L2T004"],  # control Length 20, 19 bytes (tshark: udp.length 27)
        2: ["L2T004"],  # control Length 1024 > message
        5: ["L2T004"],  # 3-byte control header
    },
}


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_project_pcaps_lint_as_their_readme_says(name, no_debug_dissector):
    path = PCAPS / name
    if not path.exists():
        pytest.skip("%s not generated" % path)
    kw = {"options": GENEVE_6082} if name == "geneve_malformed.pcap" else {}
    got = lint_file(path, **kw)
    assert got == PROJECT[name]


def test_project_readme_still_predicts_these_findings():
    readme = (PCAPS / "README.md").read_text()
    for phrase in (
        "version not 0",
        "do not sum to Opt Len",
        "C clear with a critical option",
        "wrong non-zero UDP checksum",
        "zero UDP checksum over IPv6",
        "destination port not 6081",
        "O bit set",
    ):
        assert phrase in readme, phrase


# tcpdump corpus: file -> {packet: rules}, each line explained by the .out file.
TCPDUMP = {
    "geneve.pcap": {},  # OVS hosts; critical class-0 options always with C set
    "various_gre.pcap": {},  # no keyed GRE carrying Ethernet among them: not NVGRE
    "nsh-over-vxlan-gpe.pcap": {1: ["VXL008"]},  # GPE on 4790; .out: "4790 > 4790"
    "gso-ipv4-geneve-ipv4.pcap": {1: ["GNV015"]},  # .out: outer "flags [none]"
    "gso-ipv4-geneve-ipv6.pcap": {1: ["GNV015"]},  # .out: outer "flags [none]"
    "gso-ipv6-geneve-ipv4.pcap": {1: ["GNV019"]},  # .out: "bad udp cksum 0xab91 -> 0xdcc1!"
    "gso-ipv4-vxlan-ipv4.pcap": {1: ["VXL013"]},  # partial checksum (tshark: Bad)
    "gso-ipv6-vxlan-ipv6.pcap": {1: ["VXL008", "VXL013"]},  # .out: "bad udp cksum"; sport 39902
    # BIG TCP (lengths 0, taken from the capture as tcpdump does; partial checksums)
    "bigtcp-ipv4-geneve-ipv4.pcap": {1: ["GNV015"]},  # .out: outer "flags [none]", UDP cksum 0
    "bigtcp-ipv4-geneve-ipv6.pcap": {1: ["GNV015"]},
    "bigtcp-ipv4-vxlan-ipv4.pcap": {1: ["VXL008", "VXL013"]},  # sport 47044; partial over 80082 bytes
    "bigtcp-ipv4-vxlan-ipv6.pcap": {1: ["VXL013"]},
    "bigtcp-ipv6-geneve-ipv4.pcap": {1: ["GNV019"]},  # .out: "bad udp cksum 0xc928 -> 0xb00c!"
    "bigtcp-ipv6-geneve-ipv6.pcap": {1: ["GNV019"]},  # .out: "bad udp cksum"
    "bigtcp-ipv6-vxlan-ipv4.pcap": {1: ["VXL013"]},  # .out: "bad udp cksum"
    "bigtcp-ipv6-vxlan-ipv6.pcap": {1: ["VXL008", "VXL013"]},  # .out: "bad udp cksum"; sport 37059
    "bigtcp-ipv4.pcap": {},
    "bigtcp-ipv6.pcap": {},
    "bigtcp-ipv6-hbh.pcap": {},  # no tunnel
}


@pytest.mark.parametrize("name", sorted(TCPDUMP))
def test_tcpdump_corpus_lints_as_its_out_files_explain(corpus, name, no_debug_dissector):
    path = corpus / name
    if not path.exists():
        pytest.skip("%s not in the corpus" % name)
    assert lint_file(path) == TCPDUMP[name]


VXLAN_LINE = re.compile(r"^\s*(\d+)\s.*\.(\d+) > [0-9.]+\.(\d+): VXLAN, flags \[I\] \(0x08\)")


@pytest.mark.parametrize("name", ["vxlan.pcap", "vxlan_port_8472.pcap"])
def test_vxlan_corpus_findings_follow_the_ports_tcpdump_prints(corpus, name, no_debug_dissector):
    """RFC 7348 §5: source port SHOULD be 49152-65535 (VXL008); the IANA
    destination port is 4789 (VXL007, informational).  tcpdump's .out gives
    both ports of every VXLAN packet; nothing else is reported."""
    if not (corpus / name).exists():
        pytest.skip("%s not in the corpus" % name)
    want = {}
    for line in (corpus / name.replace(".pcap", ".out")).read_text().splitlines():
        m = VXLAN_LINE.match(line)
        if m:
            number, sport, dport = (int(x) for x in m.groups())
            rules = (["VXL007"] if dport != 4789 else []) + (["VXL008"] if sport < 49152 else [])
            if rules:
                want[number] = rules
    assert want, "no VXLAN lines parsed from the .out file"
    assert lint_file(corpus / name) == want


CHECKSUM_RULES = {"GNV011", "VXL006", "GNV019", "VXL013"}
PARTIAL_RULES = {"GNV019", "VXL013"}


def _pseudo_sum_in_field(data, udp_off, ip_off, version):
    """Is the UDP checksum field the pseudo-header sum of this datagram (what a
    sending host leaves for checksum offload)?  Addresses from the IP header,
    the length from the capture (BIG TCP headers say 0)."""
    src, dst = (
        (data[ip_off + 12 : ip_off + 16], data[ip_off + 16 : ip_off + 20])
        if version == 4
        else (data[ip_off + 8 : ip_off + 24], data[ip_off + 24 : ip_off + 40])
    )
    length = len(data) - udp_off
    want = (
        pseudo_header_sum(src, dst, 17, length & 0xFFFF)
        if version == 4
        else pseudo_header_sum(src, dst, 17, length)
    )
    if version == 4 and length >> 16:  # Linux sums the 32-bit length (BIG TCP)
        want = (want + (length >> 16)) % 0xFFFF or 0xFFFF
    return int.from_bytes(data[udp_off + 6 : udp_off + 8], "big") == want


@pytest.mark.oracle
@pytest.mark.parametrize(
    "name", sorted(n for n in TCPDUMP if n.startswith("gso-")) + ["geneve.pcap", "vxlan.pcap"]
)
def test_checksum_and_df_findings_agree_with_tshark(corpus, tshark, name):
    """tshark (checksum verification on) says Bad exactly where lint reports a
    checksum finding; lint says INFO (offload) exactly where the field holds the
    pseudo-header sum, and the DF finding follows tshark's ip.flags.df.  (tshark 4.0
    does not verify the BIG TCP captures' checksums: tcpdump is their oracle, below.)"""
    path = corpus / name
    if not path.exists():
        pytest.skip("%s not in the corpus" % name)
    res = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "udp.checksum.status",
            "-e",
            "ip.flags.df",
            "-e",
            "udp.dstport",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    for (status, df, dport), rec in zip(rows, pcapio.iter_records(str(path))):
        found = {f.rule: f for f in lint_bytes(rec.data, rec.linktype)}
        bad_csum = status == "0"
        assert bad_csum == bool(set(found) & CHECKSUM_RULES), (rec.number, status, found)
        for rule in set(found) & PARTIAL_RULES:
            udp_off = found[rule].offset - 6
            version = 6 if udp_off >= 54 and rec.data[12:14] == b"\x86\xdd" else 4
            assert _pseudo_sum_in_field(rec.data, udp_off, 14, version), (rec.number, rule)
        if dport == "6081" and df != "":
            assert (df in ("0", "False")) == ("GNV015" in found), (rec.number, df, found)


@pytest.mark.parametrize("name", sorted(n for n in TCPDUMP if n.startswith("bigtcp-")))
def test_big_tcp_checksum_findings_follow_tcpdump(corpus, name):
    """tcpdump -v verifies UDP checksums over IPv6 and prints "bad udp cksum" on
    the BIG TCP captures; lint judges the same packets (today's lint saw no UDP in
    them: 0 findings) and calls them partial (checksum offload), not wrong."""
    path = corpus / name
    if not path.exists():
        pytest.skip("%s not in the corpus" % name)
    out = (corpus / name.replace(".pcap", ".out")).read_text()
    found = lint_file(path)
    if "bad udp cksum" in out:
        assert set(found.get(1, [])) & PARTIAL_RULES
    rec = next(pcapio.iter_records(str(path)))
    for f in lint_bytes(rec.data, rec.linktype):
        if f.rule in PARTIAL_RULES:
            version = 6 if rec.data[12:14] == b"\x86\xdd" else 4
            assert _pseudo_sum_in_field(rec.data, f.offset - 6, 14, version)
    if name.startswith("bigtcp-ipv6-") and "bad udp cksum" not in out:
        assert not set(found.get(1, [])) & CHECKSUM_RULES
