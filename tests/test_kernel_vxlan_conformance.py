"""The VXLAN vectors through the Linux kernel's vxlan device (namespaces made here).

The harness watches vx0; the kernel's own counters are the second witness:
a delivered vector is one more ``rx_packets`` on vx0; the reserved-bit
vectors the kernel refuses show up as ``rx_frame_errors`` (vxlan_rcv drops a
header with bits it does not parse, a documented divergence from RFC 7348);
the wrong checksum as ``Udp.InCsumErrors``.
"""

import os

import pytest

from scapy_geneve.conformance.endpoints import KernelVXLANEndpoint
from scapy_geneve.conformance.harness import DELIVERED, DEVIATION, FAIL, PASS, run_vectors
from scapy_geneve.conformance.vectors import vectors

pytestmark = [pytest.mark.netns]


@pytest.fixture(scope="module")
def kernel_run(netns_capable):
    with KernelVXLANEndpoint() as ep:
        return run_vectors(ep)


def test_only_vxlan_vectors_and_controls_pass(kernel_run):
    assert [r.name for r in kernel_run] == [v.name for v in vectors(["vxlan"])]
    for r in kernel_run:
        if r.vector.level == "CONTROL":
            assert r.verdict == PASS, r


def test_delivered_exactly_when_the_device_counts_a_packet(kernel_run):
    """vx0 for the IPv4 underlay, vx6 for IPv6: one more rx_packets per delivered vector."""
    for r in kernel_run:
        dev = "vx6" if r.vector.family == 6 else "vx0"
        rx = r.counters.get(dev + ".rx_packets", 0)
        assert rx == (1 if r.observed == DELIVERED else 0), (r.name, r.counters)
        other = "vx0" if dev == "vx6" else "vx6"
        assert other + ".rx_packets" not in r.counters, (r.name, r.counters)


def test_drops_have_the_kernels_reason(kernel_run):
    by = kernel_run.by_name()
    for name in ("vxlan-reserved-flags-set", "vxlan-reserved24-set", "vxlan-reserved8-set"):
        assert by[name].counters.get("vx0.rx_frame_errors") == 1, by[name].counters
    assert by["vxlan-udp-checksum-wrong"].counters.get("Udp.InCsumErrors") == 1
    # RFC 6040 §4.2: outer CE over a Not-ECT inner packet is dropped as a frame error
    assert by["vxlan-ecn-ce-over-not-ect"].counters.get("vx0.rx_frame_errors") == 1, by[
        "vxlan-ecn-ce-over-not-ect"
    ].counters
    # IPv6 zero checksum: the UDP6 socket refuses it by default (no udp6zerocsumrx)
    assert by["vxlan-ipv6-udp-checksum-zero"].counters.get("Udp6.InErrors") == 1, by[
        "vxlan-ipv6-udp-checksum-zero"
    ].counters
    # unknown VNI and I flag clear: the socket took the datagram, no device matched
    for name in ("vxlan-unknown-vni", "vxlan-i-flag-clear"):
        assert by[name].counters.get("Udp.InDatagrams") == 1
        assert "vx0.rx_packets" not in by[name].counters


def test_inner_frames_arrive_unmodified(kernel_run):
    for r in kernel_run:
        if r.observed == DELIVERED:
            assert r.intact, r.name


# What this kernel's vxlan does, per vector (the README's table).
LINUX = {
    "vxlan-baseline": PASS,
    "vxlan-udp-checksum-zero": PASS,
    "vxlan-udp-checksum-wrong": PASS,
    "vxlan-reserved-flags-set": FAIL,
    "vxlan-reserved24-set": FAIL,
    "vxlan-reserved8-set": FAIL,
    "vxlan-i-flag-clear": PASS,
    "vxlan-inner-vlan": DEVIATION,
    "vxlan-unknown-vni": PASS,
    "vxlan-ecn-ce-over-ect0": PASS,
    "vxlan-ecn-ce-over-not-ect": PASS,  # INET_ECN_decapsulate
    "vxlan-ipv6-baseline": PASS,
    "vxlan-ipv6-reserved-flags-set": FAIL,
    "vxlan-ipv6-udp-checksum-zero": PASS,
}


def test_linux_vxlan_verdicts(kernel_run):
    assert {r.name: r.verdict for r in kernel_run} == LINUX, os.uname().release
