"""Property-based tests: random graphs, demands and masks against independent references.

Each property states a documented rule and checks it against a reference that shares no code
with meshnet: scipy.sparse.csgraph for distances, networkx for simple paths, scipy's HiGHS LP
solver for weighted max-min water-filling, and bookkeeping invariants (capacities never
exceeded, bytes conserved) for the fluid engine. Integer edge weights make ties exact, so the
tie rules can be checked exactly too.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra as sp_dijkstra

from meshnet.allocation import edge_load_bps, max_min_fair, max_min_fair_multipath
from meshnet.engine import FluidEngine
from meshnet.graph import Snapshot
from meshnet.routing import (
    ecmp_next_hops,
    next_hop_table,
    shortest_path_lengths,
    widest_paths,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- strategies


@st.composite
def graphs(draw, min_n=2, max_n=9, max_w=4):
    """Undirected simple graph as a symmetric CSR with integer weights 1..max_w (as float)."""
    n = draw(st.integers(min_n, max_n))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1,
                           max_size=len(pairs))) if pairs else []
    w = {}
    for u, v in chosen:
        w[(u, v)] = w[(v, u)] = float(draw(st.integers(1, max_w)))
    indptr, indices, weights = [0], [], []
    for u in range(n):
        nb = sorted(v for (x, v) in w if x == u)
        indices += nb
        weights += [w[(u, v)] for v in nb]
        indptr.append(len(indices))
    return (np.array(indptr, np.int64), np.array(indices, np.int32),
            np.array(weights, np.float64))


def dense(g, weights=None):
    indptr, indices, w = g
    n = indptr.size - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    return csr_matrix((w if weights is None else weights, (rows, indices)), shape=(n, n))


def edge_sources(g):
    indptr = g[0]
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


# ----------------------------------------------------------------------------- shortest paths


@SETTINGS
@given(g=graphs())
def test_distances_equal_scipy_and_ties_go_to_the_lowest_predecessor(g):
    indptr, indices, w = g
    n = indptr.size - 1
    ref = sp_dijkstra(dense(g), directed=True)
    # the parallel kernel against the reference too, not only against its serial twin
    dist, pred = shortest_path_lengths(g, return_predecessors=True, parallel=True)
    np.testing.assert_array_equal(dist, ref)  # integer weights: exact
    d2, p2 = shortest_path_lengths(g, return_predecessors=True, parallel=False)
    np.testing.assert_array_equal(d2, ref)
    np.testing.assert_array_equal(p2, pred)
    src = edge_sources(g)
    for s in range(n):
        for v in range(n):
            if v == s or not np.isfinite(ref[s, v]):
                assert pred[s, v] == -1
                continue
            # every u with d(s,u) + w(u,v) = d(s,v) is a valid predecessor; the lowest id wins
            into = indices == v
            ok = src[into][ref[s, src[into]] + w[into] == ref[s, v]]
            assert pred[s, v] == ok.min(), (s, v)


@SETTINGS
@given(g=graphs(), data=st.data())
def test_non_relay_nodes_never_inside_a_path(g, data):
    indptr, indices, w = g
    n = indptr.size - 1
    relay = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    dist = shortest_path_lengths(g, relay_mask=relay, parallel=True)
    hops = shortest_path_lengths(g, weight="hops", relay_mask=relay, parallel=True)
    m = dense(g).toarray()
    for s in range(n):
        for t in range(n):
            # reference: only relay nodes and the two endpoints may be crossed
            allowed = relay.copy()
            allowed[[s, t]] = True
            sub = m * allowed[:, None] * allowed[None, :]
            d = sp_dijkstra(csr_matrix(sub), indices=s)[t]
            h = sp_dijkstra(csr_matrix((sub > 0).astype(float)), indices=s)[t]
            assert dist[s, t] == d, (s, t)
            assert hops[s, t] == h, (s, t)


@SETTINGS
@given(g=graphs(), data=st.data())
def test_next_hops_follow_edges_and_reach_the_destination_at_the_shortest_cost(g, data):
    indptr, indices, w = g
    n = indptr.size - 1
    # Asymmetric weights on a symmetric structure: the table must use the cost u -> d.
    wa = np.array(data.draw(st.lists(st.integers(1, 5), min_size=w.size, max_size=w.size)),
                  float)
    ref = sp_dijkstra(dense(g, wa), directed=True)
    dests = np.arange(n)
    table = next_hop_table((indptr, indices, wa), dests, parallel=data.draw(st.booleans()))
    src = edge_sources(g)
    for d in dests:
        for u in range(n):
            if u == d or not np.isfinite(ref[u, d]):
                continue
            cost, x, seen = 0.0, u, 0
            while x != d:
                e = table.next_edge[d, x]
                assert e >= 0 and src[e] == x and indices[e] == table.next_hop[d, x]
                cost += wa[e]
                x = indices[e]
                seen += 1
                assert seen <= n
            assert cost == ref[u, d], (u, d)


@SETTINGS
@given(g=graphs(max_w=3), rtol=st.sampled_from([0.0, 0.2, 0.5]))
def test_ecmp_next_hops_are_the_near_shortest_neighbours(g, rtol):
    indptr, indices, w = g
    n = indptr.size - 1
    ref = sp_dijkstra(dense(g), directed=True)
    e = ecmp_next_hops(g, np.arange(n), rtol=rtol, parallel=True)
    src = edge_sources(g)
    for d in range(n):
        mask = e.edge_mask[d]
        for k in range(indices.size):
            u, v = src[k], indices[k]
            du, dv = ref[u, d], ref[v, d]
            if u == d or not np.isfinite(du):
                assert not mask[k]
                continue
            within = w[k] + dv <= du * (1 + rtol) + 1e-12
            if mask[k]:
                assert within, (d, u, v)
            elif dv < du:
                assert not within, (d, u, v)  # a strictly closer neighbour within rtol is a hop
        # the next-hop graph is acyclic: a topological order exists
        dag = nx.DiGraph()
        dag.add_nodes_from(range(n))
        dag.add_edges_from(zip(src[mask].tolist(), indices[mask].tolist(), strict=True))
        assert nx.is_directed_acyclic_graph(dag)


@SETTINGS
@given(g=graphs(max_n=7), data=st.data())
def test_widest_paths_width_is_the_best_bottleneck(g, data):
    indptr, indices, w = g
    n = indptr.size - 1
    src = edge_sources(g)
    caps = {}
    cap = np.empty(w.size)
    for k in range(w.size):
        key = (min(src[k], indices[k]), max(src[k], indices[k]))
        if key not in caps:
            caps[key] = float(data.draw(st.integers(1, 4)))
        cap[k] = caps[key]
    width, dist = widest_paths(g, capacity=cap, parallel=data.draw(st.booleans()))
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for k in range(w.size):
        G.add_edge(int(src[k]), int(indices[k]), cap=cap[k], w=w[k])
    for s in range(n):
        for t in range(n):
            if s == t:
                continue
            paths = list(nx.all_simple_paths(G, s, t))
            if not paths:
                assert width[s, t] == 0 and dist[s, t] == np.inf
                continue
            def hops(p):
                return list(zip(p[:-1], p[1:], strict=True))

            best = max(min(G[a][b]["cap"] for a, b in hops(p)) for p in paths)
            assert width[s, t] == best, (s, t)
            # dist is the weight of one widest path
            widest_w = {sum(G[a][b]["w"] for a, b in hops(p)) for p in paths
                        if min(G[a][b]["cap"] for a, b in hops(p)) == best}
            assert dist[s, t] in widest_w, (s, t)


# ----------------------------------------------------------------------------- max-min


def waterfill_lp(cap, members, weight, demand, group):
    """Weighted max-min fair rates by LP water-filling (HiGHS), independent of meshnet.

    ``members[s]`` lists the resources (edges) of subflow ``s``; ``group[s]`` is its flow,
    whose rates sum to at most ``demand[flow]``. Raise the common level ``t`` of the unfrozen
    subflows (rate = weight t) as far as the constraints allow; freeze every subflow that
    cannot exceed its share at that level; repeat.
    """
    n_sub = len(members)
    n_res = cap.size
    a_rows, b = [], []
    for r in range(n_res):
        row = np.zeros(n_sub)
        for s in range(n_sub):
            if r in members[s]:
                row[s] = 1.0
        a_rows.append(row)
        b.append(cap[r])
    for f in range(demand.size):
        if np.isfinite(demand[f]):
            a_rows.append(np.array([1.0 if group[s] == f else 0.0 for s in range(n_sub)]))
            b.append(demand[f])
    A = np.array(a_rows).reshape(-1, n_sub)
    b = np.array(b)
    rate = np.zeros(n_sub)
    frozen = weight <= 0
    while not frozen.all():
        live = ~frozen
        # variables: x (n_sub), t
        c = np.zeros(n_sub + 1)
        c[-1] = -1.0
        A_ub = np.hstack([A, np.zeros((A.shape[0], 1))])
        A_eq, b_eq = [], []
        for s in range(n_sub):
            row = np.zeros(n_sub + 1)
            row[s] = 1.0
            if live[s]:
                row[-1] = -weight[s]
                A_eq.append(row)
                b_eq.append(0.0)
            else:
                A_eq.append(row)
                b_eq.append(rate[s])
        res = linprog(c, A_ub=A_ub, b_ub=b, A_eq=np.array(A_eq), b_eq=np.array(b_eq),
                      bounds=[(0, None)] * (n_sub + 1), method="highs")
        assert res.status == 0
        t = res.x[-1]
        newly = []
        for s in np.flatnonzero(live):
            # can s go above weight t while every other live subflow keeps weight t?
            c2 = np.zeros(n_sub)
            c2[s] = -1.0
            bounds = []
            for q in range(n_sub):
                if frozen[q]:
                    bounds.append((rate[q], rate[q]))
                elif q == s:
                    bounds.append((weight[q] * t, None))
                else:
                    bounds.append((weight[q] * t, None))
            r2 = linprog(c2, A_ub=A, b_ub=b, bounds=bounds, method="highs")
            assert r2.status == 0
            if -r2.fun <= weight[s] * t * (1 + 1e-9) + 1e-9:
                newly.append(s)
        assert newly, "water-filling made no progress"
        for s in newly:
            rate[s] = weight[s] * t
            frozen[s] = True
    return rate


@st.composite
def allocation_problems(draw):
    n_edges = draw(st.integers(1, 5))
    n_flows = draw(st.integers(1, 5))
    cap = np.array(draw(st.lists(st.integers(1, 10), min_size=n_edges, max_size=n_edges)),
                   float)
    paths_per_flow = draw(st.lists(st.integers(1, 2), min_size=n_flows, max_size=n_flows))
    path_edges = []
    for _ in range(sum(paths_per_flow)):
        path_edges.append(sorted(draw(st.sets(st.integers(0, n_edges - 1), min_size=1,
                                              max_size=n_edges))))
    weight = np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=n_flows,
                                    max_size=n_flows)))
    demand = np.array(draw(st.lists(st.sampled_from([np.inf, np.inf, 1.0, 2.5, 6.0]),
                                    min_size=n_flows, max_size=n_flows)))
    return cap, paths_per_flow, path_edges, weight, demand


@SETTINGS
@given(p=allocation_problems())
def test_maxmin_equals_lp_waterfilling_and_respects_capacities(p):
    cap, ppf, path_edges, weight, demand = p
    fptr = np.concatenate([[0], np.cumsum(ppf)])
    pptr = np.concatenate([[0], np.cumsum([len(e) for e in path_edges])])
    pe = np.concatenate(path_edges).astype(np.int32)
    r = max_min_fair_multipath(cap, fptr, pptr, pe, weight=weight, demand_bps=demand)
    flow_of = np.repeat(np.arange(len(ppf)), ppf)
    sub_w = weight[flow_of] / np.asarray(ppf)[flow_of]
    ref = waterfill_lp(cap, [set(e) for e in path_edges], sub_w, demand, flow_of)
    np.testing.assert_allclose(r.path_rate_bps, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r.flow_rate_bps, np.bincount(flow_of, ref, len(ppf)),
                               rtol=1e-6, atol=1e-9)
    load = edge_load_bps(cap.size, pptr, pe, r.path_rate_bps)
    assert np.all(load <= cap * (1 + 1e-9))
    assert np.all(r.flow_rate_bps <= demand * (1 + 1e-9))


@SETTINGS
@given(p=allocation_problems(), data=st.data())
def test_single_path_maxmin_bottleneck_property(p, data):
    """Every flow below its demand crosses a saturated edge on which no flow has a higher
    rate per weight (the defining property of weighted max-min fairness); unreachable and
    zero-weight flows get nothing."""
    cap, _, path_edges, weight_all, demand_all = p
    f = len(path_edges)
    weight = np.resize(weight_all, f)
    weight[data.draw(st.integers(0, f - 1))] *= data.draw(st.sampled_from([1.0, 0.0]))
    demand = np.resize(demand_all, f)
    reach = np.array(data.draw(st.lists(st.booleans(), min_size=f, max_size=f)))
    ptr = np.concatenate([[0], np.cumsum([len(e) for e in path_edges])])
    pe = np.concatenate(path_edges).astype(np.int32)
    rate = max_min_fair(cap, ptr, pe, weight=weight, demand_bps=demand, reachable=reach)
    live = reach & (weight > 0)
    assert np.all(rate[~live] == 0)
    load = edge_load_bps(cap.size, ptr, pe, rate)
    assert np.all(load <= cap * (1 + 1e-9))
    for i in np.flatnonzero(live):
        if rate[i] >= demand[i] * (1 - 1e-9):
            continue
        ok = False
        for e in path_edges[i]:
            if load[e] < cap[e] * (1 - 1e-9):
                continue
            users = [j for j in np.flatnonzero(live) if e in path_edges[j]]
            if all(rate[j] / weight[j] <= rate[i] / weight[i] * (1 + 1e-9) for j in users):
                ok = True
        assert ok, f"flow {i} has no bottleneck"


# ----------------------------------------------------------------------------- engine


class ShortestPolicy:
    """Routes every pair along networkx's shortest path (ties by networkx; any path is fine
    for the invariants checked here)."""

    def route(self, snapshot, src, dst, *, t_ns, edge_utilisation=None, future=None):
        from types import SimpleNamespace

        G = nx.DiGraph()
        G.add_nodes_from(range(snapshot.n_nodes))
        srcs = snapshot.edge_sources()
        for k in range(snapshot.n_edges):
            if snapshot.capacity_bps[k] > 0:
                G.add_edge(int(srcs[k]), int(snapshot.indices[k]), k=k,
                           w=float(snapshot.delay_s[k]))
        pair_path, path_edge, edges, nodes_ptr, nodes, delay, reach = [0], [0], [], [0], [], [], []
        for s, d in zip(src.tolist(), dst.tolist(), strict=True):
            try:
                hops = nx.shortest_path(G, s, d, weight="w")
            except nx.NetworkXNoPath:
                pair_path.append(pair_path[-1])
                reach.append(False)
                continue
            ks = [G[u][v]["k"] for u, v in zip(hops[:-1], hops[1:], strict=True)]
            edges += ks
            path_edge.append(len(edges))
            pair_path.append(pair_path[-1] + 1)
            nodes += hops
            nodes_ptr.append(len(nodes))
            delay.append(float(snapshot.delay_s[ks].sum()))
            reach.append(True)
        p = len(delay)
        return SimpleNamespace(
            pair_path_indptr=np.array(pair_path, np.int64),
            path_edge_indptr=np.array(path_edge, np.int64), path_edges=np.array(edges, np.int32),
            path_fraction=np.ones(p), path_delay_s=np.array(delay),
            path_node_indptr=np.array(nodes_ptr, np.int64), path_nodes=np.array(nodes, np.int32),
            pair_reachable=np.array(reach, bool), pair_blackholed=np.zeros(len(reach), bool))


class Job:
    def __init__(self, src, dst, nbytes):
        from meshnet.traffic.collectives import Phase

        self.name, self.compute_s, self.overlap, self.max_steps = "job", 0.0, 0.0, 1
        self.nodes = np.unique(np.concatenate([src, dst])).astype(np.int32)
        self.size_bytes, self.bus_factor = float(np.sum(nbytes)), 1.0
        self._phase = Phase(np.asarray(src, np.int32), np.asarray(dst, np.int32),
                            np.asarray(nbytes, float), "p", 0)

    def plan(self, delay_s):
        pass

    def step_phases(self):
        return [self._phase]


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(g=graphs(min_n=3, max_n=6), data=st.data())
def test_engine_conserves_bytes_and_never_exceeds_capacity(g, data):
    indptr, indices, w = g
    n = indptr.size - 1
    src_e = edge_sources(g)
    fwd = src_e < indices
    a, b = src_e[fwd], indices[fwd]
    cap = np.array(data.draw(st.lists(st.sampled_from([1e9, 2e9, 5e9]), min_size=a.size,
                                      max_size=a.size)))
    snap = Snapshot.from_links(0, np.array([f"n{i}" for i in range(n)], dtype=object),
                               np.zeros(n, np.int8), a, b, w[fwd] * 300.0, cap)
    comp = nx.connected_components(nx.Graph(list(zip(a.tolist(), b.tolist(), strict=True))))
    comp = max(comp, key=len)
    nodes = sorted(comp)
    if len(nodes) < 2:
        return
    k = data.draw(st.integers(1, 5))
    src = np.array([data.draw(st.sampled_from(nodes)) for _ in range(k)])
    dst = np.array([data.draw(st.sampled_from([x for x in nodes if x != s])) for s in src])
    nbytes = np.array([data.draw(st.sampled_from([1e8, 2.5e8, 1e9])) for _ in range(k)])

    def alloc(capacity_bps, fptr, pptr, pe, frac, weight, demand_bps):
        return max_min_fair_multipath(capacity_bps, fptr, pptr, pe, frac, weight=weight,
                                      demand_bps=demand_bps)

    eng = FluidEngine([Job(src, dst, nbytes)], ShortestPolicy(), alloc)
    dt = 0.5
    edge_bytes = np.zeros(snap.n_edges)
    for step in range(60):
        s = Snapshot.from_links(step * 500_000_000, snap.node_names, snap.node_kind, a, b,
                                w[fwd] * 300.0, cap)
        rec = eng.step(s, dt)
        # capacity: no edge carries more than capacity x dt in a step
        assert np.all(rec.edge_bytes * 8.0 <= s.capacity_bps * dt * (1 + 1e-9) + 1e-3)
        edge_bytes += rec.edge_bytes
    fl = eng.flow_records(60 * dt)
    assert fl["finished"].all()
    # bytes conserved: each flow sent exactly its bytes, and every edge carried exactly the
    # bytes of the flows routed over it
    sent = fl["mean_rate_gbps"] * 1e9 * (fl["end_s"] - fl["start_s"]) / 8.0
    np.testing.assert_allclose(sent, nbytes, rtol=1e-9)
    policy = ShortestPolicy()
    r = policy.route(snap, src, dst, t_ns=0)
    expect = np.zeros(snap.n_edges)
    for i in range(k):
        p0, p1 = r.path_edge_indptr[i], r.path_edge_indptr[i + 1]
        expect[r.path_edges[p0:p1]] += nbytes[i]
    np.testing.assert_allclose(edge_bytes, expect, rtol=1e-9, atol=1e-3)
    # the step ends with its slowest flow
    (rec,) = eng.job_records()
    assert rec["end_s"] == pytest.approx(np.nanmax(fl["end_s"]), rel=1e-12)
