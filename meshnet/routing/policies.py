"""Routing policies, registered by name and chosen in the scenario's ``[routing]`` table.

The engine builds one policy with :func:`make_policy` and calls ``policy.route(snapshot, src,
dst, t_ns=..., edge_utilisation=..., future=...)`` every step; the answer is a :class:`Routes`
holding one or more explicit paths per (source, destination) pair and the share of the pair's
traffic on each.

Policies
--------
``shortest_delay``
    One least-delay path per pair, read off shortest-path trees rooted at a small vertex cover
    of the pairs (the destination's tree when the destination is in the cover, else the
    source's), each tree grown only until its own targets are settled (docs/design.md,
    "Which tree a pair's path comes from").
``min_hop``
    One least-hop path per pair (breadth-first; ties to the lower node id).
``k_shortest``
    The ``k`` least-delay loop-free paths (Yen), traffic split equally or by inverse delay.
``edge_disjoint``
    Up to ``k`` link-disjoint paths of least total delay, split like ``k_shortest``.
``ecmp``
    Every next hop within ``ecmp_tolerance`` of the least delay; traffic split equally at
    each hop (per-hop hashing in the fluid limit), at most ``ecmp_max_paths`` paths.
``widest``
    The path with the largest bottleneck capacity; among equally wide paths the least delay.
``load_aware``
    Least-delay paths over weights ``delay_s * (1 + load_alpha * utilisation)``, with the
    utilisation of the previous step's allocation (``edge_utilisation``).
``periodic``
    Least-delay forwarding tables recomputed every ``interval_s`` (at multiples of it since
    the epoch); in between, packets follow the stale tables over the current links. A pair
    whose stale path uses a link that has gone down is black-holed until the next
    recomputation (``pair_blackholed``).
``predictive``
    Uses the next ``horizon_s`` of snapshots (``future``, ``F`` of them). A link's lifetime is
    the number of future snapshots it stays up in a row (``F`` if throughout). A new path is
    the least-delay path over links of lifetime at least ``L``, for the largest ``L`` in
    ``{F, F/2, F/4, ..., 1, 0}`` whose delay is within ``predictive_max_stretch`` of the
    least delay: it prefers paths whose links all stay up for the horizon, without detours
    longer than the stretch allows. A pair keeps its path while every link of it is up now and
    in the next snapshot and its delay stays within the stretch of the least delay; it moves
    one step before a link drops (nothing is black-holed) and otherwise stays, so paths
    change far less often than with ``shortest_delay``.

Ground stations never relay transit traffic unless ``ground_relay = true`` (or the caller's
``relay_mask`` says otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from ..errors import MeshnetError
from ..graph import SATELLITE, Snapshot
from ..kernels import _routing as K
from ..units import NS_PER_S
from .kshortest import _run_batched
from .paths import PathSet
from .plugins import PluginRegistry

#: Built-in policies by name; also resolves ``module:Name``, ``file.py:Name`` and the
#: ``meshnet.routing`` entry points (:mod:`meshnet.routing.plugins`).
ROUTING_POLICIES = PluginRegistry("routing policy")

_BATCH_BYTES = 64 << 20

#: Roots x nodes from which pair routing uses threads. Small searches (starlink_550: 43 roots
#: x 1,684 nodes, about 1 ms) lose more to waking threads than they gain, and on a loaded
#: machine the threads wait for a core (measured there: serial 0.9 ms, parallel median 5 ms).
#: From PAIR_PARALLEL_IDLE_WORK (Starlink Gen1: 43 x 4,508) threads are used while the load
#: average leaves a core idle; from PAIR_PARALLEL_MIN_WORK always. Results are identical.
PAIR_PARALLEL_MIN_WORK = 500_000
PAIR_PARALLEL_IDLE_WORK = 150_000


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routes:
    """Paths for ``P`` (source, destination) pairs at one step.

    Attributes
    ----------
    pair_path_indptr : numpy.ndarray
        ``(P + 1,)`` int64: the paths of pair ``p`` are ``pair_path_indptr[p]:[p + 1]``
        (none when the pair is unreachable or black-holed).
    path_edge_indptr, path_edges : numpy.ndarray
        int64 ``(n_paths + 1,)`` / int32: directed edge ids into the snapshot's CSR arrays.
    path_node_indptr, path_nodes : numpy.ndarray
        int64 / int32: node sequence of every path (source first).
    path_fraction : numpy.ndarray
        ``(n_paths,)`` share of its pair's traffic; sums to 1 over a reachable pair's paths.
    path_delay_s : numpy.ndarray
        ``(n_paths,)`` one-way propagation delay on the snapshot.
    pair_reachable : numpy.ndarray
        ``(P,)`` bool: the pair has at least one usable path.
    pair_blackholed : numpy.ndarray
        ``(P,)`` bool: traffic is sent but lost (``periodic`` with a stale path over a link
        that went down); all false for other policies.
    """

    pair_path_indptr: np.ndarray
    path_edge_indptr: np.ndarray
    path_edges: np.ndarray
    path_node_indptr: np.ndarray
    path_nodes: np.ndarray
    path_fraction: np.ndarray
    path_delay_s: np.ndarray
    pair_reachable: np.ndarray
    pair_blackholed: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.pair_path_indptr.shape[0] - 1)

    @property
    def n_paths(self) -> int:
        return int(self.path_fraction.shape[0])

    def nodes_of(self, path: int) -> np.ndarray:
        return self.path_nodes[self.path_node_indptr[path]:self.path_node_indptr[path + 1]]

    def edges_of(self, path: int) -> np.ndarray:
        return self.path_edges[self.path_edge_indptr[path]:self.path_edge_indptr[path + 1]]

    def primary_path(self, pair: int) -> np.ndarray | None:
        """Nodes of the pair's path carrying the largest share (first on ties); None if none."""
        a, b = int(self.pair_path_indptr[pair]), int(self.pair_path_indptr[pair + 1])
        if b == a:
            return None
        j = a + int(np.argmax(self.path_fraction[a:b]))
        return self.nodes_of(j)

    def pair_delay_s(self) -> np.ndarray:
        """Traffic-weighted mean one-way delay per pair (inf where no path)."""
        out = np.full(self.n_pairs, np.inf)
        counts = np.diff(self.pair_path_indptr)
        has = counts > 0
        pair_of_path = np.repeat(np.arange(self.n_pairs), counts)
        s = np.bincount(pair_of_path, self.path_fraction * self.path_delay_s,
                        minlength=self.n_pairs)
        out[has] = s[has]
        return out


def _ranges(starts, counts) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each (s, c)."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offs = np.repeat(np.asarray(starts, np.int64) - np.cumsum(counts) + counts, counts)
    return offs + np.arange(total)


def _indptr(counts) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _routes(pair_counts, node_indptr, nodes, edge_indptr, edges, fraction, delay_s,
            blackholed=None) -> Routes:
    """Assemble :class:`Routes` (path delays summed from the per-edge ``delay_s``)."""
    pair_counts = np.asarray(pair_counts, np.int64)
    n_pairs = pair_counts.shape[0]
    edge_counts = np.diff(edge_indptr)
    path_of_edge = np.repeat(np.arange(edge_counts.shape[0]), edge_counts)
    delay = np.bincount(path_of_edge, weights=delay_s[edges], minlength=edge_counts.shape[0])
    if blackholed is None:
        blackholed = np.zeros(n_pairs, np.bool_)
    return Routes(
        pair_path_indptr=_indptr(pair_counts),
        path_edge_indptr=np.asarray(edge_indptr, np.int64),
        path_edges=np.asarray(edges, np.int32),
        path_node_indptr=np.asarray(node_indptr, np.int64),
        path_nodes=np.asarray(nodes, np.int32),
        path_fraction=np.asarray(fraction, np.float64),
        path_delay_s=delay,
        pair_reachable=pair_counts > 0,
        pair_blackholed=np.asarray(blackholed, np.bool_),
    )


def _routes_from_path_set(ps: PathSet, pair_idx, delay_s, split="equal") -> Routes:
    """Routes for pairs ``pair_idx`` (rows of ``ps``; may repeat), traffic split by ``split``."""
    counts = np.diff(ps.pair_path_indptr)[pair_idx]
    paths = _ranges(ps.pair_path_indptr[pair_idx], counts)
    ecount = np.diff(ps.path_edge_indptr)[paths]
    ncount = np.diff(ps.path_node_indptr)[paths]
    edges = ps.path_edges[_ranges(ps.path_edge_indptr[paths], ecount)]
    nodes = ps.path_nodes[_ranges(ps.path_node_indptr[paths], ncount)]
    pair_of_path = np.repeat(np.arange(len(counts)), counts)
    edge_indptr = _indptr(ecount)
    path_of_edge = np.repeat(np.arange(paths.shape[0]), ecount)
    delay = np.bincount(path_of_edge, weights=delay_s[edges], minlength=paths.shape[0])
    if split == "inverse_delay":
        share = 1.0 / np.maximum(delay, 1e-12)
    else:
        share = np.ones(paths.shape[0])
    total = np.bincount(pair_of_path, weights=share, minlength=len(counts))
    fraction = share / total[pair_of_path] if paths.size else share
    return _routes(counts, _indptr(ncount), nodes, edge_indptr, edges, fraction, delay_s)


def _unique_pairs(src, dst, n):
    key = src.astype(np.int64) * n + dst
    ukey, inverse = np.unique(key, return_inverse=True)
    return (ukey // n).astype(np.int32), (ukey % n).astype(np.int32), inverse.ravel()


def _nodes_from_edges(edge_indptr, edges, path_src, indices):
    n_paths = edge_indptr.shape[0] - 1
    node_indptr = edge_indptr + np.arange(n_paths + 1)
    nodes = np.empty(int(node_indptr[-1]), np.int32)
    first = np.zeros(nodes.shape[0], np.bool_)
    first[node_indptr[:-1]] = True
    nodes[first] = path_src
    nodes[~first] = indices[edges]
    return node_indptr, nodes


# --------------------------------------------------------------------------------------------
# Tree routing: one search per distinct destination (or source)
# --------------------------------------------------------------------------------------------


def _tree_routes(snapshot: Snapshot, src, dst, search, rev) -> Routes:
    """One path per pair out of shortest-path trees.

    ``search(roots, towards)`` returns ``(pred, pred_edge)`` of trees rooted at ``roots``;
    ``towards`` true means the roots are destinations and the search must use reversed edge
    weights. Uses whichever of the distinct destinations / sources is fewer.
    """
    n_pairs = src.shape[0]
    if n_pairs == 0:
        return _routes(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                       np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0),
                       snapshot.delay_s)
    udst, dst_inv = np.unique(dst, return_inverse=True)
    usrc, src_inv = np.unique(src, return_inverse=True)
    if udst.shape[0] <= usrc.shape[0]:
        roots, row, start, end, towards = udst, dst_inv.ravel(), src, dst, True
    else:
        roots, row, start, end, towards = usrc, src_inv.ravel(), dst, src, False
    pred, pred_edge = search(roots.astype(np.int32), towards)
    return _routes_from_trees(snapshot, pred, pred_edge, rev, row.astype(np.int64), start, end,
                              towards)


def _routes_from_trees(snapshot, pred, pred_edge, rev, tree_row, start, end, towards) -> Routes:
    """One path per pair, read off tree ``tree_row[p]`` from ``start[p]`` to ``end[p]``."""
    lengths = K.tree_path_lengths(pred, tree_row, start, end)
    reach = lengths >= 0
    m = np.where(reach, lengths, 0)
    node_indptr = _indptr(np.where(reach, m + 1, 0))
    edge_indptr = _indptr(m)
    nodes = np.empty(int(node_indptr[-1]), np.int32)
    edges = np.empty(int(edge_indptr[-1]), np.int32)
    K.tree_paths_fill(pred, pred_edge, rev, tree_row, start, end, towards, node_indptr, nodes,
                      edge_indptr, edges)
    counts = reach.astype(np.int64)
    path_node_indptr = np.concatenate([[0], node_indptr[1:][reach]])
    path_edge_indptr = np.concatenate([[0], edge_indptr[1:][reach]])
    return _routes(counts, path_node_indptr, nodes, path_edge_indptr, edges,
                   np.ones(int(counts.sum())), snapshot.delay_s)


def _by_cost(items, row):
    """Tree rows reordered by decreasing number of targets, so that rows dealt round-robin to
    the kernel's tasks spread the big trees (a station talking to dozens of cities) evenly
    over the threads; returns ``(items, row)`` renumbered."""
    count = np.bincount(row, minlength=items.shape[0])
    order = np.argsort(-count, kind="stable")
    new_of_old = np.empty(order.shape[0], np.int64)
    new_of_old[order] = np.arange(order.shape[0])
    return items[order], new_of_old[row]


def _targets_by_row(row, other, n_rows):
    """Targets grouped by tree row (CSR ``tgt_indptr``/``tgt``) and each pair's slot."""
    order = np.argsort(row, kind="stable")
    slot = np.empty(row.shape[0], np.int64)
    slot[order] = np.arange(row.shape[0])
    return other[order], _indptr(np.bincount(row, minlength=n_rows)), slot


def _cores_idle() -> bool:
    """Whether the machine has a core to spare (1-minute load average below the core count)."""
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 0.5
    except OSError:  # pragma: no cover - no load average on this platform
        return True


class PairCover:
    """Which endpoint of each pair roots the tree its path is read from (cached per pair set).

    The roots are a greedy vertex cover of the pairs taken as undirected edges
    (:func:`~meshnet.kernels._routing.greedy_cover`: most uncovered pairs first, lower id on
    ties); a pair whose destination is a root uses the destination's tree (``towards``), else
    its source's. Ring neighbours thus share one tree per two nodes, and a station talking
    to many others roots one tree for all of them.
    """

    def __init__(self):
        self._key = None
        self._value = None
        self._scratch = None
        self._trees = None

    def scratch(self, n_chunks: int, n: int):
        """Search scratch kept between steps (the kernels leave it clean): fresh arrays each
        step would cost page faults and an O(n) fill per task, more than a short search."""
        if self._scratch is None or self._scratch[0].shape[:1] + self._scratch[0].shape[2:] \
                != (n_chunks, n):
            self._scratch = K.new_targets_scratch(n_chunks, n)
        return self._scratch

    def trees(self, r: int, n: int):
        """``(pred, pred_edge)`` buffers of at least ``(r, n)``, reused between steps (only
        settled entries are written and read)."""
        if self._trees is None or self._trees[0].shape[0] < r or self._trees[0].shape[1] != n:
            self._trees = (np.empty((r, n), np.int32), np.empty((r, n), np.int32))
        return self._trees

    def __call__(self, src, dst, n):
        if (self._key is not None and self._key[0] == n and np.array_equal(self._key[1], src)
                and np.array_equal(self._key[2], dst)):
            return self._value
        is_root = K.greedy_cover(src, dst, n)
        towards = is_root[dst]
        root = np.where(towards, dst, src)
        roots, row = np.unique(root, return_inverse=True)
        roots, row = _by_cost(roots, row.ravel().astype(np.int64))
        other = np.where(towards, src, dst).astype(np.int32)
        tgt, tgt_indptr, slot = _targets_by_row(row, other, roots.shape[0])
        self._key = (n, src.copy(), dst.copy())
        self._value = (roots.astype(np.int32), row, other, towards, tgt, tgt_indptr, slot)
        return self._value


def _cover_routes(snapshot: Snapshot, src, dst, weights, relay, rev, cover: PairCover,
                  parallel=None) -> Routes:
    """One least-``weights`` path per pair from trees rooted at a vertex cover of the pairs,
    each search stopped once its own targets are settled.

    Weights may be asymmetric (``load_aware``): a root then searches twice, over the reversed
    weights for the pairs it is the destination of and over the weights for the others.
    """
    n_pairs = src.shape[0]
    if n_pairs == 0:
        return _tree_routes(snapshot, src, dst, None, rev)
    n = snapshot.n_nodes
    roots, row, other, towards, tgt, tgt_indptr, slot = cover(src, dst, n)
    # Symmetric weights: one tree per root serves the pairs in both directions.
    w_rev = np.ascontiguousarray(weights[rev])
    if np.array_equal(w_rev, weights):
        root_rev = np.zeros(roots.shape[0], np.bool_)
    else:  # one tree per (root, direction)
        key = row * 2 + towards
        ukey, row = np.unique(key, return_inverse=True)
        ukey, row = _by_cost(ukey, row.ravel().astype(np.int64))
        roots = roots[ukey // 2]
        root_rev = (ukey % 2).astype(np.bool_)
        tgt, tgt_indptr, slot = _targets_by_row(row, other, roots.shape[0])
    r = roots.shape[0]
    pred, pred_edge = cover.trees(r, n)
    tdist = np.empty(n_pairs)
    hops = np.empty(n_pairs, np.int64)
    if parallel is None:
        work = r * n
        parallel = work >= PAIR_PARALLEL_MIN_WORK or (
            work >= PAIR_PARALLEL_IDLE_WORK and _cores_idle())
    n_chunks = min(r, numba.get_num_threads()) if parallel else 1
    fn = K.dijkstra_targets if parallel else K.dijkstra_targets_serial
    scratch_f, scratch_i = cover.scratch(n_chunks, n)
    fn(snapshot.indptr, snapshot.indices, weights, w_rev, root_rev, relay, roots, tgt_indptr,
       tgt, n_chunks, pred, pred_edge, tdist, hops, scratch_f, scratch_i)
    lengths = hops[slot]
    reach = lengths >= 0
    m = np.where(reach, lengths, 0)
    node_indptr = _indptr(np.where(reach, m + 1, 0))
    edge_indptr = _indptr(m)
    nodes = np.empty(int(node_indptr[-1]), np.int32)
    edges = np.empty(int(edge_indptr[-1]), np.int32)
    K.target_paths_fill(pred, pred_edge, rev, row, other, towards, node_indptr, nodes,
                        edge_indptr, edges)
    counts = reach.astype(np.int64)
    path_node_indptr = np.concatenate([[0], node_indptr[1:][reach]])
    path_edge_indptr = np.concatenate([[0], edge_indptr[1:][reach]])
    return _routes(counts, path_node_indptr, nodes, path_edge_indptr, edges,
                   np.ones(int(counts.sum())), snapshot.delay_s)


def _dijkstra_search(snapshot, weights, relay, rev):
    def search(roots, towards):
        n = snapshot.n_nodes
        r = roots.shape[0]
        dist = np.empty((r, n))
        pred = np.empty((r, n), np.int32)
        pred_edge = np.empty((r, n), np.int32)
        rank = np.empty((0, n), np.int32)
        w = weights[rev] if towards else weights
        K.dijkstra_many(snapshot.indptr, snapshot.indices, np.ascontiguousarray(w), relay,
                        roots, dist, pred, pred_edge, rank)
        return pred, pred_edge

    return search


def _bfs_search(snapshot, relay):
    def search(roots, towards):
        n = snapshot.n_nodes
        r = roots.shape[0]
        hops = np.empty((r, n))
        pred = np.empty((r, n), np.int32)
        pred_edge = np.empty((r, n), np.int32)
        K.bfs_many(snapshot.indptr, snapshot.indices, relay, roots, hops, pred, pred_edge)
        return pred, pred_edge

    return search


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


class RoutingPolicy:
    """Base class: validation and the relay mask. Subclasses implement :meth:`_route`."""

    name = "base"
    #: Whether :meth:`route` reads ``edge_utilisation`` (the engine skips mapping it if not).
    uses_utilisation = False

    def __init__(self, cfg=None, n_nodes: int | None = None, relay_mask=None):
        if cfg is None:
            from .config import RoutingConfig

            cfg = RoutingConfig(policy=self.name)
        self.cfg = cfg
        self.n_nodes = n_nodes
        self.relay_mask = None
        if relay_mask is not None:
            self.relay_mask = np.ascontiguousarray(relay_mask, dtype=np.bool_)
            if n_nodes is not None and self.relay_mask.shape != (n_nodes,):
                raise MeshnetError(f"relay_mask must have {n_nodes} entries, got "
                                   f"{self.relay_mask.shape}")

    def _relay(self, snapshot: Snapshot) -> np.ndarray:
        if self.relay_mask is not None:
            if self.relay_mask.shape[0] != snapshot.n_nodes:
                raise MeshnetError(f"relay_mask has {self.relay_mask.shape[0]} entries but the "
                                   f"snapshot has {snapshot.n_nodes} nodes")
            return self.relay_mask
        if self.cfg.ground_relay:
            return np.ones(snapshot.n_nodes, np.bool_)
        return np.asarray(snapshot.node_kind == SATELLITE, np.bool_)

    def route(self, snapshot: Snapshot, src, dst, *, t_ns: int | None = None,
              edge_utilisation=None, future: Sequence[Snapshot] | None = None) -> Routes:
        """Paths for pairs ``(src[p], dst[p])`` on ``snapshot``.

        Parameters
        ----------
        snapshot : Snapshot
            The links up now.
        src, dst : array_like of int
            Pair endpoints (node ids), same length.
        t_ns : int, optional
            Time of the snapshot (default ``snapshot.t_ns``); ``periodic`` uses it.
        edge_utilisation : array_like, optional
            Per directed edge of ``snapshot``: utilisation of the previous allocation (0..1);
            ``load_aware`` uses it.
        future : sequence of Snapshot, optional
            The snapshots of the next ``horizon_s``; ``predictive`` uses them.
        """
        src = np.ascontiguousarray(src, dtype=np.int32).ravel()
        dst = np.ascontiguousarray(dst, dtype=np.int32).ravel()
        n = snapshot.n_nodes
        if src.shape != dst.shape:
            raise MeshnetError(f"src and dst must have the same length ({src.shape[0]} != "
                               f"{dst.shape[0]})")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise MeshnetError(f"pair endpoints must be node ids in [0, {n})")
        t_ns = snapshot.t_ns if t_ns is None else int(t_ns)
        return self._route(snapshot, src, dst, t_ns=t_ns, edge_utilisation=edge_utilisation,
                           future=future)

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future) -> Routes:
        raise NotImplementedError


@ROUTING_POLICIES.register("shortest_delay")
class ShortestDelay(RoutingPolicy):
    """One least-delay path per pair."""

    name = "shortest_delay"
    #: Parallel kernel (identical results to the serial one); None: parallel only when the
    #: trees hold at least PAIR_PARALLEL_MIN_WORK (roots x nodes).
    parallel = None

    def __init__(self, cfg=None, n_nodes=None, relay_mask=None):
        super().__init__(cfg, n_nodes, relay_mask)
        self._cover = PairCover()

    def _weights(self, snapshot, edge_utilisation, future) -> np.ndarray:
        return snapshot.delay_s

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        relay = self._relay(snapshot)
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        w = np.ascontiguousarray(self._weights(snapshot, edge_utilisation, future), np.float64)
        return _cover_routes(snapshot, src, dst, w, relay, rev, self._cover, self.parallel)


@ROUTING_POLICIES.register("min_hop")
class MinHop(RoutingPolicy):
    """One least-hop path per pair (ties to the lower node id)."""

    name = "min_hop"

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        relay = self._relay(snapshot)
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        return _tree_routes(snapshot, src, dst, _bfs_search(snapshot, relay), rev)


@ROUTING_POLICIES.register("widest")
class Widest(RoutingPolicy):
    """One path per pair: the largest bottleneck capacity, and among the paths that reach it
    the least delay.

    Such paths do not nest into one tree per root (a node's own widest path can be wider and
    longer than the prefix a narrower destination needs), so after one widest-path search per
    root the pairs are grouped by (root, bottleneck) and each group reads its paths off a
    least-delay tree over the edges at least that wide. With the usual few distinct capacities
    that is one or two trees per root; trees are kept ``tree_bytes`` (32 MB) at a time.
    ``parallel`` selects the kernel (identical results).
    """

    name = "widest"
    parallel = True
    tree_bytes = 1 << 25

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        relay = self._relay(snapshot)
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        n_pairs = src.shape[0]
        if n_pairs == 0:
            return _tree_routes(snapshot, src, dst, None, rev)
        udst, dst_inv = np.unique(dst, return_inverse=True)
        usrc, src_inv = np.unique(src, return_inverse=True)
        if udst.shape[0] <= usrc.shape[0]:
            roots, row, start, towards = udst, dst_inv.ravel(), src, True
        else:
            roots, row, start, towards = usrc, src_inv.ravel(), dst, False
        end = dst if towards else src
        roots = roots.astype(np.int32)
        cap, w = snapshot.capacity_bps, snapshot.delay_s
        if towards:
            cap, w = cap[rev], w[rev]
        cap, w = np.ascontiguousarray(cap), np.ascontiguousarray(w)
        n, r = snapshot.n_nodes, roots.shape[0]
        width = np.empty((r, n))
        scratch = np.empty((r, n))
        pred = np.empty((r, n), np.int32)
        pred_edge = np.empty((r, n), np.int32)
        widest = K.widest_many if self.parallel else K.widest_many_serial
        widest(snapshot.indptr, snapshot.indices, cap, w, relay, roots, width, scratch, pred,
               pred_edge)
        # One task per (root, bottleneck) among the pairs; unreachable pairs (width 0) join
        # their root's first task and read no path.
        level = width[row, start]
        level = np.where(level > 0.0, level, np.inf)
        keys, task_of_pair = np.unique(np.stack([row.astype(np.float64), level], 1), axis=0,
                                       return_inverse=True)
        task_root = roots[keys[:, 0].astype(np.int64)]
        task_level = keys[:, 1].copy()  # inf: no edge is that wide, the tree is the root
        task_of_pair = task_of_pair.ravel().astype(np.int64)
        levels = K.widest_levels if self.parallel else K.widest_levels_serial
        # Trees in chunks of ``tree_bytes``: with continuous capacities every pair can have a
        # bottleneck of its own.
        chunk = max(1, self.tree_bytes // (8 * n))
        parts = []
        for t0 in range(0, keys.shape[0], chunk):
            t1 = min(t0 + chunk, keys.shape[0])
            pick = np.flatnonzero((task_of_pair >= t0) & (task_of_pair < t1))
            tpred = np.empty((t1 - t0, n), np.int32)
            tpred_edge = np.empty((t1 - t0, n), np.int32)
            levels(snapshot.indptr, snapshot.indices, cap, w, relay, task_root[t0:t1],
                   task_level[t0:t1], tpred, tpred_edge)
            part = _routes_from_trees(snapshot, tpred, tpred_edge, rev,
                                      task_of_pair[pick] - t0, start[pick], end[pick], towards)
            if t0 == 0 and t1 == keys.shape[0]:
                return part
            parts.append((pick, part))
        return _merge_single_paths(snapshot, n_pairs, parts)


def _merge_single_paths(snapshot, n_pairs, parts) -> Routes:
    """One :class:`Routes` out of ``(pair ids, Routes of those pairs)`` parts with at most one
    path per pair."""
    pair_of_path = np.concatenate([pick[r.pair_reachable] for pick, r in parts])
    node_counts = np.concatenate([np.diff(r.path_node_indptr) for _, r in parts])
    edge_counts = np.concatenate([np.diff(r.path_edge_indptr) for _, r in parts])
    node_off = np.cumsum([0] + [r.path_nodes.shape[0] for _, r in parts])[:-1]
    edge_off = np.cumsum([0] + [r.path_edges.shape[0] for _, r in parts])[:-1]
    node_start = np.concatenate([r.path_node_indptr[:-1] + o
                                 for (_, r), o in zip(parts, node_off, strict=True)])
    edge_start = np.concatenate([r.path_edge_indptr[:-1] + o
                                 for (_, r), o in zip(parts, edge_off, strict=True)])
    nodes = np.concatenate([r.path_nodes for _, r in parts])
    edges = np.concatenate([r.path_edges for _, r in parts])
    order = np.argsort(pair_of_path, kind="stable")
    nc, ec = node_counts[order], edge_counts[order]
    return _routes(np.bincount(pair_of_path, minlength=n_pairs), _indptr(nc),
                   nodes[_ranges(node_start[order], nc)], _indptr(ec),
                   edges[_ranges(edge_start[order], ec)], np.ones(order.shape[0]),
                   snapshot.delay_s)


@ROUTING_POLICIES.register("load_aware")
class LoadAware(ShortestDelay):
    """Least-delay paths over weights grown by the previous step's link utilisation."""

    name = "load_aware"
    uses_utilisation = True

    def _weights(self, snapshot, edge_utilisation, future):
        if edge_utilisation is None:
            return snapshot.delay_s
        util = np.asarray(edge_utilisation, np.float64)
        if util.shape != (snapshot.n_edges,):
            raise MeshnetError(f"edge_utilisation must have one value per directed edge "
                               f"({snapshot.n_edges}), got {util.shape}")
        util = np.clip(np.nan_to_num(util, nan=0.0, posinf=1.0), 0.0, None)
        return snapshot.delay_s * (1.0 + self.cfg.load_alpha * util)


@ROUTING_POLICIES.register("k_shortest")
class KShortest(RoutingPolicy):
    """The ``k`` least-delay simple paths per pair (Yen); traffic split over them."""

    name = "k_shortest"

    def _kernel_args(self, snapshot, relay):
        return K.yen_many, (snapshot.indptr, snapshot.indices, snapshot.delay_s, relay)

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        relay = self._relay(snapshot)
        usrc, udst, inverse = _unique_pairs(src, dst, snapshot.n_nodes)
        kernel, args = self._kernel_args(snapshot, relay)
        ps = _run_batched(kernel, snapshot.n_nodes, int(self.cfg.k), usrc, udst, args)
        return _routes_from_path_set(ps, inverse, snapshot.delay_s, self.cfg.split)


@ROUTING_POLICIES.register("edge_disjoint")
class EdgeDisjoint(KShortest):
    """Up to ``k`` link-disjoint paths per pair of least total delay; traffic split."""

    name = "edge_disjoint"

    def _kernel_args(self, snapshot, relay):
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        return K.disjoint_many, (snapshot.indptr, snapshot.indices, snapshot.delay_s, rev,
                                 relay)


@ROUTING_POLICIES.register("ecmp")
class Ecmp(RoutingPolicy):
    """All next hops within ``ecmp_tolerance`` of the least delay, equal split per hop."""

    name = "ecmp"

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        relay = self._relay(snapshot)
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        n = snapshot.n_nodes
        udst, row = np.unique(dst, return_inverse=True)
        row = row.ravel().astype(np.int64)
        r = udst.shape[0]
        dist = np.empty((r, n))
        pred = np.empty((0, n), np.int32)
        pred_edge = np.empty((0, n), np.int32)
        rank = np.empty((r, n), np.int32)
        w = snapshot.delay_s
        K.dijkstra_many(snapshot.indptr, snapshot.indices, np.ascontiguousarray(w[rev]), relay,
                        udst.astype(np.int32), dist, pred, pred_edge, rank)
        masks = np.empty((r, snapshot.n_edges), np.bool_)
        K.ecmp_masks(snapshot.indptr, snapshot.indices, w, relay, udst.astype(np.int32), dist,
                     rank, float(self.cfg.ecmp_tolerance), masks)
        kmax = int(self.cfg.ecmp_max_paths)
        batch = max(1, _BATCH_BYTES // (kmax * (n + 1) * 4))
        all_counts, all_len, all_edges, all_frac = [], [], [], []
        for a in range(0, src.shape[0], batch):
            s, d, rw = src[a:a + batch], dst[a:a + batch], row[a:a + batch]
            b = s.shape[0]
            out_edges = np.empty((b, kmax, n + 1), np.int32)
            out_len = np.zeros((b, kmax), np.int64)
            out_frac = np.zeros((b, kmax))
            out_count = np.zeros(b, np.int64)
            K.ecmp_paths_many(snapshot.indptr, snapshot.indices, masks, rw, s, d, kmax,
                              out_edges, out_len, out_frac, out_count)
            keep = np.arange(kmax)[None, :] < out_count[:, None]
            lens = out_len[keep]
            all_counts.append(out_count)
            all_len.append(lens)
            all_frac.append(out_frac[keep])
            flat = out_edges[keep]
            all_edges.append(flat[np.arange(n + 1)[None, :] < lens[:, None]])
        counts = np.concatenate(all_counts) if all_counts else np.zeros(0, np.int64)
        lens = np.concatenate(all_len) if all_len else np.zeros(0, np.int64)
        frac = np.concatenate(all_frac) if all_frac else np.zeros(0)
        edges = np.concatenate(all_edges) if all_edges else np.zeros(0, np.int32)
        pair_of_path = np.repeat(np.arange(counts.shape[0]), counts)
        # Paths beyond ecmp_max_paths are dropped: renormalise the kept shares.
        total = np.bincount(pair_of_path, weights=frac, minlength=counts.shape[0])
        frac = frac / total[pair_of_path] if frac.size else frac
        edge_indptr = _indptr(lens)
        node_indptr, nodes = _nodes_from_edges(edge_indptr, edges, src[pair_of_path],
                                               snapshot.indices)
        return _routes(counts, node_indptr, nodes, edge_indptr, edges, frac, snapshot.delay_s)


def _edge_keys(snapshot: Snapshot, n: int) -> np.ndarray:
    """``u * n + v`` of every directed edge; sorted ascending because CSR rows are sorted."""
    return snapshot.edge_sources().astype(np.int64) * n + snapshot.indices


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, np.bool_)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


@ROUTING_POLICIES.register("periodic")
class Periodic(RoutingPolicy):
    """Least-delay tables recomputed every ``interval_s``; stale in between."""

    name = "periodic"

    def __init__(self, cfg=None, n_nodes=None, relay_mask=None):
        super().__init__(cfg, n_nodes, relay_mask)
        self._interval_ns = max(1, int(round(self.cfg.interval_s * NS_PER_S)))
        self._epoch = None
        self._table_snapshot = None
        self._tables: dict[int, np.ndarray] = {}
        #: Recomputations so far (for reports).
        self.n_recomputations = 0

    def _tables_for(self, dests: np.ndarray) -> np.ndarray:
        snap = self._table_snapshot
        missing = np.array([d for d in dests.tolist() if d not in self._tables], np.int32)
        if missing.size:
            relay = self._relay(snap)
            rev = K.reverse_edges(snap.indptr, snap.indices)
            n, r = snap.n_nodes, missing.shape[0]
            dist = np.empty((r, n))
            pred = np.empty((r, n), np.int32)
            pred_edge = np.empty((0, n), np.int32)
            rank = np.empty((0, n), np.int32)
            K.dijkstra_many(snap.indptr, snap.indices, np.ascontiguousarray(snap.delay_s[rev]),
                            relay, missing, dist, pred, pred_edge, rank)
            for i, d in enumerate(missing.tolist()):
                self._tables[d] = pred[i]
        return np.stack([self._tables[d] for d in dests.tolist()]) if dests.size else \
            np.zeros((0, snap.n_nodes), np.int32)

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        epoch = t_ns // self._interval_ns
        if (self._epoch is None or epoch != self._epoch or self._table_snapshot is None
                or self._table_snapshot.n_nodes != snapshot.n_nodes):
            self._epoch = epoch
            self._table_snapshot = snapshot
            self._tables = {}
            self.n_recomputations += 1
        udst, row = np.unique(dst, return_inverse=True)
        tables = self._tables_for(udst.astype(np.int32))
        status, lengths, node_indptr, nodes, edges = K.follow_tables(
            tables, row.ravel().astype(np.int64), src, dst, snapshot.indptr, snapshot.indices)
        ok = status == 0
        counts = ok.astype(np.int64)
        path_node_indptr = np.concatenate([[0], node_indptr[1:][ok]])
        path_edge_indptr = _indptr(lengths[ok])
        return _routes(counts, path_node_indptr, nodes, path_edge_indptr, edges,
                       np.ones(int(counts.sum())), snapshot.delay_s, blackholed=status == 2)


@ROUTING_POLICIES.register("predictive")
class Predictive(RoutingPolicy):
    """Least-delay paths among those that stay up longest; kept until about to break."""

    name = "predictive"

    def __init__(self, cfg=None, n_nodes=None, relay_mask=None):
        super().__init__(cfg, n_nodes, relay_mask)
        self._prev: dict[int, np.ndarray] = {}
        self._keys: dict[int, tuple[Snapshot, np.ndarray]] = {}

    def _keys_of(self, snap: Snapshot, n: int) -> np.ndarray:
        # Each future snapshot is seen horizon times: compute its edge keys once.
        hit = self._keys.get(snap.t_ns)
        if hit is not None and hit[0] is snap:
            return hit[1]
        keys = _edge_keys(snap, n)
        self._keys[snap.t_ns] = (snap, keys)
        return keys

    def _future_keys(self, snapshot, future, n):
        for t in [t for t in self._keys if t < snapshot.t_ns]:
            del self._keys[t]
        if not future:
            return []
        horizon_ns = int(round(self.cfg.horizon_s * NS_PER_S))
        keys = []
        for f in future:
            if f.t_ns <= snapshot.t_ns:
                continue
            if f.t_ns > snapshot.t_ns + horizon_ns:
                break
            keys.append(self._keys_of(f, n))
        return keys

    def _fresh(self, snapshot, src, dst, relay, rev, lifetime, n_future):
        """One path per pair: the highest lifetime level whose least-delay path is within
        ``predictive_max_stretch`` of the unconstrained least delay (level 0)."""
        levels = [0]
        lv = n_future
        while lv >= 1:
            if lv not in levels:
                levels.append(lv)
            lv //= 2
        levels = sorted(set(levels))
        n = snapshot.n_nodes
        udst, row = np.unique(dst, return_inverse=True)
        row = row.ravel().astype(np.int64)
        roots = udst.astype(np.int32)
        r = roots.shape[0]
        preds, pedges, dists = [], [], []
        w_rev = snapshot.delay_s[rev]
        life_rev = lifetime[rev]
        for lv in levels:
            w = np.where(life_rev >= lv, w_rev, np.inf)  # inf weight = edge unusable
            dist = np.empty((r, n))
            pred = np.empty((r, n), np.int32)
            pred_edge = np.empty((r, n), np.int32)
            rank = np.empty((0, n), np.int32)
            K.dijkstra_many(snapshot.indptr, snapshot.indices, np.ascontiguousarray(w), relay,
                            roots, dist, pred, pred_edge, rank)
            preds.append(pred)
            pedges.append(pred_edge)
            dists.append(dist[row, src])
        best = dists[0]
        choice = np.zeros(src.shape[0], np.int64)
        limit = best * self.cfg.predictive_max_stretch
        for j in range(1, len(levels)):
            ok = np.isfinite(dists[j]) & (dists[j] <= limit)
            choice[ok] = j
        pred = np.concatenate(preds)
        pred_edge = np.concatenate(pedges)
        tree_row = choice * r + row

        # The per-pair (level, destination) tree rows are precomputed.
        routes = _routes_from_trees(snapshot, pred, pred_edge, rev, tree_row, src, dst, True)
        return routes, best

    def _route(self, snapshot, src, dst, *, t_ns, edge_utilisation, future):
        n = snapshot.n_nodes
        relay = self._relay(snapshot)
        rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
        keys_now = self._keys_of(snapshot, n)
        fkeys = self._future_keys(snapshot, future, n)
        # Lifetime of every link inside the horizon: future snapshots it stays up in a row.
        lifetime = np.full(snapshot.n_edges, len(fkeys), np.int64)
        for j in range(len(fkeys) - 1, -1, -1):
            lifetime[~_contains(fkeys[j], keys_now)] = j
        fresh, best_s = self._fresh(snapshot, src, dst, relay, rev, lifetime, len(fkeys))

        # Keep each pair's previous path while all its links exist now and at the next step.
        pair_key = src.astype(np.int64) * n + dst
        prev = [self._prev.get(int(k)) for k in pair_key.tolist()]
        keep = np.zeros(src.shape[0], np.bool_)
        has_prev = np.array([p is not None and p.size > 1 for p in prev], np.bool_)
        kept_edges: dict[int, np.ndarray] = {}
        if has_prev.any():
            idx = np.flatnonzero(has_prev)
            plist = [prev[i] for i in idx.tolist()]
            hop_counts = np.array([p.size - 1 for p in plist], np.int64)
            u = np.concatenate([p[:-1] for p in plist]).astype(np.int64)
            v = np.concatenate([p[1:] for p in plist]).astype(np.int64)
            hop_keys = u * n + v
            ok = _contains(keys_now, hop_keys)
            if fkeys:  # switch one step ahead of a break, so no traffic is lost
                ok &= _contains(fkeys[0], hop_keys)
            path_of_hop = np.repeat(np.arange(idx.shape[0]), hop_counts)
            bad = np.bincount(path_of_hop, weights=~ok, minlength=idx.shape[0]) > 0
            eids = K.find_edges(snapshot.indptr, snapshot.indices, u, v)
            delay = np.bincount(path_of_hop, weights=np.where(ok, snapshot.delay_s[eids], 0.0),
                                minlength=idx.shape[0])
            good = ~bad & (delay <= self.cfg.predictive_max_stretch * best_s[idx])
            offs = _indptr(hop_counts)
            for j, i in enumerate(idx.tolist()):
                if good[j]:
                    mid = plist[j][1:-1]
                    if mid.size and not relay[mid].all():
                        continue
                    keep[i] = True
                    kept_edges[i] = eids[offs[j]:offs[j + 1]]
        routes = fresh if not keep.any() else self._merge(fresh, keep, prev, kept_edges,
                                                          snapshot)
        for p in range(src.shape[0]):
            path = routes.primary_path(p)
            if path is None:
                self._prev.pop(int(pair_key[p]), None)
            else:
                self._prev[int(pair_key[p])] = path.copy()
        return routes

    @staticmethod
    def _merge(fresh: Routes, keep, prev, kept_edges, snapshot) -> Routes:
        n_pairs = keep.shape[0]
        node_parts, edge_parts, ncount, ecount, counts = [], [], [], [], []
        for p in range(n_pairs):
            if keep[p]:
                node_parts.append(prev[p].astype(np.int32))
                edge_parts.append(kept_edges[p].astype(np.int32))
                ncount.append(prev[p].size)
                ecount.append(prev[p].size - 1)
                counts.append(1)
            else:
                a, b = fresh.pair_path_indptr[p], fresh.pair_path_indptr[p + 1]
                counts.append(int(b - a))
                for j in range(a, b):
                    node_parts.append(fresh.nodes_of(j))
                    edge_parts.append(fresh.edges_of(j))
                    ncount.append(node_parts[-1].size)
                    ecount.append(edge_parts[-1].size)
        nodes = np.concatenate(node_parts) if node_parts else np.zeros(0, np.int32)
        edges = np.concatenate(edge_parts) if edge_parts else np.zeros(0, np.int32)
        return _routes(np.array(counts, np.int64), _indptr(ncount), nodes, _indptr(ecount),
                       edges, np.ones(len(ncount)), snapshot.delay_s)


def make_policy(cfg, n_nodes: int | None = None, relay_mask=None) -> RoutingPolicy:
    """The routing policy named by ``cfg.policy``, ready for ``route()`` calls.

    Parameters
    ----------
    cfg : RoutingConfig
        The ``[routing]`` table.
    n_nodes : int, optional
        Number of nodes (checks ``relay_mask``).
    relay_mask : array_like of bool, optional
        ``relay_mask[u]`` false: ``u`` may not relay. Default: satellites relay, ground
        stations only if ``cfg.ground_relay``.

    Examples
    --------
    >>> import numpy as np
    >>> from meshnet.graph import Snapshot
    >>> from meshnet.routing.config import RoutingConfig
    >>> snap = Snapshot.from_links(0, np.array(["s0", "s1", "g"], dtype=object),
    ...                            np.array([0, 0, 1], np.int8), [0, 1], [1, 2],
    ...                            [1000.0, 500.0], [1e9, 1e9])
    >>> policy = make_policy(RoutingConfig(policy="shortest_delay"), 3)
    >>> routes = policy.route(snap, np.array([0]), np.array([2]), t_ns=0)
    >>> routes.nodes_of(0).tolist(), round(float(routes.path_delay_s[0]) * 1e3, 3)
    ([0, 1, 2], 5.003)
    """
    cls = ROUTING_POLICIES.get(cfg.policy)
    if ROUTING_POLICIES.builtin(cfg.policy) and issubclass(cls, RoutingPolicy):
        policy = cls(cfg, n_nodes, relay_mask)
    else:  # a policy of the user's: checked answers (meshnet.routing.protocol)
        from .protocol import build_external

        policy = build_external(cls, cfg, n_nodes, relay_mask)
    if getattr(cfg, "linkstate", None) is not None and cfg.linkstate.enabled:
        from .linkstate import LinkStateRouting

        policy = LinkStateRouting(policy, cfg, n_nodes, relay_mask)
    return policy
