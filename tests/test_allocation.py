"""Tests of meshnet.allocation against independent references (tests/naive_allocation.py)."""

from __future__ import annotations

import naive_allocation as naive
import numpy as np
import pytest

from meshnet.allocation import (
    ALLOCATION_METHODS,
    AllocationConfig,
    allocate,
    allocate_multipath,
    edge_load_bps,
    max_min_fair,
    max_min_fair_multipath,
    proportional_fair,
    proportional_fair_multipath,
)
from meshnet.config import parse_table
from meshnet.errors import MeshnetError, ScenarioError

GBPS = 1e9


def random_instance(rng, n_edges=10, n_flows=7, max_paths=3, max_len=4, p_demand=0.4,
                    p_zero_cap=0.0):
    """A random multi-path problem with every path crossing at least one edge (Gbps units)."""
    capacity = rng.uniform(1.0, 10.0, n_edges)
    capacity[rng.random(n_edges) < p_zero_cap] = 0.0
    n_paths = rng.integers(1, max_paths + 1, n_flows)
    fptr = np.concatenate([[0], np.cumsum(n_paths)])
    paths = [rng.choice(n_edges, rng.integers(1, max_len + 1), replace=False)
             for _ in range(fptr[-1])]
    pptr = np.concatenate([[0], np.cumsum([len(p) for p in paths])])
    pedges = np.concatenate(paths).astype(np.int32)
    frac = np.concatenate([rng.dirichlet(np.ones(k)) for k in n_paths])
    weight = rng.uniform(0.5, 3.0, n_flows)
    demand = np.where(rng.random(n_flows) < p_demand, rng.uniform(0.2, 6.0, n_flows), np.inf)
    return capacity, fptr, pptr, pedges, frac, weight, demand


def single_path(inst):
    """Keep the first path of every flow, as a single-path problem."""
    capacity, fptr, pptr, pedges, frac, weight, demand = inst
    first = fptr[:-1]
    lens = pptr[first + 1] - pptr[first]
    edges = np.concatenate([pedges[pptr[p]:pptr[p + 1]] for p in first]).astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    return capacity, indptr, edges, weight, demand


def check_maxmin_invariants(capacity, fptr, pptr, pedges, frac, weight, demand, path_rate,
                            rtol=1e-9):
    """No resource above capacity; every path is bottlenecked on a saturated resource on which
    no path has a higher weighted rate (the max-min condition), the flow's demand counting as a
    resource shared by its paths."""
    n_flows = fptr.size - 1
    owner = np.repeat(np.arange(n_flows), np.diff(fptr))
    a = weight[owner] * frac
    norm = path_rate / a
    load = edge_load_bps(capacity.size, pptr, pedges, path_rate)
    assert np.all(load <= capacity * (1 + rtol) + 1e-300)
    total = np.bincount(owner, weights=path_rate, minlength=n_flows)
    assert np.all(total <= demand * (1 + rtol))
    for p in range(path_rate.size):
        f = owner[p]
        ok = False
        for e in pedges[pptr[p]:pptr[p + 1]]:
            users = [q for q in range(path_rate.size) if e in pedges[pptr[q]:pptr[q + 1]]]
            if load[e] >= capacity[e] * (1 - rtol) and all(
                    norm[q] <= norm[p] * (1 + rtol) for q in users):
                ok = True
                break
        if not ok and np.isfinite(demand[f]) and total[f] >= demand[f] * (1 - rtol):
            sib = np.flatnonzero(owner == f)
            ok = all(norm[q] <= norm[p] * (1 + rtol) for q in sib)
        assert ok, f"path {p} has no bottleneck"


# ---------------------------------------------------------------------------- worked by hand

def test_three_node_line_by_hand():
    # A -> B at 10 Gbps (edge 0), B -> C at 4 Gbps (edge 1).
    # Flows: A->C (edges 0, 1), A->B (edge 0), B->C (edge 1).
    cap = np.array([10.0, 4.0]) * GBPS
    indptr = np.array([0, 2, 3, 4])
    edges = np.array([0, 1, 0, 1], np.int32)
    # B->C is shared by A->C and B->C: 2 each. A->B gets the 8 left on A->B.
    np.testing.assert_allclose(max_min_fair(cap, indptr, edges) / GBPS, [2, 8, 2], rtol=1e-12)
    # Weights 1, 1, 3: B->C splits 1:3 -> 1 and 3; A->B gets 10 - 1 = 9.
    w = np.array([1.0, 1.0, 3.0])
    np.testing.assert_allclose(max_min_fair(cap, indptr, edges, w) / GBPS, [1, 9, 3],
                               rtol=1e-12)
    # B->C flow wants only 1 Gbps: A->C takes the other 3 on B->C, A->B the 7 left.
    d = np.array([np.inf, np.inf, 1.0]) * GBPS
    np.testing.assert_allclose(max_min_fair(cap, indptr, edges, demand_bps=d) / GBPS,
                               [3, 7, 1], rtol=1e-12)
    load = edge_load_bps(2, indptr, edges, max_min_fair(cap, indptr, edges))
    np.testing.assert_allclose(load, cap, rtol=1e-12)


def test_multipath_by_hand():
    # Flow 0 split 3:1 over edge 0 and edge 1 (10 Gbps each); flow 1 on edge 0 only.
    # Edge 0 weights 0.75 and 1 -> level 10 / 1.75; flow 0's second path has edge 1 alone.
    cap = np.array([10.0, 10.0])
    r = max_min_fair_multipath(cap, [0, 2, 3], [0, 1, 2, 3], [0, 1, 0], [0.75, 0.25, 1.0])
    np.testing.assert_allclose(r.path_rate_bps, [7.5 / 1.75, 10.0, 10 / 1.75], rtol=1e-12)
    np.testing.assert_allclose(r.flow_rate_bps, [7.5 / 1.75 + 10.0, 10 / 1.75], rtol=1e-12)
    # A demand of 12 on flow 0 caps the sum of its two paths (both grow 3:1 until the total
    # reaches 12 at level 12; edge 0 saturates first at level 10/1.75 = 5.714).
    r = max_min_fair_multipath(cap, [0, 2, 3], [0, 1, 2, 3], [0, 1, 0], [0.75, 0.25, 1.0],
                               demand_bps=[12.0, np.inf])
    np.testing.assert_allclose(r.flow_rate_bps[0], 12.0, rtol=1e-12)
    np.testing.assert_allclose(r.path_rate_bps, [7.5 / 1.75, 12 - 7.5 / 1.75, 10 / 1.75],
                               rtol=1e-12)


# ------------------------------------------------------------------------- edge cases

def test_zero_capacity_and_infinite_edges():
    cap = np.array([0.0, 5.0, np.inf])
    indptr = np.array([0, 2, 3, 4, 5])
    edges = np.array([0, 1, 1, 2, 2], np.int32)
    rates = max_min_fair(cap, indptr, edges, demand_bps=[np.inf, np.inf, 3.0, np.inf])
    # flow 0 crosses the dead edge; flow 1 gets edge 1 alone; flow 2 its demand; flow 3 is
    # limited by nothing.
    assert rates.tolist() == [0.0, 5.0, 3.0, np.inf]


def test_flows_without_edges_and_unreachable():
    cap = np.array([4.0])
    indptr = np.array([0, 0, 0, 1, 2])
    edges = np.array([0, 0], np.int32)
    demand = np.array([2.0, np.inf, np.inf, np.inf])
    reachable = np.array([True, True, False, True])
    rates = max_min_fair(cap, indptr, edges, demand_bps=demand, reachable=reachable)
    # local flows get their demand (inf if elastic); unreachable flow 2 gets 0 and loads
    # nothing, so flow 3 has the whole edge.
    assert rates.tolist() == [2.0, np.inf, 0.0, 4.0]
    r = max_min_fair_multipath(cap, [0, 0, 1], [0, 1], [0])
    assert r.flow_rate_bps.tolist() == [0.0, 4.0]  # a flow with no paths gets 0


def test_zero_weight_and_repeated_edge():
    # a zero-weight flow gets nothing; a path crossing edge 0 twice uses it twice
    rates = max_min_fair(np.array([10.0, 6.0]), [0, 1, 3, 4], [1, 0, 0, 1], weight=[0.0, 1, 1])
    assert rates.tolist() == [0.0, 5.0, 6.0]
    rates = proportional_fair(np.array([10.0, 6.0]), [0, 1, 3, 4], [1, 0, 0, 1],
                              weight=[0.0, 1, 1])
    np.testing.assert_allclose(rates, [0.0, 5.0, 6.0], rtol=1e-8)
    load = edge_load_bps(2, [0, 1, 3, 4], [1, 0, 0, 1], [0.0, 5.0, 6.0])
    assert load.tolist() == [10.0, 6.0]


def test_empty_problem():
    assert max_min_fair(np.zeros(0), [0], np.zeros(0, np.int32)).size == 0
    assert proportional_fair(np.ones(3), [0], np.zeros(0, np.int32)).size == 0


def test_validation_errors():
    cap = np.array([1.0, 2.0])
    good = dict(flow_edge_indptr=[0, 1, 2], flow_edges=[0, 1])
    with pytest.raises(MeshnetError, match="negative"):
        max_min_fair(np.array([1.0, -1.0]), **good)
    with pytest.raises(MeshnetError, match="outside"):
        max_min_fair(cap, [0, 1, 2], [0, 2])
    with pytest.raises(MeshnetError, match="must end"):
        max_min_fair(cap, [0, 1, 3], [0, 1])
    with pytest.raises(MeshnetError, match="decreases"):
        max_min_fair(cap, [0, 2, 1, 2], [0, 1])
    with pytest.raises(MeshnetError, match="entries, expected 2"):
        max_min_fair(cap, **good, weight=[1.0])
    with pytest.raises(MeshnetError, match="weight"):
        max_min_fair(cap, **good, weight=[1.0, -1.0])
    with pytest.raises(MeshnetError, match="weight"):
        max_min_fair(cap, **good, weight=[1.0, np.inf])
    with pytest.raises(MeshnetError, match="demand"):
        max_min_fair(cap, **good, demand_bps=[1.0, np.nan])
    with pytest.raises(MeshnetError, match="integers"):
        max_min_fair(cap, [0, 1, 2], [0.0, 1.5])
    with pytest.raises(MeshnetError, match="sums to"):
        max_min_fair_multipath(cap, [0, 2], [0, 1, 2], [0, 1], [0.5, 0.6])
    with pytest.raises(MeshnetError, match="flow_path_indptr"):
        max_min_fair_multipath(cap, [0, 3], [0, 1, 2], [0, 1])


# ---------------------------------------------------------------------- references

@pytest.mark.parametrize("seed", range(24))
def test_maxmin_matches_lp_reference(seed):
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, n_edges=int(rng.integers(4, 12)), n_flows=int(rng.integers(2, 8)),
                           p_zero_cap=0.1 if seed % 3 == 0 else 0.0)
    capacity, fptr, pptr, pedges, frac, weight, demand = inst
    ref = naive.maxmin_lp(*inst)
    got = max_min_fair_multipath(capacity * GBPS, fptr, pptr, pedges, frac, weight,
                                 demand * GBPS)
    np.testing.assert_allclose(got.path_rate_bps / GBPS, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        got.flow_rate_bps, np.bincount(np.repeat(np.arange(fptr.size - 1), np.diff(fptr)),
                                       weights=got.path_rate_bps), rtol=1e-12)
    # single-path form of the same instance
    cap1, indptr1, edges1, w1, d1 = single_path(inst)
    ref1 = naive.maxmin_lp(cap1, np.arange(indptr1.size), indptr1, edges1,
                           np.ones(indptr1.size - 1), w1, d1)
    np.testing.assert_allclose(max_min_fair(cap1, indptr1, edges1, w1, d1), ref1, rtol=1e-6,
                               atol=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_maxmin_matches_python_and_numpy_twins(seed):
    rng = np.random.default_rng(100 + seed)
    inst = random_instance(rng, n_edges=25, n_flows=30, max_paths=4, max_len=6,
                           p_zero_cap=0.05)
    got = max_min_fair_multipath(*inst).path_rate_bps
    np.testing.assert_allclose(got, naive.maxmin_python(*inst), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, naive.maxmin_numpy(*inst), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_maxmin_invariants_large(seed):
    rng = np.random.default_rng(200 + seed)
    inst = random_instance(rng, n_edges=60, n_flows=150, max_paths=4, max_len=8,
                           p_demand=0.3)
    capacity, fptr, pptr, pedges, frac, weight, demand = inst
    capacity = capacity * GBPS
    demand = demand * GBPS
    got = max_min_fair_multipath(capacity, fptr, pptr, pedges, frac, weight, demand)
    check_maxmin_invariants(capacity, fptr, pptr, pedges, frac, weight, demand,
                            got.path_rate_bps)


def test_integer_ties_and_repeated_levels():
    # Many flows on equal capacities: many resources saturate at exactly the same level.
    rng = np.random.default_rng(7)
    n_edges, n_flows = 20, 200
    lens = rng.integers(1, 4, n_flows)
    edges = np.concatenate([rng.choice(n_edges, k, replace=False) for k in lens])
    indptr = np.concatenate([[0], np.cumsum(lens)])
    cap = np.full(n_edges, 100.0)
    got = max_min_fair(cap, indptr, edges)
    ref = naive.maxmin_python(cap, np.arange(n_flows + 1), indptr, edges, np.ones(n_flows),
                              np.ones(n_flows), np.full(n_flows, np.inf))
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_scaling_and_permutation():
    rng = np.random.default_rng(11)
    capacity, indptr, edges, w, d = single_path(random_instance(rng, 15, 40, 1, 5))
    base = max_min_fair(capacity, indptr, edges, w, d)
    np.testing.assert_allclose(max_min_fair(capacity * 1e9, indptr, edges, w * 7, d * 1e9),
                               base * 1e9, rtol=1e-12)
    perm = rng.permutation(indptr.size - 1)
    lens = np.diff(indptr)[perm]
    pedges = np.concatenate([edges[indptr[f]:indptr[f + 1]] for f in perm])
    pptr = np.concatenate([[0], np.cumsum(lens)])
    np.testing.assert_allclose(max_min_fair(capacity, pptr, pedges, w[perm], d[perm]),
                               base[perm], rtol=1e-12)


# ---------------------------------------------------------------------- proportional

def test_proportional_closed_form():
    # Linear network (Kelly): a long flow over n unit links and one short flow per link:
    # long flow 1 / (n + 1), short flows n / (n + 1).
    n = 4
    indptr = np.concatenate([[0, n], n + np.arange(1, n + 1)])
    edges = np.concatenate([np.arange(n), np.arange(n)]).astype(np.int32)
    got = proportional_fair(np.ones(n) * GBPS, indptr, edges) / GBPS
    np.testing.assert_allclose(got, [1 / (n + 1)] + [n / (n + 1)] * n, rtol=1e-7)


@pytest.mark.parametrize("seed", range(8))
def test_proportional_matches_references(seed):
    rng = np.random.default_rng(300 + seed)
    inst = random_instance(rng, n_edges=8, n_flows=6, max_paths=2, max_len=3)
    capacity, fptr, pptr, pedges, frac, weight, demand = inst
    got = proportional_fair_multipath(capacity * GBPS, fptr, pptr, pedges, frac, weight,
                                      demand * GBPS)
    x = got.path_rate_bps / GBPS
    load = edge_load_bps(capacity.size, pptr, pedges, x)
    assert np.all(load <= capacity * (1 + 1e-9))
    owner = np.repeat(np.arange(fptr.size - 1), np.diff(fptr))
    assert np.all(np.bincount(owner, weights=x, minlength=fptr.size - 1) <= demand * (1 + 1e-9))
    assert naive.proportional_gap(*inst, x) < 1e-8
    np.testing.assert_allclose(x, naive.proportional_slsqp(*inst), rtol=1e-4)


def test_proportional_degenerate_prices_medium():
    # Many flows over few edges, and pairs of edges carrying exactly the same flows (the dual
    # prices are then not unique): the rates must still be optimal (LP certificate).
    rng = np.random.default_rng(400)
    capacity, fptr, pptr, pedges, frac, weight, demand = random_instance(
        rng, n_edges=30, n_flows=120, max_paths=3, max_len=5)
    # edge 30 + e duplicates edge e for every path, at a slightly higher capacity
    lens = np.diff(pptr)
    pedges2 = np.concatenate([np.concatenate([pedges[pptr[p]:pptr[p + 1]],
                                              30 + pedges[pptr[p]:pptr[p + 1]]])
                              for p in range(lens.size)]).astype(np.int32)
    pptr2 = np.concatenate([[0], np.cumsum(2 * lens)])
    capacity2 = np.concatenate([capacity, capacity * 1.5])
    inst = (capacity2, fptr, pptr2, pedges2, frac, weight, demand)
    x = proportional_fair_multipath(*inst).path_rate_bps
    assert np.all(edge_load_bps(60, pptr2, pedges2, x) <= capacity2 * (1 + 1e-9))
    assert naive.proportional_gap(*inst, x) < 1e-8


def test_proportional_edge_cases():
    cap = np.array([0.0, 5.0, np.inf])
    rates = proportional_fair(cap, [0, 2, 3, 4, 5], [0, 1, 1, 2, 2],
                              demand_bps=[np.inf, np.inf, 3.0, np.inf])
    np.testing.assert_allclose(rates, [0.0, 5.0, 3.0, np.inf], rtol=1e-8)


# ---------------------------------------------------------------------- registry, config

def test_registry_and_config():
    assert ALLOCATION_METHODS.names() == ["maxmin", "proportional"]
    cap = np.array([10.0, 4.0])
    np.testing.assert_array_equal(allocate("maxmin", cap, [0, 2, 3, 4], [0, 1, 0, 1]),
                                  [2.0, 8.0, 2.0])
    np.testing.assert_allclose(allocate("proportional", cap, [0, 2, 3, 4], [0, 1, 0, 1]),
                               proportional_fair(cap, [0, 2, 3, 4], [0, 1, 0, 1]))
    r = allocate_multipath("maxmin", cap, [0, 2], [0, 1, 2], [0, 1])
    assert r.flow_rate_bps.tolist() == [14.0]
    with pytest.raises(ScenarioError, match="did you mean 'maxmin'"):
        allocate("maxmn", cap, [0, 1], [0])
    assert parse_table(AllocationConfig, {}, "allocation", "s.toml").method == "maxmin"
    with pytest.raises(ScenarioError, match=r"s.toml: \[allocation\].method"):
        parse_table(AllocationConfig, {"method": "fifo"}, "allocation", "s.toml")


def test_edge_load_matches_numpy():
    rng = np.random.default_rng(5)
    capacity, indptr, edges, w, d = single_path(random_instance(rng, 12, 50, 1, 6))
    rates = rng.random(indptr.size - 1)
    ref = np.bincount(edges, weights=np.repeat(rates, np.diff(indptr)), minlength=12)
    np.testing.assert_allclose(edge_load_bps(12, indptr, edges, rates), ref, rtol=1e-12)
