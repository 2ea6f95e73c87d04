"""Streaming pcap and pcapng reading and writing at the bytes level.

No Scapy here: this package walks capture files record by record (or block by
block) and hands out the original bytes.  It is the I/O half of the fast path
(:mod:`scapy_geneve.capture.scan` is the parsing half) and is fast because it
reads a large chunk at once and walks the record headers inside it.

Formats (the walks live in :mod:`.pcap` and :mod:`.pcapng`; the bytes come
from :mod:`.source`; the writers are in :mod:`.writers`):

- pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html):
  both byte orders, micro- and nanosecond timestamps (magic ``a1b2c3d4`` /
  ``a1b23c4d``).
- pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html):
  several sections (each with its own byte order), several interfaces with
  their own link type and ``if_tsresol``/``if_tsoffset``, Enhanced, Simple and
  obsolete Packet Blocks, any other block skipped (and kept for copying).
- either one gzip-compressed (``capture.pcap.gz``), read as it streams
  (every byte before a cut or corrupt spot is read; error offsets then count
  decompressed bytes, as ``zcat capture.pcap.gz | ...`` would);
  ``-`` reads standard input (nothing ever seeks).

Input that is not a regular file (a pipe, FIFO, terminal) is read live: each
record is handed out as soon as it is complete.  A length claimed by the file
is never allocated before its bytes exist.  Under
:func:`scapy_geneve.capture.interrupt.graceful_signals`, SIGINT/SIGTERM/SIGHUP
stop the reading between records (:class:`~.interrupt.Interrupted`).

Every problem raises :class:`scapy_geneve.errors.CaptureError` naming the
file, the byte offset and the packet number; the records before it have
already been yielded.
"""

import os
from typing import Iterator, Optional, Union

from scapy_geneve.capture.formats import (
    BT_EPB,
    BT_IDB,
    BT_ISB,
    BT_PB,
    BT_SHB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    CHUNK_SIZE,
    GZIP_MAGIC,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NAMES,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    MAX_BLOCK_LEN,
    MAX_SNAPLEN,
    NO_TIMESTAMP,
    OPT_IF_TSOFFSET,
    OPT_IF_TSRESOL,
    PCAP_HDR_LEN,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAP_REC_HDR_LEN,
)
from scapy_geneve.capture.interrupt import checkpoint, deferring
from scapy_geneve.capture.pcap import PcapWalker, parse_header, sniff_endian
from scapy_geneve.capture.pcapng import PcapngWalker
from scapy_geneve.capture.recordbatch import Batch, Record
from scapy_geneve.capture.source import ByteSource
from scapy_geneve.capture.writers import PcapngWriter, PcapWriter

__all__ = [
    "Record",
    "Batch",
    "CaptureReader",
    "open_capture",
    "iter_records",
    "PcapWriter",
    "PcapngWriter",
    "NO_TIMESTAMP",
    "LINKTYPE_NULL",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "LINKTYPE_LOOP",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NAMES",
]

# Kept importable from here (tests and older code use them).
_FORMAT_NAMES = (
    BT_EPB,
    BT_IDB,
    BT_ISB,
    BT_PB,
    BT_SHB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    GZIP_MAGIC,
    MAX_BLOCK_LEN,
    MAX_SNAPLEN,
    OPT_IF_TSOFFSET,
    OPT_IF_TSRESOL,
    PCAP_HDR_LEN,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAP_REC_HDR_LEN,
)

Walker = Union[PcapWalker, PcapngWalker]


class CaptureReader:
    """A pcap or pcapng file opened for streaming.

    Use :meth:`batches` for the fast path (one read per batch, the original
    record bytes available for copying) or :meth:`records` for one
    :class:`Record` per packet.  ``header`` holds the pcap global header (for
    pcapng, blocks that are not packets are listed in each batch's ``blocks``).
    ``live`` is True when the input is not a regular file (records are handed
    out as they arrive).
    """

    def __init__(
        self, path: Union[str, "os.PathLike[str]"], chunk_size: int = CHUNK_SIZE, vectorised: bool = True
    ) -> None:
        self.chunk_size = chunk_size
        # pcapng: walk runs of Enhanced Packet Blocks in a tight loop and read
        # their fields with numpy (same results as the plain walk; tests compare).
        self.vectorised = vectorised
        self.format = ""
        self.endian = "<"
        self.header = b""
        self.nanosecond = False
        self.version = (0, 0)
        self._source = ByteSource(path, chunk_size)
        self.path = self._source.path
        try:
            self._walker = self._sniff(self._source.head)
        except BaseException:
            self._source.close()
            raise

    def _sniff(self, head: bytes) -> Walker:
        """The walker for HEAD's format (pcap by its magic, pcapng by its SHB)."""
        if len(head) < 4:
            raise self._source.error(
                "not a capture file: %d bytes, too short for a magic number" % len(head), 0
            )
        endian = sniff_endian(head)
        if endian is not None:
            hdr = parse_header(head, endian, self._source)
            self.format, self.endian, self.header = "pcap", endian, head
            self.nanosecond, self.version = hdr.nanosecond, hdr.version
            return PcapWalker(self._source, hdr, reader=self)
        if int.from_bytes(head[:4], "little") == BT_SHB:
            self.format = "pcapng"
            return PcapngWalker(self._source, self.vectorised, reader=self)
        raise self._source.error(
            "not a pcap or pcapng file: magic 0x%08x" % int.from_bytes(head[:4], "big"), 0
        )

    # -- what was read ---------------------------------------------------------------
    @property
    def linktype(self) -> int:
        """pcap: the file's link type; pcapng: the first interface's (-1 before it)."""
        if isinstance(self._walker, PcapWalker):
            return self._walker.header.linktype
        return self._walker.linktype

    @property
    def snaplen(self) -> int:
        if isinstance(self._walker, PcapWalker):
            return self._walker.header.snaplen
        return self._walker.snaplen

    @property
    def packets_read(self) -> int:
        """Packets handed out so far."""
        return self._walker.packets_read

    @property
    def bytes_read(self) -> int:
        """Input bytes consumed so far (compressed bytes for gzip), for progress."""
        return self._walker.bytes_read

    @property
    def file_size(self) -> int:
        """The input's size (0 when unknown: a pipe)."""
        return self._source.file_size

    @property
    def compressed(self) -> bool:
        """A gzip-compressed capture."""
        return self._source.compressed

    @property
    def live(self) -> bool:
        """The input is a pipe, FIFO, terminal or socket, read as it arrives."""
        return self._source.live

    # -- opening and closing ---------------------------------------------------------
    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- iteration -----------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Yield :class:`Batch` objects, in file order, until the end of the file.

        A first SIGINT/SIGTERM/SIGHUP that comes while the caller processes a
        batch is acted on when the reader is about to read again (see
        :mod:`scapy_geneve.capture.interrupt`): every batch handed out is whole.
        """
        with deferring():
            yield from self._walker.batches()

    def records(self) -> Iterator[Record]:
        """Yield one :class:`Record` per packet, in file order."""
        for batch in self.batches():
            for record in batch.records():
                checkpoint()
                yield record


def open_capture(path: Union[str, "os.PathLike[str]"], chunk_size: int = CHUNK_SIZE) -> CaptureReader:
    """Open a pcap or pcapng file (sniffed from its magic number) for streaming.

    Raises :class:`CaptureError` for a file that is neither.
    """
    return CaptureReader(path, chunk_size)


def iter_records(path: Union[str, "os.PathLike[str]"]) -> Iterator[Record]:
    """Every packet of a pcap/pcapng file as a :class:`Record`, in file order."""
    with open_capture(path) as reader:
        yield from reader.records()


def first_linktype(reader: CaptureReader) -> Optional[int]:
    """The reader's link type, or None before a pcapng interface was seen."""
    return reader.linktype if reader.linktype >= 0 else None
