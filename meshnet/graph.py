"""One step of the network as a graph: CSR arrays plus the node table.

Every undirected link (a, b) becomes two directed edges, ``a -> b`` and ``b -> a``, sharing the
link's id. Optical links are full duplex, so each direction has the full ``capacity_bps``; the
allocator treats directed edges as the resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import C_KM_S

SATELLITE = 0
GROUND = 1


@dataclass(frozen=True)
class Snapshot:
    """The links that are up at one instant, in compressed sparse row form.

    Attributes
    ----------
    t_ns : int
        Offset from the scenario epoch.
    node_names : numpy.ndarray
        ``(n_nodes,)`` object array; satellites first, then ground stations.
    node_kind : numpy.ndarray
        ``(n_nodes,)`` int8: ``SATELLITE`` (0) or ``GROUND`` (1).
    indptr, indices : numpy.ndarray
        CSR structure (int64, int32): the out-edges of node ``u`` are
        ``indices[indptr[u]:indptr[u + 1]]``, sorted by neighbour id.
    delay_s, length_km, capacity_bps : numpy.ndarray
        Per directed edge (float64).
    link_id : numpy.ndarray
        Per directed edge (int32): row of the step's link table this edge comes from.

    Examples
    --------
    >>> import numpy as np
    >>> snap = Snapshot.from_links(
    ...     t_ns=0, node_names=np.array(["s0", "s1", "s2"], dtype=object),
    ...     node_kind=np.zeros(3, np.int8), a=np.array([0, 1]), b=np.array([1, 2]),
    ...     length_km=np.array([1000.0, 2000.0]), capacity_bps=np.array([1e11, 1e11]))
    >>> snap.n_edges, snap.indices.tolist()
    (4, [1, 0, 2, 1])
    >>> round(snap.to_networkx()[0][1]["delay_s"] * 1e3, 3)
    3.336
    """

    t_ns: int
    node_names: np.ndarray
    node_kind: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    delay_s: np.ndarray
    length_km: np.ndarray
    capacity_bps: np.ndarray
    link_id: np.ndarray

    @classmethod
    def from_links(cls, t_ns, node_names, node_kind, a, b, length_km, capacity_bps,
                   link_id=None) -> Snapshot:
        """Build the symmetric CSR graph from undirected links ``a[i] -- b[i]``."""
        n_nodes = len(node_names)
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        length_km = np.asarray(length_km, dtype=np.float64)
        capacity_bps = np.asarray(capacity_bps, dtype=np.float64)
        if link_id is None:
            link_id = np.arange(a.shape[0], dtype=np.int32)
        link_id = np.asarray(link_id, dtype=np.int32)
        src = np.concatenate([a, b])
        dst = np.concatenate([b, a])
        # Sort by (src, dst) so edge order, and therefore tie-breaking, is deterministic.
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
        both = np.concatenate([np.arange(a.shape[0])] * 2)[order]
        indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
        length = length_km[both]
        return cls(
            t_ns=int(t_ns),
            node_names=np.asarray(node_names, dtype=object),
            node_kind=np.asarray(node_kind, dtype=np.int8),
            indptr=indptr,
            indices=dst.astype(np.int32),
            delay_s=length / C_KM_S,
            length_km=length,
            capacity_bps=capacity_bps[both],
            link_id=link_id[both],
        )

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        """Number of directed edges (twice the number of links)."""
        return int(self.indices.shape[0])

    @property
    def n_sats(self) -> int:
        return int(np.count_nonzero(self.node_kind == SATELLITE))

    def edge_sources(self) -> np.ndarray:
        """Source node of every directed edge (int32), the COO twin of ``indptr``."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int32), np.diff(self.indptr))

    def degree(self) -> np.ndarray:
        """Out-degree of every node."""
        return np.diff(self.indptr).astype(np.int32)

    def to_scipy(self, weight: str = "delay_s"):
        """The graph as a ``scipy.sparse.csr_array`` weighted by ``weight``."""
        from scipy.sparse import csr_array

        data = getattr(self, weight)
        return csr_array((data, self.indices, self.indptr), shape=(self.n_nodes, self.n_nodes))

    def to_networkx(self):
        """An undirected ``networkx.Graph`` with the same nodes and edge attributes.

        Nodes carry ``name`` and ``kind``; edges carry ``delay_s``, ``length_km``,
        ``capacity_bps`` and ``link_id``.
        """
        import networkx as nx

        g = nx.Graph()
        for u in range(self.n_nodes):
            g.add_node(u, name=self.node_names[u],
                       kind="satellite" if self.node_kind[u] == SATELLITE else "ground")
        src = self.edge_sources()
        keep = src < self.indices
        for u, v, d, length, c, lid in zip(
            src[keep].tolist(), self.indices[keep].tolist(), self.delay_s[keep].tolist(),
            self.length_km[keep].tolist(), self.capacity_bps[keep].tolist(),
            self.link_id[keep].tolist(), strict=True,
        ):
            g.add_edge(u, v, delay_s=d, length_km=length, capacity_bps=c, link_id=lid)
        return g
