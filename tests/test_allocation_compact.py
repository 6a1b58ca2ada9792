"""The allocation runs over the edges its subflows use only: the same rates, bit for bit, as
the kernel over every edge (the twin), and the renumbering equals numpy's unique."""

from __future__ import annotations

import numpy as np
import pytest

from meshnet.allocation import max_min_fair_multipath
from meshnet.allocation._problem import build_problem
from meshnet.kernels import _allocation as k


@pytest.mark.parametrize("seed", range(6))
def test_compact_edges_equals_unique(seed):
    rng = np.random.default_rng(seed)
    sub_edges = rng.integers(0, 500, 300).astype(np.int32)
    used, new = k.compact_edges(1000, sub_edges)
    ref_used, ref_new = np.unique(sub_edges, return_inverse=True)
    assert np.array_equal(used, ref_used) and np.array_equal(new, ref_new.ravel())


@pytest.mark.parametrize("seed", range(6))
def test_compacted_rates_equal_full_kernel(seed):
    rng = np.random.default_rng(seed)
    n_edges, n_flows = 2000, 60  # most edges unused, as on a big mesh
    capacity = rng.choice([1e9, 1e10, 1e11], n_edges)
    capacity[rng.random(n_edges) < 0.02] = np.inf
    n_paths = rng.integers(1, 4, n_flows)
    fptr = np.concatenate([[0], np.cumsum(n_paths)])
    hot = rng.choice(n_edges, 150, replace=False)  # shared edges: ties and bottlenecks
    paths = [rng.choice(hot, rng.integers(1, 8), replace=False) for _ in range(fptr[-1])]
    pptr = np.concatenate([[0], np.cumsum([len(p) for p in paths])])
    pedges = np.concatenate(paths).astype(np.int32)
    frac = np.concatenate([rng.dirichlet(np.ones(m)) for m in n_paths])
    weight = rng.choice([1.0, 2.0], n_flows)
    weight[0] = 0.0
    demand = np.where(rng.random(n_flows) < 0.3, 5e9, np.inf)
    got = max_min_fair_multipath(capacity, fptr, pptr, pedges, frac, weight, demand)
    prob = build_problem(capacity, fptr, pptr, pedges, path_fraction=frac, weight=weight,
                         demand_bps=demand)
    full = k.maxmin_progressive_filling(prob.capacity_bps, prob.sub_indptr, prob.sub_edges,
                                        prob.sub_weight, prob.group, prob.group_cap_bps)
    assert np.array_equal(got.path_rate_bps, full)
