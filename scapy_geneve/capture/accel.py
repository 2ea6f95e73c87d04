"""The record walks of the capture readers: compiled when built, else in Python.

A record walk (read a length, jump to where the record ends, again) is a chain
no array operation takes in one step, and in Python it costs about what
reading the file costs.  ``_walk.c`` is the same two walks compiled; setup.py
builds it at install when a C compiler is there (an optional extension) and
installs without it, with the same results, when not.

Both walks are here side by side: :func:`pcap_walk` and :func:`epb_run` are the
compiled ones when built, and :func:`py_pcap_walk` / :func:`py_epb_run` (their
reference) otherwise.  ``SCAPY_GENEVE_PURE_PYTHON=1`` in the environment makes
the readers use the Python walks even where the compiled ones are built.
:data:`COMPILED` says which are in use.  tests/test_accel.py proves each pair
equal (CONTRIBUTING lists them).

Each walk appends the start offsets it finds to ``starts`` (an ``array('q')``)
and returns the offset where it stopped.  The compiled pcap walk also hands
back each record's timestamp and original length (:data:`PcapHeads`), read
while the header is at hand; the Python one leaves them to numpy's gathers
(``scan_batch.header_arrays``), which is faster than reading them in a loop.
"""

import importlib
import os
import struct
from array import array
from types import ModuleType
from typing import Optional, Tuple

from scapy_geneve.capture.formats import BT_EPB, PCAP_REC_HDR_LEN

__all__ = ["COMPILED", "PcapHeads", "compiled_module", "pcap_walk", "epb_run", "py_pcap_walk", "py_epb_run"]

#: (ts_ns, wirelen) of each record found, native int64 bytes, or None (not read).
PcapHeads = Optional[Tuple[bytes, bytes]]

_PCAP_LEN = {False: struct.Struct("<I").unpack_from, True: struct.Struct(">I").unpack_from}
_BLOCK_HEAD = {False: struct.Struct("<II").unpack_from, True: struct.Struct(">II").unpack_from}


def py_pcap_walk(buf: bytes, big_endian: bool, ts_mult: int, starts: "array[int]") -> Tuple[int, PcapHeads]:
    """Append the start offsets of BUF's complete pcap records to STARTS; (where the
    walk stopped, None: the timestamps and lengths are left to numpy).

    One unpack and one append per record.  The last record may run past the
    buffer (it is dropped: the next read completes it); a length may be absurd
    (the caller checks the widest record after the walk).
    """
    incl_at = _PCAP_LEN[big_endian]
    append = starts.append
    pos, n = 0, len(buf)
    last = n - PCAP_REC_HDR_LEN
    while pos <= last:
        append(pos)
        pos += PCAP_REC_HDR_LEN + incl_at(buf, pos + 8)[0]
    if pos > n:
        pos = starts.pop()
    return pos, None


def py_epb_run(buf: bytes, pos: int, big_endian: bool, max_block_len: int, starts: "array[int]") -> int:
    """Walk a run of complete Enhanced Packet Blocks from POS, appending their starts.

    Stops at the first block that is not a plausible EPB (type, length under 32,
    over MAX_BLOCK_LEN, not a multiple of 4) or not complete in BUF.
    """
    head = _BLOCK_HEAD[big_endian]
    append = starts.append
    n = len(buf)
    while pos + 12 <= n:
        btype, blen = head(buf, pos)
        if btype != BT_EPB or blen < 32 or blen > max_block_len or blen & 3 or pos + blen > n:
            return pos
        append(pos)
        pos += blen
    return pos


def compiled_module(name: str = "_walk") -> Optional[ModuleType]:
    """The compiled module NAME of this package (``_walk``: the walks; ``_batch``:
    scan_batch's stages), or None (not built, or SCAPY_GENEVE_PURE_PYTHON set)."""
    if os.environ.get("SCAPY_GENEVE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("scapy_geneve.capture." + name)
    except ImportError:
        return None


_compiled = compiled_module()
COMPILED = _compiled is not None


def _c_pcap_walk(buf: bytes, big_endian: bool, ts_mult: int, starts: "array[int]") -> Tuple[int, PcapHeads]:
    raw, ts_ns, wirelen, pos = _compiled.pcap_walk(buf, big_endian, ts_mult)  # type: ignore[union-attr]
    starts.frombytes(raw)
    return int(pos), (ts_ns, wirelen)


def _c_epb_run(buf: bytes, pos: int, big_endian: bool, max_block_len: int, starts: "array[int]") -> int:
    raw, stop = _compiled.epb_run(buf, pos, big_endian, max_block_len)  # type: ignore[union-attr]
    starts.frombytes(raw)
    return int(stop)


pcap_walk = _c_pcap_walk if COMPILED else py_pcap_walk
epb_run = _c_epb_run if COMPILED else py_epb_run
