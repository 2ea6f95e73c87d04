"""Parquet files encoded apart, joined into one without decoding a page.

A Parquet file is ``PAR1``, the row groups' column chunks, then the footer: a
Thrift (compact protocol) ``FileMetaData``, its length (4 bytes, little endian)
and ``PAR1``.  The pages hold no file offset; only the footer does (and a page
index or bloom filters, which hold absolute offsets: parts that have them are
refused; ``export`` writes neither).  So the
files of several workers, each encoded by its own process, join into one file
by laying their chunk bytes one after the other and writing one footer: every
row group of every part, its offsets moved by where the part's bytes landed.
``export --jobs N`` to one Parquet file encodes in N processes this way.

The compact protocol is read into a generic tree (:func:`decode`) and written
back (:func:`encode`) byte for byte; only these fields of parquet.thrift are
changed::

    FileMetaData { 3: i64 num_rows   4: list<RowGroup> row_groups }
    RowGroup     { 1: list<ColumnChunk> columns   3: i64 num_rows
                   5: i64 file_offset   7: i16 ordinal }
    ColumnChunk  { 2: i64 file_offset (when not 0)   3: ColumnMetaData meta_data }
    ColumnMetaData { 9: i64 data_page_offset   10: i64 index_page_offset
                     11: i64 dictionary_page_offset }
"""

import struct
from typing import Any, List, Sequence, Tuple

__all__ = ["MAGIC", "split", "footer_of", "join_footers", "decode", "encode", "Struct"]

MAGIC = b"PAR1"

# compact protocol types
BOOL_TRUE, BOOL_FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)

#: a struct: its fields in wire order, each (field id, compact type, value)
Struct = List[List[Any]]

# parquet.thrift field ids
FILE_NUM_ROWS, FILE_ROW_GROUPS = 3, 4
GROUP_COLUMNS, GROUP_FILE_OFFSET, GROUP_ORDINAL = 1, 5, 7
CHUNK_FILE_OFFSET, CHUNK_META, CHUNK_OFFSET_INDEX, CHUNK_COLUMN_INDEX = 2, 3, 4, 6
META_OFFSETS = (9, 10, 11)  # data, index and dictionary pages
META_BLOOM_FILTER = 14
MAX_DEPTH = 64  # parquet.thrift nests a few levels; garbage could nest without end


class ParquetError(ValueError):
    """Bytes that are not the Parquet this module joins."""


def split(data: bytes) -> Tuple[memoryview, bytes]:
    """A whole Parquet file's (chunk bytes, footer): what lies between the leading
    magic and the footer, and the footer's Thrift bytes."""
    if len(data) < 12 or data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ParquetError("not a Parquet file (%d bytes)" % len(data))
    (length,) = struct.unpack_from("<I", data, len(data) - 8)
    if length > len(data) - 12:
        raise ParquetError("footer of %d bytes in a %d-byte file" % (length, len(data)))
    end = len(data) - 8 - length
    return memoryview(data)[4:end], bytes(data[end:-8])


def footer_of(tail: bytes) -> bytes:
    """The footer's Thrift bytes from what a Parquet writer wrote when it closed (the
    footer, its length, the magic): anything else there is refused."""
    if len(tail) < 8 or tail[-4:] != MAGIC:
        raise ParquetError("the writer ended with %d bytes that are no footer" % len(tail))
    (length,) = struct.unpack_from("<I", tail, len(tail) - 8)
    if length != len(tail) - 8:
        raise ParquetError(
            "a footer of %d bytes where the writer wrote %d at its close" % (length, len(tail))
        )
    return bytes(tail[:length])


def join_footers(footers: Sequence[bytes], starts: Sequence[int]) -> bytes:
    """One footer (Thrift bytes, then its length and the magic) for parts whose chunk
    bytes start at STARTS in the joined file (each part's own started at 4): the first
    part's schema and metadata, every part's row groups in order, offsets moved."""
    try:
        return _joined(footers, starts)
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, ParquetError):
            raise
        raise ParquetError("a footer of unexpected shape: %s" % exc) from None


def _joined(footers: Sequence[bytes], starts: Sequence[int]) -> bytes:
    merged = decode(footers[0])
    groups: List[Struct] = []
    rows = 0
    for footer, start in zip(footers, starts):
        meta = decode(footer)
        if _field(meta, 2) != _field(merged, 2):
            raise ParquetError("the parts' schemas differ")
        for group in _field(meta, FILE_ROW_GROUPS)[1]:
            _move_group(group, start - len(MAGIC), len(groups))
            groups.append(group)
        rows += _field(meta, FILE_NUM_ROWS)
    _set(merged, FILE_NUM_ROWS, rows)
    _set(merged, FILE_ROW_GROUPS, (STRUCT, groups))
    thrift = encode(merged)
    return thrift + struct.pack("<I", len(thrift)) + MAGIC


def _move_group(group: Struct, shift: int, ordinal: int) -> None:
    for field in group:
        if field[0] == GROUP_FILE_OFFSET:
            field[2] += shift
        elif field[0] == GROUP_ORDINAL:
            field[2] = ordinal
        elif field[0] == GROUP_COLUMNS:
            for chunk in field[2][1]:
                _move_chunk(chunk, shift)


def _move_chunk(chunk: Struct, shift: int) -> None:
    for field in chunk:
        if field[0] in (CHUNK_OFFSET_INDEX, CHUNK_COLUMN_INDEX):
            raise ParquetError("a part has a page index (its page locations are absolute offsets)")
        if field[0] == CHUNK_FILE_OFFSET and field[1] == I64 and field[2]:  # 0: metadata in the footer
            field[2] += shift
        elif field[0] == CHUNK_META:
            for item in field[2]:
                if item[0] == META_BLOOM_FILTER:
                    raise ParquetError("a part has bloom filters (not joined here)")
                if item[0] in META_OFFSETS and item[1] == I64:
                    item[2] += shift


def _field(fields: Struct, fid: int) -> Any:
    for field in fields:
        if field[0] == fid:
            return field[2]
    raise ParquetError("footer without field %d" % fid)


def _set(fields: Struct, fid: int, value: Any) -> None:
    for field in fields:
        if field[0] == fid:
            field[2] = value
            return
    raise ParquetError("footer without field %d" % fid)


# -- the Thrift compact protocol ------------------------------------------------------------
def decode(data: bytes) -> Struct:
    """A compact-protocol struct as a tree (:data:`Struct`); the bytes must hold
    exactly one."""
    reader = _Reader(bytes(data))
    fields = reader.struct()
    if reader.pos != len(reader.data):
        raise ParquetError("%d bytes after the footer's struct" % (len(reader.data) - reader.pos))
    return fields


def encode(fields: Struct) -> bytes:
    """The compact-protocol bytes of a tree :func:`decode` made."""
    out = bytearray()
    _write_struct(out, fields)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.depth = data, 0, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ParquetError("footer cut short at byte %d" % self.pos)
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 70:
                raise ParquetError("varint too long at byte %d" % self.pos)

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def struct(self) -> Struct:
        fields: Struct = []
        fid = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == 0:
                return fields
            delta = head >> 4
            fid = fid + delta if delta else self.zigzag()
            value = kind == BOOL_TRUE if kind in (BOOL_TRUE, BOOL_FALSE) else self.value(kind)
            fields.append([fid, kind, value])

    def value(self, kind: int) -> Any:
        if kind < LIST:
            return self.scalar(kind)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParquetError("containers nested deeper than %d at byte %d" % (MAX_DEPTH, self.pos))
        try:
            return self.container(kind)
        finally:
            self.depth -= 1

    def scalar(self, kind: int) -> Any:
        if kind in (BOOL_TRUE, BOOL_FALSE, BYTE):  # a bool element is one byte too
            return self.byte()
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            self.pos += 8
            if self.pos > len(self.data):
                raise ParquetError("footer cut short in a double")
            return self.data[self.pos - 8 : self.pos]
        if kind == BINARY:
            size = self.varint()
            self.pos += size
            if self.pos > len(self.data):
                raise ParquetError("footer cut short in a %d-byte string" % size)
            return self.data[self.pos - size : self.pos]
        raise ParquetError("unknown compact type %d at byte %d" % (kind, self.pos))

    def container(self, kind: int) -> Any:
        if kind in (LIST, SET):
            head = self.byte()
            size = head >> 4 if head >> 4 != 15 else self.varint()
            elem = head & 0x0F
            return (elem, [self.value(elem) for _ in range(size)])
        if kind == MAP:
            size = self.varint()
            types = self.byte() if size else 0
            return (types, [(self.value(types >> 4), self.value(types & 0x0F)) for _ in range(size)])
        if kind == STRUCT:
            return self.struct()
        raise ParquetError("unknown compact type %d at byte %d" % (kind, self.pos))


def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(out: bytearray, n: int) -> None:
    _varint(out, (n << 1) ^ (n >> 63))


def _write_struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for fid, kind, value in fields:
        if kind in (BOOL_TRUE, BOOL_FALSE):
            kind = BOOL_TRUE if value else BOOL_FALSE
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | kind)
        else:
            out.append(kind)
            _zigzag(out, fid)
        last = fid
        if kind not in (BOOL_TRUE, BOOL_FALSE):
            _write_value(out, kind, value)
    out.append(0)


def _write_value(out: bytearray, kind: int, value: Any) -> None:
    if kind in (BOOL_TRUE, BOOL_FALSE, BYTE):
        out.append(value)
    elif kind in (I16, I32, I64):
        _zigzag(out, value)
    elif kind == DOUBLE:
        out += value
    elif kind == BINARY:
        _varint(out, len(value))
        out += value
    elif kind in (LIST, SET):
        elem, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _varint(out, len(items))
        for item in items:
            _write_value(out, elem, item)
    elif kind == MAP:
        types, pairs = value
        _varint(out, len(pairs))
        if pairs:
            out.append(types)
        for key, item in pairs:
            _write_value(out, types >> 4, key)
            _write_value(out, types & 0x0F, item)
    else:
        _write_struct(out, value)
