"""Several paths per pair: k shortest simple paths (Yen) and k link-disjoint paths."""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError
from ..kernels import _routing as K
from ._input import as_csr, node_array, relay_array
from .paths import PathSet, concat_path_sets, empty_path_set, path_set_from_buffers

#: Scratch budget per batch of pairs for the (pairs, k, n) path buffers.
_BATCH_BYTES = 64 << 20


def _pairs(csr, sources, targets):
    src, _ = node_array(sources, csr.n_nodes, "sources")
    dst, _ = node_array(targets, csr.n_nodes, "targets")
    if src.shape != dst.shape:
        if src.shape[0] == 1:
            src = np.full(dst.shape, src[0], np.int32)
        elif dst.shape[0] == 1:
            dst = np.full(src.shape, dst[0], np.int32)
        else:
            raise MeshnetError(
                f"sources and targets must have the same length ({src.shape[0]} != "
                f"{dst.shape[0]}) or one of them a single node")
    return src, dst


def _run_batched(kernel, n_nodes, k, src, dst, args) -> PathSet:
    n_pairs = src.shape[0]
    if n_pairs == 0:
        return empty_path_set(0)
    per_pair = max(1, k * (n_nodes + 1) * 8)
    batch = max(1, _BATCH_BYTES // per_pair)
    parts = []
    for a in range(0, n_pairs, batch):
        s, d = src[a:a + batch], dst[a:a + batch]
        b = s.shape[0]
        nodes = np.empty((b, k, n_nodes + 1), np.int32)
        edges = np.empty((b, k, n_nodes + 1), np.int32)
        lengths = np.zeros((b, k), np.int64)
        cost = np.zeros((b, k))
        count = np.zeros(b, np.int64)
        kernel(*args, s, d, k, nodes, edges, lengths, cost, count)
        parts.append(path_set_from_buffers(count, lengths, nodes, edges, cost))
    return concat_path_sets(parts)


def k_shortest_paths(graph, sources, targets, k=3, *, weight="delay_s", relay_mask=None,
                     parallel=True) -> PathSet:
    """The ``k`` shortest simple (loop-free) paths of every (source, target) pair (Yen).

    Parameters
    ----------
    graph : Snapshot, tuple or scipy sparse matrix
        The network.
    sources, targets : int or array_like of int
        Pairs, element-wise (a single node is broadcast).
    k : int
        Paths per pair (fewer where fewer exist).
    weight, relay_mask, parallel
        As :func:`~meshnet.routing.shortest_path_lengths`.

    Returns
    -------
    PathSet
        Paths in order of increasing cost; ties by hop count, then node sequence.

    Examples
    --------
    >>> import numpy as np
    >>> indptr = np.array([0, 2, 4, 6, 8])
    >>> indices = np.array([1, 2, 0, 3, 0, 3, 1, 2])
    >>> w = np.array([1.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 2.0])
    >>> ps = k_shortest_paths((indptr, indices, w), 0, 3, k=3)
    >>> [p.tolist() for p in ps.paths_of(0)], ps.path_cost.tolist()
    ([[0, 1, 3], [0, 2, 3]], [2.0, 4.0])
    """
    if int(k) < 1:
        raise MeshnetError(f"k must be >= 1, got {k}")
    csr = as_csr(graph, weight)
    src, dst = _pairs(csr, sources, targets)
    relay = relay_array(relay_mask, csr.n_nodes)
    kernel = K.yen_many if parallel else K.yen_many_serial
    return _run_batched(kernel, csr.n_nodes, int(k), src, dst,
                        (csr.indptr, csr.indices, csr.weights, relay))


def edge_disjoint_paths(graph, sources, targets, k=2, *, weight="delay_s", relay_mask=None,
                        parallel=True) -> PathSet:
    """Up to ``k`` link-disjoint paths per pair, minimising their total weight.

    Successive shortest augmenting paths with unit link capacities (Suurballe-Bhandari for
    ``k = 2``); a pair gets fewer than ``k`` paths when fewer link-disjoint paths exist.
    Paths are returned cheapest first.

    Examples
    --------
    >>> import numpy as np
    >>> indptr = np.array([0, 2, 4, 6, 8])
    >>> indices = np.array([1, 2, 0, 3, 0, 3, 1, 2])
    >>> ps = edge_disjoint_paths((indptr, indices, np.ones(8)), 0, 3, k=3)
    >>> [p.tolist() for p in ps.paths_of(0)]
    [[0, 1, 3], [0, 2, 3]]
    """
    if int(k) < 1:
        raise MeshnetError(f"k must be >= 1, got {k}")
    csr = as_csr(graph, weight)
    src, dst = _pairs(csr, sources, targets)
    relay = relay_array(relay_mask, csr.n_nodes)
    rev = K.reverse_edges(csr.indptr, csr.indices)
    if np.any(rev < 0):
        raise MeshnetError("edge_disjoint_paths needs a symmetric graph (undirected links)")
    kernel = K.disjoint_many if parallel else K.disjoint_many_serial
    return _run_batched(kernel, csr.n_nodes, int(k), src, dst,
                        (csr.indptr, csr.indices, csr.weights, rev, relay))
