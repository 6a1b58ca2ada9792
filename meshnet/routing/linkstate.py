"""Routing that converges like a link-state protocol (OSPF, IS-IS) over the moving mesh.

Enabled by ``[routing.linkstate] enabled = true`` for any policy. At every step the links
that came up or went down since the previous step become *events* at the step's time ``t0``:

1. both ends detect the change after ``detect_s``;
2. the update floods hop by hop over the links up now: crossing a link costs its propagation
   delay plus ``per_hop_s`` of processing, so it reaches node ``v`` at
   ``t0 + detect_s + min(d(a, v), d(b, v))`` where ``a``, ``b`` are the link's ends and ``d``
   the least flooding cost;
3. ``v`` installs its new table ``spf_delay_s`` later.

A node's *view* is the topology with the events it has installed: a link that went down
stays in the view of nodes that have not heard (they still send into it), and a new link is
absent from it. Nodes with the same view share one table computation.

Forwarding: ``shortest_delay`` and ``min_hop`` forward hop by hop, each node on its own
view's least-delay (least-hop) tree towards the destination, over the links up now; a hop
over a link that is down loses the traffic (*black hole*), a hop back to a visited node is a
*loop* (also lost). Every other policy, built-in or your own, source-routes: the source
computes the policy's paths on its own view; a path over a link that is down is black-holed.

The policy is asked at the step's start, so with ``step_s`` longer than the convergence time
(about ``detect_s + spf_delay_s`` plus tens of ms of flooding) every change is seen one step
late by everyone: choose ``step_s`` of a few hundred ms or less to resolve convergence.

Examples
--------
Four satellites in a line, 0 - 1 - 2 - 3, 300 km apart (1 ms). Link 2 - 3 drops at t = 0.1 s;
node 1's table changes at 0.1 + 0.15 (detection) + 0.001 + 0.005 (one hop) + 0.2 (SPF) =
0.456 s, node 0's one hop later; until then traffic from 0 to 3 is black-holed at node 2:

>>> import numpy as np
>>> from meshnet.graph import Snapshot
>>> from meshnet.routing.config import LinkStateConfig, RoutingConfig
>>> from meshnet.routing.policies import make_policy
>>> names = np.array(["s0", "s1", "s2", "s3"], dtype=object)
>>> def line(t_s, links):
...     a, b = zip(*links)
...     return Snapshot.from_links(int(t_s * 1e9), names, np.zeros(4, np.int8), a, b,
...                                [299.792458] * len(a), [1e9] * len(a))
>>> cfg = RoutingConfig(linkstate=LinkStateConfig(enabled=True))
>>> ls = make_policy(cfg, 4)
>>> _ = ls.route(line(0.0, [(0, 1), (1, 2), (2, 3)]), [0], [3])
>>> r = ls.route(line(0.1, [(0, 1), (1, 2)]), [0], [3])
>>> bool(r.pair_blackholed[0]), [round(x, 4) for x in ls.install_times_s(0)]
(True, [0.462, 0.456, 0.45, 0.45])
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from ..graph import Snapshot
from ..kernels import _routing as K
from ..units import NS_PER_S

#: Status codes of :meth:`LinkStateRouting.route`'s forwarding (as ``follow_tables``).
DELIVERED, NO_ROUTE, BLACK_HOLE, LOOP = 0, 1, 2, 3


def _link_keys(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``a * n + b`` keys (a < b) of the snapshot's links and each link's first edge."""
    src = snapshot.edge_sources().astype(np.int64)
    dst = snapshot.indices.astype(np.int64)
    one = src < dst
    return src[one] * snapshot.n_nodes + dst[one], np.flatnonzero(one)


class LinkStateRouting:
    """Wrap a policy so it routes on each node's own, lagging view (module docstring).

    Attributes
    ----------
    events : list of dict
        Every link change: ``t_s``, ``a``, ``b``, ``up`` and ``converged_s`` (time from
        the change until the last node installed it).
    looped_pair_steps, blackholed_pair_steps : int
        Pairs lost to a loop / a black hole, summed over steps.
    """

    #: Policies forwarded hop by hop, and their link weight.
    HOP_BY_HOP = {"shortest_delay": "delay", "min_hop": "hops"}

    def __init__(self, inner, cfg, n_nodes=None, relay_mask=None):
        self.inner = inner
        self.cfg = cfg
        self.ls = cfg.linkstate
        self.n_nodes = n_nodes
        self.relay_mask = relay_mask
        self.mode = self.HOP_BY_HOP.get(cfg.policy)
        self._prev: Snapshot | None = None
        self._prev_keys = None
        # Pending events: arrays per event, install time per node.
        self._pending: list[dict] = []
        self.events: list[dict] = []
        self.looped_pair_steps = 0
        self.blackholed_pair_steps = 0
        self.steps = 0
        self.views_computed = 0

    # The engine asks for the relay rule when planning jobs.
    def _relay(self, snapshot):
        return self.inner._relay(snapshot)

    # ------------------------------------------------------------------ events
    def _flood_cost(self, snapshot: Snapshot, origins: np.ndarray) -> np.ndarray:
        """Least flooding time (s) from each origin to every node over the links up now."""
        w = snapshot.delay_s + self.ls.per_hop_s
        g = csr_array((np.maximum(w, 1e-15), snapshot.indices, snapshot.indptr),
                      shape=(snapshot.n_nodes, snapshot.n_nodes))
        return np.atleast_2d(dijkstra(g, directed=True, indices=origins))

    def _new_events(self, snapshot: Snapshot, t_s: float) -> None:
        keys, first_edge = _link_keys(snapshot)
        if self._prev is None:
            self._prev, self._prev_keys = snapshot, (keys, first_edge)
            return
        pkeys, pedge = self._prev_keys
        down = ~np.isin(pkeys, keys)
        up = ~np.isin(keys, pkeys)
        n = snapshot.n_nodes
        ev_keys = np.concatenate([pkeys[down], keys[up]])
        if ev_keys.size:
            is_up = np.concatenate([np.zeros(down.sum(), bool), np.ones(up.sum(), bool)])
            length = np.concatenate([self._prev.length_km[pedge[down]],
                                     snapshot.length_km[first_edge[up]]])
            cap = np.concatenate([self._prev.capacity_bps[pedge[down]],
                                  snapshot.capacity_bps[first_edge[up]]])
            a, b = ev_keys // n, ev_keys % n
            origins, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
            cost = self._flood_cost(snapshot, origins)
            m = ev_keys.size
            arrive = np.minimum(cost[inv[:m]], cost[inv[m:]])
            install = t_s + self.ls.detect_s + arrive + self.ls.spf_delay_s
            for i in range(m):
                ev = {"t_s": t_s, "key": int(ev_keys[i]), "a": int(a[i]), "b": int(b[i]),
                      "up": bool(is_up[i]), "length_km": float(length[i]),
                      "capacity_bps": float(cap[i]), "install_s": install[i]}
                fin = install[i][np.isfinite(install[i])]
                ev["converged_s"] = float(fin.max() - t_s) if fin.size else float("nan")
                self._pending.append(ev)
                self.events.append({k: ev[k] for k in ("t_s", "a", "b", "up", "converged_s")})
        self._prev, self._prev_keys = snapshot, (keys, first_edge)

    def install_times_s(self, event: int) -> list[float]:
        """Per node, when event ``event`` (index into :attr:`events`) reached its table."""
        ev = self.events[event]
        for p in self._pending:
            if p["t_s"] == ev["t_s"] and p["a"] == ev["a"] and p["b"] == ev["b"]:
                return p["install_s"].tolist()
        return []

    def _stale(self, snapshot: Snapshot, t_s: float):
        """Per node, which pending links it sees differently from the mesh now.

        Returns ``(keys, up_now, stale)``: the pending link keys, whether each is up now, and
        a ``(n_nodes, n_keys)`` bool matrix, true where the node's view differs."""
        # Events everyone has installed are history; an unreachable node (inf) waits for
        # its link to come back, but at most a minute.
        self._pending = [e for e in self._pending
                         if not (np.nanmax(np.where(np.isfinite(e["install_s"]),
                                                    e["install_s"], -np.inf)) <= t_s
                                 and (np.isfinite(e["install_s"]).all()
                                      or t_s - e["t_s"] > 60.0))]
        n = snapshot.n_nodes
        if not self._pending:
            return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((n, 0), bool)
        keys = np.unique([e["key"] for e in self._pending])
        col = {int(k): i for i, k in enumerate(keys.tolist())}
        now_keys, _ = _link_keys(snapshot)
        up_now = np.isin(keys, now_keys)
        # A node's belief about a key: the state of the last event it installed, else the
        # state before the first pending event of that key.
        belief = np.zeros((n, keys.size), bool)
        seen = np.zeros((n, keys.size), bool)
        for e in sorted(self._pending, key=lambda e: e["t_s"]):
            j = col[e["key"]]
            known = e["install_s"] <= t_s
            if not seen[:, j].any() and not known.all():
                belief[~seen[:, j], j] = not e["up"]
            belief[known, j] = e["up"]
            seen[:, j] = True
        return keys, up_now, belief != up_now[None, :]

    def _view(self, snapshot: Snapshot, keys, up_now, stale_row) -> Snapshot:
        """The snapshot as a node with ``stale_row`` sees it."""
        n = snapshot.n_nodes
        cur_keys, first = _link_keys(snapshot)
        drop = keys[stale_row & up_now]     # up now, not yet heard of
        add = keys[stale_row & ~up_now]     # down now, still believed up
        keep = ~np.isin(cur_keys, drop)
        info = {e["key"]: e for e in self._pending}
        a = np.concatenate([cur_keys[keep] // n, add // n])
        b = np.concatenate([cur_keys[keep] % n, add % n])
        length = np.concatenate([snapshot.length_km[first[keep]],
                                 [info[int(k)]["length_km"] for k in add]])
        cap = np.concatenate([snapshot.capacity_bps[first[keep]],
                              [info[int(k)]["capacity_bps"] for k in add]])
        return Snapshot.from_links(snapshot.t_ns, snapshot.node_names, snapshot.node_kind,
                                   a, b, length, cap)

    # ------------------------------------------------------------------ routing
    def route(self, snapshot: Snapshot, src, dst, *, t_ns=None, edge_utilisation=None,
              future=None):
        src = np.ascontiguousarray(src, dtype=np.int32).ravel()
        dst = np.ascontiguousarray(dst, dtype=np.int32).ravel()
        t_ns = snapshot.t_ns if t_ns is None else int(t_ns)
        t_s = t_ns / NS_PER_S
        self.steps += 1
        self._new_events(snapshot, t_s)
        keys, up_now, stale = self._stale(snapshot, t_s)
        rows, group = np.unique(stale, axis=0, return_inverse=True)
        group = group.ravel()
        if rows.shape[0] > self.ls.max_views:
            # Keep the most common views; the rest share the most stale one kept.
            order = np.argsort(-np.bincount(group))
            kept = order[:self.ls.max_views]
            worst = kept[np.argmax(rows[kept].sum(axis=1))]
            remap = np.full(rows.shape[0], worst)
            remap[kept] = kept
            group = remap[group]
        views = {int(g): (snapshot if not rows[g].any() else
                          self._view(snapshot, keys, up_now, rows[g]))
                 for g in np.unique(group).tolist()}
        self.views_computed += len(views)
        if self.mode is not None:
            routes, status = self._hop_by_hop(snapshot, src, dst, views, group)
        else:
            routes, status = self._source_routed(snapshot, src, dst, views, group, t_ns,
                                                 edge_utilisation, future)
        self.looped_pair_steps += int(np.count_nonzero(status == LOOP))
        self.blackholed_pair_steps += int(np.count_nonzero(status == BLACK_HOLE))
        return routes

    def _hop_by_hop(self, snapshot, src, dst, views, group):
        from .policies import _indptr, _routes

        n = snapshot.n_nodes
        udst, row = np.unique(dst, return_inverse=True)
        row = row.ravel().astype(np.int64)
        table = np.full((udst.shape[0], n), -1, np.int32)
        for g, view in views.items():
            relay = self.inner._relay(view)
            rev = K.reverse_edges(view.indptr, view.indices)
            w = view.delay_s if self.mode == "delay" else np.ones(view.n_edges)
            r = udst.shape[0]
            dist = np.empty((r, n))
            pred = np.empty((r, n), np.int32)
            K.dijkstra_many(view.indptr, view.indices, np.ascontiguousarray(w[rev]), relay,
                            udst.astype(np.int32), dist, pred, np.empty((0, n), np.int32),
                            np.empty((0, n), np.int32))
            members = group == g
            table[:, members] = pred[:, members]
        status, lengths, node_indptr, nodes, edges = K.follow_tables(
            table, row, src, dst, snapshot.indptr, snapshot.indices)
        ok = status == DELIVERED
        counts = ok.astype(np.int64)
        path_node_indptr = np.concatenate([[0], node_indptr[1:][ok]])
        routes = _routes(counts, path_node_indptr, nodes, _indptr(lengths[ok]), edges,
                         np.ones(int(counts.sum())), snapshot.delay_s,
                         blackholed=(status == BLACK_HOLE) | (status == LOOP))
        return routes, status

    def _source_routed(self, snapshot, src, dst, views, group, t_ns, util, future):
        from .policies import _routes

        n_pairs = src.shape[0]
        status = np.full(n_pairs, NO_ROUTE, np.int8)
        per_pair: list[list] = [[] for _ in range(n_pairs)]
        for g, view in views.items():
            sel = np.flatnonzero(group[src] == g)
            if sel.size == 0:
                continue
            vutil = None
            if util is not None and view is snapshot:
                vutil = util
            r = self.inner.route(view, src[sel], dst[sel], t_ns=t_ns, edge_utilisation=vutil,
                                 future=future)
            for i, p in enumerate(sel.tolist()):
                a, b = r.pair_path_indptr[i], r.pair_path_indptr[i + 1]
                if r.pair_blackholed[i]:
                    status[p] = BLACK_HOLE
                for j in range(a, b):
                    per_pair[p].append((r.nodes_of(j), float(r.path_fraction[j])))
        counts = np.zeros(n_pairs, np.int64)
        node_parts, edge_parts, fracs = [], [], []
        for p in range(n_pairs):
            items = per_pair[p]
            if not items:
                continue
            found = []
            for nodes, share in items:
                e = K.find_edges(snapshot.indptr, snapshot.indices,
                                 nodes[:-1].astype(np.int64), nodes[1:].astype(np.int64))
                if (e < 0).any():
                    status[p] = BLACK_HOLE
                    break
                found.append((nodes, e, share))
            if status[p] == BLACK_HOLE:
                continue
            status[p] = DELIVERED
            counts[p] = len(found)
            for nodes, e, share in found:
                node_parts.append(nodes.astype(np.int32))
                edge_parts.append(e.astype(np.int32))
                fracs.append(share)
        lens = np.array([q.size for q in node_parts], np.int64)
        node_indptr = np.zeros(lens.size + 1, np.int64)
        np.cumsum(lens, out=node_indptr[1:])
        edge_indptr = node_indptr - np.arange(lens.size + 1)
        nodes = np.concatenate(node_parts) if node_parts else np.zeros(0, np.int32)
        edges = np.concatenate(edge_parts) if edge_parts else np.zeros(0, np.int32)
        routes = _routes(counts, node_indptr, nodes, edge_indptr, edges, np.array(fracs),
                         snapshot.delay_s, blackholed=status == BLACK_HOLE)
        return routes, status

    def summary(self) -> dict:
        """Figures for the run summary (``summary.json["linkstate"]``)."""
        conv = np.array([e["converged_s"] for e in self.events], float)
        conv = conv[np.isfinite(conv)]
        return {
            "link_events": len(self.events),
            "mean_convergence_s": float(conv.mean()) if conv.size else None,
            "max_convergence_s": float(conv.max()) if conv.size else None,
            "looped_pair_steps": self.looped_pair_steps,
            "blackholed_pair_steps": self.blackholed_pair_steps,
            "views_per_step": self.views_computed / max(self.steps, 1),
            "detect_s": self.ls.detect_s, "per_hop_s": self.ls.per_hop_s,
            "spf_delay_s": self.ls.spf_delay_s,
        }
