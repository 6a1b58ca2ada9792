"""Pair routing with early exit: trees rooted at a vertex cover of the pairs, each search
stopped once its own targets are settled (``shortest_delay`` and ``load_aware``).

Distances are checked against scipy, paths node by node against a slow twin of the documented
rule (tests/naive_routing.py), and cases where stopping too early would be wrong are built on
purpose.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_routing import (
    naive_dijkstra,
    naive_greedy_cover,
    naive_pair_paths,
    random_snapshot,
    torus_snapshot,
)
from scipy.sparse.csgraph import dijkstra

from meshnet.graph import Snapshot
from meshnet.kernels import _routing as K
from meshnet.routing import RoutingConfig, make_policy


def _pairs(rng, n, k, nodes=None):
    nodes = np.arange(n) if nodes is None else nodes
    src = rng.choice(nodes, k)
    dst = rng.choice(nodes, k)
    keep = src != dst
    return src[keep].astype(np.int32), dst[keep].astype(np.int32)


def _paths(routes):
    return [routes.nodes_of(routes.pair_path_indptr[p]).tolist() if routes.pair_reachable[p]
            else None for p in range(routes.n_pairs)]


@pytest.mark.parametrize("seed", range(6))
def test_greedy_cover_matches_twin_and_covers(seed):
    rng = np.random.default_rng(seed)
    n = 30
    src, dst = _pairs(rng, n, 60)
    ring = np.arange(10, 20, dtype=np.int32)  # a ring: every other node suffices
    src = np.concatenate([src, ring]).astype(np.int32)
    dst = np.concatenate([dst, np.roll(ring, -1)]).astype(np.int32)
    got = K.greedy_cover(src, dst, n)
    assert np.array_equal(got, naive_greedy_cover(src, dst, n))
    assert np.all(got[src] | got[dst])


GRAPHS = [
    ("random-float", random_snapshot(np.random.default_rng(1), 50, 120)),
    ("random-integer-ties", random_snapshot(np.random.default_rng(2), 50, 130, integer=True)),
    ("two-components", random_snapshot(np.random.default_rng(3), 40, 80, components=2)),
    ("torus+ground", torus_snapshot(np.random.default_rng(4), planes=8, per_plane=9,
                                    n_ground=7)),
]


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=[k for k, _ in GRAPHS])
@pytest.mark.parametrize("ground_relay", [False, True])
def test_pair_paths_match_scipy_and_twin(snap, ground_relay):
    rng = np.random.default_rng(7)
    src, dst = _pairs(rng, snap.n_nodes, 70)
    # A ring over some nodes (one-hop pairs) and a hub talking to many: both shapes the
    # cover is meant for.
    ring = np.arange(0, 12, dtype=np.int32)
    hub = np.full(8, snap.n_nodes - 1, np.int32)
    src = np.concatenate([src, ring, hub, np.arange(20, 28)]).astype(np.int32)
    dst = np.concatenate([dst, np.roll(ring, -1), np.arange(30, 38), hub]).astype(np.int32)
    policy = make_policy(RoutingConfig(ground_relay=ground_relay), snap.n_nodes)
    policy.parallel = True  # small graphs pick the serial kernel by themselves
    relay = policy._relay(snap)
    routes = policy.route(snap, src, dst, t_ns=0)
    serial = make_policy(RoutingConfig(ground_relay=ground_relay), snap.n_nodes)
    serial.parallel = False
    assert _paths(serial.route(snap, src, dst, t_ns=0)) == _paths(routes)
    assert _paths(routes) == naive_pair_paths(snap, snap.delay_s, relay, src, dst)
    for p in range(len(src)):
        ref = naive_dijkstra((snap.indptr, snap.indices), snap.delay_s, src[p], relay)[dst[p]]
        if not np.isfinite(ref):
            assert not routes.pair_reachable[p]
            continue
        got = routes.path_delay_s[routes.pair_path_indptr[p]]
        assert got == pytest.approx(ref, rel=1e-12, abs=0.0)
    if ground_relay:  # every node relays: scipy's own Dijkstra is the reference
        ref = dijkstra(snap.to_scipy("delay_s"), indices=src)[np.arange(len(src)), dst]
        got = routes.pair_delay_s()
        assert np.array_equal(np.isfinite(ref), routes.pair_reachable)
        fin = np.isfinite(ref)
        np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=0)


def _graph(n, links):
    a, b, w = (np.array(x) for x in zip(*links, strict=True))
    names = np.array([f"n{i}" for i in range(n)], dtype=object)
    # length_km chosen so delay is proportional to the given weight
    return Snapshot.from_links(0, names, np.zeros(n, np.int8), a, b, w * 1000.0,
                               np.full(len(a), 1e9))


def test_target_first_reached_by_a_long_path_is_improved_before_exit():
    # 0 - 1 directly (10) but 0 - 2 - 1 (1 + 1): node 1 is reached at 10 first, then improved.
    snap = _graph(4, [(0, 1, 10.0), (0, 2, 1.0), (2, 1, 1.0), (1, 3, 5.0)])
    policy = make_policy(RoutingConfig(ground_relay=True), 4)
    for src, dst in (([0], [1]), ([1], [0])):
        r = policy.route(snap, np.array(src), np.array(dst), t_ns=0)
        assert r.nodes_of(0).tolist() in ([0, 2, 1], [1, 2, 0])
    ref = dijkstra(snap.to_scipy("delay_s"), indices=0)
    r = policy.route(snap, np.array([0, 0, 0]), np.array([1, 3, 2]), t_ns=0)
    np.testing.assert_allclose(r.pair_delay_s(), ref[[1, 3, 2]], rtol=1e-12)


def test_path_through_another_target_and_unreachable_target():
    # Targets 1 and 2 of root 0, where 2's path runs through 1; 5 is in another component, so
    # that search must run to exhaustion without breaking the others.
    snap = _graph(6, [(0, 1, 1.0), (1, 2, 1.0), (0, 3, 5.0), (3, 2, 5.0), (4, 5, 1.0)])
    policy = make_policy(RoutingConfig(ground_relay=True), 6)
    src = np.array([0, 0, 0, 3], np.int32)
    dst = np.array([2, 1, 5, 4], np.int32)
    r = policy.route(snap, src, dst, t_ns=0)
    assert _paths(r) == [[0, 1, 2], [0, 1], None, None]


def test_asymmetric_weights_route_each_direction_exactly():
    # load_aware weights differ per direction: each pair must be exact in its own direction.
    snap = random_snapshot(np.random.default_rng(11), 40, 100)
    rng = np.random.default_rng(12)
    util = rng.uniform(0.0, 1.0, snap.n_edges)
    policy = make_policy(RoutingConfig(policy="load_aware", ground_relay=True, load_alpha=3.0),
                         snap.n_nodes)
    src, dst = _pairs(rng, snap.n_nodes, 60)
    src = np.concatenate([src, dst[:10]]).astype(np.int32)  # both directions of some pairs
    dst = np.concatenate([dst, src[:10]]).astype(np.int32)
    r = policy.route(snap, src, dst, t_ns=0, edge_utilisation=util)
    w = snap.delay_s * (1.0 + 3.0 * util)
    m = snap.to_scipy("delay_s").copy()
    m.data = w
    ref = dijkstra(m, indices=src)[np.arange(len(src)), dst]
    chosen = np.array([w[r.edges_of(r.pair_path_indptr[p])].sum() for p in range(len(src))])
    np.testing.assert_allclose(chosen, ref, rtol=1e-12)
    assert _paths(r) == naive_pair_paths(snap, w, np.ones(snap.n_nodes, bool), src, dst)


def test_cover_is_reused_only_for_the_same_pairs():
    snap = random_snapshot(np.random.default_rng(13), 30, 70)
    policy = make_policy(RoutingConfig(ground_relay=True), snap.n_nodes)
    src, dst = _pairs(np.random.default_rng(14), 30, 40)
    a = policy.route(snap, src, dst, t_ns=0)
    b = policy.route(snap, dst, src, t_ns=0)  # other pairs: a new cover, still exact
    np.testing.assert_allclose(a.pair_delay_s(), b.pair_delay_s(), rtol=1e-12)
    assert _paths(b) == naive_pair_paths(snap, snap.delay_s, np.ones(30, bool), dst, src)


def test_scratch_kept_between_calls_gives_fresh_answers():
    # The kernels leave their scratch clean for the next call (marks, distances, heap slots):
    # a policy reused over changing graphs and pairs answers as a fresh one does.
    rng = np.random.default_rng(21)
    kept = make_policy(RoutingConfig(ground_relay=True), 45)
    for parallel in (False, True, False):
        snap = random_snapshot(rng, 45, 110)
        src, dst = _pairs(rng, 45, 50)
        kept.parallel = parallel
        fresh = make_policy(RoutingConfig(ground_relay=True), 45)
        assert _paths(kept.route(snap, src, dst, t_ns=0)) == \
            _paths(fresh.route(snap, src, dst, t_ns=0))


@pytest.mark.parametrize("snap", [g for _, g in GRAPHS], ids=[k for k, _ in GRAPHS])
def test_distance_matrix_equals_full_trees(snap):
    from meshnet.routing import distance_matrix, shortest_path_lengths

    nodes = np.array([3, 0, 17, 3, snap.n_nodes - 1, 9], np.int32)  # a repeat included
    relay = snap.node_kind == 0
    full = shortest_path_lengths(snap, nodes, relay_mask=relay)[:, nodes]
    assert np.array_equal(distance_matrix(snap, nodes, relay_mask=relay), full)
    ref = dijkstra(snap.to_scipy("delay_s"), indices=nodes)[:, nodes]
    np.testing.assert_allclose(distance_matrix(snap, nodes), ref, rtol=1e-12)
