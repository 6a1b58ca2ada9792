"""The LP optimum: equal to an independent edge-based LP, never below any policy."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from research_scenario import write_small
from scipy.optimize import linprog
from scipy.sparse import lil_array

from meshnet.allocation import allocate_multipath
from meshnet.cli import main
from meshnet.graph import Snapshot
from meshnet.routing import make_policy
from meshnet.routing.config import RoutingConfig
from meshnet.routing.optimum import solve_optimum


def _random_snapshot(seed, n_sat=9, n_ground=3, m=16):
    """A connected random mesh of satellites plus ground stations hanging off 2 satellites."""
    rng = np.random.default_rng(seed)
    g = nx.gnm_random_graph(n_sat, m, seed=int(seed))
    while not nx.is_connected(g):
        u, v = rng.choice(n_sat, 2, replace=False)
        g.add_edge(int(u), int(v))
    a, b = [u for u, v in g.edges], [v for u, v in g.edges]
    for k in range(n_ground):
        for s in rng.choice(n_sat, 2, replace=False):
            a.append(n_sat + k)
            b.append(int(s))
    n = n_sat + n_ground
    names = np.array([f"n{i}" for i in range(n)], dtype=object)
    kind = np.array([0] * n_sat + [1] * n_ground, np.int8)
    length = rng.uniform(300, 3000, len(a))
    cap = rng.choice([10e9, 20e9, 40e9], len(a))
    return Snapshot.from_links(0, names, kind, a, b, length, cap)


def _edge_lp(snap, src, dst, demand, objective, lo=None):
    """Independent reference: the arc-flow LP (one flow variable per commodity and directed
    edge, conservation at every node, no transit through ground stations), in Gbps."""
    demand = np.asarray(demand, float) / 1e9
    n, e = snap.n_nodes, snap.n_edges
    tail, head = snap.edge_sources(), snap.indices
    k = len(src)
    relay = snap.node_kind == 0
    nv = k * e + k + 1  # flows, per-commodity rate t_k, U
    cost = np.zeros(nv)
    bounds = [(0, None)] * nv
    if objective == "max_throughput":
        cost[k * e:k * e + k] = -1.0
        for i in range(k):
            low = 0.0 if lo is None else lo[i] / 1e9
            bounds[k * e + i] = (low, demand[i] if np.isfinite(demand[i]) else None)
        bounds[-1] = (1.0, 1.0)
    else:
        cost[-1] = 1.0
        for i in range(k):
            bounds[k * e + i] = (demand[i], demand[i])
    a_eq = lil_array((k * n, nv))
    for i in range(k):
        for j in range(e):
            a_eq[i * n + tail[j], i * e + j] += 1.0
            a_eq[i * n + head[j], i * e + j] -= 1.0
            # no transit: a non-relay node that is not an end of commodity i carries nothing
            for node in (tail[j], head[j]):
                if not relay[node] and node not in (src[i], dst[i]):
                    bounds[i * e + j] = (0, 0)
        a_eq[i * n + src[i], k * e + i] -= 1.0
        a_eq[i * n + dst[i], k * e + i] += 1.0
    a_ub = lil_array((e, nv))
    for j in range(e):
        for i in range(k):
            a_ub[j, i * e + j] = 1.0
        a_ub[j, nv - 1] = -snap.capacity_bps[j] / 1e9
    res = linprog(cost, A_ub=a_ub.tocsr(), b_ub=np.zeros(e), A_eq=a_eq.tocsr(),
                  b_eq=np.zeros(k * n), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return -res.fun * 1e9 if objective == "max_throughput" else res.fun


def _pairs(snap, seed, count=5):
    rng = np.random.default_rng(seed + 100)
    nodes = np.arange(snap.n_nodes)
    pairs = set()
    while len(pairs) < count:
        u, v = rng.choice(nodes, 2, replace=False)
        pairs.add((int(u), int(v)))
    return np.array(sorted(pairs))


@pytest.mark.parametrize("seed", range(6))
def test_equals_edge_lp(seed):
    snap = _random_snapshot(seed)
    pairs = _pairs(snap, seed)
    rng = np.random.default_rng(seed)
    demand = rng.uniform(5e9, 60e9, len(pairs))
    for objective in ("max_throughput", "min_max_utilisation"):
        ref = _edge_lp(snap, pairs[:, 0], pairs[:, 1], demand, objective)
        res = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, objective=objective,
                            k_paths=1, gap=1e-9)
        scale = 1e9 if objective == "max_throughput" else 1.0
        assert res.value / scale == pytest.approx(ref / scale, rel=1e-6, abs=1e-6), objective
        assert res.gap <= 1e-6
        # k paths covering every simple path, no column generation: the same optimum
        full = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, objective=objective,
                             k_paths=32, column_generation=False)
        if full.n_paths < 32 * len(pairs):
            assert full.value / scale == pytest.approx(ref / scale, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_one_path_each_is_bounded_by_the_stated_gap(seed):
    snap = _random_snapshot(seed, n_sat=12, m=24)
    pairs = _pairs(snap, seed, 6)
    demand = np.full(len(pairs), 30e9)
    ref = _edge_lp(snap, pairs[:, 0], pairs[:, 1], demand, "max_throughput")
    res = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, k_paths=1,
                        column_generation=False)
    assert res.value <= ref * (1 + 1e-9)
    assert res.bound >= ref * (1 - 1e-9)  # the dual bound holds over all paths
    ref_u = _edge_lp(snap, pairs[:, 0], pairs[:, 1], demand, "min_max_utilisation")
    res_u = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, k_paths=1,
                          column_generation=False, objective="min_max_utilisation")
    assert res_u.value >= ref_u * (1 - 1e-9)
    assert res_u.bound <= ref_u * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_lower_bounds_equal_edge_lp(seed):
    """Some pairs held at a fixed rate (as elastic training traffic is in runs)."""
    snap = _random_snapshot(seed)
    pairs = _pairs(snap, seed, 6)
    demand = np.full(len(pairs), 40e9)
    lo = np.where(np.arange(len(pairs)) % 2 == 0, 3e9, 0.0)
    ref = _edge_lp(snap, pairs[:, 0], pairs[:, 1], demand, "max_throughput", lo)
    res = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, min_bps=lo, k_paths=1,
                        gap=1e-9)
    assert res.value == pytest.approx(ref, rel=1e-6)
    assert (res.pair_rate_bps >= lo * (1 - 1e-9)).all()
    one = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand, min_bps=lo, k_paths=1,
                        column_generation=False)
    assert one.bound >= ref * (1 - 1e-9) >= one.value * (1 - 2e-9)


def test_elastic_pairs_are_capped_by_their_ends():
    snap = _random_snapshot(3)
    pairs = _pairs(snap, 3)
    inf = np.full(len(pairs), np.inf)
    res = solve_optimum(snap, pairs[:, 0], pairs[:, 1], inf)
    assert res.value == pytest.approx(_edge_lp(snap, pairs[:, 0], pairs[:, 1], inf,
                                               "max_throughput"), rel=1e-6)
    load = res.edge_load_bps
    assert (load <= snap.capacity_bps * (1 + 1e-6)).all()
    assert res.pair_rate_bps.sum() == pytest.approx(res.value, rel=1e-9)


@pytest.mark.parametrize("name", ["shortest_delay", "min_hop", "k_shortest", "ecmp",
                                  "widest", "edge_disjoint", "load_aware"])
def test_no_policy_beats_the_optimum(name):
    for seed in range(3):
        snap = _random_snapshot(seed, n_sat=12, m=22)
        pairs = _pairs(snap, seed, 8)
        demand = np.full(len(pairs), 25e9)
        routes = make_policy(RoutingConfig(policy=name), snap.n_nodes).route(
            snap, pairs[:, 0], pairs[:, 1])
        ok = routes.pair_reachable
        idx = np.flatnonzero(ok)
        pp = routes.pair_path_indptr
        counts = pp[idx + 1] - pp[idx]
        paths = np.concatenate([np.arange(pp[i], pp[i + 1]) for i in idx])
        fpi = np.concatenate([[0], np.cumsum(counts)])
        ep = routes.path_edge_indptr
        pei = np.concatenate([[0], np.cumsum(ep[paths + 1] - ep[paths])])
        pe = np.concatenate([routes.edges_of(j) for j in paths]).astype(np.int32)
        rates = allocate_multipath("maxmin", snap.capacity_bps, fpi, pei, pe,
                                   routes.path_fraction[paths], demand_bps=demand[idx])
        carried = rates.flow_rate_bps.sum()
        opt = solve_optimum(snap, pairs[:, 0], pairs[:, 1], demand)
        assert carried <= opt.value * (1 + 1e-9), (name, seed)
        # the least worst utilisation for the policy's own per-pair rates
        load = np.bincount(pe, weights=np.repeat(rates.path_rate_bps, np.diff(pei)),
                           minlength=snap.n_edges)
        pol_u = (load / snap.capacity_bps).max()
        pos = rates.flow_rate_bps > 0
        mm = solve_optimum(snap, pairs[idx[pos], 0], pairs[idx[pos], 1],
                           rates.flow_rate_bps[pos], objective="min_max_utilisation")
        assert mm.value <= pol_u * (1 + 1e-9), (name, seed)


def test_bad_inputs():
    from meshnet.errors import MeshnetError

    snap = _random_snapshot(0)
    with pytest.raises(MeshnetError, match="objective must be one of"):
        solve_optimum(snap, [0], [1], [1e9], objective="fastest")
    with pytest.raises(MeshnetError, match="finite demands"):
        solve_optimum(snap, [0], [1], [np.inf], objective="min_max_utilisation")
    with pytest.raises(MeshnetError, match="same length"):
        solve_optimum(snap, [0, 1], [1], [1e9])


def test_run_reports_fractions_of_the_optimum(tmp_path, capsys):
    scen = write_small(tmp_path, routing="[routing.optimum]\nenabled = true\nevery_s = 4")
    out = tmp_path / "out"
    code = main(["run", str(scen), "--out", str(out), "-q", "--no-plots"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "vs LP optimum          throughput" in printed.out
    opt = json.loads((out / "summary.json").read_text())["optimum"]
    assert opt["samples"] == 5  # t = 0, 4, 8, 12, 16 of 20 s
    for s in opt["series"]:
        assert s["optimum_gbps"] >= s["policy_gbps"] * (1 - 1e-6)
        assert 0 < s["throughput_fraction"] <= 1 + 1e-6
        if s["util_fraction"] is not None:
            assert s["optimum_max_util"] <= s["policy_max_util"] * (1 + 1e-6)
        assert s["throughput_gap"] <= 1e-3
    assert opt["mean_solve_s"] > 0
    job = opt["jobs"]["job"]
    assert 0 < job["optimum_comm_s_estimate"] <= job["comm_s"] * (1 + 1e-9)
