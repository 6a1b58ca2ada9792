"""Rules of the newer routing code that mutation testing found unguarded or guarded only by a
slow twin, each against an independent reference (scipy's Dijkstra, a hand calculation).

- Early-exit trees (``kernels/_routing.py::dijkstra_targets``) keep the documented tie rule
  (docs/design.md 'Routing ties': the lowest-id predecessor ``u`` with
  ``dist[u] + w(u, v) == dist[v]``), on integer weights where ties are exact, and a tree grown
  towards its root (``root_rev``, per-direction ``load_aware`` weights) gives each pair its
  forward shortest distance on the directed graph.
- The LP optimum's stated ``gap`` is relative: ``|value - bound| / |value|``.
- A policy's shares must sum to one within ``SHARE_TOL`` (1e-6): less is refused as well as
  more.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_routing import random_snapshot
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from meshnet.graph import Snapshot
from meshnet.kernels import _routing as K
from meshnet.routing.optimum import solve_optimum
from meshnet.routing.protocol import SHARE_TOL, ExternalPolicy, PolicyError


def _rule_pred(indptr, indices, w, dist, v):
    """Lowest-id ``u`` with ``dist[u] + w(u, v) == dist[v]`` (every node relays)."""
    best = -1
    for u in range(len(indptr) - 1):
        for e in range(indptr[u], indptr[u + 1]):
            if indices[e] == v and dist[u] + w[e] == dist[v] and (best < 0 or u < best):
                best = u
    return best


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_early_exit_trees_keep_the_tie_rule_and_the_direction(seed, parallel):
    rng = np.random.default_rng(seed)
    snap = random_snapshot(rng, 36, 100)
    n, indptr, indices = snap.n_nodes, snap.indptr, snap.indices
    # Integer weights 1..3, different per direction: exact ties everywhere, and a tree
    # towards its root differs from one away from it.
    w = rng.integers(1, 4, snap.n_edges).astype(np.float64)
    rev = K.reverse_edges(indptr, indices)
    w_rev = np.ascontiguousarray(w[rev])
    fwd = csr_array((w, indices, indptr), shape=(n, n))
    bwd = csr_array((w_rev, indices, indptr), shape=(n, n))
    roots = rng.choice(n, 8, replace=False).astype(np.int32)
    root_rev = np.arange(8) % 2 == 1
    tgt = np.concatenate([rng.choice(np.setdiff1d(np.arange(n), [r]), 5, replace=False)
                          for r in roots]).astype(np.int32)
    tgt_indptr = np.arange(0, 5 * 8 + 1, 5, dtype=np.int64)
    out_pred = np.full((8, n), -7, np.int32)
    out_pred_edge = np.full((8, n), -7, np.int32)
    out_dist = np.empty(tgt.size)
    out_hops = np.empty(tgt.size, np.int64)
    n_chunks = 2 if parallel else 1
    scratch_f, scratch_i = K.new_targets_scratch(n_chunks, n)
    fn = K.dijkstra_targets if parallel else K.dijkstra_targets_serial
    fn(indptr, indices, w, w_rev, root_rev, np.ones(n, np.bool_), roots, tgt_indptr, tgt,
       n_chunks, out_pred, out_pred_edge, out_dist, out_hops, scratch_f, scratch_i)
    ties = 0
    for i, r in enumerate(roots.tolist()):
        weights = w_rev if root_rev[i] else w
        tree_dist = dijkstra(bwd if root_rev[i] else fwd, indices=r)
        for k in range(tgt_indptr[i], tgt_indptr[i + 1]):
            t = int(tgt[k])
            # The pair's cost in its own direction: root -> t, or t -> root for a tree
            # grown towards the root (scipy on the directed graph, forward weights).
            ref = dijkstra(fwd, indices=t)[r] if root_rev[i] else dijkstra(fwd, indices=r)[t]
            assert out_dist[k] == ref
            hops, v = 0, t
            while v != r:
                want = _rule_pred(indptr, indices, weights, tree_dist, v)
                ties += sum(1 for u in range(n) for e in range(indptr[u], indptr[u + 1])
                            if indices[e] == v and
                            tree_dist[u] + weights[e] == tree_dist[v]) > 1
                assert out_pred[i, v] == want, (r, t, v)
                assert indices[out_pred_edge[i, v]] == v
                v = int(out_pred[i, v])
                hops += 1
            assert out_hops[k] == hops
    assert ties > 5  # the rule was actually exercised


def _two_route_snapshot():
    # 0 -> 3 via 1 (10 Gbps links) or via 2 (10 Gbps links), plus a direct 1 Gbps link.
    names = np.array(list("abcd"), dtype=object)
    return Snapshot.from_links(0, names, np.zeros(4, np.int8), [0, 0, 1, 2, 0],
                               [1, 2, 3, 3, 3], [500.0, 700.0, 500.0, 700.0, 400.0],
                               [10e9, 10e9, 10e9, 10e9, 1e9])


@pytest.mark.parametrize("objective", ["max_throughput", "min_max_utilisation"])
def test_optimum_gap_is_relative_to_the_value(objective):
    snap = _two_route_snapshot()
    # One path each and no column generation: the value is short of the optimum and the
    # dual bound says by how much.
    res = solve_optimum(snap, [0, 1], [3, 2], [15e9, 4e9], objective=objective, k_paths=1,
                        column_generation=False)
    assert res.gap > 0.01
    assert res.gap == pytest.approx(abs(res.value - res.bound) / abs(res.value), rel=1e-12)
    # Converged: a gap at the solver's tolerance, in the same relative terms.
    full = solve_optimum(snap, [0, 1], [3, 2], [15e9, 4e9], objective=objective, gap=1e-9)
    assert full.gap == pytest.approx(abs(full.value - full.bound) / abs(full.value),
                                     rel=1e-9, abs=1e-12)
    assert full.gap <= 1e-6


def _line():
    names = np.array(["s0", "s1", "s2", "s3"], dtype=object)
    return Snapshot.from_links(0, names, np.zeros(4, np.int8), [0, 1, 2, 0, 3],
                               [1, 2, 3, 2, 1], [500.0] * 5, [1e9] * 5)


@pytest.mark.parametrize("total, ok", [(1.0 - 1e-3, False), (0.5, False), (1.0 + 1e-3, False),
                                       (1.0 - 0.5 * SHARE_TOL, True),
                                       (1.0 + 0.5 * SHARE_TOL, True)])
def test_policy_shares_must_sum_to_one_within_the_tolerance(total, ok):
    assert SHARE_TOL == 1e-6  # documented in routing/protocol.py

    class Split:
        def route(self, req):
            return [[([0, 1, 3], 0.5), ([0, 2, 3], total - 0.5)]]

    pol = ExternalPolicy(Split(), "Split", n_nodes=4)
    if ok:
        r = pol.route(_line(), [0], [3])
        assert r.n_paths == 2
        assert r.path_fraction.sum() == pytest.approx(total, abs=0)
    else:
        with pytest.raises(PolicyError, match="shares sum to"):
            pol.route(_line(), [0], [3])


def test_policy_path_over_a_link_that_is_down_is_refused_by_name():
    class Direct:
        def route(self, req):
            return [[0, 3, 2]]  # 0 - 3 is not a link

    with pytest.raises(PolicyError, match="link 0 's0' - 3 's3', which is down"):
        ExternalPolicy(Direct(), "Direct", n_nodes=4).route(_line(), [0], [2])


def test_views_beyond_max_views_share_the_most_stale_kept_view():
    """Ring 0-1-2-3-4-0 of 1 ms links, default timers (detection 0.15 s, 1 ms + 5 ms a hop,
    SPF 0.2 s). Link 1-2 fails at 1.000 s: nodes 1, 2 install at 1.350 s, 0, 3 at 1.356 s,
    4 at 1.362 s. Link 3-4 fails at 1.003 s; the mesh is then two lines, 2-3 and 4-0-1, so
    that update reaches 3, 4 at 1.353 s, 2, 0 at 1.359 s and 1 at 1.365 s. At 1.357 s:
    nodes 0, 1, 2 know of the first failure only (3 nodes), node 3 of both (the fresh view),
    node 4 of the second only. With two views kept (the most common: 0-1-2's and node 3's),
    node 4 routes on the *more stale* of them, 0-1-2's: it still believes 3-4 up and sends
    its traffic for 3 into the dead link, a black hole (on the fresh view it would have no
    route and wait)."""
    from meshnet.routing import make_policy
    from meshnet.routing.config import LinkStateConfig, RoutingConfig
    from meshnet.units import C_KM_S

    names = np.array([f"s{i}" for i in range(5)], dtype=object)
    ring = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]

    def snap(t_s, cut):
        a, b = zip(*[x for x in ring if x not in cut], strict=True)
        return Snapshot.from_links(int(round(t_s * 1e9)), names, np.zeros(5, np.int8), a, b,
                                   [C_KM_S * 1e-3] * len(a), [1e9] * len(a))

    def policy(max_views):
        cfg = RoutingConfig(linkstate=LinkStateConfig(enabled=True, max_views=max_views))
        ls = make_policy(cfg, 5)
        ls.route(snap(0.9, []), [4], [3])
        ls.route(snap(1.0, [(1, 2)]), [4], [3])
        ls.route(snap(1.003, [(1, 2), (3, 4)]), [4], [3])
        return ls

    ls = policy(2)
    np.testing.assert_allclose(ls.install_times_s(1), [1.359, 1.365, 1.359, 1.353, 1.353],
                               atol=1e-9)
    r = ls.route(snap(1.357, [(1, 2), (3, 4)]), [4], [3])
    assert r.pair_blackholed[0] and not r.pair_reachable[0]
    assert ls.blackholed_pair_steps == 2 and ls.looped_pair_steps == 0  # 1.003 s and now
