"""Reading a capture for scan, stats and filter: batches, and which packets can be read.

:func:`batches` opens a capture and yields its batches, checking each one's
link types (:class:`LinkTypes`): a pcap of a link type the decoder cannot read
is an error at its first packet; a pcapng's interfaces of such a link type are
skipped (counted), and the file is an error only if every packet was skipped.
"""

import os
from typing import Callable, Iterator, Optional, Tuple, Union

from scapy_geneve.capture.decode import SUPPORTED_LINKTYPES
from scapy_geneve.capture.formats import CHUNK_SIZE
from scapy_geneve.capture.pcapio import Batch, CaptureReader, open_capture
from scapy_geneve.capture.scan_batch import header_arrays, numpy
from scapy_geneve.capture.scan_record import linktype_name
from scapy_geneve.errors import CaptureError

__all__ = ["LinkTypes", "batches"]

_SUPPORTED_LIST = sorted(SUPPORTED_LINKTYPES)


class LinkTypes:
    """Which packets of a capture scan can read, checked batch by batch.

    A pcap has one link type: if scan cannot read it, the file is an error at
    its first packet.  A pcapng may mix interfaces (``dumpcap -i eth0 -i
    usbmon0``): the packets of an interface scan cannot read are skipped
    (``ScanRecord.skipped``, counted by the stats) and the others are read; the
    file is an error only if it ends with every packet skipped.
    """

    __slots__ = ("path", "packets", "skipped", "first")

    def __init__(self, path: str) -> None:
        self.path = path
        self.packets = 0
        self.skipped = 0
        self.first: Optional[Tuple[int, int, int]] = None  # (link type, offset, packet)

    def _error(self, linktype: int, offset: int, packet: int, what: str) -> CaptureError:
        return CaptureError(
            "%s link type %s (scan reads Ethernet, Linux cooked SLL/SLL2, "
            "raw IP and loopback)" % (what, linktype_name(linktype)),
            path=self.path,
            offset=offset,
            packet=packet,
        )

    def check(self, batch: Batch) -> None:
        """Raise for a pcap of an unsupported link type; count a pcapng's skips."""
        n = len(batch)
        self.packets += n
        if not n:
            return
        if batch.pcap_linktype >= 0:  # classic pcap: one link type for the file
            if batch.pcap_linktype not in SUPPORTED_LINKTYPES:
                raise self._error(
                    batch.pcap_linktype, batch.base + batch.starts[0], batch.first, "unsupported"
                )
            return
        np = numpy()
        linktype = header_arrays(np, batch)[4]
        bad = ~np.isin(linktype, _SUPPORTED_LIST)
        if bad.any():
            self.skipped += int(bad.sum())
            if self.first is None:
                i = int(np.argmax(bad))
                self.first = (int(linktype[i]), batch.base + batch.starts[i], batch.first + i)

    def finish(self) -> None:
        """At the end of the file: raise if no packet could be read at all."""
        if self.packets and self.skipped == self.packets and self.first is not None:
            raise self._error(*self.first, "no packet scan can read: every interface has an unsupported")


def batches(
    path: Union[str, "os.PathLike[str]"],
    progress: Optional[Callable[[int, int], None]] = None,
    on_open: Optional[Callable[[CaptureReader], None]] = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[Batch]:
    """The batches of the capture at PATH, link types checked.

    ``on_open(reader)`` is called once the file is open (its format and header
    known); ``progress(bytes_read, packets_read)`` after each batch; the reader
    takes ``chunk_size`` bytes at a time.
    """
    with open_capture(path, chunk_size) as reader:
        if on_open is not None:
            on_open(reader)
        links = LinkTypes(str(reader.path))
        for batch in reader.batches():
            links.check(batch)
            yield batch
            del batch  # the reader may reuse the buffer once nobody holds it
            if progress is not None:
                progress(reader.bytes_read, reader.packets_read)
        links.finish()
