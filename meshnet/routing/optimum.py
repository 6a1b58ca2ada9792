"""The best the mesh could do for given demands: linear programs solved by HiGHS.

Two path-based multi-commodity flow problems over one :class:`~meshnet.graph.Snapshot`
(directed edges are the resources; ground stations relay only where ``relay`` allows):

``min_max_utilisation``
    Carry every pair's demand ``d_i`` and minimise the largest link utilisation ``U``::

        min U   s.t.  sum_{p in P_i} x_p = d_i,   sum_{p ∋ e} x_p <= U c_e,   x >= 0.

    Its inverse ``1 / U`` is the *maximum concurrent flow*: the largest factor by which all
    demands can grow together and still fit.
``max_throughput``
    The most traffic the mesh can carry with no pair above its demand::

        max sum_p x_p   s.t.  sum_{p in P_i} x_p <= d_i,   sum_{p ∋ e} x_p <= c_e,   x >= 0.

    An elastic pair (infinite demand) is capped by its source's and destination's link
    capacity, which no routing can exceed.

Both start from the ``k_paths`` least-delay paths of each pair (Yen) and, with
``column_generation``, add for every pair the least-cost path under the LP's dual link
prices while it improves the objective (its reduced cost is negative). Whatever the path set,
the dual prices give a bound on the true optimum over *all* paths (Lagrangian duality):
``sum_i d_i dist_w(i) / sum_e c_e w_e`` below ``U*``, and
``sum_e c_e w_e + sum_i d_i max(0, 1 - dist_w(i))`` above the best throughput. The
relative difference between the value found and that bound is the stated ``gap``; it is 0
(to solver tolerance) when column generation has converged.

Examples
--------
Two 10 Gbps routes from node 0 to node 3 (via 1 and via 2); 15 Gbps of demand. Split evenly,
each route runs at 75 %:

>>> import numpy as np
>>> from meshnet.graph import Snapshot
>>> snap = Snapshot.from_links(0, np.array(list("abcd"), dtype=object), np.zeros(4, np.int8),
...                            [0, 0, 1, 2], [1, 2, 3, 3], [500.0, 700.0, 500.0, 700.0],
...                            [10e9] * 4)
>>> res = solve_optimum(snap, [0], [3], [15e9], objective="min_max_utilisation", k_paths=1)
>>> round(res.value, 6), round(res.gap, 6), res.n_paths
(0.75, 0.0, 2)
>>> round(solve_optimum(snap, [0], [3], [np.inf]).value / 1e9, 6)
20.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_array

from ..errors import MeshnetError
from ..graph import SATELLITE, Snapshot
from ..kernels import _routing as K

OBJECTIVES = ("min_max_utilisation", "max_throughput")

#: Tie-break weight per second of delay added to LP link prices when pricing, so that among
#: equally priced paths the shorter one is found (negligible against the prices).
_TIE = 1e-9

#: Sharpness of the exponential utilisation prices tried for the lower bound on U*.
_BETAS = (10.0, 40.0)


@dataclass(frozen=True)
class OptimumResult:
    """A solved optimum.

    Attributes
    ----------
    objective : str
    value : float
        ``U*`` (fraction, min_max_utilisation) or total throughput in bits/s.
    bound : float
        The dual bound on the optimum over all paths (below ``U*``, above the throughput).
    gap : float
        ``|value - bound| / |value|``: how far the value may be from the true optimum.
    pair_rate_bps : numpy.ndarray
        ``(P,)`` rate of each pair in the optimal solution.
    edge_load_bps : numpy.ndarray
        ``(E,)`` load of each directed edge.
    n_paths, rounds : int
        Candidate paths in the final LP; column-generation rounds.
    solve_s : float
        Wall time of the whole solve (paths, LPs, pricing).
    """

    objective: str
    value: float
    bound: float
    gap: float
    pair_rate_bps: np.ndarray
    edge_load_bps: np.ndarray
    n_paths: int
    rounds: int
    solve_s: float

    @property
    def max_concurrent_flow(self) -> float:
        """``1 / U*`` for ``min_max_utilisation`` (inf when no demand)."""
        return 1.0 / self.value if self.value > 0 else np.inf


class _Columns:
    """Candidate paths (as edge lists) of every pair, without duplicates."""

    def __init__(self, n_pairs: int):
        self.pair: list[int] = []
        self.edges: list[np.ndarray] = []
        self._seen: set = set()
        self.n_pairs = n_pairs

    def add(self, pair: int, edges: np.ndarray) -> bool:
        key = (pair, edges.tobytes())
        if key in self._seen or edges.size == 0:
            return False
        self._seen.add(key)
        self.pair.append(pair)
        self.edges.append(edges.astype(np.int64))
        return True

    def matrix(self, n_edges: int):
        """``(rows, A)``: the edges used by some path and the edge x path incidence."""
        lens = np.array([e.size for e in self.edges], np.int64)
        flat = np.concatenate(self.edges) if self.edges else np.zeros(0, np.int64)
        rows, inv = np.unique(flat, return_inverse=True)
        indptr = np.zeros(lens.size + 1, np.int64)
        np.cumsum(lens, out=indptr[1:])
        a = csc_array((np.ones(flat.size), inv.ravel(), indptr), shape=(rows.size, lens.size))
        return rows, a


def _relay_mask(snapshot: Snapshot, relay):
    if relay is None:
        return np.asarray(snapshot.node_kind == SATELLITE, np.bool_)
    return np.ascontiguousarray(relay, np.bool_)


def _price_paths(snapshot, src, dst, price, relay):
    """Least-``price`` path of every pair: ``(dist, edges per pair)`` (edges None if none)."""
    n = snapshot.n_nodes
    w = np.ascontiguousarray(price + _TIE * snapshot.delay_s)
    usrc, row = np.unique(src, return_inverse=True)
    r = usrc.shape[0]
    dist = np.empty((r, n))
    pred = np.empty((r, n), np.int32)
    pred_edge = np.empty((r, n), np.int32)
    K.dijkstra_many(snapshot.indptr, snapshot.indices, w, relay, usrc.astype(np.int32), dist,
                    pred, pred_edge, np.empty((0, n), np.int32))
    # Read the paths off the trees with the policies' kernels (as shortest_delay does).
    from .policies import _routes_from_trees

    rev = K.reverse_edges(snapshot.indptr, snapshot.indices)
    routes = _routes_from_trees(snapshot, pred, pred_edge, rev, row.ravel().astype(np.int64),
                                dst.astype(np.int32), src.astype(np.int32), False)
    out = [None] * src.shape[0]
    exact = np.full(src.shape[0], np.inf)
    pp, ep = routes.pair_path_indptr, routes.path_edge_indptr
    edges = routes.path_edges.astype(np.int64)
    for p in np.flatnonzero(np.diff(pp) > 0).tolist():
        j = pp[p]
        out[p] = edges[ep[j]:ep[j + 1]]
    has = np.diff(pp) > 0
    if has.any():
        counts = np.diff(ep)
        per_path = np.bincount(np.repeat(np.arange(counts.size), counts), weights=price[edges],
                               minlength=counts.size)
        exact[has] = per_path
    return exact, out


def solve_optimum(snapshot: Snapshot, src, dst, demand_bps, *, min_bps=None, relay=None,
                  objective: str = "max_throughput", k_paths: int = 3,
                  column_generation: bool = True, gap: float = 1e-3,
                  max_rounds: int = 30) -> OptimumResult:
    """Solve one optimum on ``snapshot`` (see the module docstring).

    Parameters
    ----------
    snapshot : Snapshot
    src, dst : array_like of int
        Distinct (source, destination) pairs.
    demand_bps : array_like of float
        Demand of each pair; ``inf`` for an elastic pair (``max_throughput`` only).
    min_bps : array_like of float, optional
        ``max_throughput``: rate each pair must get at least (for instance traffic held
        fixed at what a policy gave it); must be feasible.
    relay : array_like of bool, optional
        Nodes allowed inside a path (default: satellites).
    objective : {"max_throughput", "min_max_utilisation"}
    k_paths : int
        Initial least-delay paths per pair.
    column_generation : bool
        Add improving paths until ``gap`` is met (or ``max_rounds``).
    gap : float
        Relative gap at which to stop.

    Raises
    ------
    MeshnetError
        Unknown objective, mismatched inputs, or an infeasible/unbounded LP.
    """
    t0 = time.perf_counter()
    if objective not in OBJECTIVES:
        raise MeshnetError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                           f"{objective!r}")
    src = np.ascontiguousarray(src, np.int32).ravel()
    dst = np.ascontiguousarray(dst, np.int32).ravel()
    demand = np.asarray(demand_bps, np.float64).ravel()
    if not (src.shape == dst.shape == demand.shape):
        raise MeshnetError("src, dst and demand_bps must have the same length")
    if (demand < 0).any() or np.isnan(demand).any():
        raise MeshnetError("demands must be >= 0")
    relay = _relay_mask(snapshot, relay)
    n_e = snapshot.n_edges
    cap = snapshot.capacity_bps
    scale = float(cap.max()) if n_e and cap.max() > 0 else 1.0
    c = cap / scale
    # Elastic pairs: capped by what their two ends can send / receive at all.
    out_cap = np.add.reduceat(np.append(c, 0.0), snapshot.indptr[:-1]) * (
        np.diff(snapshot.indptr) > 0)
    in_cap = np.zeros(snapshot.n_nodes)
    np.add.at(in_cap, snapshot.indices, c)
    d = np.where(np.isinf(demand), np.minimum(out_cap[src], in_cap[dst]), demand / scale)
    lo = np.zeros(src.shape[0]) if min_bps is None else np.minimum(
        np.asarray(min_bps, np.float64).ravel() / scale, d)
    if objective == "min_max_utilisation" and np.isinf(demand).any():
        raise MeshnetError("min_max_utilisation needs finite demands")
    active = np.flatnonzero(d > 0)
    cols = _Columns(src.shape[0])
    if active.size:
        from .kshortest import k_shortest_paths

        ps = k_shortest_paths(snapshot, src[active], dst[active], k=int(k_paths),
                              relay_mask=relay)
        for j, p in enumerate(active.tolist()):
            for q in range(ps.pair_path_indptr[j], ps.pair_path_indptr[j + 1]):
                cols.add(p, ps.path_edges[ps.path_edge_indptr[q]:ps.path_edge_indptr[q + 1]])
    routable = np.zeros(src.shape[0], bool)
    routable[cols.pair] = True
    if objective == "min_max_utilisation" and (active.size and not routable[active].all()):
        p = int(active[~routable[active]][0])
        raise MeshnetError(f"pair {p} ({snapshot.node_names[src[p]]} -> "
                           f"{snapshot.node_names[dst[p]]}) has demand but no path")
    rounds = 0
    value = bound = best_bound = 0.0
    x = np.zeros(0)
    while True:
        rounds += 1
        if not cols.edges:
            break
        rows, a = cols.matrix(n_e)
        pair_of_col = np.array(cols.pair, np.int64)
        n_col = len(cols.edges)
        uniq_pairs, pair_row = np.unique(pair_of_col, return_inverse=True)
        b_mat = csc_array((np.ones(n_col), (pair_row.ravel(), np.arange(n_col))),
                          shape=(uniq_pairs.size, n_col))
        if objective == "min_max_utilisation":
            from scipy.sparse import hstack

            cost = np.zeros(n_col + 1)
            cost[-1] = 1.0
            a_ub = hstack([a, csc_array(-c[rows][:, None])]).tocsc()
            a_eq = hstack([b_mat, csc_array((uniq_pairs.size, 1))]).tocsc()
            res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(rows.size), A_eq=a_eq,
                          b_eq=d[uniq_pairs], bounds=(0, None), method="highs")
        else:
            from scipy.sparse import vstack

            cost = -np.ones(n_col)
            a_ub = vstack([a, b_mat, -b_mat]).tocsc()
            b_ub = np.concatenate([c[rows], d[uniq_pairs], -lo[uniq_pairs]])
            # Interior point (with crossover, for the duals): on overloaded meshes the
            # simplex needs several times longer for this LP.
            res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs-ipm")
        if res.status != 0:
            raise MeshnetError(f"optimum LP ({objective}) failed: {res.message}")
        x = res.x[:n_col]
        price = np.zeros(n_e)
        price[rows] = np.maximum(0.0, -res.ineqlin.marginals[:rows.size])
        dist, new = _price_paths(snapshot, src[active], dst[active], price, relay)
        dist_all = np.full(src.shape[0], np.inf)
        dist_all[active] = dist
        extra = []
        if objective == "min_max_utilisation":
            value = float(res.x[-1])
            cw = float(c @ price)
            bound = float(d[active] @ dist) / cw if cw > 0 else 0.0
            pi = np.zeros(src.shape[0])
            pi[uniq_pairs] = res.eqlin.marginals
            improving = dist < pi[active] * (1 - 1e-9) - 1e-12
            # The LP's duals are often degenerate (one bottleneck priced, every pair routes
            # around it: bound 0). Any prices w >= 0 bound U* from below, so also try
            # exponential prices of the primal utilisation (as in Garg-Koenemann); their
            # paths avoid every nearly full link and join the candidates.
            load = np.zeros(n_e)
            lens = np.array([e.size for e in cols.edges])
            np.add.at(load, np.concatenate(cols.edges), np.repeat(x, lens))
            util = np.divide(load, c, out=np.zeros(n_e), where=c > 0) / max(value, 1e-300)
            for beta in _BETAS:
                w = np.where(c > 0, np.exp(beta * (np.minimum(util, 1.0) - 1.0)), 0.0)
                w = w / np.where(c > 0, c, 1.0)
                dist_b, new_b = _price_paths(snapshot, src[active], dst[active], w, relay)
                cw_b = float(c @ w)
                if cw_b > 0:
                    bound = max(bound, float(d[active] @ dist_b) / cw_b)
                if beta == _BETAS[-1]:  # the sharpest prices' paths join the candidates
                    extra += [(int(active[j]), e) for j, e in enumerate(new_b)
                              if e is not None]
            best_bound = max(best_bound, bound)  # every round's prices bound U* from below
            bound = min(best_bound, value)
        else:
            value = float(-res.fun)
            z = np.zeros(src.shape[0])
            m = res.ineqlin.marginals
            k_rows = uniq_pairs.size
            z[uniq_pairs] = (np.maximum(0.0, -m[rows.size:rows.size + k_rows])
                             - np.maximum(0.0, -m[rows.size + k_rows:]))
            # Lagrangian bound: each pair sends its most (d) where a path is worth more than
            # its price, its least (lo) otherwise.
            gain = 1.0 - dist
            lag = float(c @ price) + float(np.sum(np.where(gain > 0, d[active],
                                                           lo[active]) * gain))
            bound = max(lag, value)
            improving = dist < (1.0 - z[active]) * (1 - 1e-9) - 1e-12
        rel = abs(bound - value) / max(abs(value), 1e-300)
        if not column_generation or rel <= gap or rounds >= max_rounds:
            break
        added = 0
        for j in np.flatnonzero(improving).tolist():
            if new[j] is not None and cols.add(int(active[j]), new[j]):
                added += 1
        for p, e in extra:
            added += cols.add(p, e)
        if added == 0:
            break
    pair_rate = np.zeros(src.shape[0])
    edge_load = np.zeros(n_e)
    if cols.edges:
        np.add.at(pair_rate, np.array(cols.pair, np.int64), x)
        lens = np.array([e.size for e in cols.edges])
        np.add.at(edge_load, np.concatenate(cols.edges), np.repeat(x, lens))
    scale_value = 1.0 if objective == "min_max_utilisation" else scale
    rel = abs(bound - value) / max(abs(value), 1e-300) if value else 0.0
    return OptimumResult(objective=objective, value=value * scale_value,
                         bound=bound * scale_value, gap=float(rel),
                         pair_rate_bps=pair_rate * scale, edge_load_bps=edge_load * scale,
                         n_paths=len(cols.edges), rounds=rounds,
                         solve_s=time.perf_counter() - t0)
