"""Shortest-path kernels over CSR graphs (private; see :mod:`meshnet.routing` for the API).

Conventions shared by every kernel:

- The graph is ``indptr`` (int64, n + 1), ``indices`` (int32, E), one value per directed edge
  (``weights`` float64, non-negative and finite, checked by the caller).
- ``relay_ok[u]`` false means ``u`` may start or end a path but never sit inside one: such a
  node is settled but its out-edges are only scanned when it is a root of the search.
- Ties break deterministically: between equal tentative distances the predecessor with the
  lower node id wins (the heap itself orders by distance only, which is deterministic too).
- Outputs use ``inf`` for unreachable distances and ``-1`` (``NO_PATH``) for missing
  predecessors / edges. A root has predecessor ``-1``.
- Parallel drivers (``prange`` over roots or pairs) have a ``_serial`` twin with the same body;
  the tests check both give identical results.

Trees rooted at a destination ``d`` on a symmetric graph give forwarding tables directly: with
``reverse_weights`` (the weight of the opposite edge, equal to ``weights`` for symmetric
weights), ``pred[u]`` is ``u``'s next hop towards ``d`` and ``pred_edge[u]`` the edge
``pred[u] -> u``, whose reverse is the forwarding edge ``u -> pred[u]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_INF = np.inf

# --------------------------------------------------------------------------------------------
# Indexed binary heap ordered by (k1, k2, node id); k2 = k1 gives a plain one-key heap.
# --------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _less(k1, k2, a, b):
    if k1[a] < k1[b]:
        return True
    if k1[a] > k1[b]:
        return False
    if k2[a] < k2[b]:
        return True
    if k2[a] > k2[b]:
        return False
    return a < b


@njit(cache=True, inline="always")
def _sift_up(heap, pos, k1, k2, i):
    node = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        p = heap[parent]
        if _less(k1, k2, node, p):
            heap[i] = p
            pos[p] = i
            i = parent
        else:
            break
    heap[i] = node
    pos[node] = i


@njit(cache=True, inline="always")
def _sift_down(heap, pos, k1, k2, i, size):
    node = heap[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        r = c + 1
        if r < size and _less(k1, k2, heap[r], heap[c]):
            c = r
        if _less(k1, k2, heap[c], node):
            heap[i] = heap[c]
            pos[heap[i]] = i
            i = c
        else:
            break
    heap[i] = node
    pos[node] = i


@njit(cache=True, inline="always")
def _pop(heap, pos, k1, k2, size):
    u = heap[0]
    size -= 1
    if size > 0:
        heap[0] = heap[size]
        pos[heap[0]] = 0
        _sift_down(heap, pos, k1, k2, 0, size)
    return u, size


# --------------------------------------------------------------------------------------------
# Dijkstra
# --------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _decrease_key4(hk, hn, pos, node, key, size):
    """Insert ``node`` with ``key`` or lower its key in the 4-ary heap; return the heap size.

    ``pos[node]`` is its slot (-1: not in the heap). Sifts up by moving parents down, one
    write per level.
    """
    i = pos[node]
    if i < 0:
        i = size
        size += 1
    while i > 0:
        p = (i - 1) >> 2
        if key < hk[p]:
            hk[i] = hk[p]
            hn[i] = hn[p]
            pos[hn[i]] = i
            i = p
        else:
            break
    hk[i] = key
    hn[i] = node
    pos[node] = i
    return size


@njit(cache=True)
def dijkstra_core(indptr, indices, weights, relay_ok, edge_ok, node_ok, use_masks, init_nodes,
                  init_dist, target, dist, pred, pred_edge, rank, hk, hn, pos):
    """One Dijkstra search from a set of roots with initial distances.

    Indexed 4-ary heap on the distance alone (a branch-free comparison; an id tie-break in the
    heap doubled the run time). ``dist``/``pred``/``pred_edge``/``rank`` are filled (inf / -1
    where unreached); ``rank[u]`` is the settle order, a topological order of the
    shortest-path DAG. Between equal tentative distances the lower predecessor id wins.
    ``use_masks`` enables ``edge_ok``/``node_ok`` (blocked edges and nodes, for Yen).
    ``hk``/``hn``/``pos`` are scratch of length n. ``target >= 0`` stops once it is settled.
    Returns the number of settled nodes.
    """
    n = indptr.shape[0] - 1
    for u in range(n):
        dist[u] = _INF
        pred[u] = -1
        pred_edge[u] = -1
        rank[u] = -1
        pos[u] = -1  # -1 unseen, -2 settled, else heap slot
    size = 0
    for j in range(init_nodes.shape[0]):
        r = init_nodes[j]
        if use_masks and not node_ok[r]:
            continue
        nd = init_dist[j]
        if nd >= dist[r]:
            continue
        dist[r] = nd
        size = _decrease_key4(hk, hn, pos, r, nd, size)
    count = 0
    while size > 0:
        d = hk[0]
        u = hn[0]
        size -= 1
        pos[u] = -2
        if size > 0:
            k = hk[size]
            x = hn[size]
            i = 0
            while True:
                c = 4 * i + 1
                if c >= size:
                    break
                best = c
                bk = hk[c]
                stop = c + 4 if c + 4 < size else size
                for j in range(c + 1, stop):
                    if hk[j] < bk:
                        bk = hk[j]
                        best = j
                if bk < k:
                    hk[i] = bk
                    hn[i] = hn[best]
                    pos[hn[i]] = i
                    i = best
                else:
                    break
            hk[i] = k
            hn[i] = x
            pos[x] = i
        rank[u] = count
        count += 1
        if u == target:
            break
        # A non-relay node is expanded only as a root of the search.
        if pred[u] >= 0 and not relay_ok[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            pv = pos[v]
            if pv == -2:
                continue
            if use_masks and (not edge_ok[e] or not node_ok[v]):
                continue
            nd = d + weights[e]
            dv = dist[v]
            if nd < dv:
                dist[v] = nd
                pred[v] = u
                pred_edge[v] = e
                size = _decrease_key4(hk, hn, pos, v, nd, size)
            elif nd == dv and u < pred[v]:
                pred[v] = u
                pred_edge[v] = e
    return count


@njit(cache=True)
def _dijkstra_row(indptr, indices, weights, relay_ok, roots, i, dist, pred, pred_edge, rank):
    n = indptr.shape[0] - 1
    hk = np.empty(n)
    hn = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    # Outputs given with zero rows are not wanted: search into scratch that stays in cache
    # instead of writing (and first touching) megabytes nobody reads.
    p = pred[i] if pred.shape[0] > 0 else np.empty(n, np.int32)
    pe = pred_edge[i] if pred_edge.shape[0] > 0 else np.empty(n, np.int32)
    rk = rank[i] if rank.shape[0] > 0 else np.empty(n, np.int32)
    init = np.empty(1, np.int32)
    init[0] = roots[i]
    init_d = np.zeros(1)
    dijkstra_core(indptr, indices, weights, relay_ok, relay_ok, relay_ok, False, init, init_d,
                  -1, dist[i], p, pe, rk, hk, hn, pos)


@njit(cache=True, parallel=True)
def dijkstra_many(indptr, indices, weights, relay_ok, roots, dist, pred, pred_edge, rank):
    """Dijkstra from every root (parallel over roots); outputs are ``(R, n)``.

    ``pred``, ``pred_edge`` and ``rank`` may be given with zero rows (shape ``(0, n)``) when
    not wanted.
    """
    for i in prange(roots.shape[0]):
        _dijkstra_row(indptr, indices, weights, relay_ok, roots, i, dist, pred, pred_edge, rank)


@njit(cache=True)
def dijkstra_many_serial(indptr, indices, weights, relay_ok, roots, dist, pred, pred_edge, rank):
    """Serial twin of :func:`dijkstra_many`."""
    for i in range(roots.shape[0]):
        _dijkstra_row(indptr, indices, weights, relay_ok, roots, i, dist, pred, pred_edge, rank)


# --------------------------------------------------------------------------------------------
# Breadth-first search (minimum hop count)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _bfs_row(indptr, indices, relay_ok, root, hops, pred, pred_edge):
    n = indptr.shape[0] - 1
    level = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int32)
    for u in range(n):
        hops[u] = _INF
        pred[u] = -1
        pred_edge[u] = -1
    level[root] = 0
    hops[root] = 0.0
    queue[0] = root
    head = 0
    tail = 1
    while head < tail:
        u = queue[head]
        head += 1
        if u != root and not relay_ok[u]:
            continue
        lu = level[u]
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if level[v] < 0:
                level[v] = lu + 1
                hops[v] = lu + 1.0
                pred[v] = u
                pred_edge[v] = e
                queue[tail] = v
                tail += 1
            elif level[v] == lu + 1 and u < pred[v]:
                pred[v] = u
                pred_edge[v] = e


@njit(cache=True, parallel=True)
def bfs_many(indptr, indices, relay_ok, roots, hops, pred, pred_edge):
    """Minimum hop count from every root (parallel over roots); ``hops`` float64, inf if none."""
    for i in prange(roots.shape[0]):
        _bfs_row(indptr, indices, relay_ok, roots[i], hops[i], pred[i], pred_edge[i])


@njit(cache=True)
def bfs_many_serial(indptr, indices, relay_ok, roots, hops, pred, pred_edge):
    """Serial twin of :func:`bfs_many`."""
    for i in range(roots.shape[0]):
        _bfs_row(indptr, indices, relay_ok, roots[i], hops[i], pred[i], pred_edge[i])


# --------------------------------------------------------------------------------------------
# Widest-shortest path: largest bottleneck capacity, then smallest weight
# --------------------------------------------------------------------------------------------
# ``widest_many`` gives every node's largest bottleneck exactly; its tie-break by weight is
# only as good as one tree allows. ``widest_levels`` gives the exact least-weight widest paths.


@njit(cache=True)
def _widest_row(indptr, indices, capacity, weights, relay_ok, root, width, dist, pred,
                pred_edge):
    n = indptr.shape[0] - 1
    neg_w = np.empty(n)  # heap key 1: -width (smaller is better)
    heap = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    state = np.zeros(n, np.int8)
    for u in range(n):
        neg_w[u] = 0.0
        width[u] = 0.0
        dist[u] = _INF
        pred[u] = -1
        pred_edge[u] = -1
    neg_w[root] = -_INF
    width[root] = _INF
    dist[root] = 0.0
    state[root] = 1
    heap[0] = root
    pos[root] = 0
    size = 1
    while size > 0:
        u, size = _pop(heap, pos, neg_w, dist, size)
        state[u] = 2
        if u != root and not relay_ok[u]:
            continue
        wu = width[u]
        du = dist[u]
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if state[v] == 2:
                continue
            c = capacity[e]
            nw = wu if wu < c else c
            nd = du + weights[e]
            if state[v] == 0:
                better = True
            elif nw > width[v] or (nw == width[v] and nd < dist[v]):
                better = True
            else:
                better = False
                if nw == width[v] and nd == dist[v] and u < pred[v]:
                    pred[v] = u
                    pred_edge[v] = e
            if better:
                width[v] = nw
                neg_w[v] = -nw
                dist[v] = nd
                pred[v] = u
                pred_edge[v] = e
                if state[v] == 0:
                    state[v] = 1
                    heap[size] = v
                    pos[v] = size
                    size += 1
                    _sift_up(heap, pos, neg_w, dist, size - 1)
                else:
                    _sift_up(heap, pos, neg_w, dist, pos[v])


@njit(cache=True, parallel=True)
def widest_many(indptr, indices, capacity, weights, relay_ok, roots, width, dist, pred,
                pred_edge):
    """Widest-shortest paths from every root (parallel over roots).

    ``width`` is the bottleneck capacity (inf at the root, 0 where unreachable), ``dist`` the
    weight of the chosen widest path (inf where unreachable).
    """
    for i in prange(roots.shape[0]):
        _widest_row(indptr, indices, capacity, weights, relay_ok, roots[i], width[i], dist[i],
                    pred[i], pred_edge[i])


@njit(cache=True)
def widest_many_serial(indptr, indices, capacity, weights, relay_ok, roots, width, dist, pred,
                       pred_edge):
    """Serial twin of :func:`widest_many`."""
    for i in range(roots.shape[0]):
        _widest_row(indptr, indices, capacity, weights, relay_ok, roots[i], width[i], dist[i],
                    pred[i], pred_edge[i])


@njit(cache=True)
def _level_row(indptr, indices, capacity, weights, relay_ok, roots, levels, i, pred, pred_edge):
    n = indptr.shape[0] - 1
    dist = np.empty(n)
    hk = np.empty(n)
    hn = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    rank = np.empty(n, np.int32)
    edge_ok = capacity >= levels[i]
    node_ok = np.ones(n, np.bool_)
    init = np.empty(1, np.int32)
    init[0] = roots[i]
    init_d = np.zeros(1)
    dijkstra_core(indptr, indices, weights, relay_ok, edge_ok, node_ok, True, init, init_d, -1,
                  dist, pred[i], pred_edge[i], rank, hk, hn, pos)


@njit(cache=True, parallel=True)
def widest_levels(indptr, indices, capacity, weights, relay_ok, roots, levels, pred,
                  pred_edge):
    """Least-weight trees over the edges at least ``levels[i]`` wide, from ``roots[i]``
    (parallel over the (root, level) tasks); ``pred``/``pred_edge`` are ``(R, n)``.

    The least-delay path among the widest ones to a node whose largest bottleneck is ``c``
    (from :func:`widest_many`) is its path in the tree of level ``c``: every path in that
    subgraph is at least ``c`` wide and none can be wider. One tree per distinct level, since
    such paths do not nest into one tree (a node's own widest path may be wider and longer
    than the prefix a narrower node needs).
    """
    for i in prange(roots.shape[0]):
        _level_row(indptr, indices, capacity, weights, relay_ok, roots, levels, i, pred,
                   pred_edge)


@njit(cache=True)
def widest_levels_serial(indptr, indices, capacity, weights, relay_ok, roots, levels, pred,
                         pred_edge):
    """Serial twin of :func:`widest_levels`."""
    for i in range(roots.shape[0]):
        _level_row(indptr, indices, capacity, weights, relay_ok, roots, levels, i, pred,
                   pred_edge)


# --------------------------------------------------------------------------------------------
# Paths out of predecessor trees
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def tree_path_lengths(pred, row_of_pair, start, end):
    """Number of edges on the tree path of each pair, -1 if none.

    Pair ``p`` walks ``pred[row_of_pair[p]]`` from ``start[p]`` until ``end[p]`` (the tree
    root); for a destination-rooted tree that is the forwarding path start -> end, for a
    source-rooted tree it is the path end -> start read backwards.
    """
    n_pairs = start.shape[0]
    n = pred.shape[1]
    out = np.empty(n_pairs, np.int64)
    for p in range(n_pairs):
        row = pred[row_of_pair[p]]
        u = start[p]
        m = 0
        while u != end[p] and u >= 0 and m <= n:
            u = row[u]
            m += 1
        out[p] = m if u == end[p] else -1
    return out


@njit(cache=True)
def tree_paths_fill(pred, pred_edge, reverse_edge, row_of_pair, start, end, forward,
                    node_indptr, nodes, edge_indptr, edges):
    """Write the tree path of each reachable pair (see :func:`tree_path_lengths`).

    ``forward`` true: tree rooted at ``end`` (destination); nodes are written start -> end and
    the forwarding edge of ``u`` is ``reverse_edge[pred_edge[u]]``. ``forward`` false: tree
    rooted at ``end`` = the source; nodes are written end -> start (source first) and edges are
    ``pred_edge`` directly.
    """
    n_pairs = start.shape[0]
    for p in range(n_pairs):
        m = edge_indptr[p + 1] - edge_indptr[p]
        if node_indptr[p + 1] == node_indptr[p]:
            continue
        row = pred[row_of_pair[p]]
        erow = pred_edge[row_of_pair[p]]
        u = start[p]
        b0 = node_indptr[p]
        e0 = edge_indptr[p]
        for j in range(m):
            if forward:
                nodes[b0 + j] = u
                edges[e0 + j] = reverse_edge[erow[u]]
            else:
                nodes[b0 + m - j] = u
                edges[e0 + m - 1 - j] = erow[u]
            u = row[u]
        if forward:
            nodes[b0 + m] = u
        else:
            nodes[b0] = u


# --------------------------------------------------------------------------------------------
# ECMP next-hop sets
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _ecmp_row(indptr, indices, weights, relay_ok, dest, dist, rank, rtol, mask):
    n = indptr.shape[0] - 1
    for u in range(n):
        du = dist[u]
        for e in range(indptr[u], indptr[u + 1]):
            mask[e] = False
        if u == dest or du == _INF:
            continue
        limit = du * (1.0 + rtol)
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if v != dest and not relay_ok[v]:
                continue
            dv = dist[v]
            # rank[v] < rank[u] keeps the next-hop graph acyclic even with zero weights.
            if dv < _INF and rank[v] >= 0 and rank[v] < rank[u] and weights[e] + dv <= limit:
                mask[e] = True


@njit(cache=True, parallel=True)
def ecmp_masks(indptr, indices, weights, relay_ok, dests, dist, rank, rtol, mask):
    """Edge ``u -> v`` is an equal-cost next hop of ``u`` towards ``dests[i]`` when
    ``w(u, v) + dist[i, v] <= dist[i, u] * (1 + rtol)`` and ``v`` was settled before ``u``.

    ``dist``/``rank`` come from destination-rooted trees over the reversed weights.
    """
    for i in prange(dests.shape[0]):
        _ecmp_row(indptr, indices, weights, relay_ok, dests[i], dist[i], rank[i], rtol, mask[i])


@njit(cache=True)
def ecmp_masks_serial(indptr, indices, weights, relay_ok, dests, dist, rank, rtol, mask):
    """Serial twin of :func:`ecmp_masks`."""
    for i in range(dests.shape[0]):
        _ecmp_row(indptr, indices, weights, relay_ok, dests[i], dist[i], rank[i], rtol, mask[i])


@njit(cache=True)
def _ecmp_paths_pair(indptr, indices, mask, src, dst, max_paths, out_edges, out_len, out_frac):
    """Enumerate paths src -> dst in the next-hop DAG ``mask`` depth first (edge order).

    Each path's fraction is the product of 1 / (number of next hops) at each node (per-hop
    equal split). At most ``max_paths`` are kept; the caller renormalises. Returns the count.
    """
    n = indptr.shape[0] - 1
    if src == dst:
        out_len[0] = 0
        out_frac[0] = 1.0
        return 1
    # Depth-first search with an explicit stack of edge cursors.
    cursor = np.empty(n + 1, np.int64)
    stack_node = np.empty(n + 1, np.int32)
    stack_edge = np.empty(n + 1, np.int32)
    stack_frac = np.empty(n + 1)
    n_paths = 0
    depth = 0
    stack_node[0] = src
    cursor[0] = indptr[src]
    stack_frac[0] = 1.0
    while depth >= 0 and n_paths < max_paths:
        u = stack_node[depth]
        if u == dst:
            for j in range(depth):
                out_edges[n_paths, j] = stack_edge[j]
            out_len[n_paths] = depth
            out_frac[n_paths] = stack_frac[depth]
            n_paths += 1
            depth -= 1
            continue
        e = cursor[depth]
        end = indptr[u + 1]
        while e < end and not mask[e]:
            e += 1
        if e >= end or depth >= n:
            depth -= 1
            continue
        cursor[depth] = e + 1
        n_next = 0
        for f in range(indptr[u], end):
            if mask[f]:
                n_next += 1
        stack_edge[depth] = e
        depth += 1
        stack_node[depth] = indices[e]
        cursor[depth] = indptr[indices[e]]
        stack_frac[depth] = stack_frac[depth - 1] / n_next
    return n_paths


@njit(cache=True, parallel=True)
def ecmp_paths_many(indptr, indices, masks, row_of_pair, src, dst, max_paths, out_edges,
                    out_len, out_frac, out_count):
    """:func:`_ecmp_paths_pair` for every pair (parallel); ``out_edges`` is ``(P, K, n)``."""
    for p in prange(src.shape[0]):
        out_count[p] = _ecmp_paths_pair(indptr, indices, masks[row_of_pair[p]], src[p], dst[p],
                                        max_paths, out_edges[p], out_len[p], out_frac[p])


@njit(cache=True)
def ecmp_paths_many_serial(indptr, indices, masks, row_of_pair, src, dst, max_paths, out_edges,
                           out_len, out_frac, out_count):
    """Serial twin of :func:`ecmp_paths_many`."""
    for p in range(src.shape[0]):
        out_count[p] = _ecmp_paths_pair(indptr, indices, masks[row_of_pair[p]], src[p], dst[p],
                                        max_paths, out_edges[p], out_len[p], out_frac[p])


# --------------------------------------------------------------------------------------------
# k shortest simple paths (Yen)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _grow(a, need):
    """``a`` if it holds ``need`` items, else a copy at least twice as long (same dtype)."""
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _yen_pair(indptr, indices, weights, relay_ok, src, dst, k, out_nodes, out_edges, out_len,
              out_cost):
    """Yen's k shortest simple paths src -> dst. Returns how many were found (<= k).

    Path j is ``out_nodes[j, :out_len[j] + 1]`` with edges ``out_edges[j, :out_len[j]]``.
    Candidates tie-break by (cost, hop count, node sequence), so the result is deterministic.
    """
    n = indptr.shape[0] - 1
    n_e = indices.shape[0]
    if src == dst:
        out_nodes[0, 0] = src
        out_len[0] = 0
        out_cost[0] = 0.0
        return 1
    edge_ok = np.ones(n_e, np.bool_)
    node_ok = np.ones(n, np.bool_)
    dist = np.empty(n)
    pred = np.empty(n, np.int32)
    pred_edge = np.empty(n, np.int32)
    rank = np.empty(n, np.int32)
    hk = np.empty(n)
    hn = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    init = np.empty(1, np.int32)
    init_d = np.zeros(1)

    init[0] = src
    dijkstra_core(indptr, indices, weights, relay_ok, edge_ok, node_ok, True, init, init_d,
                  dst, dist, pred, pred_edge, rank, hk, hn, pos)
    if dist[dst] == _INF:
        return 0
    m = 0
    u = dst
    while u != src:
        u = pred[u]
        m += 1
    u = dst
    for j in range(m, 0, -1):
        out_nodes[0, j] = u
        out_edges[0, j - 1] = pred_edge[u]
        u = pred[u]
    out_nodes[0, 0] = src
    out_len[0] = m
    out_cost[0] = dist[dst]
    found = 1

    # Candidate pool: flat node/edge storage with per-candidate offsets.
    c_nodes = np.empty(64, np.int32)
    c_edges = np.empty(64, np.int32)
    c_start = np.empty(8, np.int64)
    c_len = np.empty(8, np.int64)
    c_cost = np.empty(8)
    c_alive = np.zeros(8, np.bool_)
    n_cand = 0
    used = 0
    spur_nodes = np.empty(n, np.int32)
    spur_edges = np.empty(n, np.int32)

    while found < k:
        prev = found - 1
        plen = out_len[prev]
        root_cost = 0.0
        for i in range(plen):
            spur = out_nodes[prev, i]
            if i > 0 and not relay_ok[spur]:
                root_cost += weights[out_edges[prev, i]]
                continue
            # Block the next edge of every accepted path sharing this root.
            for a in range(found):
                if out_len[a] > i:
                    same = True
                    for j in range(i + 1):
                        if out_nodes[a, j] != out_nodes[prev, j]:
                            same = False
                            break
                    if same:
                        edge_ok[out_edges[a, i]] = False
            for j in range(i):
                node_ok[out_nodes[prev, j]] = False
            init[0] = spur
            dijkstra_core(indptr, indices, weights, relay_ok, edge_ok, node_ok, True, init,
                          init_d, dst, dist, pred, pred_edge, rank, hk, hn, pos)
            # Undo the blocks.
            for a in range(found):
                if out_len[a] > i:
                    edge_ok[out_edges[a, i]] = True
            for j in range(i):
                node_ok[out_nodes[prev, j]] = True
            if dist[dst] < _INF:
                ms = 0
                u = dst
                while u != spur:
                    u = pred[u]
                    ms += 1
                u = dst
                for j in range(ms, 0, -1):
                    spur_nodes[j] = u
                    spur_edges[j - 1] = pred_edge[u]
                    u = pred[u]
                spur_nodes[0] = spur
                total_len = i + ms
                total_cost = root_cost + dist[dst]
                # Duplicate check against the live candidates.
                dup = False
                for c in range(n_cand):
                    if not c_alive[c] or c_len[c] != total_len:
                        continue
                    s0 = c_start[c]
                    same = True
                    for j in range(total_len + 1):
                        x = out_nodes[prev, j] if j <= i else spur_nodes[j - i]
                        if c_nodes[s0 + j] != x:
                            same = False
                            break
                    if same:
                        dup = True
                        break
                if not dup:
                    need = used + total_len + 1
                    c_nodes = _grow(c_nodes, need)
                    c_edges = _grow(c_edges, need)
                    c_start = _grow(c_start, n_cand + 1)
                    c_len = _grow(c_len, n_cand + 1)
                    c_cost = _grow(c_cost, n_cand + 1)
                    if c_alive.shape[0] < n_cand + 1:
                        na = np.zeros(2 * c_alive.shape[0], np.bool_)
                        na[: c_alive.shape[0]] = c_alive
                        c_alive = na
                    for j in range(total_len + 1):
                        c_nodes[used + j] = out_nodes[prev, j] if j <= i else spur_nodes[j - i]
                    for j in range(total_len):
                        c_edges[used + j] = out_edges[prev, j] if j < i else spur_edges[j - i]
                    c_start[n_cand] = used
                    c_len[n_cand] = total_len
                    c_cost[n_cand] = total_cost
                    c_alive[n_cand] = True
                    n_cand += 1
                    used = need
            root_cost += weights[out_edges[prev, i]]
        # Best live candidate by (cost, hops, node sequence).
        best = -1
        for c in range(n_cand):
            if not c_alive[c]:
                continue
            if best < 0:
                best = c
                continue
            if c_cost[c] < c_cost[best]:
                best = c
            elif c_cost[c] == c_cost[best]:
                if c_len[c] < c_len[best]:
                    best = c
                elif c_len[c] == c_len[best]:
                    for j in range(c_len[c] + 1):
                        x = c_nodes[c_start[c] + j]
                        y = c_nodes[c_start[best] + j]
                        if x != y:
                            if x < y:
                                best = c
                            break
        if best < 0:
            break
        c_alive[best] = False
        s0 = c_start[best]
        for j in range(c_len[best] + 1):
            out_nodes[found, j] = c_nodes[s0 + j]
        for j in range(c_len[best]):
            out_edges[found, j] = c_edges[s0 + j]
        out_len[found] = c_len[best]
        out_cost[found] = c_cost[best]
        found += 1
    return found


@njit(cache=True, parallel=True)
def yen_many(indptr, indices, weights, relay_ok, src, dst, k, out_nodes, out_edges, out_len,
             out_cost, out_count):
    """Yen's k shortest simple paths for every pair (parallel over pairs).

    ``out_nodes`` is ``(P, k, n)``, ``out_edges`` ``(P, k, n)``, ``out_len``/``out_cost``
    ``(P, k)``, ``out_count`` ``(P,)``.
    """
    for p in prange(src.shape[0]):
        out_count[p] = _yen_pair(indptr, indices, weights, relay_ok, src[p], dst[p], k,
                                 out_nodes[p], out_edges[p], out_len[p], out_cost[p])


@njit(cache=True)
def yen_many_serial(indptr, indices, weights, relay_ok, src, dst, k, out_nodes, out_edges,
                    out_len, out_cost, out_count):
    """Serial twin of :func:`yen_many`."""
    for p in range(src.shape[0]):
        out_count[p] = _yen_pair(indptr, indices, weights, relay_ok, src[p], dst[p], k,
                                 out_nodes[p], out_edges[p], out_len[p], out_cost[p])


# --------------------------------------------------------------------------------------------
# k edge-disjoint paths of least total weight (successive shortest paths, unit capacities)
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _disjoint_pair(indptr, indices, weights, reverse_edge, relay_ok, src, dst, k, out_nodes,
                   out_edges, out_len, out_cost):
    """Up to k link-disjoint paths src -> dst minimising their total weight.

    Each undirected link carries at most one unit of flow in one direction. Augmenting paths
    are found by Dijkstra on reduced costs (Johnson potentials); pushing flow against an
    existing unit cancels it. The flow is then decomposed into paths, sorted by (cost, hops).
    Returns the number of paths (< k when the minimum cut between src and dst is smaller).
    """
    n = indptr.shape[0] - 1
    n_e = indices.shape[0]
    if src == dst:
        out_nodes[0, 0] = src
        out_len[0] = 0
        out_cost[0] = 0.0
        return 1
    flow = np.zeros(n_e, np.bool_)
    pot = np.zeros(n)
    dist = np.empty(n)
    pred = np.empty(n, np.int32)
    pred_edge = np.empty(n, np.int32)
    heap = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    state = np.empty(n, np.int8)
    n_flow = 0
    for _ in range(k):
        for u in range(n):
            dist[u] = _INF
            pred[u] = -1
            pred_edge[u] = -1
            state[u] = 0
        dist[src] = 0.0
        state[src] = 1
        heap[0] = src
        pos[src] = 0
        size = 1
        while size > 0:
            u, size = _pop(heap, pos, dist, dist, size)
            state[u] = 2
            if u == dst:
                break
            if u != src and not relay_ok[u]:
                continue
            du = dist[u]
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                if state[v] == 2:
                    continue
                r = reverse_edge[e]
                if flow[r]:
                    cost = -weights[r]
                elif not flow[e]:
                    cost = weights[e]
                else:
                    continue
                red = cost + pot[u] - pot[v]
                if red < 0.0:  # rounding only; potentials keep reduced costs >= 0
                    red = 0.0
                nd = du + red
                if state[v] == 0:
                    dist[v] = nd
                    pred[v] = u
                    pred_edge[v] = e
                    state[v] = 1
                    heap[size] = v
                    pos[v] = size
                    size += 1
                    _sift_up(heap, pos, dist, dist, size - 1)
                elif nd < dist[v]:
                    dist[v] = nd
                    pred[v] = u
                    pred_edge[v] = e
                    _sift_up(heap, pos, dist, dist, pos[v])
                elif nd == dist[v] and u < pred[v]:
                    pred[v] = u
                    pred_edge[v] = e
        if dist[dst] == _INF or state[dst] != 2:
            break
        dt = dist[dst]
        for u in range(n):
            pot[u] += dist[u] if (state[u] == 2 and dist[u] < dt) else dt
        v = dst
        while v != src:
            e = pred_edge[v]
            r = reverse_edge[e]
            if flow[r]:
                flow[r] = False
            else:
                flow[e] = True
            v = pred[v]
        n_flow += 1
    # Decompose the flow into paths; cut any zero-weight cycle met on the way.
    where = np.full(n, -1, np.int64)
    seq = np.empty(n + 1, np.int32)
    seq_e = np.empty(n + 1, np.int32)
    count = 0
    for _ in range(n_flow):
        m = 0
        u = src
        seq[0] = src
        where[src] = 0
        ok = True
        while u != dst:
            nxt = -1
            for e in range(indptr[u], indptr[u + 1]):
                if flow[e]:
                    nxt = e
                    break
            if nxt < 0:
                ok = False
                break
            flow[nxt] = False
            v = indices[nxt]
            if where[v] >= 0:
                for j in range(where[v] + 1, m + 1):
                    where[seq[j]] = -1
                m = where[v]
            else:
                seq_e[m] = nxt
                m += 1
                seq[m] = v
                where[v] = m
            u = v
        for j in range(m + 1):
            where[seq[j]] = -1
        if not ok:
            break
        c = 0.0
        for j in range(m):
            out_nodes[count, j] = seq[j]
            out_edges[count, j] = seq_e[j]
            c += weights[seq_e[j]]
        out_nodes[count, m] = dst
        out_len[count] = m
        out_cost[count] = c
        count += 1
    # Insertion sort by (cost, hops): count <= k is small.
    tmp_n = np.empty(n, np.int32)
    tmp_e = np.empty(n, np.int32)
    for a in range(1, count):
        b = a
        while b > 0 and (out_cost[b] < out_cost[b - 1] or (
                out_cost[b] == out_cost[b - 1] and out_len[b] < out_len[b - 1])):
            la, lb = out_len[b], out_len[b - 1]
            tmp_n[: la + 1] = out_nodes[b, : la + 1]
            tmp_e[:la] = out_edges[b, :la]
            out_nodes[b, : lb + 1] = out_nodes[b - 1, : lb + 1]
            out_edges[b, :lb] = out_edges[b - 1, :lb]
            out_nodes[b - 1, : la + 1] = tmp_n[: la + 1]
            out_edges[b - 1, :la] = tmp_e[:la]
            out_len[b], out_len[b - 1] = lb, la
            out_cost[b], out_cost[b - 1] = out_cost[b - 1], out_cost[b]
            b -= 1
    return count


@njit(cache=True, parallel=True)
def disjoint_many(indptr, indices, weights, reverse_edge, relay_ok, src, dst, k, out_nodes,
                  out_edges, out_len, out_cost, out_count):
    """:func:`_disjoint_pair` for every pair (parallel over pairs); shapes as :func:`yen_many`."""
    for p in prange(src.shape[0]):
        out_count[p] = _disjoint_pair(indptr, indices, weights, reverse_edge, relay_ok, src[p],
                                      dst[p], k, out_nodes[p], out_edges[p], out_len[p],
                                      out_cost[p])


@njit(cache=True)
def disjoint_many_serial(indptr, indices, weights, reverse_edge, relay_ok, src, dst, k,
                         out_nodes, out_edges, out_len, out_cost, out_count):
    """Serial twin of :func:`disjoint_many`."""
    for p in range(src.shape[0]):
        out_count[p] = _disjoint_pair(indptr, indices, weights, reverse_edge, relay_ok, src[p],
                                      dst[p], k, out_nodes[p], out_edges[p], out_len[p],
                                      out_cost[p])


# --------------------------------------------------------------------------------------------
# Helpers on CSR structure
# --------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _edge_index(indptr, indices, a, b):
    """Index of edge ``a -> b`` by binary search in a sorted CSR row, -1 if absent."""
    lo = indptr[a]
    hi = indptr[a + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < b:
            lo = mid + 1
        else:
            hi = mid
    if lo < indptr[a + 1] and indices[lo] == b:
        return lo
    return -1


@njit(cache=True)
def reverse_edges(indptr, indices):
    """``rev[e]`` = index of edge ``v -> u`` for edge ``e = u -> v`` (-1 if absent).

    Needs each row's ``indices`` sorted ascending (as :class:`~meshnet.graph.Snapshot` has).
    """
    n = indptr.shape[0] - 1
    rev = np.full(indices.shape[0], -1, np.int32)
    for u in range(n):
        for e in range(indptr[u], indptr[u + 1]):
            rev[e] = _edge_index(indptr, indices, indices[e], u)
    return rev


@njit(cache=True)
def find_edges(indptr, indices, u, v):
    """Edge index of ``u[i] -> v[i]`` in sorted CSR rows, -1 where the edge is absent."""
    out = np.full(u.shape[0], -1, np.int64)
    for i in range(u.shape[0]):
        a = u[i]
        b = v[i]
        if a >= 0 and b >= 0:
            out[i] = _edge_index(indptr, indices, a, b)
    return out


@njit(cache=True)
def follow_tables(next_hop, row_of_pair, src, dst, indptr, indices):
    """Follow (possibly stale) next-hop tables from each source over the current graph.

    ``next_hop[row_of_pair[p]]`` is the table towards ``dst[p]``. Returns ``(status, lengths,
    node_indptr, nodes, edges)``; ``status`` is 0 = delivered, 1 = the table has no route,
    2 = a hop's link is missing from the graph (black hole), 3 = loop or dead end in the table.
    Only delivered pairs get nodes/edges (edges index the current graph).
    """
    n_pairs = src.shape[0]
    n = next_hop.shape[1]
    status = np.zeros(n_pairs, np.int8)
    lengths = np.zeros(n_pairs, np.int64)
    for p in range(n_pairs):
        row = next_hop[row_of_pair[p]]
        u = src[p]
        m = 0
        st = 0
        while u != dst[p]:
            v = row[u]
            if v < 0:
                st = 1 if m == 0 else 3
                break
            lo = indptr[u]
            hi = indptr[u + 1]
            while lo < hi:
                mid = (lo + hi) >> 1
                if indices[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            if lo >= indptr[u + 1] or indices[lo] != v:
                st = 2
                break
            m += 1
            if m > n:
                st = 3
                break
            u = v
        status[p] = st
        lengths[p] = m if st == 0 else -1
    node_indptr = np.zeros(n_pairs + 1, np.int64)
    for p in range(n_pairs):
        node_indptr[p + 1] = node_indptr[p] + (lengths[p] + 1 if status[p] == 0 else 0)
    nodes = np.empty(node_indptr[n_pairs], np.int32)
    edges = np.empty(max(0, node_indptr[n_pairs] - np.count_nonzero(status == 0)), np.int32)
    e0 = 0
    for p in range(n_pairs):
        if status[p] != 0:
            continue
        row = next_hop[row_of_pair[p]]
        u = src[p]
        b0 = node_indptr[p]
        nodes[b0] = u
        for j in range(lengths[p]):
            v = row[u]
            lo = indptr[u]
            hi = indptr[u + 1]
            while lo < hi:
                mid = (lo + hi) >> 1
                if indices[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            edges[e0] = lo
            e0 += 1
            nodes[b0 + j + 1] = v
            u = v
    return status, lengths, node_indptr, nodes, edges


# --------------------------------------------------------------------------------------------
# Hypatia-equivalent forwarding state ("free_one_only_over_isls")
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def isl_lengths_m(sat_r_km, edge_src, indices, out):
    """Straight-line length in metres of every directed ISL edge."""
    for e in range(indices.shape[0]):
        a = edge_src[e]
        b = indices[e]
        dx = sat_r_km[a, 0] - sat_r_km[b, 0]
        dy = sat_r_km[a, 1] - sat_r_km[b, 1]
        dz = sat_r_km[a, 2] - sat_r_km[b, 2]
        out[e] = np.sqrt(dx * dx + dy * dy + dz * dz) * 1000.0


@njit(cache=True)
def gsl_in_range(sat_r_km, ground_r_m, max_gsl_length_m):
    """Satellites within ``max_gsl_length_m`` of every ground station (distance only).

    Returns CSR ``(indptr, sat, length_m)`` over stations; satellites ascending per station.
    NaN positions (failed propagation) are never in range.
    """
    n_g = ground_r_m.shape[0]
    n_s = sat_r_km.shape[0]
    counts = np.zeros(n_g, np.int64)
    d = np.empty((n_g, n_s))
    for g in range(n_g):
        for s in range(n_s):
            dx = sat_r_km[s, 0] * 1000.0 - ground_r_m[g, 0]
            dy = sat_r_km[s, 1] * 1000.0 - ground_r_m[g, 1]
            dz = sat_r_km[s, 2] * 1000.0 - ground_r_m[g, 2]
            dist = np.sqrt(dx * dx + dy * dy + dz * dz)
            d[g, s] = dist
            if dist <= max_gsl_length_m:
                counts[g] += 1
    indptr = np.zeros(n_g + 1, np.int64)
    for g in range(n_g):
        indptr[g + 1] = indptr[g] + counts[g]
    sat = np.empty(indptr[n_g], np.int32)
    length = np.empty(indptr[n_g])
    for g in range(n_g):
        k = indptr[g]
        for s in range(n_s):
            if d[g, s] <= max_gsl_length_m:
                sat[k] = s
                length[k] = d[g, s]
                k += 1
    return indptr, sat, length


@njit(cache=True)
def _hypatia_dest(indptr, indices, isl_m, reverse_edge, edge_if, n_isls, g, gs_indptr, gs_sat,
                  gs_len, next_hop, cur_if, next_if, dist_m, relay_ok, edge_ok, node_ok):
    n_s = indptr.shape[0] - 1
    n_g = gs_indptr.shape[0] - 1
    dist = np.empty(n_s)
    pred = np.empty(n_s, np.int32)
    pred_edge = np.empty(n_s, np.int32)
    rank = np.empty(n_s, np.int32)
    hk = np.empty(n_s)
    hn = np.empty(n_s, np.int32)
    pos = np.empty(n_s, np.int32)
    a, b = gs_indptr[g], gs_indptr[g + 1]
    # The destination station is a virtual root: every satellite in range starts at its GSL
    # length; the tree then holds each satellite's best (satellite, last hop) choice.
    dijkstra_core(indptr, indices, isl_m, relay_ok, edge_ok, node_ok, False, gs_sat[a:b],
                  gs_len[a:b], -1, dist, pred, pred_edge, rank, hk, hn, pos)
    gnode = n_s + g
    for u in range(n_s):
        dist_m[g, u] = dist[u]
        if dist[u] == _INF:
            next_hop[g, u] = -1
            cur_if[g, u] = -1
            next_if[g, u] = -1
        elif pred[u] < 0:
            next_hop[g, u] = gnode
            cur_if[g, u] = n_isls[u]
            next_if[g, u] = 0
        else:
            e_in = pred_edge[u]  # pred[u] -> u
            next_hop[g, u] = pred[u]
            cur_if[g, u] = edge_if[reverse_edge[e_in]]
            next_if[g, u] = edge_if[e_in]
    # Source stations: best satellite in range by (GSL length + its distance, satellite id).
    for s in range(n_g):
        row = n_s + s
        next_hop[g, row] = -1
        cur_if[g, row] = -1
        next_if[g, row] = -1
        dist_m[g, row] = _INF
        if s == g:
            dist_m[g, row] = 0.0
            continue
        best = _INF
        best_sat = -1
        for k in range(gs_indptr[s], gs_indptr[s + 1]):
            sat = gs_sat[k]
            if dist[sat] == _INF:
                continue
            total = gs_len[k] + dist[sat]
            if total < best:
                best = total
                best_sat = sat
        if best_sat >= 0:
            next_hop[g, row] = best_sat
            cur_if[g, row] = 0
            next_if[g, row] = n_isls[best_sat]
            dist_m[g, row] = best


@njit(cache=True, parallel=True)
def hypatia_fstate(indptr, indices, isl_m, reverse_edge, edge_if, n_isls, gs_indptr, gs_sat,
                   gs_len, next_hop, cur_if, next_if, dist_m):
    """Hypatia's forwarding state of every node towards every ground station.

    Satellite-only CSR (``isl_m`` metres per directed edge, ``edge_if`` = the source
    satellite's interface number of that ISL, ``n_isls`` = ISLs per satellite, whose GSL
    interface is number ``n_isls[u]``); ground stations never relay. Outputs are
    ``(n_ground, n_sats + n_ground)``, one row per destination station: next hop, own
    interface, next hop's interface (-1 if none) and path length in metres (inf if none; 0 for
    a station to itself).
    """
    n_s = indptr.shape[0] - 1
    relay_ok = np.ones(n_s, np.bool_)
    edge_ok = np.ones(indices.shape[0], np.bool_)
    node_ok = np.ones(n_s, np.bool_)
    for g in prange(gs_indptr.shape[0] - 1):
        _hypatia_dest(indptr, indices, isl_m, reverse_edge, edge_if, n_isls, g, gs_indptr,
                      gs_sat, gs_len, next_hop, cur_if, next_if, dist_m, relay_ok, edge_ok,
                      node_ok)


@njit(cache=True)
def hypatia_fstate_serial(indptr, indices, isl_m, reverse_edge, edge_if, n_isls, gs_indptr,
                          gs_sat, gs_len, next_hop, cur_if, next_if, dist_m):
    """Serial twin of :func:`hypatia_fstate`."""
    n_s = indptr.shape[0] - 1
    relay_ok = np.ones(n_s, np.bool_)
    edge_ok = np.ones(indices.shape[0], np.bool_)
    node_ok = np.ones(n_s, np.bool_)
    for g in range(gs_indptr.shape[0] - 1):
        _hypatia_dest(indptr, indices, isl_m, reverse_edge, edge_if, n_isls, g, gs_indptr,
                      gs_sat, gs_len, next_hop, cur_if, next_if, dist_m, relay_ok, edge_ok,
                      node_ok)


# --------------------------------------------------------------------------------------------
# Pair routing: trees rooted at a vertex cover of the pairs, each stopped at its targets
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def greedy_cover(a, b, n):
    """A small vertex cover of the undirected pairs ``(a[p], b[p])`` over ``n`` nodes.

    Greedy: repeatedly take the node covering the most still-uncovered pairs (the lower id on
    ties) until every pair has a chosen endpoint. Returns ``is_root`` (bool, ``n``). Pairs
    with ``a[p] == b[p]`` are covered by that node.
    """
    n_pairs = a.shape[0]
    is_root = np.zeros(n, np.bool_)
    deg = np.zeros(n, np.int64)
    # Pairs incident to each node (CSR), to update degrees as pairs get covered.
    inc_ptr = np.zeros(n + 1, np.int64)
    for p in range(n_pairs):
        inc_ptr[a[p] + 1] += 1
        if b[p] != a[p]:
            inc_ptr[b[p] + 1] += 1
    for u in range(n):
        inc_ptr[u + 1] += inc_ptr[u]
    fill = inc_ptr[:-1].copy()
    inc = np.empty(inc_ptr[n], np.int64)
    for p in range(n_pairs):
        inc[fill[a[p]]] = p
        fill[a[p]] += 1
        deg[a[p]] += 1
        if b[p] != a[p]:
            inc[fill[b[p]]] = p
            fill[b[p]] += 1
            deg[b[p]] += 1
    # Only endpoints can be chosen: scan those (ascending ids, so ties go to the lower id).
    n_cand = 0
    for u in range(n):
        if deg[u] > 0:
            n_cand += 1
    cand = np.empty(n_cand, np.int64)
    n_cand = 0
    for u in range(n):
        if deg[u] > 0:
            cand[n_cand] = u
            n_cand += 1
    covered = np.zeros(n_pairs, np.bool_)
    left = n_pairs
    while left > 0:
        best = -1
        best_deg = 0
        for u in cand:
            if deg[u] > best_deg:
                best_deg = deg[u]
                best = u
        is_root[best] = True
        for k in range(inc_ptr[best], inc_ptr[best + 1]):
            p = inc[k]
            if covered[p]:
                continue
            covered[p] = True
            left -= 1
            deg[a[p]] -= 1
            if b[p] != a[p]:
                deg[b[p]] -= 1
    return is_root


@njit(cache=True)
def _targets_search(indptr, indices, weights, relay_ok, root, row, tgt, t0, t1, dist, pred,
                    pred_edge, pos, hk, hn, mark, touched, out_pred, out_pred_edge, out_dist,
                    out_hops):
    """Dijkstra from ``root`` stopped once every node of ``tgt[t0:t1]`` is settled.

    Exactly the run of :func:`dijkstra_core` cut short: a node's predecessor is final when it
    is settled (popped), so the tree up to the last target is the full tree's. Scratch
    (``dist`` inf, ``pos`` -1) is restored on return for the nodes touched; ``mark`` holds
    ``row + 1`` at this root's targets. Writes ``out_pred[row, u]`` / ``out_pred_edge`` for
    settled ``u`` only, and per target slot the distance (inf if unreachable) and edge count.
    """
    remaining = 0
    stamp = row + 1
    for k in range(t0, t1):
        v = tgt[k]
        if mark[v] != stamp:
            mark[v] = stamp
            remaining += 1
    n_touched = 0
    dist[root] = 0.0
    pred[root] = -1
    pred_edge[root] = -1
    touched[n_touched] = root
    n_touched += 1
    size = _decrease_key4(hk, hn, pos, root, 0.0, 0)
    while size > 0 and remaining > 0:
        d = hk[0]
        u = hn[0]
        size -= 1
        pos[u] = -2
        if size > 0:
            k = hk[size]
            x = hn[size]
            i = 0
            while True:
                c = 4 * i + 1
                if c >= size:
                    break
                best = c
                bk = hk[c]
                stop = c + 4 if c + 4 < size else size
                for j in range(c + 1, stop):
                    if hk[j] < bk:
                        bk = hk[j]
                        best = j
                if bk < k:
                    hk[i] = bk
                    hn[i] = hn[best]
                    pos[hn[i]] = i
                    i = best
                else:
                    break
            hk[i] = k
            hn[i] = x
            pos[x] = i
        out_pred[row, u] = pred[u]
        out_pred_edge[row, u] = pred_edge[u]
        if mark[u] == stamp:
            remaining -= 1
            if remaining == 0:
                break
        if pred[u] >= 0 and not relay_ok[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            pv = pos[v]
            if pv == -2:
                continue
            nd = d + weights[e]
            dv = dist[v]
            if nd < dv:
                if dv == _INF:
                    touched[n_touched] = v
                    n_touched += 1
                dist[v] = nd
                pred[v] = u
                pred_edge[v] = e
                size = _decrease_key4(hk, hn, pos, v, nd, size)
            elif nd == dv and u < pred[v]:
                pred[v] = u
                pred_edge[v] = e
    for k in range(t0, t1):
        v = tgt[k]
        if pos[v] == -2:
            out_dist[k] = dist[v]
            m = 0
            while v != root:
                v = pred[v]
                m += 1
            out_hops[k] = m
        else:
            out_dist[k] = _INF
            out_hops[k] = -1
    for j in range(n_touched):
        v = touched[j]
        dist[v] = _INF
        pos[v] = -1
    for k in range(t0, t1):
        mark[tgt[k]] = 0


@njit(cache=True)
def _targets_chunk(indptr, indices, weights, weights_rev, root_rev, relay_ok, roots, tgt_indptr,
                   tgt, c, n_chunks, out_pred, out_pred_edge, out_dist, out_hops, scratch_f,
                   scratch_i):
    dist = scratch_f[c, 0]
    hk = scratch_f[c, 1]
    pred = scratch_i[c, 0]
    pred_edge = scratch_i[c, 1]
    pos = scratch_i[c, 2]
    hn = scratch_i[c, 3]
    mark = scratch_i[c, 4]
    touched = scratch_i[c, 5]
    for i in range(c, roots.shape[0], n_chunks):
        w = weights_rev if root_rev[i] else weights
        _targets_search(indptr, indices, w, relay_ok, roots[i], i, tgt, tgt_indptr[i],
                        tgt_indptr[i + 1], dist, pred, pred_edge, pos, hk, hn, mark, touched,
                        out_pred, out_pred_edge, out_dist, out_hops)


@njit(cache=True, parallel=True)
def dijkstra_targets(indptr, indices, weights, weights_rev, root_rev, relay_ok, roots, tgt_indptr,
                     tgt, n_chunks, out_pred, out_pred_edge, out_dist, out_hops, scratch_f,
                     scratch_i):
    """Dijkstra from each root, stopped once all its targets are settled (parallel).

    Root ``i`` has targets ``tgt[tgt_indptr[i]:tgt_indptr[i + 1]]`` and searches over
    ``weights_rev`` where ``root_rev[i]`` (a tree towards the root), else ``weights``.
    ``out_pred`` / ``out_pred_edge`` are ``(R, n)`` and only written at settled nodes
    (every node of every target's tree path is settled); ``out_dist`` / ``out_hops`` have
    one slot per target (inf and -1 where unreachable). Roots are dealt round-robin to
    ``n_chunks`` tasks. Task ``c`` searches in ``scratch_f[c]`` (float64 ``(2, n)``: dist
    = inf, heap keys) and ``scratch_i[c]`` (int32 ``(6, n)``: pred, pred_edge, pos = -1,
    heap nodes, marks = 0, touched list) and leaves them as it found them, node by node, so
    the caller keeps them between calls and a search a few hops deep costs a few hops, not
    O(n) (see :func:`new_targets_scratch`).
    """
    for c in prange(n_chunks):
        _targets_chunk(indptr, indices, weights, weights_rev, root_rev, relay_ok, roots,
                       tgt_indptr, tgt, c, n_chunks, out_pred, out_pred_edge, out_dist, out_hops,
                       scratch_f, scratch_i)


@njit(cache=True)
def dijkstra_targets_serial(indptr, indices, weights, weights_rev, root_rev, relay_ok, roots,
                            tgt_indptr, tgt, n_chunks, out_pred, out_pred_edge, out_dist,
                            out_hops, scratch_f, scratch_i):
    """Serial twin of :func:`dijkstra_targets`."""
    for c in range(n_chunks):
        _targets_chunk(indptr, indices, weights, weights_rev, root_rev, relay_ok, roots,
                       tgt_indptr, tgt, c, n_chunks, out_pred, out_pred_edge, out_dist, out_hops,
                       scratch_f, scratch_i)


def new_targets_scratch(n_chunks, n):
    """Clean scratch for :func:`dijkstra_targets`: ``(scratch_f, scratch_i)``."""
    scratch_f = np.empty((n_chunks, 2, n))
    scratch_f[:, 0] = _INF
    scratch_i = np.zeros((n_chunks, 6, n), np.int32)
    scratch_i[:, 2] = -1
    return scratch_f, scratch_i


@njit(cache=True)
def target_paths_fill(pred, pred_edge, reverse_edge, pair_row, pair_node, pair_towards,
                      node_indptr, nodes, edge_indptr, edges):
    """Write the tree path of every reachable pair (``edge_indptr`` from the edge counts).

    Pair ``p`` walks ``pred[pair_row[p]]`` from ``pair_node[p]`` (its endpoint that is not
    the root) to the root. With ``pair_towards[p]`` the root is the pair's destination: nodes
    go ``pair_node`` -> root and the forwarding edge of ``u`` is
    ``reverse_edge[pred_edge[u]]``; otherwise the root is the source: nodes go root ->
    ``pair_node`` and edges are ``pred_edge`` in reverse walk order.
    """
    for k in range(pair_row.shape[0]):
        b0 = node_indptr[k]
        if node_indptr[k + 1] == b0:
            continue
        m = edge_indptr[k + 1] - edge_indptr[k]
        e0 = edge_indptr[k]
        row = pair_row[k]
        u = pair_node[k]
        fwd = pair_towards[k]
        for j in range(m):
            if fwd:
                nodes[b0 + j] = u
                edges[e0 + j] = reverse_edge[pred_edge[row, u]]
            else:
                nodes[b0 + m - j] = u
                edges[e0 + m - 1 - j] = pred_edge[row, u]
            u = pred[row, u]
        if fwd:
            nodes[b0 + m] = u
        else:
            nodes[b0] = u
