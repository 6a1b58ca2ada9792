"""Row-group buffers (bounded, reused, row order kept) and byte-level Parquet concatenation."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshnet.io.rowgroups import (
    MAX_ROWS_PER_GROUP,
    MIN_ROWS_PER_GROUP,
    RowGroupBuffer,
    _ThriftReader,
    _ThriftWriter,
    concat_parquet,
    rows_per_group,
)

SCHEMA = pa.schema([
    ("t", pa.timestamp("ns", tz="UTC")),
    ("t_s", pa.float64()),
    ("a", pa.int32()),
    ("name", pa.dictionary(pa.int32(), pa.string())),
    ("kind", pa.dictionary(pa.int8(), pa.string())),
    ("x", pa.float64()),
])
NAMES = pa.array([f"node-{i}" for i in range(50)])
KINDS = pa.array(["isl", "gsl"])


def _steps(rng, n_steps, max_rows):
    out = []
    for k in range(n_steps):
        n = int(rng.integers(0, max_rows))
        out.append((k, {"t": 1_000 * k, "t_s": float(k), "a": rng.integers(0, 50, n).astype(
            np.int32), "name": rng.integers(0, 50, n), "kind": rng.integers(0, 2, n).astype(
            np.int8), "x": rng.random(n)}, n))
    return out


def _expected(steps):
    cols = {"t": [], "t_s": [], "a": [], "name": [], "kind": [], "x": []}
    for _, c, n in steps:
        for k in cols:
            v = c[k]
            cols[k].append(np.full(n, v) if np.ndim(v) == 0 else v)
    return {k: np.concatenate(v) for k, v in cols.items()}


def _write(steps, capacity):
    sink = io.BytesIO()
    w = pq.ParquetWriter(sink, SCHEMA)
    buf = RowGroupBuffer(SCHEMA, lambda b: w.write_batch(b, row_group_size=b.num_rows),
                         {"name": NAMES, "kind": KINDS}, rows_per_group=capacity)
    for _, c, n in steps:
        buf.append(n, **c)
    buf.close()
    w.close()
    return pq.ParquetFile(io.BytesIO(sink.getvalue())), buf


def test_rows_come_back_in_order_in_bounded_row_groups():
    steps = _steps(np.random.default_rng(1), 60, 40)  # some steps larger than a row group
    f, buf = _write(steps, capacity=32)
    exp = _expected(steps)
    tab = f.read()
    assert tab.num_rows == exp["a"].shape[0] == buf.rows_written
    assert np.array_equal(tab.column("t").cast(pa.int64()).to_numpy(), exp["t"])
    assert np.array_equal(tab.column("t_s").to_numpy(), exp["t_s"])
    assert np.array_equal(tab.column("a").to_numpy(), exp["a"])
    assert tab.column("name").to_pylist() == [f"node-{i}" for i in exp["name"]]
    assert tab.column("kind").to_pylist() == [["isl", "gsl"][i] for i in exp["kind"]]
    assert np.array_equal(tab.column("x").to_numpy(), exp["x"])
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)]
    assert max(sizes) <= 32 and all(s == 32 for s in sizes[:-1])  # full groups, then the rest
    assert f.num_row_groups == -(-tab.num_rows // 32)


def test_every_row_group_carries_the_run_dictionary():
    f, _ = _write(_steps(np.random.default_rng(2), 30, 20), capacity=25)
    for i in range(f.num_row_groups):
        rg = f.read_row_group(i)
        for col, d in (("name", NAMES), ("kind", KINDS)):
            chunk = rg.column(col).chunk(0)
            assert chunk.dictionary.equals(d)  # the whole dictionary, not the codes used


def test_buffers_are_allocated_once_and_reused():
    # The memory bound of a long run: the same buffers, whatever the number of steps.
    written = []
    buf = RowGroupBuffer(SCHEMA, lambda b: written.append(b.num_rows),
                         {"name": NAMES, "kind": KINDS}, rows_per_group=100)
    ptrs = {k: v.ctypes.data for k, v in buf._bufs.items()}
    nbytes = buf.nbytes
    rng = np.random.default_rng(3)
    for _, c, n in _steps(rng, 500, 30):
        buf.append(n, **c)
        assert buf.n < 100  # a full buffer is written at once
    assert {k: v.ctypes.data for k, v in buf._bufs.items()} == ptrs
    assert buf.nbytes == nbytes == 100 * (8 + 8 + 4 + 4 + 1 + 8)
    assert written and max(written) == 100


def test_missing_or_unknown_columns_are_refused():
    buf = RowGroupBuffer(SCHEMA, lambda b: None, {"name": NAMES, "kind": KINDS}, 10)
    with pytest.raises(ValueError, match="missing"):
        buf.append(1, t=0, t_s=0.0, a=1, name=0, kind=0)
    with pytest.raises(ValueError, match="no dictionary"):
        RowGroupBuffer(SCHEMA, lambda b: None, {"name": NAMES}, 10)


def test_rows_per_group_is_sized_by_bytes_and_clamped():
    assert rows_per_group(SCHEMA, 33 * 100_000) == 100_000
    assert rows_per_group(SCHEMA, 1) == MIN_ROWS_PER_GROUP
    assert rows_per_group(SCHEMA, 1 << 40) == MAX_ROWS_PER_GROUP


def _footer(path):
    data = open(path, "rb").read()
    (length,) = struct.unpack("<i", data[-8:-4])
    return data[-8 - length:-8]


def _table(n, seed):
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.integers(0, 9, n).astype(np.int32),
                     "s": pa.array(rng.choice(["x", "yy", "zzz"], n)).dictionary_encode(),
                     "f": rng.random(n)}).replace_schema_metadata({"k": "v"})


@pytest.mark.parametrize("page_index", [False, True])
def test_thrift_footer_round_trips_byte_for_byte(tmp_path, page_index):
    p = tmp_path / "a.parquet"
    pq.write_table(_table(1000, 1), p, row_group_size=300, write_page_index=page_index,
                   compression="zstd")
    raw = _footer(p)
    w = _ThriftWriter()
    w.struct(_ThriftReader(raw).struct())
    assert bytes(w.out) == raw


@pytest.mark.parametrize("page_index", [False, True])
def test_concatenated_parts_read_as_the_whole_table(tmp_path, page_index):
    whole = _table(2_000, 7)
    parts, start = [], 0
    for i, (n, rg) in enumerate(((700, 256), (1, 100), (0, 100), (1_299, 500))):
        p = tmp_path / f"p{i}.parquet"
        pq.write_table(whole.slice(start, n), p, row_group_size=rg,
                       write_page_index=page_index, compression="zstd")
        parts.append(p)
        start += n
    out = tmp_path / "all.parquet"
    as_bytes = [parts[0].read_bytes(), *parts[1:]]  # paths and bytes both accepted
    assert concat_parquet(as_bytes, out) == 2_000
    f = pq.ParquetFile(out)
    assert f.metadata.num_rows == 2_000
    assert f.num_row_groups == sum(pq.ParquetFile(p).num_row_groups for p in parts)
    assert f.read().equals(whole)
    assert f.schema_arrow.metadata == {b"k": b"v"}
    # Each row group on its own (reads through the shifted offsets, not sequentially).
    got = pa.concat_tables([f.read_row_group(i) for i in reversed(range(f.num_row_groups))])
    assert got.num_rows == 2_000
    assert os.path.getsize(out) < sum(os.path.getsize(p) for p in parts)


def test_concat_refuses_other_schemas_and_non_parquet(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"a": [1]}), a)
    pq.write_table(pa.table({"b": [1.0]}), b)
    with pytest.raises(ValueError, match="schema differs"):
        concat_parquet([a, b], tmp_path / "o.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="not a Parquet file"):
        concat_parquet([bad], tmp_path / "o.parquet")
    with pytest.raises(ValueError, match="no Parquet parts"):
        concat_parquet([], tmp_path / "o.parquet")


def _link_table(rng, t_s, n):
    from meshnet.links.model import LinkTable

    a = np.sort(rng.integers(0, 20, n)).astype(np.int32)
    return LinkTable(int(t_s * 1e9), a, (a + 1 + rng.integers(0, 5, n)).astype(np.int32),
                     rng.integers(0, 2, n).astype(np.int8), rng.integers(0, 3, n).astype(np.int8),
                     rng.integers(0, 4, n).astype(np.int8), rng.random(n) * 5000.0,
                     rng.random(n) * 1e11)


def test_run_links_rows_match_the_link_tables_in_bounded_row_groups(tmp_path):
    # meshnet run's links.parquet: the step's table, its load and utilisation, row for row.
    from meshnet.links import KIND_NAMES, REASON_NAMES, STATE_NAMES
    from meshnet.runner import LinkRowWriter

    rng = np.random.default_rng(5)
    names = np.array([f"n{i}" for i in range(26)])
    w = LinkRowWriter(tmp_path / "links.parquet", None, names, epoch_ns=10**18,
                      rows_per_group=50)
    steps = []
    for k in range(40):
        tab = _link_table(rng, 2.0 * k, int(rng.integers(0, 30)))
        load, util = rng.random(len(tab.a)), rng.random(len(tab.a))
        w.append(tab, tab.t_ns, load, util)
        steps.append((tab, load, util))
    w.close()
    f = pq.ParquetFile(tmp_path / "links.parquet")
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)]
    assert all(s == 50 for s in sizes[:-1]) and 0 < sizes[-1] <= 50
    got = f.read()
    cat = {k: np.concatenate([getattr(t, k) for t, _, _ in steps])
           for k in ("a", "b", "kind", "state", "reason", "length_km", "capacity_bps")}
    t_ns = np.concatenate([np.full(len(t.a), t.t_ns) for t, _, _ in steps])
    assert got.num_rows == t_ns.shape[0]
    assert np.array_equal(got.column("t").cast(pa.int64()).to_numpy(), 10**18 + t_ns)
    assert np.array_equal(got.column("t_s").to_numpy(), t_ns / 1e9)
    assert np.array_equal(got.column("a").to_numpy(), cat["a"])
    assert got.column("b_name").to_pylist() == names[cat["b"]].tolist()
    assert got.column("kind").to_pylist() == [KIND_NAMES[i] for i in cat["kind"]]
    assert got.column("state").to_pylist() == [STATE_NAMES[i] for i in cat["state"]]
    assert got.column("reason").to_pylist() == [REASON_NAMES[i] for i in cat["reason"]]
    # delay = length / c (299,792.458 km/s), in ms; capacity in Gbps
    assert np.allclose(got.column("delay_ms").to_numpy(), cat["length_km"] / 299_792.458e-3,
                       rtol=1e-15, atol=0)
    assert np.array_equal(got.column("capacity_gbps").to_numpy(), cat["capacity_bps"] / 1e9)
    assert np.array_equal(got.column("load_gbps").to_numpy(),
                          np.concatenate([x for _, x, _ in steps]))
    assert np.array_equal(got.column("utilisation").to_numpy(),
                          np.concatenate([u for _, _, u in steps]))
