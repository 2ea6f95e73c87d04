"""pcap and pcapng writers at the bytes level.

Each packet is one ``write()`` of its whole record, so a stop between two
packets (Ctrl-C, SIGTERM) leaves a valid file; writing to a pipe, FIFO,
socket or terminal flushes after every packet, so a live reader
(``| tcpdump -r -``) sees each packet as it is written.
"""

import os
import stat
import struct
from typing import IO, Any, List, Optional, Tuple

from scapy_geneve.capture.formats import (
    BT_EPB,
    BT_IDB,
    BT_SHB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    LINKTYPE_ETHERNET,
    MAX_SNAPLEN,
    OPT_IF_TSOFFSET,
    OPT_IF_TSRESOL,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
)

__all__ = ["PcapWriter", "PcapngWriter", "is_live"]


def is_live(handle: Any) -> bool:
    """True for a handle on a pipe, FIFO, socket or terminal."""
    try:
        fd = handle.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


class _Writer:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.live = is_live(handle)

    def _put(self, data: bytes) -> None:
        self.handle.write(data)
        if self.live:
            self.handle.flush()


class PcapWriter(_Writer):
    """Write a classic pcap file record by record.

    >>> with open("out.pcap", "wb") as f:          # doctest: +SKIP
    ...     w = PcapWriter(f, LINKTYPE_ETHERNET, nanosecond=True)
    ...     w.write(frame, ts_ns=1_700_000_000_000_000_000)
    """

    def __init__(
        self,
        handle: IO[bytes],
        linktype: int = LINKTYPE_ETHERNET,
        nanosecond: bool = False,
        snaplen: int = MAX_SNAPLEN,
        endian: str = "<",
    ) -> None:
        super().__init__(handle)
        self.endian = endian
        self.nanosecond = nanosecond
        self._rec = struct.Struct(endian + "IIII")
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._put(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, ts_ns: int = 0, wirelen: Optional[int] = None) -> None:
        """Append one packet: its bytes, timestamp (ns) and wire length."""
        sec, nsec = divmod(ts_ns, 1000000000)
        frac = nsec if self.nanosecond else nsec // 1000
        self._put(self._rec.pack(sec, frac, len(data), len(data) if wirelen is None else wirelen) + data)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


class PcapngWriter(_Writer):
    """Write a pcapng file: one section, any number of interfaces, EPB or SPB.

    ``add_interface`` returns the interface ID to pass to ``write``.
    ``tsresol`` is the if_tsresol option byte (6 = microseconds, 9 =
    nanoseconds, 0x80|n = 2^-n seconds).
    """

    def __init__(self, handle: IO[bytes], endian: str = "<") -> None:
        super().__init__(handle)
        self.endian = endian
        self.interfaces: List[Tuple[int, int, int]] = []  # (tsresol byte, snaplen, tsoffset s)
        body = struct.pack(endian + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        self._block(BT_SHB, body)

    def _block(self, btype: int, body: bytes) -> None:
        body = _pad4(body)
        blen = 12 + len(body)
        self._put(struct.pack(self.endian + "II", btype, blen) + body + struct.pack(self.endian + "I", blen))

    def add_interface(
        self,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = MAX_SNAPLEN,
        tsresol: int = 6,
        tsoffset: int = 0,
    ) -> int:
        """Write an Interface Description Block; returns its interface ID."""
        opts = b""
        if tsresol != 6:
            opts += struct.pack(self.endian + "HH", OPT_IF_TSRESOL, 1) + _pad4(bytes([tsresol]))
        if tsoffset:
            opts += struct.pack(self.endian + "HHq", OPT_IF_TSOFFSET, 8, tsoffset)
        if opts:
            opts += struct.pack(self.endian + "HH", 0, 0)
        self._block(BT_IDB, struct.pack(self.endian + "HHI", linktype, 0, snaplen) + opts)
        self.interfaces.append((tsresol, snaplen, tsoffset))
        return len(self.interfaces) - 1

    def _units(self, interface: int, ts_ns: int) -> int:
        res, _snaplen, tsoffset = self.interfaces[interface]
        ts_ns -= tsoffset * 1000000000
        if res & 0x80:
            return (ts_ns << (res & 0x7F)) // 1000000000
        if res <= 9:
            return ts_ns // 10 ** (9 - res)
        return ts_ns * 10 ** (res - 9)

    def write(self, data: bytes, ts_ns: int = 0, interface: int = 0, wirelen: Optional[int] = None) -> None:
        """Append an Enhanced Packet Block."""
        units = self._units(interface, ts_ns)
        body = (
            struct.pack(
                self.endian + "IIIII",
                interface,
                units >> 32,
                units & 0xFFFFFFFF,
                len(data),
                len(data) if wirelen is None else wirelen,
            )
            + data
        )
        self._block(BT_EPB, body)

    def write_simple(self, data: bytes, wirelen: Optional[int] = None) -> None:
        """Append a Simple Packet Block (interface 0, no timestamp)."""
        self._block(BT_SPB, struct.pack(self.endian + "I", len(data) if wirelen is None else wirelen) + data)

    def write_block(self, btype: int, body: bytes) -> None:
        """Append any other block (e.g. a Name Resolution Block), padded to 4 bytes."""
        self._block(btype, body)
