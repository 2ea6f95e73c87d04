# SPDX-License-Identifier: GPL-2.0-or-later
# This file is part of scapy-geneve.
"""Every use of Scapy's internals, in one place, gated by Scapy version.

The rest of the package uses Scapy's public API (fields, ``bind_*``,
``Packet`` hooks).  What it cannot do through that API -- the dissection
cache of a fast ``do_dissect``, reading a layer's bottom-up bindings,
copying dissected packets without ``__init__``, wrapping a method of a
Scapy class -- goes through the functions here, so a Scapy release that
changes an internal breaks one module, and its tests (tests/test_compat.py)
say which.

Supported Scapy: 2.5.0 to 2.8.0, each tested (see :data:`SCAPY_FLOOR`); an
older Scapy is refused on import (2.4.5 leaves a dissected packet's bytes
stale after an edit of one of its Geneve options).  To test one version::

    python -m venv /tmp/sg25
    /tmp/sg25/bin/pip install scapy==2.5.0 numpy hypothesis pytest
    /tmp/sg25/bin/pip install --no-deps -e .
    /tmp/sg25/bin/python -m pytest -p no:cacheprovider $(grep -v '^#' tests/floor.txt)

(tests/floor.txt lists the files that pass on every supported Scapy; CI runs them
on the floor.)

What differs between them and is handled here:

- 2.6.0 added ``Packet._raw_packet_cache_field_value`` (the snapshot a
  dissection takes of mutable fields, to notice later edits); 2.5 stores
  ``fld.do_copy(value)`` and compares values directly.
- Scapy 2.5's ``Packet.do_dissect`` stops at the end of the bytes, leaving
  the remaining fields unset (their defaults); 2.6 reads on to the end of
  the layer (fields that may be empty get their empty value):
  :data:`DISSECT_STOPS_AT_END` lets a fast ``do_dissect`` do the same.
- ``X3BytesField`` is ``fmt="!I", sz=4`` up to 2.7 and ``sz=3`` in 2.8, so a
  field's width cannot be read from its struct format: :func:`field_bits`
  names the width of each Scapy integer field class explicitly.
"""

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import scapy
from scapy import fields as _f
from scapy.packet import Packet

__all__ = [
    "SCAPY_VERSION",
    "SCAPY_FLOOR",
    "DISSECT_STOPS_AT_END",
    "field_bits",
    "field_values",
    "cache_field_value",
    "has_dissection_cache",
    "dissection_cache",
    "dissection_snapshots",
    "set_dissection_cache",
    "bottom_up_bindings",
    "payload_layer_for",
    "is_bound",
    "move_binding_first",
    "hook_method",
    "unhook_method",
    "hooked",
    "fast_copy",
    "CopyMemo",
    "layer_note",
    "set_layer_note",
]


def _parse_version(text: str) -> Tuple[int, int, int]:
    """(major, minor, micro) of a Scapy version string ("2.6.1", "2.7.0rc1", "2.6.1.dev23")."""
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


#: The running Scapy's version, as a comparable tuple.
SCAPY_VERSION = _parse_version(getattr(scapy, "__version__", "0"))
#: The oldest Scapy the test suite passes on (tests/test_compat.py, README).
SCAPY_FLOOR = (2, 5, 0)

if SCAPY_VERSION < SCAPY_FLOOR:
    raise ImportError(
        "scapy-geneve needs Scapy >= %d.%d.%d; this is Scapy %s (pip install -U scapy)"
        % (SCAPY_FLOOR + (scapy.__version__,))
    )

_HAS_CACHE_FIELD_VALUE = SCAPY_VERSION >= (2, 6, 0)
#: Whether ``Packet.do_dissect`` leaves the fields after the last byte unset (Scapy < 2.6).
DISSECT_STOPS_AT_END = SCAPY_VERSION < (2, 6, 0)


# -- field widths ------------------------------------------------------------------------

#: Width in bits of Scapy's unsigned integer field classes, written out rather than
#: read from ``fmt``/``sz`` (which differ between Scapy versions for X3BytesField).
_WIDTHS: Dict[type, int] = {
    _f.ByteField: 8,
    _f.XByteField: 8,
    _f.ByteEnumField: 8,
    _f.XByteEnumField: 8,
    _f.ShortField: 16,
    _f.XShortField: 16,
    _f.ShortEnumField: 16,
    _f.XShortEnumField: 16,
    _f.LEShortField: 16,
    _f.ThreeBytesField: 24,
    _f.X3BytesField: 24,
    _f.IntField: 32,
    _f.XIntField: 32,
    _f.IntEnumField: 32,
    _f.LEIntField: 32,
    _f.LongField: 64,
    _f.XLongField: 64,
}


def field_bits(fld: Any) -> Optional[int]:
    """The width in bits of an unsigned integer field, None for any other field.

    Bit fields carry their width (``size``); byte-aligned ones are looked up by
    their most derived known class, so ``X3BytesField`` is 24 bits on every
    Scapy version.
    """
    if isinstance(fld, _f.BitField):
        return int(fld.size)
    for cls in type(fld).__mro__:
        width = _WIDTHS.get(cls)
        if width is not None:
            return width
    return None


def field_values(pkt: Packet, names: Sequence[str]) -> List[Any]:
    """The values Scapy would build NAMES from: set, else overloaded by a lower
    layer, else the class default (``Packet.getfieldval`` without the payload walk)."""
    merged = {**pkt.default_fields, **pkt.overloaded_fields, **pkt.fields}
    return [merged[n] for n in names]


# -- the dissection cache ----------------------------------------------------------------


def cache_field_value(pkt: Packet, fld: Any, value: Any) -> Any:
    """The snapshot a dissection keeps of a mutable field's value, so that
    ``bytes(pkt)`` notices an edit and rebuilds instead of reusing the cache."""
    if _HAS_CACHE_FIELD_VALUE:
        return pkt._raw_packet_cache_field_value(fld, value, copy=True)
    return fld.do_copy(value)  # Scapy 2.5 compares the values themselves


def has_dissection_cache(pkt: Packet) -> bool:
    """Whether PKT still holds the bytes it was dissected from (it builds to them
    unless a field changed)."""
    return pkt.raw_packet_cache is not None


def dissection_cache(pkt: Packet) -> Optional[bytes]:
    """The bytes of PKT's own header it was dissected from (not its payload's),
    or None once it was built or a field changed."""
    cache: Optional[bytes] = pkt.raw_packet_cache
    return cache


def dissection_snapshots(pkt: Packet) -> Optional[Dict[str, Any]]:
    """The dissection's snapshots of PKT's mutable fields (see
    :func:`cache_field_value`), None when PKT holds no dissection cache."""
    snapshots: Optional[Dict[str, Any]] = pkt.raw_packet_cache_fields
    return snapshots


def set_dissection_cache(pkt: Packet, raw: bytes, snapshots: Dict[str, Any]) -> None:
    """Mark PKT as dissected from RAW, as ``Packet.do_dissect`` does: later
    builds return RAW unless a field in SNAPSHOTS (see :func:`cache_field_value`)
    or a plain field changes."""
    pkt.raw_packet_cache_fields = snapshots
    pkt.raw_packet_cache = raw
    pkt.explicit = 1


# -- bindings ------------------------------------------------------------------------------


def bottom_up_bindings(lower: Type[Packet]) -> List[Tuple[Dict[str, Any], Type[Packet]]]:
    """LOWER's dissection bindings, in the order Scapy tries them (read only)."""
    return lower.payload_guess


class _BindingTable:
    """One field's bindings of a lower layer as a dict (value -> first class bound).

    Rebuilt whenever the bindings change: Scapy's ``bind_bottom_up`` and
    ``split_bottom_up`` replace the list and an in-place ``append`` grows it,
    so the list object (held here, so its address cannot be reused by a new
    list) and its length together say whether the table is current.
    """

    def __init__(self, lower: Type[Packet], field: str) -> None:
        self.lower, self.field = lower, field
        self.source: Optional[List[Any]] = None
        self.size = -1
        self.table: Dict[Any, Type[Packet]] = {}

    def get(self, value: Any) -> Optional[Type[Packet]]:
        guess = self.lower.payload_guess
        if guess is not self.source or len(guess) != self.size:
            table: Dict[Any, Type[Packet]] = {}
            for fval, cls in guess:
                if set(fval) == {self.field}:
                    table.setdefault(fval[self.field], cls)
            self.source, self.size, self.table = guess, len(guess), table
        return self.table.get(value)


_tables: Dict[Tuple[type, str], _BindingTable] = {}


def payload_layer_for(lower: Type[Packet], field: str, value: Any) -> Optional[Type[Packet]]:
    """The class LOWER dissects next when its FIELD is VALUE alone (e.g. the
    layer Ether binds to an EtherType), from Scapy's live bindings, or None."""
    table = _tables.get((lower, field))
    if table is None:
        table = _tables[(lower, field)] = _BindingTable(lower, field)
    return table.get(value)


def is_bound(lower: Type[Packet], upper: Type[Packet], **fval: Any) -> bool:
    """Whether LOWER dissects UPPER on exactly FVAL (``is_bound(UDP, Geneve, dport=6081)``)."""
    return any(cls is upper and params == fval for params, cls in lower.payload_guess)


def move_binding_first(lower: Type[Packet], upper: Type[Packet], **fval: Any) -> None:
    """Make LOWER try UPPER with FVAL before any other binding (and only once)."""
    lower.payload_guess = [(fval, upper)] + [
        (f, c) for f, c in lower.payload_guess if not (c is upper and f == fval)
    ]


# -- per-layer notes ---------------------------------------------------------------------


def layer_note(pkt: Packet, name: str) -> Any:
    """What :func:`set_layer_note` stored under NAME on the layer PKT, or None.

    A note is per-layer data outside the fields (for example what a dissection
    looked up once); it is read from the instance itself, never searched for in
    the payloads as ``Packet.__getattr__`` would search a missing attribute.
    PKT's class must not declare ``__slots__`` (its instances then have a dict).
    """
    return vars(pkt).get(name)


def set_layer_note(pkt: Packet, name: str, value: Any) -> None:
    """Store VALUE under NAME on the layer PKT (None removes it).

    ``Packet.__setattr__`` would take NAME for a field and look for it in every
    payload; a note stays on this layer.  NAME must not be one of PKT's fields (a
    note would hide it from attribute reads): ValueError.  :func:`fast_copy`
    copies notes, ``Packet.copy`` does not.
    """
    if name in pkt.fieldtype:
        raise ValueError("%s is a field of %s, not a name for a note" % (name, pkt.__class__.__name__))
    notes = vars(pkt)
    if value is None:
        notes.pop(name, None)
    else:
        notes[name] = value


# -- method hooks --------------------------------------------------------------------------

_ORIGINALS: Dict[Tuple[type, str], Callable[..., Any]] = {}


def hook_method(cls: type, name: str, hook: Callable[..., Optional[Any]]) -> None:
    """Let HOOK answer ``cls.name(self, *args)`` first: when it returns None,
    the original method answers.  Idempotent; :func:`unhook_method` undoes it.

    The hook sits on CLS itself (no subclass), so packets dissected anywhere in
    the process see it; a hook must therefore act only on input the original
    gets wrong and leave every other call to it.
    """
    key = (cls, name)
    if key in _ORIGINALS:
        return
    original = cls.__dict__[name]

    def hooked_method(self: Any, *args: Any) -> Any:
        result = hook(self, *args)
        return original(self, *args) if result is None else result

    hooked_method.__name__ = name
    hooked_method.__qualname__ = "%s.%s" % (cls.__name__, name)
    hooked_method.__doc__ = original.__doc__
    hooked_method.__wrapped__ = original  # type: ignore[attr-defined]
    _ORIGINALS[key] = original
    setattr(cls, name, hooked_method)


def unhook_method(cls: type, name: str) -> None:
    """Put back the method :func:`hook_method` wrapped."""
    original = _ORIGINALS.pop((cls, name), None)
    if original is not None:
        setattr(cls, name, original)


def hooked(cls: type, name: str) -> bool:
    """Whether ``cls.name`` is wrapped by :func:`hook_method`."""
    return (cls, name) in _ORIGINALS


# -- copying dissected packets -------------------------------------------------------------

_Layout = Tuple[List[Any], List[str]]
#: What :func:`fast_copy` remembers of each prototype layer (one dict per prototype packet).
CopyMemo = Dict[int, _Layout]


def _layout(layer: Packet, memo: Dict[int, _Layout]) -> _Layout:
    """The slot descriptors of LAYER's class that LAYER has a value in, and the
    names of its fields whose values can change in place (lists, packets);
    memoised per prototype layer (an unset slot reads through the slow
    ``Packet.__getattr__``)."""
    found = memo.get(id(layer))
    if found is None:
        descs = []
        seen = set()
        for c in layer.__class__.__mro__:
            for name in c.__dict__.get("__slots__", ()):
                if name in seen or name == "__dict__":
                    continue
                seen.add(name)
                desc = c.__dict__[name]
                try:
                    desc.__get__(layer)
                except AttributeError:
                    continue
                descs.append(desc)
        mutable = [k for k, v in layer.fields.items() if isinstance(v, (list, Packet))]
        found = memo[id(layer)] = (descs, mutable)
    return found


def _copy_fields(layer: Packet, q: Packet, memo: Dict[int, _Layout], mutable: List[str]) -> Dict[str, Any]:
    fields = dict(layer.fields)
    for fname in mutable:
        fval = fields[fname]
        if isinstance(fval, list):
            fval = fields[fname] = [fast_copy(x, None, memo) if isinstance(x, Packet) else x for x in fval]
            for x in fval:
                if isinstance(x, Packet):
                    object.__setattr__(x, "parent", q)
        elif isinstance(fval, Packet):
            fval = fields[fname] = fast_copy(fval, None, memo)
            object.__setattr__(fval, "parent", q)
    return fields


def fast_copy(
    layer: Packet,
    under: Optional[Packet] = None,
    memo: Optional[Dict[int, _Layout]] = None,
    out: Optional[List[Packet]] = None,
) -> Packet:
    """A copy of the dissected packet LAYER and its payloads, as ``Packet.copy``
    makes it but without running ``__init__`` for every layer.

    The slots are copied; field values that can change in place (lists,
    packets: Geneve options, TCP options) are copied too, the rest (ints,
    bytes, strings) is shared, and so is the dissection's snapshot of mutable
    fields (only ever compared, never changed).  UNDER becomes the copy's
    underlayer; MEMO (one dict per prototype packet) saves re-reading each
    class's slots; OUT collects the new layers, outermost first.
    (For :mod:`scapy_geneve.offload.segment`; tests/test_compat.py checks the
    copy against ``Packet.copy``.)
    """
    memo = {} if memo is None else memo
    q = object.__new__(layer.__class__)
    descs, mutable = _layout(layer, memo)
    for desc in descs:
        desc.__set__(q, desc.__get__(layer))
    try:
        extra = object.__getattribute__(layer, "__dict__")
        if extra:
            q.__dict__.update(extra)
    except AttributeError:
        pass
    put = object.__setattr__
    put(q, "fields", _copy_fields(layer, q, memo, mutable))
    put(q, "default_fields", dict(layer.default_fields))
    put(q, "overloaded_fields", dict(layer.overloaded_fields))
    put(q, "packetfields", list(layer.packetfields))
    put(q, "post_transforms", list(layer.post_transforms))
    put(q, "underlayer", under)
    if out is not None:
        out.append(q)
    pay = layer.payload
    put(
        q,
        "payload",
        fast_copy(pay, q, memo, out) if pay.__class__.__name__ != "NoPayload" else pay.__class__(),
    )
    return q
