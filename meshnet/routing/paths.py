"""Sets of explicit paths per (source, destination) pair, stored as nested CSR arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..units import NO_PATH


@dataclass(frozen=True)
class PathSet:
    """Zero or more paths for each of ``P`` pairs.

    Attributes
    ----------
    pair_path_indptr : numpy.ndarray
        ``(P + 1,)`` int64: the paths of pair ``p`` are ``pair_path_indptr[p]:[p + 1]``.
    path_node_indptr, path_nodes : numpy.ndarray
        Node sequence of every path (source first), as CSR (int64 / int32).
    path_edge_indptr, path_edges : numpy.ndarray
        Directed edge ids into the graph's CSR arrays, as CSR (int64 / int32).
    path_cost : numpy.ndarray
        ``(n_paths,)`` float64: sum of the weights the paths were chosen by.
    """

    pair_path_indptr: np.ndarray
    path_node_indptr: np.ndarray
    path_nodes: np.ndarray
    path_edge_indptr: np.ndarray
    path_edges: np.ndarray
    path_cost: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.pair_path_indptr.shape[0] - 1)

    @property
    def n_paths(self) -> int:
        return int(self.path_cost.shape[0])

    def n_paths_of(self) -> np.ndarray:
        """Number of paths of every pair (int64)."""
        return np.diff(self.pair_path_indptr)

    def nodes_of(self, path: int) -> np.ndarray:
        """Node sequence of path ``path``."""
        return self.path_nodes[self.path_node_indptr[path]:self.path_node_indptr[path + 1]]

    def edges_of(self, path: int) -> np.ndarray:
        """Directed edge ids of path ``path``."""
        return self.path_edges[self.path_edge_indptr[path]:self.path_edge_indptr[path + 1]]

    def paths_of(self, pair: int) -> list[np.ndarray]:
        """Node sequences of every path of pair ``pair``, best first."""
        return [self.nodes_of(j)
                for j in range(self.pair_path_indptr[pair], self.pair_path_indptr[pair + 1])]


def empty_path_set(n_pairs: int) -> PathSet:
    z64 = np.zeros(1, np.int64)
    return PathSet(np.zeros(n_pairs + 1, np.int64), z64, np.zeros(0, np.int32), z64.copy(),
                   np.zeros(0, np.int32), np.zeros(0))


def path_set_from_buffers(count, lengths, nodes, edges, cost) -> PathSet:
    """Pack per-pair buffers ``(P, K, L)`` (``count`` ``(P,)``, ``lengths``/``cost``
    ``(P, K)``: edges per path) into a :class:`PathSet`."""
    count = np.asarray(count, np.int64)
    n_pairs, k = lengths.shape
    keep = np.arange(k)[None, :] < count[:, None]
    pair_path_indptr = np.zeros(n_pairs + 1, np.int64)
    np.cumsum(count, out=pair_path_indptr[1:])
    m = lengths[keep].astype(np.int64)
    edge_indptr = np.zeros(m.shape[0] + 1, np.int64)
    np.cumsum(m, out=edge_indptr[1:])
    node_indptr = np.zeros(m.shape[0] + 1, np.int64)
    np.cumsum(m + 1, out=node_indptr[1:])
    width = nodes.shape[2]
    cols = np.arange(width)[None, :]
    flat_nodes = nodes[keep]
    flat_edges = edges[keep]
    path_nodes = flat_nodes[cols <= m[:, None]].astype(np.int32)
    path_edges = flat_edges[cols[:, : edges.shape[2]] < m[:, None]].astype(np.int32)
    return PathSet(pair_path_indptr, node_indptr, path_nodes, edge_indptr, path_edges,
                   np.ascontiguousarray(cost[keep], np.float64))


def concat_path_sets(parts: list[PathSet]) -> PathSet:
    """Concatenate path sets of consecutive pair batches."""
    if len(parts) == 1:
        return parts[0]

    def _cat_indptr(arrs):
        out = [np.zeros(1, np.int64)]
        off = 0
        for a in arrs:
            out.append(a[1:] + off)
            off += int(a[-1])
        return np.concatenate(out)

    return PathSet(
        _cat_indptr([p.pair_path_indptr for p in parts]),
        _cat_indptr([p.path_node_indptr for p in parts]),
        np.concatenate([p.path_nodes for p in parts]),
        _cat_indptr([p.path_edge_indptr for p in parts]),
        np.concatenate([p.path_edges for p in parts]),
        np.concatenate([p.path_cost for p in parts]),
    )


def reconstruct_path(predecessors, source: int, target: int) -> np.ndarray:
    """Node sequence ``source -> ... -> target`` from a source-rooted predecessor row.

    Parameters
    ----------
    predecessors : array_like
        ``(n,)`` predecessors of a search started at ``source`` (as returned by
        :func:`~meshnet.routing.shortest_path_lengths` with ``return_predecessors=True``).
    source, target : int
        Endpoints.

    Returns
    -------
    numpy.ndarray
        int32 node ids from ``source`` to ``target``; empty if ``target`` is unreachable.

    Examples
    --------
    >>> reconstruct_path([-1, 0, 1, -1], 0, 2).tolist()
    [0, 1, 2]
    >>> reconstruct_path([-1, 0, 1, -1], 0, 3).tolist()
    []
    """
    pred = np.asarray(predecessors)
    if pred.ndim != 1:
        raise ValueError("predecessors must be one row (n,); index the row of your source")
    out = [int(target)]
    u = int(target)
    n = pred.shape[0]
    while u != source:
        u = int(pred[u])
        if u == NO_PATH or len(out) > n:
            return np.zeros(0, np.int32)
        out.append(u)
    return np.asarray(out[::-1], dtype=np.int32)
