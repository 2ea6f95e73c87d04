"""The one binding helper the layers share: a dissection candidate tried first.

Scapy tries a layer's dissection candidates (``payload_guess``) in order and
:func:`scapy.packet.bind_bottom_up` appends.  NVGRE must be tried before
Scapy's generic GRE on IP protocol 47, and L2TPv3-over-UDP before Scapy's
L2TP on UDP 1701; each hands every packet that is not its own back to
Scapy's class from its ``dispatch_hook``, so nothing in Scapy's classes is
replaced and Scapy's own dissection of everything else is unchanged.
"""

from typing import Any, Type

from scapy.packet import Packet, bind_bottom_up

from scapy_geneve.compat import move_binding_first

__all__ = ["bind_bottom_up_first"]


def bind_bottom_up_first(lower: Type[Packet], upper: Type[Packet], **fval: Any) -> None:
    """``bind_bottom_up(lower, upper, **fval)``, with the new candidate tried first.

    The binding is made by Scapy's public call (a fresh list, never an edit
    of the old one), then moved to the front by the compat module (the one
    place that touches Scapy's binding table); binding twice keeps one entry.
    """
    bind_bottom_up(lower, upper, **fval)
    move_binding_first(lower, upper, **fval)
