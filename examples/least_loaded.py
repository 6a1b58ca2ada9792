"""A small traffic-engineering heuristic for meshnet, written outside meshnet.

For each pair, take the ``k`` least-delay paths and send the traffic over the one whose
busiest link was least used in the previous step (``request.edge_utilisation``); ties go to
the shorter path. With ``split = true`` the traffic is shared over all ``k`` paths in
proportion to their spare capacity instead.

Use it from a scenario::

    [routing]
    policy = "examples/least_loaded.py:LeastLoaded"

    [routing.params]
    k = 3
    split = false
"""

from __future__ import annotations

import numpy as np

from meshnet.routing import k_shortest_paths


class LeastLoaded:
    """Least-loaded of ``k`` shortest paths (see the module docstring)."""

    def __init__(self, k: int = 3, split: bool = False):
        self.k = int(k)
        self.split = bool(split)

    def route(self, request):
        snap = request.snapshot
        util = (np.zeros(snap.n_edges) if request.edge_utilisation is None
                else np.asarray(request.edge_utilisation))
        ps = k_shortest_paths(snap, request.src, request.dst, k=self.k,
                              relay_mask=request.relay)
        answer = []
        for p in range(request.n_pairs):
            a, b = ps.pair_path_indptr[p], ps.pair_path_indptr[p + 1]
            if a == b:
                answer.append(None)
                continue
            paths, busiest = [], []
            for j in range(a, b):
                edges = ps.path_edges[ps.path_edge_indptr[j]:ps.path_edge_indptr[j + 1]]
                paths.append(ps.path_nodes[ps.path_node_indptr[j]:ps.path_node_indptr[j + 1]])
                busiest.append(float(util[edges].max()) if edges.size else 0.0)
            if self.split:
                spare = np.maximum(1.0 - np.array(busiest), 1e-3)
                answer.append(list(zip(paths, spare / spare.sum(), strict=True)))
            else:
                answer.append(paths[int(np.argmin(busiest))])
        return answer
