"""Numbers of the pcap and pcapng formats (no code): link types, magic numbers,
block types, the limits a sane file stays within, and the read sizes.

- pcap: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html
- pcapng: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html
- link types: https://www.tcpdump.org/linktypes.html
"""

# -- link types -------------------------------------------------------------------
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family, host byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6 (version nibble)
LINKTYPE_LOOP = 108  # OpenBSD loopback: 4-byte address family, big endian
LINKTYPE_LINUX_SLL = 113  # Linux cooked v1, 16-byte header
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276  # Linux cooked v2, 20-byte header

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

# -- pcap -------------------------------------------------------------------------
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_HDR_LEN = 24
PCAP_REC_HDR_LEN = 16
# libpcap's MAXIMUM_SNAPLEN: a larger record length means a corrupt file.
MAX_SNAPLEN = 262144
# A file header may claim a larger snaplen (up to this); records that long are
# read in bounded steps, never allocated before their bytes exist.
MAX_CLAIMED_SNAPLEN = 1 << 28

# -- pcapng -----------------------------------------------------------------------
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
# Wireshark's MAX_BLOCK_SIZE: a longer block is a corrupt file.
MAX_BLOCK_LEN = 16 * 1024 * 1024 + 4096
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

GZIP_MAGIC = b"\x1f\x8b"

# -- reading --------------------------------------------------------------------
CHUNK_SIZE = 4 * 1024 * 1024  # regular files: measured best on 2 cores
PIPE_SIZE = 1 << 20  # a pipe we read is enlarged to this (fewer, larger reads)

NO_TIMESTAMP = -(1 << 63)  # ts_ns marker for "no timestamp" (Simple Packet Block)
TS_MIN, TS_MAX = -(1 << 63), 1 << 63
