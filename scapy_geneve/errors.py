"""Exceptions: one hierarchy, split like h11's Local/Remote errors.

- ``BuildError``: *you* asked for something the wire cannot carry (local).
- ``CaptureError``: a *file or packet we read* is broken (remote); it names the
  file, the byte offset and the packet number.
"""

from typing import Optional


class GeneveError(Exception):
    """Base class of every error raised by scapy_geneve."""


class BuildError(GeneveError, ValueError):
    """A value cannot be encoded: it names the field and the value.

    >>> raise BuildError("Geneve", "vni", 1 << 24, "24 bits")
    Traceback (most recent call last):
    BuildError: Geneve.vni: value 16777216 does not fit in 24 bits
    """

    def __init__(self, layer: str, field: str, value: object, why: str) -> None:
        self.layer = layer
        self.field = field
        self.value = value
        self.why = why
        shown = value if isinstance(value, str) else repr(value)
        if why.endswith("bits") or why.endswith("bytes"):
            msg = "%s.%s: value %s does not fit in %s" % (layer, field, shown, why)
        else:
            msg = "%s.%s: value %s %s" % (layer, field, shown, why)
        super().__init__(msg)


class CaptureError(GeneveError):
    """A capture file (or a packet in it) cannot be read.

    Attributes name where: ``path``, ``offset`` (byte offset in the file) and
    ``packet`` (1-based number of the packet being read, if any).
    """

    def __init__(self, message: str, path: Optional[str] = None,
                 offset: Optional[int] = None,
                 packet: Optional[int] = None) -> None:
        self.message = message
        self.path = path
        self.offset = offset
        self.packet = packet
        where = []
        if path is not None:
            where.append(str(path))
        if offset is not None:
            where.append("offset %d" % offset)
        if packet is not None:
            where.append("packet %d" % packet)
        super().__init__("%s: %s" % (", ".join(where), message) if where else message)
