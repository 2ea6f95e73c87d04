#!/usr/bin/env python3
"""Run the conformance vectors against an endpoint written in Python.

No root needed: the "endpoint" is a few lines that decapsulate Geneve with
this package's layer and apply RFC 8926's receive rules.  Replace it with
``InterfaceEndpoint`` (your device through two interfaces), ``OVSEndpoint``
or ``KernelVXLANEndpoint`` to test real ones (those need root).
"""

from scapy.layers.inet import IP, UDP, in4_chksum
from scapy.layers.l2 import Ether

from scapy_geneve import Geneve, Target, run_vectors, vectors
from scapy_geneve.conformance.endpoints import Endpoint
from scapy_geneve.conformance.vectors import KNOWN_OPTION


class Inbox:
    """Where decapsulated frames land (stands in for an AF_PACKET socket)."""

    def __init__(self) -> None:
        self.frames: list = []

    def drain(self) -> None:
        self.frames.clear()

    def wait_for(self, tag: bytes, timeout: float):
        return next((f for f in self.frames if tag in f), None)

    def close(self) -> None:
        pass


class PythonGeneveEndpoint(Endpoint):
    """VNI 5000; understands one option (KNOWN_OPTION); IPv4 only."""

    name = "python-reference"
    protocols = {"geneve"}

    def __init__(self) -> None:
        self.inbox = Inbox()

    def target(self, protocol: str) -> Target:
        return Target()

    def observer(self) -> Inbox:
        return self.inbox

    def send(self, frame: bytes) -> None:
        pkt = Ether(frame)
        if UDP not in pkt or pkt[UDP].dport != 6081 or Geneve not in pkt:
            return
        g = pkt[Geneve]
        if g.version != 0 or g.vni != 5000 or g.oam:  # §3.4
            return
        if pkt[UDP].chksum and in4_chksum(17, pkt[IP], bytes(pkt[UDP])) != 0:
            return  # §4.3: verified and wrong -> drop
        words = sum(1 + (o.length or 0) for o in g.options)  # §3.5: Σ options == Opt Len
        if words != g.optionlen:
            return
        for o in g.options:  # §3.5: unknown critical -> drop
            if o.critical and (o.classid, o.type) != KNOWN_OPTION[:2]:
                return
        inner = g.payload
        if pkt[IP].tos & 3 == 3 and IP in inner:  # §4.4.2 -> RFC 6040 §4.2: outer CE
            if inner[IP].tos & 3 == 0:
                return  # over Not-ECT: drop
            inner[IP].tos |= 3  # over ECT: mark the inner packet CE
            del inner[IP].chksum
        self.inbox.frames.append(bytes(inner))


table = run_vectors(PythonGeneveEndpoint(), vectors(["geneve"]))
print(table.to_text())
