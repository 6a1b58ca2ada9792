"""LinkTable.to_snapshot builds its CSR with a counting-sort kernel: it must equal the plain
lexsort of Snapshot.from_links array for array (the twin), parallel links included."""

from __future__ import annotations

import numpy as np
import pytest

from meshnet.graph import Snapshot
from meshnet.links.model import LinkTable
from meshnet.links.state import UP


@pytest.mark.parametrize("seed", range(5))
def test_to_snapshot_equals_from_links(seed):
    rng = np.random.default_rng(seed)
    n, m = 60, 300
    a = rng.integers(0, n, m).astype(np.int32)
    b = rng.integers(0, n, m).astype(np.int32)
    keep = a != b
    a, b = a[keep], b[keep]
    a = np.concatenate([a, a[:20]])  # parallel links: equal (a, b) rows
    b = np.concatenate([b, b[:20]])
    m = a.shape[0]
    state = np.where(rng.random(m) < 0.8, UP, UP + 1).astype(np.int8)
    table = LinkTable(t_ns=5, a=a, b=b, kind=np.zeros(m, np.int8), state=state,
                      reason=np.zeros(m, np.int8), length_km=rng.uniform(100, 5000, m),
                      capacity_bps=rng.choice([1e9, 1e10], m))
    names = np.array([f"n{i}" for i in range(n)], dtype=object)
    kinds = np.zeros(n, np.int8)
    got = table.to_snapshot(names, kinds)
    up = np.flatnonzero(state == UP)
    ref = Snapshot.from_links(5, names, kinds, a[up], b[up], table.length_km[up],
                              table.capacity_bps[up], link_id=up.astype(np.int32))
    for name in ("indptr", "indices", "delay_s", "length_km", "capacity_bps", "link_id"):
        x, y = getattr(got, name), getattr(ref, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name
    assert got.t_ns == ref.t_ns


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sorted_inputs", [True, False])
def test_merge_rows_equals_stable_sort(seed, sorted_inputs):
    """merge_rows (a stable sort of the (a, b) keys) equals a stable lexsort of the
    concatenation, the plain twin; unsorted inputs take the sort itself."""
    from meshnet.links.intershell import merge_rows
    from meshnet.links.topology import IslRows

    rng = np.random.default_rng(seed)

    def rows(m):
        a = rng.integers(0, 50, m).astype(np.int32)
        b = rng.integers(0, 50, m).astype(np.int32)
        if sorted_inputs:
            o = np.lexsort((b, a))
            a, b = a[o], b[o]
        return IslRows(a=a, b=b, state=rng.integers(0, 3, m).astype(np.int8),
                       reason=rng.integers(0, 5, m).astype(np.int8),
                       length_km=rng.uniform(0, 5000, m))

    p, q = rows(200), rows(60)
    got = merge_rows(p, q)
    a = np.concatenate([p.a, q.a])
    b = np.concatenate([p.b, q.b])
    order = np.lexsort((b, a))
    for name in ("a", "b", "state", "reason", "length_km"):
        ref = np.concatenate([getattr(p, name), getattr(q, name)])[order]
        assert np.array_equal(getattr(got, name), ref), name
        assert getattr(got, name).dtype == ref.dtype or name in ("a", "b")
