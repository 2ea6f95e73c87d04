"""Exceptions: one hierarchy, split like h11's Local/Remote errors.

- ``BuildError``: *you* asked for something the wire cannot carry (local).
- ``CaptureError``: a *file or packet we read* is broken (remote); it names the
  file, the byte offset and the packet number.
"""

import re
from typing import Optional

#: A bare width ("24 bits", "8 bytes"): the message says the value does not fit in it.
_WIDTH = re.compile(r"\d+ (?:bits?|bytes?)")


class GeneveError(Exception):
    """Base class of every error raised by scapy_geneve."""


class BuildError(GeneveError, ValueError):
    """A value cannot be encoded: it names the field and the value.

    WHY is either a bare width ("24 bits", "8 bytes"), read as "does not fit
    in", or a predicate that follows the value ("must be positive", "is not
    an IPv4 address"); with no value (None) it follows the field name.

    >>> raise BuildError("Geneve", "vni", 1 << 24, "24 bits")
    Traceback (most recent call last):
    scapy_geneve.errors.BuildError: Geneve.vni: value 16777216 does not fit in 24 bits
    >>> raise BuildError("segment", "mss", 0, "must be a positive number of bytes")
    Traceback (most recent call last):
    scapy_geneve.errors.BuildError: segment.mss: value 0 must be a positive number of bytes
    """

    def __init__(self, layer: str, field: str, value: object, why: str) -> None:
        self.layer = layer
        self.field = field
        self.value = value
        self.why = why
        super().__init__(_build_message(layer, field, value, why))


def _build_message(layer: str, field: str, value: object, why: str) -> str:
    if value is None:
        return "%s.%s %s" % (layer, field, why)
    shown = value if isinstance(value, str) else repr(value)
    if _WIDTH.fullmatch(why.strip()):
        return "%s.%s: value %s does not fit in %s" % (layer, field, shown, why.strip())
    return "%s.%s: value %s %s" % (layer, field, shown, why)


class CaptureError(GeneveError):
    """A capture file (or a packet in it) cannot be read.

    Attributes name where: ``path``, ``offset`` (byte offset in the file) and
    ``packet`` (1-based number of the packet being read, if any).
    """

    def __init__(
        self,
        message: str,
        path: Optional[str] = None,
        offset: Optional[int] = None,
        packet: Optional[int] = None,
    ) -> None:
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
