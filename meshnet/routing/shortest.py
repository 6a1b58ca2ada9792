"""Shortest paths, forwarding tables, widest paths and ECMP sets, shaped like scipy.sparse.csgraph.

Every function takes a :class:`~meshnet.graph.Snapshot`, an ``(indptr, indices, weights)``
tuple or a scipy sparse matrix; ``indices=`` chooses the sources (default: all nodes); results
use ``inf`` for unreachable and ``NO_PATH`` (-1) for missing predecessors. ``relay_mask[u]``
false forbids ``u`` inside a path (it may still be an endpoint): see
:func:`~meshnet.routing.relay_mask_for`.

Examples
--------
>>> import numpy as np
>>> from meshnet.routing import shortest_path_lengths, reconstruct_path
>>> g = (np.array([0, 1, 3, 4]), np.array([1, 0, 2, 1]), np.array([1.0, 1.0, 2.0, 2.0]))
>>> d, pred = shortest_path_lengths(g, indices=0, return_predecessors=True)
>>> d.tolist(), reconstruct_path(pred, 0, 2).tolist()
([0.0, 1.0, 3.0], [0, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import _routing as K
from ..units import NO_PATH
from ._input import CSR, as_csr, node_array, relay_array


def _reverse(csr: CSR) -> np.ndarray:
    rev = K.reverse_edges(csr.indptr, csr.indices)
    if np.any(rev < 0):
        from ..errors import MeshnetError

        raise MeshnetError("the graph is not symmetric (an edge u -> v has no v -> u); "
                           "routing towards destinations needs undirected links")
    return rev


def _trees(csr: CSR, roots: np.ndarray, relay: np.ndarray, weights: np.ndarray,
           parallel: bool, want_pred=True, want_edge=True, want_rank=True):
    n = csr.n_nodes
    r = roots.shape[0]
    dist = np.empty((r, n))
    pred = np.empty((r if want_pred else 0, n), np.int32)
    pred_edge = np.empty((r if want_edge else 0, n), np.int32)
    rank = np.empty((r if want_rank else 0, n), np.int32)
    fn = K.dijkstra_many if parallel else K.dijkstra_many_serial
    fn(csr.indptr, csr.indices, weights, relay, roots, dist, pred, pred_edge, rank)
    return dist, pred, pred_edge, rank


def _bfs(csr: CSR, roots: np.ndarray, relay: np.ndarray, parallel: bool):
    n = csr.n_nodes
    r = roots.shape[0]
    hops = np.empty((r, n))
    pred = np.empty((r, n), np.int32)
    pred_edge = np.empty((r, n), np.int32)
    fn = K.bfs_many if parallel else K.bfs_many_serial
    fn(csr.indptr, csr.indices, relay, roots, hops, pred, pred_edge)
    return hops, pred, pred_edge


def shortest_path_lengths(graph, indices=None, *, weight="delay_s", return_predecessors=False,
                          relay_mask=None, parallel=True):
    """Single- or multi-source shortest path lengths (Dijkstra; BFS for ``weight="hops"``).

    Parameters
    ----------
    graph : Snapshot, tuple or scipy sparse matrix
        The network.
    indices : int or array_like of int, optional
        Sources; default every node. A scalar gives 1-D outputs.
    weight : {"delay_s", "length_km", "hops"} or numpy.ndarray
        Edge weight (for tuples and scipy input the given data, unless ``"hops"``).
    return_predecessors : bool
        Also return ``pred`` with ``pred[i, v]`` the node before ``v`` on the chosen path from
        ``indices[i]`` (``NO_PATH`` at the source and where unreachable).
    relay_mask : array_like of bool, optional
        ``False`` for nodes that may not relay transit traffic.
    parallel : bool
        Use the parallel kernel (identical results to the serial one).

    Returns
    -------
    dist : numpy.ndarray
        ``(S, n)`` float64 (``(n,)`` for a scalar source), ``inf`` where unreachable.
    pred : numpy.ndarray, optional
        ``(S, n)`` int32.

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.array([0, 1, 2, 2]), np.array([1, 0]), np.array([5.0, 5.0]))
    >>> shortest_path_lengths(g, indices=[0, 2]).tolist()
    [[0.0, 5.0, inf], [inf, inf, 0.0]]
    """
    csr = as_csr(graph, weight)
    roots, scalar = node_array(indices, csr.n_nodes, "indices")
    relay = relay_array(relay_mask, csr.n_nodes)
    if isinstance(weight, str) and weight == "hops":
        dist, pred, _ = _bfs(csr, roots, relay, parallel)
    else:
        dist, pred, _, _ = _trees(csr, roots, relay, csr.weights, parallel,
                                  want_pred=return_predecessors, want_edge=False,
                                  want_rank=False)
    if scalar:
        dist, pred = dist[0], pred[0] if pred.shape[0] else pred
    return (dist, pred) if return_predecessors else dist


def distance_matrix(graph, nodes, *, weight="delay_s", relay_mask=None) -> np.ndarray:
    """Shortest path lengths among ``nodes``: ``(k, k)``, row ``i`` from ``nodes[i]``.

    Each search stops once every node of ``nodes`` is settled, so a compact set (a training
    job's block of satellites) costs a few hops per search, not a tree of the whole graph;
    the values are those of :func:`shortest_path_lengths` (``inf`` where unreachable).

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.array([0, 1, 3, 4]), np.array([1, 0, 2, 1]), np.array([1.0, 1.0, 2.0, 2.0]))
    >>> distance_matrix(g, [0, 2]).tolist()
    [[0.0, 3.0], [3.0, 0.0]]
    """
    csr = as_csr(graph, weight)
    roots, _ = node_array(nodes, csr.n_nodes, "nodes")
    relay = relay_array(relay_mask, csr.n_nodes)
    n, k = csr.n_nodes, roots.shape[0]
    tgt = np.tile(roots, k)
    tgt_indptr = np.arange(k + 1, dtype=np.int64) * k
    pred = np.empty((k, n), np.int32)
    pred_edge = np.empty((k, n), np.int32)
    dist = np.empty(k * k)
    hops = np.empty(k * k, np.int64)
    scratch_f, scratch_i = K.new_targets_scratch(1, n)
    w = np.ascontiguousarray(csr.weights, np.float64)
    K.dijkstra_targets_serial(csr.indptr, csr.indices, w, w, np.zeros(k, np.bool_), relay,
                              roots, tgt_indptr, tgt, 1, pred, pred_edge, dist, hops,
                              scratch_f, scratch_i)
    return dist.reshape(k, k)


@dataclass(frozen=True)
class NextHopTable:
    """Forwarding state towards a set of destinations.

    Attributes
    ----------
    destinations : numpy.ndarray
        ``(D,)`` int32.
    dist : numpy.ndarray
        ``(D, n)``: cost from every node to each destination (inf if unreachable).
    next_hop : numpy.ndarray
        ``(D, n)`` int32: the neighbour ``u`` forwards to (``NO_PATH`` at the destination
        itself and where unreachable).
    next_edge : numpy.ndarray
        ``(D, n)`` int32: the directed edge ``u -> next_hop`` (``NO_PATH`` likewise).
    """

    destinations: np.ndarray
    dist: np.ndarray
    next_hop: np.ndarray
    next_edge: np.ndarray

    def path(self, source: int, destination_row: int) -> np.ndarray:
        """Node sequence from ``source`` to ``destinations[destination_row]`` (empty if none)."""
        d = int(self.destinations[destination_row])
        row = self.next_hop[destination_row]
        out = [int(source)]
        u = int(source)
        while u != d:
            u = int(row[u])
            if u == NO_PATH or len(out) > row.shape[0]:
                return np.zeros(0, np.int32)
            out.append(u)
        return np.asarray(out, np.int32)


def next_hop_table(graph, destinations, *, weight="delay_s", relay_mask=None,
                   parallel=True) -> NextHopTable:
    """Every node's next hop towards each destination (one shortest-path tree per destination).

    Links are undirected, so the tree rooted at ``d`` over the reversed edge weights holds every
    node's shortest path towards ``d``.

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.array([0, 1, 3, 4]), np.array([1, 0, 2, 1]), np.array([1.0, 1.0, 2.0, 2.0]))
    >>> t = next_hop_table(g, [2])
    >>> t.next_hop.tolist(), t.dist.tolist()
    ([[1, 2, -1]], [[3.0, 2.0, 0.0]])
    """
    csr = as_csr(graph, weight)
    dests, _ = node_array(destinations, csr.n_nodes, "destinations")
    relay = relay_array(relay_mask, csr.n_nodes)
    return _next_hop_table(csr, dests, relay, csr.weights, parallel,
                           hops=isinstance(weight, str) and weight == "hops")


def _next_hop_table(csr: CSR, dests, relay, weights, parallel, hops=False,
                    rev=None) -> NextHopTable:
    if rev is None:
        rev = _reverse(csr)
    if hops:
        dist, pred, pred_edge = _bfs(csr, dests, relay, parallel)
    else:
        dist, pred, pred_edge, _ = _trees(csr, dests, relay, weights[rev], parallel,
                                          want_rank=False)
    next_edge = np.where(pred_edge >= 0, rev[np.maximum(pred_edge, 0)], NO_PATH).astype(np.int32)
    return NextHopTable(dests, dist, pred, next_edge)


def widest_paths(graph, indices=None, *, capacity="capacity_bps", weight="delay_s",
                 return_predecessors=False, relay_mask=None, parallel=True):
    """Widest (largest bottleneck capacity) paths from each source.

    Among equally wide candidates the search keeps the smaller ``weight`` at each node as it
    goes. That is not always the lightest of all widest paths (the combined order is not
    preserved under extension, so no single tree can hold those), but every returned path is
    a widest one and ``dist`` is its weight.

    Parameters
    ----------
    graph, indices, weight, relay_mask, parallel
        As :func:`shortest_path_lengths`.
    capacity : str or numpy.ndarray
        Snapshot attribute or per-edge array of capacities.

    Returns
    -------
    width : numpy.ndarray
        ``(S, n)`` bottleneck capacity (``inf`` at the source, 0 where unreachable).
    dist : numpy.ndarray
        ``(S, n)`` weight of the chosen path (``inf`` where unreachable).
    pred : numpy.ndarray, optional
        ``(S, n)`` int32 predecessors.

    Examples
    --------
    >>> import numpy as np
    >>> # triangle 0-1-2 with a thin direct link 0-2
    >>> g = (np.array([0, 2, 4, 6]), np.array([1, 2, 0, 2, 0, 1]), np.ones(6))
    >>> cap = np.array([10.0, 1.0, 10.0, 10.0, 1.0, 10.0])
    >>> w, d = widest_paths(g, 0, capacity=cap)
    >>> w.tolist(), d.tolist()
    ([inf, 10.0, 10.0], [0.0, 1.0, 2.0])
    """
    csr = as_csr(graph, weight)
    if isinstance(capacity, str):
        if csr.snapshot is None:
            from ..errors import MeshnetError

            raise MeshnetError("capacity must be an array when the graph is not a Snapshot")
        capacity = getattr(csr.snapshot, capacity)
    cap = np.ascontiguousarray(capacity, dtype=np.float64)
    if cap.shape != (csr.n_edges,) or (cap.size and np.isnan(cap).any()):
        from ..errors import MeshnetError

        raise MeshnetError("capacity must have one non-NaN value per directed edge")
    roots, scalar = node_array(indices, csr.n_nodes, "indices")
    relay = relay_array(relay_mask, csr.n_nodes)
    n, r = csr.n_nodes, roots.shape[0]
    width = np.empty((r, n))
    dist = np.empty((r, n))
    pred = np.empty((r, n), np.int32)
    pred_edge = np.empty((r, n), np.int32)
    fn = K.widest_many if parallel else K.widest_many_serial
    fn(csr.indptr, csr.indices, cap, csr.weights, relay, roots, width, dist, pred, pred_edge)
    if scalar:
        width, dist, pred = width[0], dist[0], pred[0]
    return (width, dist, pred) if return_predecessors else (width, dist)


@dataclass(frozen=True)
class EcmpNextHops:
    """Equal-cost next-hop sets towards each destination.

    Attributes
    ----------
    destinations : numpy.ndarray
        ``(D,)`` int32.
    dist : numpy.ndarray
        ``(D, n)`` shortest cost to each destination.
    edge_mask : numpy.ndarray
        ``(D, E)`` bool: directed edge ``u -> v`` is one of ``u``'s next hops towards the
        destination. The next-hop graph is acyclic.
    """

    destinations: np.ndarray
    dist: np.ndarray
    edge_mask: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    def next_hops(self, destination_row: int, node: int) -> np.ndarray:
        """Neighbours ``node`` may forward to towards ``destinations[destination_row]``."""
        a, b = self.indptr[node], self.indptr[node + 1]
        return self.indices[a:b][self.edge_mask[destination_row, a:b]]


def ecmp_next_hops(graph, destinations, *, rtol=1e-9, weight="delay_s", relay_mask=None,
                   parallel=True) -> EcmpNextHops:
    """Every neighbour whose path to each destination is within ``rtol`` of the shortest.

    ``v`` is an ECMP next hop of ``u`` towards ``d`` if ``w(u, v) + dist(v, d) <=
    dist(u, d) * (1 + rtol)`` and ``v`` is strictly closer in the search order (so zero-weight
    edges cannot create loops).

    Examples
    --------
    >>> import numpy as np
    >>> # square 0-1-3, 0-2-3 with equal lengths: node 0 has two next hops to 3
    >>> indptr = np.array([0, 2, 4, 6, 8])
    >>> indices = np.array([1, 2, 0, 3, 0, 3, 1, 2])
    >>> e = ecmp_next_hops((indptr, indices, np.ones(8)), [3])
    >>> e.next_hops(0, 0).tolist()
    [1, 2]
    """
    csr = as_csr(graph, weight)
    dests, _ = node_array(destinations, csr.n_nodes, "destinations")
    relay = relay_array(relay_mask, csr.n_nodes)
    if rtol < 0 or not np.isfinite(rtol):
        from ..errors import MeshnetError

        raise MeshnetError(f"rtol must be finite and >= 0, got {rtol}")
    rev = _reverse(csr)
    return _ecmp(csr, dests, relay, csr.weights, rev, float(rtol), parallel)


def _ecmp(csr, dests, relay, weights, rev, rtol, parallel) -> EcmpNextHops:
    dist, _, _, rank = _trees(csr, dests, relay, weights[rev], parallel, want_pred=False,
                              want_edge=False)
    mask = np.empty((dests.shape[0], csr.n_edges), np.bool_)
    fn = K.ecmp_masks if parallel else K.ecmp_masks_serial
    fn(csr.indptr, csr.indices, weights, relay, dests, dist, rank, rtol, mask)
    return EcmpNextHops(dests, dist, mask, csr.indptr, csr.indices)
