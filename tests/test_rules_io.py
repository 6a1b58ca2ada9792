"""Byte-level Parquet concatenation keeps every absolute offset valid, page indexes included.

A Parquet page offset index (``write_page_index=True``) lists the absolute file offset of
every data page; after :func:`meshnet.io.rowgroups.concat_parquet` those of the second and
later parts must point at the same pages in their new place. Checked against pyarrow's own
footer reading (each chunk's ``data_page_offset`` is its first page) and against the bytes of
the pages in the original parts.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meshnet.io.rowgroups import _field, _ThriftReader, concat_parquet


def _footer(data: bytes) -> list:
    (length,) = struct.unpack("<i", data[-8:-4])
    return _ThriftReader(data[-8 - length:-8]).struct()


def _page_locations(data: bytes) -> list:
    """Per row group, per column: ``[(offset, size, first_row), ...]`` from the offset index."""
    out = []
    for rg in _field(_footer(data), 4)[2][1]:
        cols = []
        for chunk in _field(rg, 1)[2][1]:
            off, length = _field(chunk, 4)[2], _field(chunk, 5)[2]
            index = _ThriftReader(data[off:off + length]).struct()
            cols.append([(_field(p, 1)[2], _field(p, 2)[2], _field(p, 3)[2])
                         for p in _field(index, 1)[2][1]])
        out.append(cols)
    return out


def test_concatenated_page_offset_indexes_point_at_the_pages(tmp_path):
    rng = np.random.default_rng(3)
    n = 6_000
    whole = pa.table({"a": np.arange(n, dtype=np.int64), "f": rng.random(n),
                      "s": pa.array(rng.choice(["x", "yy", "zzz"], n)).dictionary_encode()})
    parts, start = [], 0
    for i, rows in enumerate((2_000, 1_500, 2_500)):
        p = tmp_path / f"p{i}.parquet"
        pq.write_table(whole.slice(start, rows), p, row_group_size=1_000,
                       write_page_index=True, data_page_size=2_000, write_batch_size=200,
                       use_dictionary=["s"], compression="zstd")
        parts.append(p)
        start += rows
    out = tmp_path / "all.parquet"
    assert concat_parquet(parts, out) == n
    data = out.read_bytes()
    meta = pq.ParquetFile(out).metadata
    got = _page_locations(data)
    want = [cols for p in parts for cols in _page_locations(p.read_bytes())]
    originals = [p.read_bytes() for p in parts for _ in range(pq.ParquetFile(p).num_row_groups)]
    assert len(got) == len(want) == meta.num_row_groups
    multi_page = 0
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            pages, ref = got[g][c], want[g][c]
            assert len(pages) == len(ref)
            multi_page += len(pages) > 1
            assert pages[0][0] == col.data_page_offset  # pyarrow's reading of the footer
            shift = pages[0][0] - ref[0][0]
            end = (col.dictionary_page_offset or col.data_page_offset) + \
                col.total_compressed_size
            for (off, size, first), (roff, rsize, rfirst) in zip(pages, ref, strict=True):
                assert (size, first) == (rsize, rfirst) and off - roff == shift
                assert off + size <= end
                assert data[off:off + size] == originals[g][roff:roff + size]
    assert multi_page > 0  # several pages per chunk: every location checked, not just one
    assert pq.read_table(out).equals(whole)
