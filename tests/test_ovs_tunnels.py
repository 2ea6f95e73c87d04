"""Open vSwitch exchanges VXLAN and NVGRE-format GRE with our layers, both ways.

OVS's userspace datapath has ``type=vxlan`` (VNI 5000) and ``type=gre``
(key 0x00abcd5a: exactly NVGRE's VSID 0xabcd + FlowID 0x5a) ports.

- OVS -> wire: a frame sent from the VM side is encapsulated by OVS; the
  frame captured on the underlay dissects with our ``VXLAN``/``NVGRE``
  layers to the configured VNI/VSID/FlowID, carries the VM's frame
  unchanged, lints without a MUST finding, and tshark agrees on the fields.
- wire -> OVS: frames built with ``build_vxlan()`` and ``NVGRE()`` are
  decapsulated by OVS and the inner frame comes out on the VM side.
"""

import subprocess

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from scapy_geneve.conformance.endpoints import Observer, OVSEndpoint, netns_socket, ovs_available
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.vxlan import VXLAN, build_vxlan
from scapy_geneve.conformance.lint import MUST, lint

pytestmark = [pytest.mark.netns]

VM_MAC, HOST_MAC = "02:00:00:00:50:01", "02:00:00:00:50:02"


@pytest.fixture(scope="module")
def ovs(netns_capable):
    reason = ovs_available()
    if reason:
        pytest.skip(reason)
    with OVSEndpoint(protocols=("vxlan", "nvgre")) as ep:
        # VM -> tunnel: UDP 1001 goes out of gre0 (NVGRE), 1002 out of vx0 (VXLAN).
        ep.ofctl("add-flow", "br-int", "priority=200,udp,in_port=vo,tp_dst=1001,actions=output:gre0")
        ep.ofctl("add-flow", "br-int", "priority=200,udp,in_port=vo,tp_dst=1002,actions=output:vx0")
        yield ep


def _from_vm(ovs, dport, text):
    """Send a frame from the VM side and return what OVS put on the underlay."""
    frame = bytes(
        Ether(src=VM_MAC, dst=HOST_MAC)
        / IP(src="192.168.50.1", dst="192.168.50.2")
        / UDP(sport=4242, dport=dport)
        / Raw(text)
    )
    underlay = Observer("ulp", ovs.ns_peer)
    tx = netns_socket("vp", ovs.ns_vm)
    try:
        ovs.prepare()
        underlay.drain()
        tx.send(frame)
        got = underlay.wait_for(text, 2.0)
    finally:
        tx.close()
        underlay.close()
    assert got is not None, "OVS sent nothing to the underlay for port %d" % dport
    return frame, Ether(got)


def _to_vm(ovs, outer, text):
    """Inject OUTER on the underlay; the inner frame that reached the VM side, or None."""
    vm = Observer("vp", ovs.ns_vm)
    try:
        ovs.prepare()
        vm.drain()
        ovs.send(bytes(outer))
        return vm.wait_for(text, 1.0)
    finally:
        vm.close()


def _tshark_fields(tshark, tmp_path, pkt, *fields):
    path = str(tmp_path / "one.pcap")
    wrpcap(path, [pkt])
    cmd = [tshark, "-r", path, "-T", "fields"] + [a for f in fields for a in ("-e", f)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return out.strip().split("\t")


def test_ovs_encapsulates_nvgre_our_layer_reads_it(ovs, tshark, tmp_path):
    sent, pkt = _from_vm(ovs, 1001, b"ovs-to-wire-nvgre")
    assert NVGRE in pkt, pkt.summary()
    gre = pkt[NVGRE]
    assert (gre.vsid, gre.flowid, gre.proto) == (0xABCD, 0x5A, 0x6558)
    assert bytes(gre.payload) == sent  # the VM's frame, unchanged
    assert [f for f in lint(pkt) if f.level == MUST] == []
    key, proto = _tshark_fields(tshark, tmp_path, pkt, "gre.key", "gre.proto")
    assert int(key, 16) == 0x00ABCD5A and int(proto, 16) == 0x6558


def test_ovs_encapsulates_vxlan_our_layer_reads_it(ovs, tshark, tmp_path):
    sent, pkt = _from_vm(ovs, 1002, b"ovs-to-wire-vxlan")
    assert VXLAN in pkt and pkt[UDP].dport == 4789, pkt.summary()
    assert int(pkt[VXLAN].flags) == 0x08 and pkt[VXLAN].vni == 5000
    assert bytes(pkt[VXLAN].payload) == sent
    assert [f for f in lint(pkt) if f.level == MUST] == []
    vni, flag_i = _tshark_fields(tshark, tmp_path, pkt, "vxlan.vni", "vxlan.flag_i")
    assert int(vni) == 5000 and flag_i in ("1", "True")


@pytest.mark.parametrize("dport, text", [(1001, b"ovs-params-nvgre"), (1002, b"ovs-params-vxlan")])
def test_what_ovs_sends_decapsulates_and_params_rebuild_its_bytes(ovs, dport, text):
    """A peer's packets: decapsulate opens them, and info.params() rebuilds OVS's exact
    outer bytes (TTL, IP ID, DF, ports, UDP checksum, FlowID) around the inner frame."""
    from scapy_geneve import decapsulate, encapsulate

    sent, pkt = _from_vm(ovs, dport, text)
    inner, info = decapsulate(pkt)
    assert bytes(inner) == sent
    assert bytes(encapsulate(inner, info.kind, **info.params())) == bytes(pkt[IP])


def test_ovs_decapsulates_our_nvgre(ovs):
    t = ovs.target("nvgre")
    outer = (
        Ether(src=t.src_mac, dst=t.dst_mac)
        / IP(src=t.src_ip, dst=t.dst_ip)
        / NVGRE(vsid=0xABCD, flowid=0x5A)
        / t.inner(b"wire-to-ovs-nvgre")
    )
    assert bytes(outer[NVGRE])[:8] == bytes.fromhex("2000655800abcd5a")
    got = _to_vm(ovs, outer, b"wire-to-ovs-nvgre")
    assert got is not None
    assert got == bytes(t.inner(b"wire-to-ovs-nvgre"))


def test_ovs_decapsulates_our_vxlan(ovs):
    t = ovs.target("vxlan")
    outer = (
        Ether(src=t.src_mac, dst=t.dst_mac)
        / IP(src=t.src_ip, dst=t.dst_ip)
        / UDP(sport=50123, dport=4789)
        / build_vxlan(5000)
        / t.inner(b"wire-to-ovs-vxlan")
    )
    assert bytes(outer[VXLAN])[:8] == bytes.fromhex("0800000000138800")
    got = _to_vm(ovs, outer, b"wire-to-ovs-vxlan")
    assert got == bytes(t.inner(b"wire-to-ovs-vxlan"))


def test_ovs_keys_on_the_whole_gre_key(ovs):
    """An NVGRE FlowID other than the configured one is not delivered: OVS
    matches the 32-bit key, FlowID included (the harness reports it as a
    SHOULD deviation of RFC 7637)."""
    t = ovs.target("nvgre")
    outer = (
        Ether(src=t.src_mac, dst=t.dst_mac)
        / IP(src=t.src_ip, dst=t.dst_ip)
        / NVGRE(vsid=0xABCD, flowid=0x5B)
        / t.inner(b"wire-to-ovs-flowid")
    )
    assert _to_vm(ovs, outer, b"wire-to-ovs-flowid") is None
