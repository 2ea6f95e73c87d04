"""tcpdump's own GSO captures (tests/gso-*-geneve-*.pcap, gso-*-vxlan-*.pcap).

Each holds one super-packet captured before the NIC: about 7 KB, inner TCP
checksum holding only the pseudo-header sum ("incorrect" in the .out file),
outer UDP checksum partial too on IPv6 ("bad udp cksum").  We check that

- finish_checksums() gives exactly the checksums tcpdump says they should be
  (the ``incorrect -> 0x....`` and ``bad udp cksum 0x.... -> 0x....`` values of
  the expected .out decode);
- segment(mtu=1500) gives packets that fit a 1500-byte MTU, carry the tunnel
  header unchanged, whose payloads concatenate to the original, and that
  tshark and tcpdump both call valid (every IPv4/UDP/TCP checksum good).
"""

import re
import subprocess
from pathlib import Path
from typing import List

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

from scapy_geneve import finish_checksums, segment
from scapy_geneve.checksum import CSUM_MANGLED_0, l4_checksum
from scapy_geneve.offload.segment import parse_offsets

CAPTURES = [
    "gso-ipv4-geneve-ipv4",
    "gso-ipv4-geneve-ipv6",
    "gso-ipv4-vxlan-ipv4",
    "gso-ipv6-geneve-ipv4",
    "gso-ipv6-vxlan-ipv6",
]


def _super(corpus: Path, name: str) -> Ether:
    pkts = rdpcap(str(corpus / (name + ".pcap")))
    assert len(pkts) == 1
    return pkts[0]


@pytest.mark.parametrize("name", CAPTURES)
def test_finish_checksums_gives_the_values_tcpdump_expects(corpus, name):
    expected = (corpus / (name + ".out")).read_text()
    tcp_want = int(re.search(r"cksum 0x[0-9a-f]+ \(incorrect -> (0x[0-9a-f]+)\)", expected).group(1), 16)
    fixed = finish_checksums(_super(corpus, name))
    assert fixed[TCP].chksum == tcp_want
    udp_bad = re.search(r"bad udp cksum 0x[0-9a-f]+ -> (0x[0-9a-f]+)!", expected)
    if udp_bad:
        # tcpdump sums the outer UDP datagram as captured (inner TCP checksum
        # still partial): our checksum module must agree on those bytes.  The
        # finished packet's outer checksum is checked by tshark below.
        raw = bytes(_super(corpus, name))
        o = parse_offsets(raw)
        t = o.tunnel_off
        dgram = raw[t : t + 6] + b"\0\0" + raw[t + 8 : o.end]
        assert l4_checksum(o.outer.src, o.outer.dst, 17, dgram, CSUM_MANGLED_0) == int(udp_bad.group(1), 16)
        assert fixed[UDP].chksum not in (0, _super(corpus, name)[UDP].chksum)
    elif _super(corpus, name)[UDP].chksum == 0:  # zero outer checksum: stays zero
        assert fixed[UDP].chksum == 0
    else:  # tcpdump does not verify IPv4 UDP checksums on port 4789: tshark does below
        assert fixed[UDP].chksum != 0


@pytest.mark.parametrize("name", CAPTURES)
def test_super_packet_inner_checksum_is_the_pseudo_header_sum(corpus, name):
    """What 'incorrect' means here: CHECKSUM_PARTIAL, the field holds the
    (uncomplemented) pseudo-header sum that the NIC would start from."""
    sup = _super(corpus, name)
    raw = bytes(sup)
    o = parse_offsets(raw)
    from scapy_geneve.checksum import csum_add, pseudo_header_sum

    want = csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, 6, o.end - o.l4_off))
    assert sup[TCP].chksum == want


@pytest.mark.parametrize("name", CAPTURES)
def test_segments_fit_the_mtu_and_concatenate_to_the_original(corpus, name):
    sup = _super(corpus, name)
    raw = bytes(sup)
    o = parse_offsets(raw)
    segs = [bytes(s) for s in segment(sup, mtu=1500)]
    assert len(segs) > 1
    payload = b"".join(s[o.payload_off :] for s in segs)
    assert payload == raw[o.payload_off : o.end]
    seq0 = sup[TCP].seq
    off = 0
    for s in segs:
        so = parse_offsets(s)
        assert so.end - so.first_ip.off <= 1500
        assert s[so.tunnel_off + 8 : so.inner_l2] == raw[o.tunnel_off + 8 : o.inner_l2]  # tunnel header as is
        assert int.from_bytes(s[so.l4_off + 4 : so.l4_off + 8], "big") == (seq0 + off) & 0xFFFFFFFF
        off += so.end - so.payload_off


def _tshark_status(tshark: str, pcap: Path) -> List[List[str]]:
    out = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(pcap),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "ip.checksum.status",
            "-e",
            "udp.checksum.status",
            "-e",
            "tcp.checksum.status",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.oracle
@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("what", ["segment", "finish_checksums"])
def test_tshark_finds_every_checksum_good(corpus, tshark, tmp_path, name, what):
    """tshark checksum status: 0 bad, 1 good, 2 unverified, 3 not present (UDP 0)."""
    pcap = tmp_path / "segs.pcap"
    sup = _super(corpus, name)
    wrpcap(str(pcap), segment(sup, mtu=1500) if what == "segment" else [finish_checksums(sup)])
    rows = _tshark_status(tshark, pcap)
    assert len(rows) >= 1
    for row in rows:
        ip_st, udp_st, tcp_st = row
        assert set(ip_st.split(",")) <= {"1", ""}, row
        assert udp_st == ("3" if sup[UDP].chksum == 0 else "1"), row
        assert tcp_st == "1", row


@pytest.mark.oracle
@pytest.mark.parametrize("name", CAPTURES)
def test_tcpdump_finds_every_checksum_correct(corpus, tcpdump, tmp_path, name):
    pcap = tmp_path / "segs.pcap"
    wrpcap(str(pcap), segment(_super(corpus, name), mtu=1500))
    out = subprocess.run([tcpdump, "-n", "-vvv", "-r", str(pcap)], capture_output=True, text=True).stdout
    assert "incorrect" not in out and "bad" not in out
    assert out.count("(correct)") == len(rdpcap(str(pcap)))
