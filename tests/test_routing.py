"""Routing kernels and API against scipy.sparse.csgraph, networkx and slow references."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from naive_routing import (
    naive_dijkstra,
    naive_k_shortest_costs,
    naive_min_cost_disjoint,
    naive_widest,
    random_snapshot,
    relay_graph,
    torus_snapshot,
)
from scipy.sparse.csgraph import breadth_first_order, dijkstra, shortest_path

from meshnet.errors import MeshnetError
from meshnet.routing import (
    ecmp_next_hops,
    edge_disjoint_paths,
    k_shortest_paths,
    next_hop_table,
    reconstruct_path,
    relay_mask_for,
    shortest_path_lengths,
    widest_paths,
)

SEEDS = [0, 1, 2]


def _graphs():
    out = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        out.append(("random", random_snapshot(rng, 50, 120)))
        out.append(("zero", random_snapshot(rng, 40, 80, zero_fraction=0.3)))
        out.append(("split", random_snapshot(rng, 45, 70, components=3)))
        out.append(("torus", torus_snapshot(rng)))
    return out


GRAPHS = _graphs()
IDS = [f"{name}{i // 4}" for i, (name, _) in enumerate(GRAPHS)]


def _path_cost(snap, weights, nodes):
    total = 0.0
    for u, v in zip(nodes[:-1], nodes[1:], strict=True):
        a, b = snap.indptr[u], snap.indptr[u + 1]
        j = np.searchsorted(snap.indices[a:b], v)
        assert j < b - a and snap.indices[a + j] == v, f"no edge {u}->{v}"
        total += weights[a + j]
    return total


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
@pytest.mark.parametrize("weight", ["delay_s", "length_km"])
def test_dijkstra_matches_scipy_and_networkx(snap, weight):
    ref = dijkstra(snap.to_scipy(weight), directed=True)
    dist, pred = shortest_path_lengths(snap, weight=weight, return_predecessors=True)
    np.testing.assert_allclose(dist, ref, rtol=1e-12, atol=0.0)
    assert np.array_equal(np.isinf(dist), np.isinf(ref))
    g = snap.to_networkx()
    for s in (0, snap.n_nodes // 2):
        lengths = nx.single_source_dijkstra_path_length(g, s, weight=weight)
        for v in range(snap.n_nodes):
            if v in lengths:
                assert dist[s, v] == pytest.approx(lengths[v], rel=1e-12, abs=1e-15)
                path = reconstruct_path(pred[s], s, v)
                assert path[0] == s and path[-1] == v
                w = getattr(snap, weight)
                assert _path_cost(snap, w, path) == pytest.approx(dist[s, v], rel=1e-12,
                                                                  abs=1e-15)
            else:
                assert np.isinf(dist[s, v]) and pred[s, v] == -1
                assert reconstruct_path(pred[s], s, v).size == 0


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS[:4]], ids=IDS[:4])
def test_parallel_equals_serial(snap):
    relay = relay_mask_for(snap) if snap.node_kind.any() else None
    for weight in ("delay_s", "hops"):
        a = shortest_path_lengths(snap, weight=weight, return_predecessors=True,
                                  relay_mask=relay)
        b = shortest_path_lengths(snap, weight=weight, return_predecessors=True,
                                  relay_mask=relay, parallel=False)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    wa = widest_paths(snap, return_predecessors=True)
    wb = widest_paths(snap, return_predecessors=True, parallel=False)
    for x, y in zip(wa, wb, strict=True):
        assert np.array_equal(x, y)
    dests = np.arange(0, snap.n_nodes, 7)
    ea = ecmp_next_hops(snap, dests)
    eb = ecmp_next_hops(snap, dests, parallel=False)
    assert np.array_equal(ea.edge_mask, eb.edge_mask)
    src = np.arange(0, 10)
    dst = np.arange(snap.n_nodes - 10, snap.n_nodes)[::-1]
    for fn in (k_shortest_paths, edge_disjoint_paths):
        pa = fn(snap, src, dst, 3)
        pb = fn(snap, src, dst, 3, parallel=False)
        assert np.array_equal(pa.path_nodes, pb.path_nodes)
        assert np.array_equal(pa.path_edges, pb.path_edges)
        assert np.array_equal(pa.pair_path_indptr, pb.pair_path_indptr)


def test_tie_break_is_lowest_node_id():
    # 0 -> {1, 2} -> 3 with equal lengths: the predecessor of 3 is 1, not 2.
    indptr = np.array([0, 2, 4, 6, 8])
    indices = np.array([1, 2, 0, 3, 0, 3, 1, 2])
    g = (indptr, indices, np.ones(8))
    _, pred = shortest_path_lengths(g, 0, return_predecessors=True)
    assert pred[3] == 1
    _, pred = shortest_path_lengths(g, 0, return_predecessors=True, weight="hops")
    assert pred[3] == 1
    assert next_hop_table(g, [0]).next_hop[0, 3] == 1


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
def test_bfs_hops_match_scipy(snap):
    ref = shortest_path(snap.to_scipy("delay_s"), unweighted=True, directed=True)
    hops, pred = shortest_path_lengths(snap, weight="hops", return_predecessors=True)
    assert np.array_equal(hops, ref)
    for s in (0, 3):
        order = breadth_first_order(snap.to_scipy("delay_s"), s, return_predecessors=False)
        assert set(order.tolist()) == set(np.flatnonzero(np.isfinite(hops[s])).tolist())
        for v in order:
            assert len(reconstruct_path(pred[s], s, v)) == hops[s, v] + 1


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
def test_relay_mask_matches_reference(snap):
    rng = np.random.default_rng(snap.n_edges)
    relay = rng.random(snap.n_nodes) < 0.7
    dist = shortest_path_lengths(snap, weight="length_km", relay_mask=relay)
    for s in range(0, snap.n_nodes, 5):
        ref = naive_dijkstra((snap.indptr, snap.indices), snap.length_km, s, relay)
        np.testing.assert_allclose(dist[s], ref, rtol=1e-12)
    hops, pred = shortest_path_lengths(snap, weight="hops", relay_mask=relay,
                                       return_predecessors=True)
    for s in range(0, snap.n_nodes, 5):
        ref = naive_dijkstra((snap.indptr, snap.indices), np.ones(snap.n_edges), s, relay)
        assert np.array_equal(hops[s], ref)
        for v in np.flatnonzero(np.isfinite(hops[s])):
            path = reconstruct_path(pred[s], s, v)
            assert relay[path[1:-1]].all()


def test_ground_stations_never_relay_unless_allowed():
    # Two satellite islands joined only through a ground station.
    names = np.array(["s0", "s1", "s2", "s3", "G"], dtype=object)
    kind = np.array([0, 0, 0, 0, 1], np.int8)
    snap = __import__("meshnet.graph", fromlist=["Snapshot"]).Snapshot.from_links(
        0, names, kind, [0, 2, 1, 4], [1, 3, 4, 2], [1.0, 1.0, 1.0, 1.0], [1.0] * 4)
    d = shortest_path_lengths(snap, 0, weight="length_km", relay_mask=relay_mask_for(snap))
    assert np.isinf(d[2]) and np.isinf(d[3]) and d[4] == 2.0
    d = shortest_path_lengths(snap, 0, weight="length_km",
                              relay_mask=relay_mask_for(snap, ground_relay=True))
    assert d[3] == 4.0
    # The ground station itself still reaches everything as a source.
    d = shortest_path_lengths(snap, 4, weight="length_km", relay_mask=relay_mask_for(snap))
    assert np.isfinite(d).all()


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
def test_next_hop_table_is_consistent_with_distances(snap):
    relay = relay_mask_for(snap)
    dests = np.arange(0, snap.n_nodes, 4)
    t = next_hop_table(snap, dests, weight="length_km", relay_mask=relay)
    src_dist = shortest_path_lengths(snap, dests, weight="length_km", relay_mask=relay)
    # symmetric graph: cost u -> d equals d -> u
    np.testing.assert_allclose(t.dist, src_dist, rtol=1e-12)
    edge_src = snap.edge_sources()
    for i, d in enumerate(dests):
        for u in range(snap.n_nodes):
            nh = t.next_hop[i, u]
            if u == d or np.isinf(t.dist[i, u]):
                assert nh == -1 and t.next_edge[i, u] == -1
                continue
            e = t.next_edge[i, u]
            assert edge_src[e] == u and snap.indices[e] == nh
            assert t.dist[i, u] == pytest.approx(snap.length_km[e] + t.dist[i, nh], rel=1e-12,
                                                 abs=1e-12)
            assert nh == d or relay[nh]
        path = t.path(0, i)
        if np.isfinite(t.dist[i, 0]):
            assert path[0] == 0 and path[-1] == d


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS[:8]], ids=IDS[:8])
def test_widest_matches_reference(snap):
    relay = np.random.default_rng(1).random(snap.n_nodes) < 0.8
    width, dist, pred = widest_paths(snap, weight="length_km", return_predecessors=True,
                                     relay_mask=relay)
    for s in range(0, snap.n_nodes, 6):
        ref_w, ref_d = naive_widest(snap.indptr, snap.indices, snap.capacity_bps,
                                    snap.length_km, s, relay)
        assert np.array_equal(width[s], ref_w)
        assert np.array_equal(np.isinf(dist[s]), np.isinf(ref_d))
        # Lightest widest path is a lower bound (the tree cannot always hold it).
        assert np.all(dist[s][np.isfinite(ref_d)] >= ref_d[np.isfinite(ref_d)] * (1 - 1e-12))
        for v in np.flatnonzero(np.isfinite(dist[s])):
            path = reconstruct_path(pred[s], s, v)
            assert _path_cost(snap, snap.length_km, path) == pytest.approx(dist[s, v], rel=1e-12)
            if v != s:
                caps = [snap.capacity_bps[snap.indptr[a] + np.searchsorted(
                    snap.indices[snap.indptr[a]:snap.indptr[a + 1]], b)]
                    for a, b in zip(path[:-1], path[1:], strict=True)]
                assert min(caps) == width[s, v]
                assert relay[path[1:-1]].all()


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
def test_k_shortest_matches_networkx(snap):
    relay = relay_mask_for(snap) if snap.node_kind.any() else None
    relay_b = np.ones(snap.n_nodes, bool) if relay is None else relay
    rng = np.random.default_rng(7)
    src = rng.integers(0, snap.n_nodes, 6)
    dst = rng.integers(0, snap.n_nodes, 6)
    k = 4
    ps = k_shortest_paths(snap, src, dst, k, weight="length_km", relay_mask=relay)
    for p in range(len(src)):
        g = relay_graph(snap, snap.length_km, relay_b, src[p], dst[p])
        ref = naive_k_shortest_costs(g, int(src[p]), int(dst[p]), k)
        costs = ps.path_cost[ps.pair_path_indptr[p]:ps.pair_path_indptr[p + 1]]
        np.testing.assert_allclose(costs, ref, rtol=1e-9)
        seen = set()
        for nodes in ps.paths_of(p):
            assert len(set(nodes.tolist())) == len(nodes), "path not simple"
            assert nodes[0] == src[p] and nodes[-1] == dst[p]
            assert relay_b[nodes[1:-1]].all()
            seen.add(tuple(nodes.tolist()))
        assert len(seen) == len(costs)
        for j in range(ps.pair_path_indptr[p], ps.pair_path_indptr[p + 1]):
            e = ps.edges_of(j)
            assert snap.length_km[e].sum() == pytest.approx(ps.path_cost[j], rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_edge_disjoint_matches_min_cost_flow(seed):
    rng = np.random.default_rng(seed)
    for snap in (random_snapshot(rng, 30, 70, integer=True),
                 random_snapshot(rng, 30, 45, integer=True, components=2)):
        src = rng.integers(0, snap.n_nodes, 5)
        dst = rng.integers(0, snap.n_nodes, 5)
        keep = src != dst
        src, dst = src[keep], dst[keep]
        ps = edge_disjoint_paths(snap, src, dst, 3, weight="length_km")
        for p in range(len(src)):
            g = relay_graph(snap, snap.length_km, np.ones(snap.n_nodes, bool), src[p], dst[p])
            m, cost = naive_min_cost_disjoint(g, int(src[p]), int(dst[p]), 3)
            paths = ps.paths_of(p)
            assert len(paths) == m
            used = set()
            total = 0.0
            for j in range(ps.pair_path_indptr[p], ps.pair_path_indptr[p + 1]):
                nodes = ps.nodes_of(j)
                assert nodes[0] == src[p] and nodes[-1] == dst[p]
                for u, v in zip(nodes[:-1], nodes[1:], strict=True):
                    link = (min(u, v), max(u, v))
                    assert link not in used, "links shared between paths"
                    used.add(link)
                total += ps.path_cost[j]
            assert total == pytest.approx(cost)
            assert np.all(np.diff(ps.path_cost[ps.pair_path_indptr[p]:
                                               ps.pair_path_indptr[p + 1]]) >= 0)


def test_ecmp_sets_and_tolerance():
    # 3x3 grid with unit weights: the corner has two equal next hops towards the far corner.
    g = nx.grid_2d_graph(3, 3)
    g = nx.convert_node_labels_to_integers(g, ordering="sorted")
    a, b = np.array(list(g.edges())).T
    from meshnet.graph import Snapshot

    names = np.array([str(i) for i in range(9)], dtype=object)
    snap = Snapshot.from_links(0, names, np.zeros(9, np.int8), a, b, np.ones(len(a)),
                               np.ones(len(a)))
    e = ecmp_next_hops(snap, [8], weight="length_km")
    assert e.next_hops(0, 0).tolist() == [1, 3]
    assert e.next_hops(0, 4).tolist() == [5, 7]
    assert e.next_hops(0, 8).tolist() == []
    # Perturb one edge: the strict set drops it, a loose tolerance keeps it.
    length = snap.length_km.copy()
    length[(snap.edge_sources() == 0) & (snap.indices == 3)] += 1e-6
    strict = ecmp_next_hops(snap, [8], weight=length)
    loose = ecmp_next_hops(snap, [8], weight=length, rtol=1e-3)
    assert strict.next_hops(0, 0).tolist() == [1]
    assert loose.next_hops(0, 0).tolist() == [1, 3]


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=IDS)
def test_ecmp_matches_networkx_all_shortest(snap):
    # Integer-valued weights make equal costs exact.
    w = np.round(snap.length_km / 1000.0)
    dests = np.arange(0, snap.n_nodes, 9)
    e = ecmp_next_hops(snap, dests, weight=w)
    g = nx.Graph()
    g.add_nodes_from(range(snap.n_nodes))
    s = snap.edge_sources()
    for j in range(snap.n_edges):
        g.add_edge(int(s[j]), int(snap.indices[j]), weight=float(w[j]))
    for i, d in enumerate(dests):
        lengths = nx.single_source_dijkstra_path_length(g, int(d), weight="weight")
        for u in range(snap.n_nodes):
            if u not in lengths or u == d:
                assert e.next_hops(i, u).size == 0
                continue
            expected = {v for v in g.neighbors(u) if v in lengths
                        and g[u][v]["weight"] + lengths[v] == lengths[u]}
            got = set(e.next_hops(i, u).tolist())
            # Zero-weight ties are cut to keep the set acyclic; otherwise identical.
            assert got <= expected
            zero_tied = {v for v in expected if lengths[v] == lengths[u]}
            assert expected - zero_tied <= got
            assert got, "at least the shortest-path next hop"


def test_input_errors_are_meshnet_errors():
    snap = random_snapshot(np.random.default_rng(0), 10, 15)
    with pytest.raises(MeshnetError, match="weight='delay' is not known"):
        shortest_path_lengths(snap, weight="delay")
    with pytest.raises(MeshnetError, match="outside"):
        shortest_path_lengths(snap, indices=[99])
    with pytest.raises(MeshnetError, match="finite and >= 0"):
        shortest_path_lengths(snap, weight=-np.ones(snap.n_edges))
    with pytest.raises(MeshnetError, match="relay_mask"):
        shortest_path_lengths(snap, relay_mask=np.ones(3, bool))
    with pytest.raises(MeshnetError, match="k must be"):
        k_shortest_paths(snap, 0, 1, k=0)


def test_scalar_and_tuple_inputs():
    snap = random_snapshot(np.random.default_rng(3), 20, 40)
    d1 = shortest_path_lengths(snap, 4, weight="length_km")
    d2 = shortest_path_lengths((snap.indptr, snap.indices, snap.length_km), [4])
    d3 = shortest_path_lengths(snap.to_scipy("length_km"), [4])
    assert d1.shape == (20,) and d2.shape == (1, 20)
    assert np.array_equal(d1, d2[0]) and np.array_equal(d1, d3[0])


def test_ecmp_path_enumeration_parallel_equals_serial():
    from meshnet.kernels import _routing as K

    # Integer weights on a torus give many equal-cost paths.
    snap = torus_snapshot(np.random.default_rng(2), planes=6, per_plane=6, n_ground=4)
    w = np.ones(snap.n_edges)
    dests = np.arange(snap.n_nodes - 4, snap.n_nodes, dtype=np.int32)
    e = ecmp_next_hops(snap, dests, weight=w)
    src = np.arange(0, 20, dtype=np.int32)
    dst = np.resize(dests, 20)
    row = np.resize(np.arange(4), 20).astype(np.int64)
    out = []
    for fn in (K.ecmp_paths_many, K.ecmp_paths_many_serial):
        edges = np.full((20, 8, snap.n_nodes + 1), -7, np.int32)
        lengths = np.zeros((20, 8), np.int64)
        frac = np.zeros((20, 8))
        count = np.zeros(20, np.int64)
        fn(snap.indptr, snap.indices, e.edge_mask, row, src, dst, 8, edges, lengths, frac, count)
        out.append((edges, lengths, frac, count))
    for a, b in zip(*out, strict=True):
        assert np.array_equal(a, b)
    assert (out[0][3] > 1).any()
