"""Input coercion shared by the routing API: one place that validates graphs and node lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MeshnetError
from ..graph import SATELLITE, Snapshot

WEIGHTS = ("delay_s", "length_km", "hops")


@dataclass(frozen=True)
class CSR:
    """A validated CSR graph: int64 ``indptr``, int32 ``indices``, float64 ``weights``."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    snapshot: Snapshot | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])


def as_csr(graph, weight: str | np.ndarray = "delay_s") -> CSR:
    """Coerce a :class:`Snapshot`, an ``(indptr, indices, weights)`` tuple or a scipy sparse
    matrix into a :class:`CSR`, with the edge weights chosen by ``weight``.

    ``weight`` is ``"delay_s"``, ``"length_km"``, ``"hops"`` (every edge 1) or an explicit
    float array with one value per directed edge. For tuples and scipy input the given data
    are the weights unless ``weight="hops"`` or an array is passed.
    """
    snapshot = None
    if isinstance(graph, Snapshot):
        snapshot = graph
        indptr, indices = graph.indptr, graph.indices
        data = None
        if isinstance(weight, str):
            if weight not in WEIGHTS:
                raise MeshnetError(
                    f"weight='{weight}' is not known; use one of {', '.join(WEIGHTS)} "
                    "or an array with one value per directed edge")
            if weight != "hops":
                data = getattr(graph, weight)
    elif isinstance(graph, tuple | list) and len(graph) == 3:
        indptr, indices, data = graph
    elif hasattr(graph, "indptr") and hasattr(graph, "indices") and hasattr(graph, "data"):
        g = graph.tocsr()
        g.sort_indices()
        indptr, indices, data = g.indptr, g.indices, g.data
    else:
        raise MeshnetError(
            "graph must be a meshnet Snapshot, an (indptr, indices, weights) tuple or a scipy "
            f"sparse matrix, not {type(graph).__name__}")
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    n_edges = indices.shape[0]
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr[0] != 0 or indptr[-1] != n_edges:
        raise MeshnetError("indptr must start at 0 and end at len(indices)")
    if np.any(np.diff(indptr) < 0):
        raise MeshnetError("indptr must be non-decreasing")
    n = indptr.shape[0] - 1
    if n_edges and (indices.min() < 0 or indices.max() >= n):
        raise MeshnetError(f"indices must lie in [0, {n}) for a graph of {n} nodes")
    if isinstance(weight, np.ndarray):
        data = weight
    elif weight == "hops":
        data = np.ones(n_edges)
    weights = np.ascontiguousarray(data, dtype=np.float64)
    if weights.shape != (n_edges,):
        raise MeshnetError(
            f"weights must have one value per directed edge ({n_edges}), got {weights.shape}")
    if n_edges and not (np.all(np.isfinite(weights)) and weights.min() >= 0.0):
        raise MeshnetError("edge weights must be finite and >= 0 (NaN, inf or negative found)")
    return CSR(indptr, indices, weights, snapshot)


def node_array(nodes, n: int, what: str) -> tuple[np.ndarray, bool]:
    """``nodes`` (int, sequence or None = all) as an int32 array; also whether it was scalar."""
    if nodes is None:
        return np.arange(n, dtype=np.int32), False
    scalar = np.ndim(nodes) == 0
    arr = np.atleast_1d(np.asarray(nodes))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise MeshnetError(f"{what} must be integer node ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise MeshnetError(f"{what} contains node {bad}, outside [0, {n})")
    return arr.astype(np.int32), scalar


def relay_array(relay_mask, n: int) -> np.ndarray:
    """Boolean relay mask (True = may relay transit traffic); None means every node relays."""
    if relay_mask is None:
        return np.ones(n, dtype=np.bool_)
    mask = np.ascontiguousarray(relay_mask, dtype=np.bool_)
    if mask.shape != (n,):
        raise MeshnetError(f"relay_mask must have one entry per node ({n}), got {mask.shape}")
    return mask


def relay_mask_for(snapshot: Snapshot, ground_relay: bool = False) -> np.ndarray:
    """Nodes allowed to relay: satellites always, ground stations only if ``ground_relay``.

    Examples
    --------
    >>> import numpy as np
    >>> from meshnet.graph import Snapshot
    >>> s = Snapshot.from_links(0, np.array(["a", "b", "g"], dtype=object),
    ...                         np.array([0, 0, 1], np.int8), [0, 1], [1, 2], [1.0, 1.0],
    ...                         [1.0, 1.0])
    >>> relay_mask_for(s).tolist()
    [True, True, False]
    """
    if ground_relay:
        return np.ones(snapshot.n_nodes, dtype=np.bool_)
    return np.asarray(snapshot.node_kind == SATELLITE, dtype=np.bool_)
