"""Wireshark (tshark) and tcpdump as oracles for our VXLAN, NVGRE, STT and L2TPv3 packets.

Every packet is built with :func:`encapsulate`, written to a pcap, decoded by
tshark, and each field tshark reports must equal what we put in (and what
:func:`decapsulate` reads back).  Preferences come from ../shared/lab/REPORT.md
§3: STT needs ``ip.try_heuristic_first``; L2TPv3 needs the cookie-size and
L2-specific-sublayer preferences and Ethernet as the pseudowire payload.
"""

import subprocess
from pathlib import Path
from typing import List

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from scapy_geneve import (
    GeneveOption,
    L2TPv3,
    L2TPv3AVP,
    L2TPv3Control,
    decapsulate,
    encapsulate,
)

pytestmark = pytest.mark.oracle

INNER = (
    Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
    / IP(src="192.168.1.1", dst="192.168.1.2")
    / UDP(sport=1000, dport=4242)
    / b"inner-payload"
)
BIG = INNER / (b"z" * 3000)
L2TP_PREFS = ["-o", "l2tp.cookie_size:cookie4", "-o", "l2tp.l2_specific:default", "-d", "l2tp.pw_type==0,eth"]


def fields(tshark: str, pcap: Path, names: List[str], *opts: str) -> List[List[str]]:
    """One row per packet, one cell per field (all occurrences joined by ',')."""
    cmd = [
        tshark,
        "-n",
        "-r",
        str(pcap),
        *opts,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=/t",
    ]
    for name in names:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def pcap(tmp_path):
    def write(packets, name="t.pcap") -> Path:
        path = tmp_path / name
        wrpcap(str(path), packets)
        return path

    return write


def test_vxlan_plain_gbp_and_gpe(tshark, pcap):
    pkts = [
        encapsulate(INNER, "vxlan", vni=42, ether=True),
        encapsulate(
            INNER, "vxlan", vni=0xABCDEF, gpid=0x1234, dont_learn=True, policy_applied=True, ether=True
        ),
        encapsulate(INNER[IP], "vxlan", vni=44, ether=True),
        encapsulate(INNER, "vxlan", vni=45, underlay="ipv6", ether=True),
    ]
    rows = fields(
        tshark,
        pcap(pkts),
        [
            "vxlan.flags",
            "vxlan.vni",
            "vxlan.flag_g",
            "vxlan.gbp",
            "vxlan.flag_d",
            "vxlan.flag_a",
            "vxlan.next_proto",
            "vxlan.p_bit",
            "udp.dstport",
            "udp.checksum",
        ],
    )
    plain, gbp, gpe, v6 = rows
    assert plain[0:2] == ["0x0800", "42"] and plain[2] == "0"  # flags 0x08 only
    assert plain[8] == "4789,4242" and plain[9].split(",")[0] == "0x0000"  # zero on IPv4
    assert int(gbp[0], 16) == 0x8848  # G|I, then D (0x40) and A (0x08)
    assert gbp[1:6] == [str(0xABCDEF), "1", str(0x1234), "1", "1"]
    assert gpe[1] == "44" and gpe[6] == "1" and gpe[7] == "1" and gpe[8].startswith("4790")
    assert v6[1] == "45" and v6[9].split(",")[0] != "0x0000"  # IPv6: computed
    for pkt, row in zip(pkts, rows):  # and we agree
        assert str(decapsulate(bytes(pkt))[1].vni) == row[1]


def test_nvgre_key_is_vsid_and_flowid(tshark, pcap):
    pkts = [
        encapsulate(INNER, "nvgre", vsid=0xABCD, flowid=0x5A, ether=True),
        encapsulate(INNER, "nvgre", vsid=0xFFFFFE, ether=True, underlay="ipv6"),
    ]
    rows = fields(
        tshark,
        pcap(pkts),
        [
            "gre.flags.key",
            "gre.flags.checksum",
            "gre.flags.sequence_number",
            "gre.proto",
            "gre.key",
            "udp.dstport",
        ],
    )
    for pkt, row in zip(pkts, rows):
        _, info = decapsulate(bytes(pkt))
        assert row[:4] == ["1", "0", "0", "0x6558"]  # K=1, C=0, S=0, TEB
        assert int(row[4], 16) == info.vsid << 8 | info.flowid
        assert row[5] == "4242"  # tshark reached the inner UDP
    assert int(rows[0][4], 16) == 0x00ABCD5A


def test_stt_segments_and_reassembly(tshark, pcap):
    segs = encapsulate(
        BIG, "stt", context_id=0x0102030405060708, identifier=0xC0FFEE, vlan_id=100, pcp=3, ether=True
    )
    single = encapsulate(INNER, "stt", vni=5, identifier=0xBEEF, ether=True)
    path = pcap(segs + single)
    frame_len = 18 + len(bytes(BIG))
    rows = fields(
        tshark, path, ["stt.pkt_len", "stt.seg_off", "stt.pkt_id"], "-o", "ip.try_heuristic_first:TRUE"
    )
    assert [r[:3] for r in rows[:3]] == [[str(frame_len), str(off), "0x00c0ffee"] for off in (0, 1460, 2920)]
    two = fields(
        tshark,
        path,
        [
            "stt.context_id",
            "stt.reassembled.length",
            "stt.vlan.id",
            "stt.vlan.pcp",
            "stt.vlan.v",
            "stt.version",
            "stt.flags",
            "udp.dstport",
            "data.len",
        ],
        "-o",
        "ip.try_heuristic_first:TRUE",
        "-2",
    )
    done = two[2]  # reassembled in the last segment
    assert done[0] == "0x0102030405060708"
    assert done[1] == str(frame_len + 20)  # tshark counts the 20-byte TCP-like header
    assert done[2:7] == ["100", "3", "1", "0", "0x00"]
    assert done[7] == "4242" and done[8] == str(len(b"inner-payload") + 3000)
    assert two[3][0] == "0x0000000000000005" and two[3][7] == "4242"


def test_stt_tcp_checksums_are_valid_for_wireshark(tshark, pcap):
    segs = encapsulate(BIG, "stt", vni=1, ether=True) + encapsulate(
        INNER, "stt", vni=2, underlay="ipv6", ether=True
    )
    rows = fields(tshark, pcap(segs), ["tcp.checksum.status"], "-o", "tcp.check_checksum:TRUE")
    assert [r[0] for r in rows] == ["1"] * len(segs)  # 1 = good


def test_l2tpv3_data_over_ip_and_udp(tshark, pcap):
    pkts = [
        encapsulate(INNER, "l2tpv3", session_id=0x1234, cookie=b"\xc0\x01\xc0\x01", sequence=5, ether=True),
        encapsulate(
            INNER,
            "l2tpv3",
            session_id=0x1235,
            cookie=b"\xc0\x01\xc0\x02",
            sequence=6,
            transport="udp",
            ether=True,
        ),
        encapsulate(
            INNER,
            "l2tpv3",
            session_id=0xFFFFFFFF,
            cookie=b"\xaa\xbb\xcc\xdd",
            sequence=0xFFFFFF,
            underlay="ipv6",
            ether=True,
        ),
    ]
    rows = fields(
        tshark,
        pcap(pkts),
        [
            "l2tp.sid",
            "l2tp.cookie",
            "l2tp.l2_spec_s",
            "l2tp.l2_spec_sequence",
            "l2tp.version",
            "eth.src",
            "udp.dstport",
        ],
        *L2TP_PREFS,
    )
    for pkt, row in zip(pkts, rows):
        _, info = decapsulate(bytes(pkt))
        assert int(row[0], 16) == info.session_id
        assert row[1] == info.cookie.hex()
        assert row[2:4] == ["1", str(info.sequence)]
        assert row[5].split(",")[-1] == "02:00:00:00:00:11"  # the inner frame
        assert row[6].split(",")[-1] == "4242"
    assert rows[1][4] == "3" and rows[1][6].startswith("1701")


def test_l2tpv3_control_message(tshark, pcap):
    ctrl = L2TPv3Control(
        ccid=0x1234,
        ns=3,
        nr=4,
        avps=[
            L2TPv3AVP(m=1, attr_type=0, value=(10).to_bytes(2, "big")),
            L2TPv3AVP(m=1, attr_type=63, value=(0x77).to_bytes(4, "big")),
            L2TPv3AVP(attr_type=65, value=b"ABCD"),
        ],
    )
    pkts = [
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / L2TPv3(session_id=0) / ctrl,
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1701, dport=1701) / ctrl,
    ]
    rows = fields(tshark, pcap(pkts), ["l2tp.ccid", "l2tp.Ns", "l2tp.Nr", "l2tp.length", "l2tp.avp.type"])
    for pkt, row in zip(pkts, rows):
        ours = IP(bytes(pkt[IP]))[L2TPv3Control]
        assert int(row[0], 16) == ours.ccid == 0x1234
        assert (row[1], row[2], row[3]) == ("3", "4", str(ours.length))
        assert row[4] == "0,63,65"


def test_geneve_through_encapsulate(tshark, pcap):
    pkt = encapsulate(
        INNER,
        "geneve",
        vni=0x123456,
        ether=True,
        options=[GeneveOption(classid=0xFFFF, type=0x80, data=bytes.fromhex("1234abcd"))],
    )
    (row,) = fields(
        tshark,
        pcap([pkt]),
        ["geneve.vni", "geneve.flags.critical", "geneve.option.class", "udp.checksum.status", "udp.dstport"],
        "-o",
        "udp.check_checksum:TRUE",
    )
    assert int(row[0], 16) == 0x123456 and row[1] == "1" and row[2] == "0xffff"
    assert row[3].split(",")[0] == "1" and row[4] == "6081,4242"


def test_tcpdump_prints_vxlan_and_nvgre_as_built(tcpdump, pcap):
    path = pcap(
        [
            encapsulate(INNER, "vxlan", vni=42, ether=True),
            encapsulate(INNER, "nvgre", vsid=0xABCD, flowid=0x5A, ether=True),
        ]
    )
    out = subprocess.run(
        [tcpdump, "-n", "-t", "-r", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    vxlan, nvgre = out.split("\nIP 192.0.2.1 > 192.0.2.2: GREv0")
    assert "VXLAN, flags [I] (0x08), vni 42" in vxlan
    assert nvgre.startswith(", key=0xabcd5a,")
    assert vxlan.count("192.168.1.1.1000 > 192.168.1.2.4242: UDP") == 1
    assert nvgre.count("192.168.1.1.1000 > 192.168.1.2.4242: UDP") == 1


PCAPS = Path(__file__).resolve().parent.parent / "pcaps"


@pytest.mark.parametrize(
    "name, opts, want",
    [
        # Wireshark does not claim the legacy port 8472: 5 of the 6 VXLAN packets.
        ("vxlan", [], 5),
        ("nvgre", [], 4),
        # STT is an IPv4 heuristic in Wireshark 4.0: the IPv6-underlay packet stays TCP
        # (the other frame of the file carries inner TCP, reassembled from 3 segments).
        ("stt", ["-o", "ip.try_heuristic_first:TRUE", "-2"], 1),
        ("l2tpv3_ip", L2TP_PREFS, 3),
        ("l2tpv3_udp", L2TP_PREFS, 2),
    ],
)
def test_tshark_reaches_the_inner_ping_in_the_committed_captures(tshark, name, opts, want):
    rows = fields(tshark, PCAPS / (name + ".pcap"), ["icmp.ident"], *opts)
    assert sum(1 for r in rows if r[0].split(",")[-1] == str(0x4242)) == want


def test_vxlan_gpe_oam_and_bum_bits(tshark, pcap):
    # draft-ietf-nvo3-vxlan-gpe: |R|R|Ver|I|P|B|O|; Wireshark 4.0 names I, P and O.
    pkts = [
        encapsulate(INNER[IP], "vxlan", vni=46, oam=True, bum=True, ether=True),
        encapsulate(INNER[IP], "vxlan", vni=47, ether=True),
    ]
    rows = fields(
        tshark, pcap(pkts), ["vxlan.i_bit", "vxlan.p_bit", "vxlan.o_bit", "vxlan.next_proto", "vxlan.vni"]
    )
    assert rows[0] == ["1", "1", "1", "1", "46"] and rows[1] == ["1", "1", "0", "1", "47"]
    for pkt, row in zip(pkts, rows):
        _, info = decapsulate(bytes(pkt))
        assert (info.oam, str(info.vni)) == (row[2] == "1", row[4])
        assert info.bum == (bytes(pkt)[14 + 20 + 8] & 0x02 == 0x02) == (info.vni == 46)


def test_stt_out_of_order_and_duplicated_segments_reassemble_like_wireshark(tshark, pcap):
    from scapy_geneve.offload.stt import stt_reassemble

    segs = encapsulate(BIG, "stt", context_id=0x99, identifier=0xD00D, ether=True)
    sent = [segs[2], segs[0], segs[0], segs[1]]  # reversed start, a duplicate
    rows = fields(
        tshark,
        pcap(sent),
        ["stt.context_id", "stt.reassembled.length", "udp.dstport", "data.len"],
        "-o",
        "ip.try_heuristic_first:TRUE",
        "-2",
    )
    done = [r for r in rows if r[1]]
    assert len(done) == 1  # one frame, once
    ours = stt_reassemble([s.payload for s in sent])
    (frame,) = ours.frames
    assert ours.dropped == [(2, "duplicate segment")]
    assert done[0][0] == "0x%016x" % frame.stt.context_id
    assert int(done[0][1]) == len(bytes(frame.stt)) + 20  # + the TCP-like header
    assert done[0][2] == "4242" and done[0][3] == str(len(bytes(BIG[UDP].payload)))
