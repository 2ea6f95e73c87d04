"""Wire constants shared by every layer: ports, EtherTypes, limits, IANA registries.

Pure data: this module imports only :mod:`scapy_geneve.registry` (pure data too).
"""

from typing import Dict, List, Tuple

# -- UDP / TCP ports and IP protocol numbers: written once, in the registry --------
from scapy_geneve.registry import (  # noqa: E402,F401  (re-exported)
    GENEVE_PORT,
    IPPROTO_GRE,
    IPPROTO_L2TP,
    L2TP_PORT,
    STT_PORT,
    VXLAN_ACI_PORT,
    VXLAN_GPE_PORT,
    VXLAN_LINUX_PORT,
    VXLAN_PORT,
)

# -- EtherTypes ---------------------------------------------------------------
ETH_P_TEB = 0x6558  # Transparent Ethernet Bridging
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

# -- RFC 8926 limits ------------------------------------------------------------
GENEVE_HDR_LEN = 8
GENEVE_OPT_HDR_LEN = 4
GENEVE_MAX_OPT_DATA = 124  # 5-bit Length field, 4-byte words: 31 * 4
GENEVE_MAX_OPTIONS = 252  # 6-bit Opt Len field, 4-byte words: 63 * 4
GENEVE_CRITICAL = 0x80  # high-order bit of the option Type

# -- IANA "Geneve Option Class" registry ----------------------------------------
# Source: IANA nvo3.xml "Geneve Option Class" (registry as of 2026-02-20).
# Ranges: 0x0000-0x00FF IETF Review, 0x0100-0xFEFF First Come First Served,
# 0xFF00-0xFFFF Experimental Use.  Older tools label only 0xFFF0-0xFFFF or
# 0xFFFF as experimental; IANA's range is the one used here.
OPTION_CLASS_REGISTRY_DATE = "2026-02-20"

OPTION_CLASS_RANGES: List[Tuple[int, int, str]] = [
    (0x0100, 0x0100, "Linux"),
    (0x0101, 0x0101, "Open vSwitch (OVS)"),
    (0x0102, 0x0102, "Open Virtual Networking (OVN)"),
    (0x0103, 0x0103, "In-band Network Telemetry (INT)"),
    (0x0104, 0x0104, "VMware, Inc."),
    (0x0105, 0x0105, "Amazon.com, Inc."),
    (0x0106, 0x0106, "Cisco Systems, Inc."),
    (0x0107, 0x0107, "Oracle Corporation"),
    (0x0108, 0x0110, "Amazon.com, Inc."),
    (0x0111, 0x0118, "IBM"),
    (0x0119, 0x0128, "Ericsson"),
    (0x0129, 0x0129, "Oxide Computer Company"),
    (0x0130, 0x0131, "Cisco Systems, Inc."),
    (0x0132, 0x0135, "Google LLC"),
    (0x0136, 0x0136, "InfoQuick Global Connection Tech Ltd."),
    (0x0137, 0x0140, "Alibaba, Inc."),
    (0x0141, 0x0144, "Palo Alto Networks"),
    (0x0145, 0x0149, "Huawei Technologies Co., Ltd."),
    (0x014A, 0x014A, "EMnify GmbH"),
    (0x014B, 0x014B, "Cilium"),
    (0x014C, 0x014C, "Corelight, Inc."),
    (0x014D, 0x014D, "1NCE GmbH"),
    (0x014E, 0x0157, "Cloud of China Telecom (CTYUN)"),
    (0x0158, 0x0161, "Volcengine, Inc."),
    (0x0162, 0x0162, "nat64.net"),
    (0x0163, 0x0163, "Multi Segment SD-WAN"),
    (0x0164, 0x0164, "cPacket Networks"),
    (0x0165, 0x0167, "Tencent"),
    (0x0168, 0x0168, "ExtraHop Networks, Inc."),
    (0x0169, 0x0169, "Soosan INT Co., Ltd."),
    (0x016A, 0x016C, "Spacelink, Inc."),
    (0x016D, 0x016D, "617A Corporation"),
    (0x016E, 0x016E, "Zscaler"),
    (0x016F, 0x0170, "7Generation"),
    (0xFF00, 0xFFFF, "Experimental Use"),
]

# Extra names users register at run time: {class: name}.  See name_option_class.
OPTION_CLASS_USER: Dict[int, str] = {}


def option_class_name(classid: int) -> str:
    """The registry name of a Geneve option class, e.g. ``Amazon.com, Inc.``.

    Unassigned values read ``Unassigned (IETF Review)`` or ``Unassigned``.
    """
    if classid in OPTION_CLASS_USER:
        return OPTION_CLASS_USER[classid]
    if classid in OPTION_CLASSES:
        return OPTION_CLASSES[classid]
    if classid <= 0x00FF:
        return "Unassigned (IETF Review)"
    return "Unassigned"


def name_option_class(classid: int, name: str) -> None:
    """Give a class (e.g. a private experimental one) a display name."""
    if not 0 <= classid <= 0xFFFF:
        raise ValueError("option class 0x%x is not a 16-bit value" % classid)
    OPTION_CLASS_USER[classid] = name


# {class: owner} for every assigned class and the experimental range.
OPTION_CLASSES: Dict[int, str] = {
    cls: owner for low, high, owner in OPTION_CLASS_RANGES for cls in range(low, high + 1)
}
