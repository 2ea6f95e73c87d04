"""Internet checksums (RFC 1071) as pure functions on bytes.

The sums are kept *unfolded-free*: every function returns a 16-bit ones'-
complement sum in ``0..0xFFFF`` so partial sums of separate blocks can be
combined with :func:`csum_add` (RFC 1071 §2 (B) "associative", (C) "parallel
summation": a block that starts at an odd offset contributes its byte-swapped
sum).

Speed: ``int.from_bytes(block, "big") % 0xFFFF`` is the ones'-complement sum
of the block's 16-bit big-endian words, because 2**16 == 1 (mod 0xFFFF).  The
big-integer remainder runs in C and is 3-5x faster than summing an
``array('H')`` in Python (bench/bench_segment.py measures the whole path).
"""

import socket
from typing import Any, List, Union

__all__ = [
    "csum_add",
    "csum_block",
    "csum_fold",
    "pseudo_header_sum",
    "ipv4_header_checksum",
    "l4_checksum",
    "chunk_sums",
    "inet_pton_any",
    "CSUM_MANGLED_0",
    "USE_NUMPY",
]

#: Let :func:`chunk_sums` use numpy for large blocks (False: the pure-Python sums, for
#: bench/bench_segment.py's comparison).  numpy is a dependency, imported on first use.
USE_NUMPY = True
_NUMPY_MIN = 8192  # below this many bytes numpy's call overhead does not pay
_np: Any = None

#: What a computed UDP checksum of 0 is sent as (RFC 768: 0 means "no checksum").
CSUM_MANGLED_0 = 0xFFFF

Bytes = Union[bytes, bytearray, memoryview]


def csum_block(data: Bytes, odd: bool = False) -> int:
    """Ones'-complement sum of ``data`` read as big-endian 16-bit words.

    An odd-length block is padded with a zero byte (RFC 1071).  ``odd=True``
    means the block starts at an odd offset of the checksummed region: its sum
    is then byte-swapped (RFC 1071 §2 (B)).  Returns 0..0xFFFF, with 0 only for
    an all-zero block (ones'-complement "+0"; any other zero sum is "-0" =
    0xFFFF).
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    if odd:
        s = ((s << 8) | (s >> 8)) & 0xFFFF
    return s


def csum_add(*sums: int) -> int:
    """Ones'-complement addition of 16-bit (or wider, unfolded) sums."""
    s = sum(sums)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def csum_fold(s: int) -> int:
    """The checksum field value for a sum: its ones' complement, 16 bits."""
    return ~csum_add(s) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Sum of the IPv4 (RFC 793 §3.1) or IPv6 (RFC 8200 §8.1) pseudo-header.

    ``src``/``dst`` are the 4- or 16-byte packed addresses; ``length`` is the
    upper-layer length, summed as a 32-bit word: IPv6 defines it so (jumbograms),
    and Linux sums an IPv4 BIG TCP datagram's length past 16 bits the same way
    (csum_tcpudp_nofold); below 65536 that is the 16-bit field of RFC 793.
    """
    return csum_add(csum_block(src), csum_block(dst), proto, length >> 16, length & 0xFFFF)


def ipv4_header_checksum(header: Bytes) -> int:
    """RFC 791 header checksum of ``header`` whose checksum field (bytes 10-11) is ignored."""
    h = bytes(header)
    return csum_fold(csum_add(csum_block(h[:10]), csum_block(h[12:])))


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: Bytes, zero_is: int = 0) -> int:
    """Full TCP/UDP checksum of ``segment`` (header with any checksum field
    value *already zeroed* by the caller, plus payload).  ``zero_is`` is what a
    computed 0 becomes: pass :data:`CSUM_MANGLED_0` for UDP."""
    c = csum_fold(csum_add(pseudo_header_sum(src, dst, proto, len(segment)), csum_block(segment)))
    return c if c else zero_is


def inet_pton_any(addr: str) -> bytes:
    """Pack an IPv4 or IPv6 address string."""
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def _numpy() -> Any:
    global _np
    if _np is None:
        import numpy  # a dependency (setup.cfg); imported here to keep `import` cheap

        _np = numpy
    return _np


def chunk_sums(data: Union[bytes, memoryview], size: int, force_int: bool = False) -> List[int]:
    """Word sums of ``data[0:size]``, ``data[size:2*size]``, ..., each reduced
    modulo 0xFFFF (2**16 == 1 mod 0xFFFF, so a residue *is* the ones'-complement
    sum, 0 standing for 0xFFFF).  An odd-length last chunk is zero-padded.

    Each chunk is summed as big-endian 16-bit words from its own first byte.
    With numpy (:data:`USE_NUMPY`, 8 KB and more) and an even ``size``, all chunks are summed in one
    ``np.add.reduceat`` over a ``>u2`` view; otherwise each chunk is one
    ``int.from_bytes(chunk) % 0xFFFF``.  bench/bench_segment.py measures both.
    """
    n = len(data)
    if size <= 0:
        raise ValueError("chunk size must be positive")
    np = None if (force_int or not USE_NUMPY or size & 1 or n < _NUMPY_MIN) else _numpy()
    if not np:
        out = []
        for a in range(0, n, size):
            chunk = data[a : a + size]
            out.append((int.from_bytes(chunk, "big") << (8 * (len(chunk) & 1))) % 0xFFFF)
        return out
    buf = bytes(data) + b"\0" if n & 1 else data
    words = np.frombuffer(buf, dtype=">u2").astype(np.uint64)
    sums = np.add.reduceat(words, np.arange(0, len(words), size // 2))
    return [int(v) for v in (sums % 0xFFFF)]
