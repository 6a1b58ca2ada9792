"""Large row groups from per-step rows, in bounded memory, and Parquet concatenation.

Per-step datasets (``links.parquet``) get a few thousand rows a step. Writing each step as
its own row group costs a whole Arrow table and a Parquet row group (with its footer entry,
kept in memory until the file closes) per step. :class:`RowGroupBuffer` instead copies each
step's columns into preallocated NumPy buffers (a slice assignment per column, no Python work
per row) and hands the writer one record batch per full buffer: row groups of
:data:`ROW_GROUP_BYTES` (at most :data:`MAX_ROWS_PER_GROUP` rows), the buffers reused for the
next one. Dictionary columns (node names, link kinds, states, reasons) take codes; their
dictionaries are built once per run and shared by every row group, so every row group and
every part of a split run carries the same dictionary.

:func:`concat_parquet` joins Parquet files with the same schema into one file by copying
their row groups byte for byte and rewriting only the footer (the files' column chunks are
not decoded): the way workers' part files become one dataset.

Examples
--------
>>> import pyarrow as pa, pyarrow.parquet as pq, io
>>> schema = pa.schema([("t_s", pa.float64()),
...                     ("kind", pa.dictionary(pa.int8(), pa.string()))])
>>> sink = io.BytesIO()
>>> w = pq.ParquetWriter(sink, schema)
>>> buf = RowGroupBuffer(schema, w.write_batch, {"kind": pa.array(["isl", "gsl"])},
...                      rows_per_group=4)
>>> for step in range(3):
...     buf.append(3, t_s=float(step), kind=np.array([0, 1, 0], np.int8))
>>> buf.close(); w.close()
>>> f = pq.ParquetFile(io.BytesIO(sink.getvalue()))
>>> f.num_row_groups, f.read().column("kind").to_pylist()[:4]
(3, ['isl', 'gsl', 'isl', 'isl'])
"""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np

#: Target size of one row group's uncompressed column buffers.
ROW_GROUP_BYTES = 64 << 20

#: Row-group size bounds (rows): large enough to amortise the row group, small enough to
#: keep the buffers (and a reader's row group) a few tens of MB.
MIN_ROWS_PER_GROUP = 1 << 16
MAX_ROWS_PER_GROUP = 1 << 20


def dictionary_columns(schema, also=()) -> list[str]:
    """Columns worth Parquet dictionary encoding: the Arrow dictionary columns and ``also``.

    Columns of distinct floats (lengths, loads) would fill a dictionary page and fall back to
    plain encoding, which costs the writer about as much again as the whole table.
    """
    import pyarrow as pa

    return [f.name for f in schema if pa.types.is_dictionary(f.type) or f.name in also]


#: Columns whose Parquet statistics are left out: min/max of dictionary strings cost the
#: writer five times the column itself and prune nothing the node ids (``a``, ``b``) do not.
NO_STATISTICS = ("a_name", "b_name")


def statistics_columns(schema, skip=NO_STATISTICS) -> list[str]:
    """Columns given Parquet min/max statistics: all but ``skip``."""
    return [f.name for f in schema if f.name not in skip]


def rows_per_group(schema, budget_bytes: int = ROW_GROUP_BYTES) -> int:
    """Rows of a row group whose buffers take about ``budget_bytes``, clamped to the bounds."""
    width = sum(_numpy_dtype(f.type).itemsize for f in schema)
    rows = budget_bytes // max(width, 1)
    return int(min(MAX_ROWS_PER_GROUP, max(MIN_ROWS_PER_GROUP, rows)))


def _numpy_dtype(typ) -> np.dtype:
    import pyarrow as pa

    if pa.types.is_dictionary(typ):
        return np.dtype(typ.index_type.to_pandas_dtype())
    if pa.types.is_timestamp(typ):
        return np.dtype(np.int64)
    return np.dtype(typ.to_pandas_dtype())


class RowGroupBuffer:
    """Accumulate rows column by column; hand ``write(batch)`` a record batch when full.

    Parameters
    ----------
    schema : pyarrow.Schema
        Fixed-width columns: numbers, timestamps (given as int64 ns) and dictionary columns
        (given as integer codes into ``dictionaries[name]``).
    write : callable
        Receives each full :class:`pyarrow.RecordBatch` (for instance
        ``ParquetWriter.write_batch``). The batch views the buffers, which are refilled
        afterwards, so ``write`` must consume it before returning (Parquet and CSV writers do).
    dictionaries : dict of str to pyarrow.Array
        The dictionary of every dictionary column, built once and shared by every batch.
    rows_per_group : int, optional
        Rows per batch; default :func:`rows_per_group` of the schema.
    """

    def __init__(self, schema, write, dictionaries: dict, rows_per_group: int | None = None):
        import pyarrow as pa

        self.schema = schema
        self._write = write
        self.capacity = int(rows_per_group or globals()["rows_per_group"](schema))
        self._dicts = {}
        for f in schema:
            if pa.types.is_dictionary(f.type):
                if f.name not in dictionaries:
                    raise ValueError(f"no dictionary for column {f.name!r}")
                self._dicts[f.name] = dictionaries[f.name].cast(f.type.value_type)
        self._dtypes = {f.name: _numpy_dtype(f.type) for f in schema}
        self._bufs = {n: np.empty(self.capacity, d) for n, d in self._dtypes.items()}
        self.n = 0
        self.rows_written = 0
        self.batches_written = 0

    def append(self, n: int, **columns) -> None:
        """Append ``n`` rows; each column an array of ``n`` values or one scalar for all."""
        n = int(n)
        if set(columns) != set(self._bufs):
            missing = set(self._bufs) - set(columns)
            extra = set(columns) - set(self._bufs)
            raise ValueError(f"columns differ from the schema: missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        start = 0
        while start < n:  # a step larger than the free space spills into the next group
            room = self.capacity - self.n
            take = min(room, n - start)
            end = self.n + take
            for name, value in columns.items():
                if np.ndim(value) == 0:
                    self._bufs[name][self.n:end] = value
                else:
                    self._bufs[name][self.n:end] = value[start:start + take]
            self.n = end
            start += take
            if self.n == self.capacity:
                self.flush()

    def _batch(self):
        import pyarrow as pa

        arrays = []
        for f in self.schema:
            values = self._bufs[f.name][:self.n]
            if f.name in self._dicts:
                arrays.append(pa.DictionaryArray.from_arrays(
                    pa.array(values, f.type.index_type), self._dicts[f.name]))
            else:
                arrays.append(pa.array(values, f.type))
        return pa.record_batch(arrays, schema=self.schema)

    def flush(self) -> None:
        """Write the buffered rows (if any) as one batch."""
        if self.n == 0:
            return
        self._write(self._batch())
        self.rows_written += self.n
        self.batches_written += 1
        self.n = 0

    def close(self) -> None:
        """Write what is left; the buffers are released."""
        self.flush()
        self._bufs = {}

    @property
    def nbytes(self) -> int:
        """Bytes held by the column buffers (fixed for the buffer's life)."""
        return sum(b.nbytes for b in self._bufs.values())


# -- Parquet concatenation: copy row groups, rewrite the footer (Thrift compact protocol) -----

_MAGIC = b"PAR1"
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(
    1, 13)


class _ThriftReader:
    """Generic Thrift compact-protocol decoder: a struct becomes ``[[id, type, value], ...]``."""

    def __init__(self, data: bytes):
        self.b = data
        self.i = 0

    def _byte(self) -> int:
        v = self.b[self.i]
        self.i += 1
        return v

    def _varint(self) -> int:
        shift = out = 0
        while True:
            x = self._byte()
            out |= (x & 0x7F) << shift
            shift += 7
            if not x & 0x80:
                return out

    def _zigzag(self) -> int:
        n = self._varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int):
        if t in (_TRUE, _FALSE, _BYTE):  # a bool inside a list is a byte
            return self._byte()
        if t in (_I16, _I32, _I64):
            return self._zigzag()
        if t == _DOUBLE:
            self.i += 8
            return bytes(self.b[self.i - 8:self.i])
        if t == _BINARY:
            n = self._varint()
            self.i += n
            return bytes(self.b[self.i - n:self.i])
        if t in (_LIST, _SET):
            head = self._byte()
            size, et = head >> 4, head & 0x0F
            if size == 15:
                size = self._varint()
            return (et, [self.value(et) for _ in range(size)])
        if t == _MAP:
            size = self._varint()
            if size == 0:
                return (0, 0, [])
            kv = self._byte()
            kt, vt = kv >> 4, kv & 0x0F
            return (kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)])
        if t == _STRUCT:
            return self.struct()
        raise ValueError(f"unknown Thrift compact type {t}")

    def struct(self) -> list:
        fields, last = [], 0
        while True:
            head = self._byte()
            if head == 0:
                return fields
            t, delta = head & 0x0F, head >> 4
            fid = last + delta if delta else self._zigzag()
            last = fid
            fields.append([fid, t, t == _TRUE if t in (_TRUE, _FALSE) else self.value(t)])


class _ThriftWriter:
    """The encoder matching :class:`_ThriftReader` (same bytes as Apache Thrift's)."""

    def __init__(self):
        self.out = bytearray()

    def _varint(self, n: int) -> None:
        while n >= 0x80:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def _zigzag(self, n: int) -> None:
        self._varint((n << 1) ^ (n >> 63))

    def value(self, t: int, v) -> None:
        if t in (_TRUE, _FALSE, _BYTE):
            self.out.append(v & 0xFF)
        elif t in (_I16, _I32, _I64):
            self._zigzag(v)
        elif t in (_DOUBLE, _BINARY):
            if t == _BINARY:
                self._varint(len(v))
            self.out += v
        elif t in (_LIST, _SET):
            et, items = v
            if len(items) < 15:
                self.out.append((len(items) << 4) | et)
            else:
                self.out.append(0xF0 | et)
                self._varint(len(items))
            for x in items:
                self.value(et, x)
        elif t == _MAP:
            kt, vt, items = v
            self._varint(len(items))
            if items:
                self.out.append((kt << 4) | vt)
                for k, x in items:
                    self.value(kt, k)
                    self.value(vt, x)
        elif t == _STRUCT:
            self.struct(v)
        else:
            raise ValueError(f"unknown Thrift compact type {t}")

    def struct(self, fields) -> None:
        last = 0
        for fid, t, v in fields:
            if t in (_TRUE, _FALSE):
                t = _TRUE if v else _FALSE
            if 0 < fid - last <= 15:
                self.out.append(((fid - last) << 4) | t)
            else:
                self.out.append(t)
                self._zigzag(fid)
            last = fid
            if t not in (_TRUE, _FALSE):
                self.value(t, v)
        self.out.append(0)


def _field(fields, fid):
    for f in fields:
        if f[0] == fid:
            return f
    return None


# Absolute file offsets in the footer (parquet.thrift): RowGroup.file_offset (5);
# ColumnChunk.file_offset (2), offset_index_offset (4), column_index_offset (6);
# ColumnMetaData.data_page_offset (9), index_page_offset (10), dictionary_page_offset (11),
# bloom_filter_offset (14).
_ROW_GROUP_OFFSETS = (5,)
_CHUNK_OFFSETS = (2, 4, 6)
_COLUMN_META_OFFSETS = (9, 10, 11, 14)


def _shift(fields, ids, delta: int) -> None:
    for f in fields:
        if f[0] in ids and f[2] > 0:
            f[2] += delta


def _read_footer(fh, size: int, name) -> tuple[list, int]:
    """The decoded FileMetaData of an open Parquet file and where it starts."""
    if size < 12:
        raise ValueError(f"{name}: not a Parquet file (too short)")
    fh.seek(size - 8)
    length, magic = struct.unpack("<i4s", fh.read(8))
    if magic != _MAGIC:
        raise ValueError(f"{name}: not a Parquet file (no PAR1 at the end)")
    start = size - 8 - length
    fh.seek(start)
    return _ThriftReader(fh.read(length)).struct(), start


class ParquetConcat:
    """Append whole Parquet files (same schema) to one output file, in order.

    Row groups are copied as bytes; only the footer is rebuilt (offsets shifted, row counts
    summed), so nothing is decoded or compressed again. The key/value metadata (and the
    Arrow schema stored there) is the first part's. A part's page offset indexes hold
    absolute page offsets too: they are re-encoded shifted and written before the footer
    (the copied originals are left unreferenced; column indexes hold no offsets).

    Parameters
    ----------
    out : file object
        Opened for binary writing, positioned at its start.
    """

    def __init__(self, out):
        self.out = out
        self.footer = None
        self.row_groups: list = []
        self.rows = 0
        self.pos = 4
        self._offset_indexes: list = []  # (column chunk fields, shifted OffsetIndex bytes)
        out.write(_MAGIC)

    def add(self, part) -> None:
        """Append a part: a path, or the bytes of a Parquet file.

        Raises
        ------
        ValueError
            The part is not Parquet, or its schema differs from the first part's.
        """
        import io

        fh = io.BytesIO(part) if isinstance(part, (bytes, bytearray, memoryview)) else open(
            part, "rb")
        name = "<bytes>" if isinstance(part, (bytes, bytearray, memoryview)) else part
        with fh:
            fh.seek(0, os.SEEK_END)
            meta, start = _read_footer(fh, fh.tell(), name)
            if self.footer is None:
                self.footer = meta
            elif _field(meta, 2) != _field(self.footer, 2):
                raise ValueError(f"{name}: schema differs from the first part's")
            fh.seek(4)
            body = start - 4
            _copy(fh, self.out, body)
            delta = self.pos - 4
            groups = _field(meta, 4)
            for rg in (groups[2][1] if groups else []):
                for chunk in _field(rg, 1)[2][1]:
                    self._shift_offset_index(fh, chunk, delta)
        for rg in (groups[2][1] if groups else []):
            _shift(rg, _ROW_GROUP_OFFSETS, delta)
            for chunk in _field(rg, 1)[2][1]:
                _shift(chunk, _CHUNK_OFFSETS, delta)
                cmeta = _field(chunk, 3)
                if cmeta is not None:
                    _shift(cmeta[2], _COLUMN_META_OFFSETS, delta)
            ordinal = _field(rg, 7)
            if ordinal is not None:
                ordinal[2] = len(self.row_groups)
            self.row_groups.append(rg)
        self.rows += _field(meta, 3)[2]
        self.pos += body

    def close(self) -> int:
        """Write the merged footer; return the rows written."""
        footer = self.footer
        if footer is None:
            raise ValueError("no Parquet parts to concatenate")
        _field(footer, 3)[2] = self.rows
        for chunk, data in self._offset_indexes:  # OffsetIndex (4) and its length (5)
            _field(chunk, 4)[2] = self.pos
            _field(chunk, 5)[2] = len(data)
            self.out.write(data)
            self.pos += len(data)
        self._offset_indexes = []
        groups = _field(footer, 4)
        if groups is None:
            footer.append([4, _LIST, (_STRUCT, self.row_groups)])
            footer.sort(key=lambda f: f[0])
        else:
            groups[2] = (_STRUCT, self.row_groups)
        w = _ThriftWriter()
        w.struct(footer)
        self.out.write(w.out)
        self.out.write(struct.pack("<i", len(w.out)))
        self.out.write(_MAGIC)
        return self.rows


    def _shift_offset_index(self, fh, chunk, delta: int) -> None:
        """Queue the chunk's OffsetIndex with its page offsets shifted by ``delta``."""
        off, length = _field(chunk, 4), _field(chunk, 5)
        if off is None or length is None or delta == 0:
            return
        fh.seek(off[2])
        index = _ThriftReader(fh.read(length[2])).struct()
        for page in _field(index, 1)[2][1]:  # PageLocation: offset (1), size, first row
            _field(page, 1)[2] += delta
        w = _ThriftWriter()
        w.struct(index)
        self._offset_indexes.append((chunk, bytes(w.out)))


def concat_parquet(parts, out_path) -> int:
    """Concatenate Parquet files (paths or bytes, same schema) into ``out_path``.

    Returns the rows written; see :class:`ParquetConcat`.
    """
    with open(out_path, "wb") as out:
        cat = ParquetConcat(out)
        for part in parts:
            cat.add(part)
        return cat.close()


def _copy(src, dst, n: int) -> None:
    """Copy ``n`` bytes from ``src``'s position to ``dst`` in blocks of 16 MiB."""
    while n > 0:
        block = src.read(min(n, 16 << 20))
        if not block:
            raise ValueError("Parquet part shorter than its footer says")
        dst.write(block)
        n -= len(block)


def append_file(part, out) -> None:
    """Append a file (a path, or bytes) to the open binary file ``out`` byte for byte."""
    if isinstance(part, (bytes, bytearray, memoryview)):
        out.write(part)
        return
    with open(part, "rb") as fh:
        shutil.copyfileobj(fh, out, 16 << 20)
