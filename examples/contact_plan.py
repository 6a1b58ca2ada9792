"""A contact-plan routing policy for meshnet, written outside meshnet.

Satellite links are predictable: the scenario's known future (``request.future``, the next
``[routing].horizon_s`` of snapshots) is a *contact plan*. This policy gives every link its
remaining contact time (how many future snapshots it stays up in a row), and routes each pair
on the least-delay path over links whose contact lasts at least ``min_contact_s``, relaxing
the requirement (halving it) until a path exists. Paths then rarely break mid-transfer.

Use it from a scenario::

    [routing]
    policy = "examples/contact_plan.py:ContactPlan"
    horizon_s = 60.0

    [routing.params]
    min_contact_s = 30.0
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra


class ContactPlan:
    """Least-delay paths over links that stay up for ``min_contact_s`` (see module doc)."""

    def __init__(self, min_contact_s: float = 30.0):
        if min_contact_s < 0:
            raise ValueError("min_contact_s must be >= 0")
        self.min_contact_s = float(min_contact_s)

    @staticmethod
    def contact_s(request) -> np.ndarray:
        """Per directed edge of ``request.snapshot``: seconds it stays up in the known
        future (the horizon's length if throughout)."""
        snap = request.snapshot
        n = snap.n_nodes
        keys = snap.edge_sources().astype(np.int64) * n + snap.indices
        contact = np.zeros(snap.n_edges)
        alive = np.ones(snap.n_edges, bool)
        t_prev = snap.t_ns
        for f in request.future:
            fkeys = f.edge_sources().astype(np.int64) * n + f.indices
            alive &= np.isin(keys, fkeys)
            contact[alive] += (f.t_ns - t_prev) / 1e9
            t_prev = f.t_ns
        return contact

    def route(self, request):
        snap = request.snapshot
        contact = self.contact_s(request)
        n = snap.n_nodes
        answer = [None] * request.n_pairs
        todo = np.arange(request.n_pairs)
        need = self.min_contact_s
        while todo.size:
            ok = contact >= need
            # Ground stations do not relay: drop edges out of non-relay nodes, except from
            # the sources (handled by allowing a non-relay node only as the first hop).
            src_of = snap.edge_sources()
            for s in np.unique(request.src[todo]).tolist():
                usable = ok & (request.relay[src_of] | (src_of == s))
                # copies: eliminate_zeros() edits index arrays in place
                g = csr_array((np.where(usable, snap.delay_s, 0.0), snap.indices.copy(),
                               snap.indptr.copy()), shape=(n, n))
                g.eliminate_zeros()
                _, pred = dijkstra(g, indices=s, return_predecessors=True)
                for p in todo[request.src[todo] == s].tolist():
                    t = int(request.dst[p])
                    if pred[t] < 0 and t != s:
                        continue
                    path = [t]
                    while path[-1] != s:
                        path.append(int(pred[path[-1]]))
                    answer[p] = path[::-1]
            todo = np.array([p for p in todo.tolist() if answer[p] is None], np.int64)
            if need == 0.0:
                break
            need = need / 2 if need > 1.0 else 0.0
        return answer
