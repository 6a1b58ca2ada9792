"""Weighted proportional fairness (Kelly, 1998): maximise sum of ``w log x`` subject to capacity.

Same inputs and multi-path semantics as :mod:`meshnet.allocation.maxmin`: subflow ``p`` of flow
``f`` has weight ``weight[f] * path_fraction[p]``, the flow's demand caps the sum over its paths,
and the utility is summed over subflows, so the split keeps no fixed ratio.

Solver
------
The dual, over one price ``p_r >= 0`` per resource (edges and demand caps), is smooth and
convex: ``D(p) = c.p - sum_s w_s log q_s`` with ``q_s`` the summed price on subflow ``s``'s
resources and ``x_s = w_s / q_s``. It is minimised with L-BFGS-B (scipy) on capacities and
weights scaled to O(1), then polished by damped Newton steps on the binding resources, and the
rates are scaled into the feasible set (no resource ends above capacity). Typical accuracy is
1e-8 relative; this method is for moderate problem sizes, not the per-step hot path.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg

from ._problem import MultipathRates, Problem, build_problem

_TINY = 1e-300


def _lower(prob: Problem):
    """Resource x subflow incidence (COO rows, cols) over edges then groups."""
    n_edges = prob.capacity_bps.size
    lens = np.diff(prob.sub_indptr)
    rows = [prob.sub_edges.astype(np.int64)]
    cols = [np.repeat(np.arange(lens.size, dtype=np.int64), lens)]
    has_group = prob.group >= 0
    rows.append(n_edges + prob.group[has_group].astype(np.int64))
    cols.append(np.flatnonzero(has_group))
    cap = np.concatenate([prob.capacity_bps, prob.group_cap_bps])
    return np.concatenate(rows), np.concatenate(cols), cap


def _solve(prob: Problem, rtol: float, max_iter: int) -> np.ndarray:
    rows, cols, cap = _lower(prob)
    n_sub = prob.sub_weight.size
    rate = np.zeros(n_sub)
    live = prob.sub_weight > 0
    # A subflow through a zero-capacity resource gets nothing (log utility would be -inf).
    blocked = np.zeros(n_sub, bool)
    blocked[cols[cap[rows] <= 0.0]] = True
    live &= ~blocked
    keep = live[cols] & np.isfinite(cap[rows])
    rows, cols = rows[keep], cols[keep]
    limited = np.zeros(n_sub, bool)
    limited[cols] = True
    rate[live & ~limited] = np.inf  # nothing finite limits it
    if rows.size == 0:
        return rate
    res_ids, rmap = np.unique(rows, return_inverse=True)
    sub_ids, smap = np.unique(cols, return_inverse=True)
    c_scale = cap[res_ids].max()
    c = cap[res_ids] / c_scale
    w = prob.sub_weight[sub_ids]
    w = w / w.max()
    a = scipy.sparse.csr_matrix((np.ones(rows.size), (rmap, smap)),
                                shape=(res_ids.size, sub_ids.size))
    a.sum_duplicates()
    at = a.T.tocsr()

    def dual(p):
        q = np.maximum(at @ p, _TINY)
        x = w / q
        return c @ p - w @ np.log(q), c - a @ x

    # Start from prices that would make each resource alone just feasible.
    path_len = np.asarray(at.sum(axis=1)).ravel()
    p0 = (a @ (w / path_len)) / c
    res = scipy.optimize.minimize(
        dual, p0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * c.size,
        options={"maxiter": max_iter, "maxcor": 30, "ftol": 0.0, "gtol": rtol * 1e-2})
    p = res.x
    p = _newton_polish(a, at, c, w, p, rtol)
    x = w / np.maximum(at @ p, _TINY)
    # Scale each subflow into the feasible set: divide by its worst resource overload.
    over = np.maximum((a @ x) / c, 1.0)
    worst = np.ones(x.size)
    np.maximum.at(worst, smap, over[rmap])
    x /= worst
    rate[sub_ids] = x * c_scale
    return rate


def _newton_polish(a, at, c, w, p, rtol, steps: int = 20):
    """Newton steps on the binding resources (those with a positive price)."""
    for _ in range(steps):
        q = np.maximum(at @ p, _TINY)
        x = w / q
        g = c - a @ x
        active = (p > 0) | (g < 0)
        if not active.any():
            break
        if np.all(np.abs(g[active]) <= rtol * c[active]):
            break
        a_b = a[active]
        # Hessian of the dual on the active set: A_B diag(w / q^2) A_B^T (positive definite
        # unless two binding resources carry the same subflows; the ridge handles that).
        h = (a_b @ scipy.sparse.diags(w / q**2) @ a_b.T).tocsc()
        ridge = 1e-12 * max(h.diagonal().max(), 1.0)
        h = h + ridge * scipy.sparse.identity(h.shape[0], format="csc")
        try:
            step = scipy.sparse.linalg.spsolve(h, -g[active])
        except RuntimeError:
            break
        if not np.all(np.isfinite(step)):
            break
        # Damped step that keeps prices >= 0 and decreases the dual.
        f0 = c @ p - w @ np.log(q)
        t = 1.0
        while t > 1e-6:
            cand = p.copy()
            cand[active] = np.maximum(p[active] + t * step, 0.0)
            qc = at @ cand
            if np.all(qc > 0):
                f1 = c @ cand - w @ np.log(qc)
                if f1 <= f0 + 1e-15 * abs(f0):
                    p = cand
                    break
            t *= 0.5
        else:
            break
    return p


def proportional_fair(capacity_bps, flow_edge_indptr, flow_edges, weight=None, demand_bps=None,
                      reachable=None, *, rtol: float = 1e-9, max_iter: int = 20000) -> np.ndarray:
    """Weighted proportional fair rates of single-path flows.

    Parameters are those of :func:`meshnet.allocation.max_min_fair`; ``rtol`` is the relative
    tolerance on binding constraints, ``max_iter`` bounds the L-BFGS-B iterations.

    Examples
    --------
    Flow 0 crosses both 1 Gbps links, flows 1 and 2 one each: proportional fairness gives the
    long flow 1/3 and the short ones 2/3 (max-min would give 1/2 each).

    >>> import numpy as np
    >>> r = proportional_fair(np.array([1e9, 1e9]), np.array([0, 2, 3, 4]),
    ...                       np.array([0, 1, 0, 1]))
    >>> np.round(r / 1e9, 6).tolist()
    [0.333333, 0.666667, 0.666667]
    """
    prob = build_problem(capacity_bps, None, flow_edge_indptr, flow_edges,
                         weight=weight, demand_bps=demand_bps, reachable=reachable)
    return _solve(prob, rtol, max_iter)


def proportional_fair_multipath(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                                path_fraction=None, weight=None, demand_bps=None,
                                reachable=None, *, rtol: float = 1e-9,
                                max_iter: int = 20000) -> MultipathRates:
    """Weighted proportional fair rates of flows split over several paths.

    Parameters are those of :func:`meshnet.allocation.max_min_fair_multipath`.
    """
    prob = build_problem(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                         path_fraction, weight, demand_bps, reachable)
    sub = _solve(prob, rtol, max_iter)
    return MultipathRates(sub, prob.flow_rates(sub))
