"""Weighted proportional fairness (Kelly, 1998): maximise sum of ``w log x`` subject to capacity.

Same inputs and multi-path semantics as :mod:`meshnet.allocation.maxmin`: subflow ``p`` of flow
``f`` has weight ``weight[f] * path_fraction[p]``, the flow's demand caps the sum over its paths,
and the utility is summed over subflows, so the split keeps no fixed ratio.

Solver
------
A primal-dual interior-point method (Mehrotra predictor-corrector) on capacities and weights
scaled to O(1); each Newton step solves a positive definite system over the resources by
preconditioned conjugate gradients (matrix-free, so memory stays O(nnz)). It converges in
20-30 steps to a relative tolerance of 1e-9; the rates are then scaled into the feasible set
(no resource ends above capacity). First-order dual methods (L-BFGS-B on the prices) were
tried first and needed thousands of iterations on meshes, where many binding links carry the
same flows and the prices are not unique. About 3 s for 10,000 flows on up to 4 paths over
starlink_gen1 (``bench/bench_allocation.py --proportional``): an alternative for studies, not
the per-step default.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from ._problem import MultipathRates, Problem, build_problem

# Relative residual of the conjugate-gradient solves inside each interior-point step.
_CG_RTOL = 1e-10


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
    # Scale capacities and weights to O(1) so that the tolerances are relative.
    c_scale = cap[res_ids].max()
    c = cap[res_ids] / c_scale
    w = prob.sub_weight[sub_ids]
    w = w / w.max()
    a = scipy.sparse.csr_matrix((np.ones(rows.size), (rmap, smap)),
                                shape=(res_ids.size, sub_ids.size))
    a.sum_duplicates()
    x = _interior_point(a, c, w, rtol, max_iter)
    # Scale each subflow into the feasible set: divide by its worst resource overload (a
    # no-op up to rounding once converged).
    over = np.maximum((a @ x) / c, 1.0)
    worst = np.ones(x.size)
    np.maximum.at(worst, smap, over[rmap])
    rate[sub_ids] = x / worst * c_scale
    return rate


def _interior_point(a, c, w, rtol: float, max_iter: int) -> np.ndarray:
    """Primal-dual interior point (Mehrotra predictor-corrector) for ``max w.log x, A x <= c``.

    Unknowns: rates ``x``, slacks ``s = c - A x`` and prices ``p``; the optimality conditions
    are ``w / x = A^T p``, ``A x + s = c`` and ``p s = 0``. Each Newton system is reduced to
    ``(A diag(x^2 / w) A^T + diag(s / p)) dp = rhs`` over the resources, which is positive
    definite even when several binding resources carry the same subflows (where the dual prices
    are not unique); it is solved matrix-free by Jacobi-preconditioned conjugate gradients
    (serial, see :func:`_normal_pcg`).
    Primal and dual step lengths are taken separately: a common step stalls once prices of
    slack resources approach zero.
    """
    n_res = a.shape[0]
    at = a.T.tocsr()
    a2 = a.multiply(a).tocsr()
    members = np.asarray(a.sum(axis=1)).ravel()
    path_len = np.asarray(at.sum(axis=1)).ravel()
    # Strictly feasible start: half an equal share of the tightest resource on the path.
    x = 0.5 * np.minimum.reduceat((c / members)[at.indices], at.indptr[:-1])
    s = c - a @ x
    p = (a @ (w / x / path_len)) / members
    w_total = w.sum()

    def direction(r1, r2, r3, dinv, s_p, diag):
        rhs = a @ (dinv * r1) + r2 - r3 / p
        dp = _normal_pcg(a, at, dinv, s_p, diag, rhs, _CG_RTOL, 10 * n_res)
        dx = dinv * (r1 - at @ dp)
        return dx, -r2 - a @ dx, dp

    def max_step(frac, *pairs):
        alpha = 1.0
        for v, dv in pairs:
            neg = dv < 0
            if neg.any():
                alpha = min(alpha, frac * float(np.min(-v[neg] / dv[neg])))
        return alpha

    for _ in range(max_iter):
        r1 = w / x - at @ p
        r2 = a @ x + s - c
        mu = _dot(s, p) / n_res
        err = max(mu * n_res / w_total, np.abs(r1 * x / w).max(), np.abs(r2 / c).max())
        if err <= rtol:
            break
        dinv = x * x / w
        s_p = s / p
        diag = a2 @ dinv + s_p
        # predictor (affine scaling), then corrector with Mehrotra's centring
        dx, ds, dp = direction(r1, r2, p * s, dinv, s_p, diag)
        alpha = max_step(1.0, (x, dx), (s, ds), (p, dp))
        mu_aff = _dot(s + alpha * ds, p + alpha * dp) / n_res
        sigma = (mu_aff / mu) ** 3
        dx, ds, dp = direction(r1, r2, p * s + ds * dp - sigma * mu, dinv, s_p, diag)
        alpha_primal = max_step(0.995, (x, dx), (s, ds))
        alpha_dual = max_step(0.995, (p, dp))
        x = x + alpha_primal * dx
        s = s + alpha_primal * ds
        p = p + alpha_dual * dp
    return x


def _dot(u, v) -> float:
    # Not ``u @ v``: threaded BLAS on short vectors slows down badly when the cores are busy
    # (8x measured on two shared cores); a plain reduction is as fast here.
    return float(np.add.reduce(u * v))


def _normal_pcg(a, at, dinv, shift, diag, rhs, rtol: float, max_iter: int) -> np.ndarray:
    """Solve ``(A diag(dinv) A^T + diag(shift)) y = rhs`` by Jacobi-preconditioned CG.

    Stops when ``|residual| <= rtol |rhs|`` or after ``max_iter`` iterations.
    """
    y = np.zeros(rhs.size)
    r = rhs.copy()
    b_norm = np.sqrt(_dot(rhs, rhs))
    if b_norm == 0.0:
        return y
    z = r / diag
    d = z.copy()
    rz = _dot(r, z)
    for _ in range(max_iter):
        q = a @ (dinv * (at @ d)) + shift * d
        dq = _dot(d, q)
        if not dq > 0.0:
            break
        alpha = rz / dq
        y += alpha * d
        r -= alpha * q
        if np.sqrt(_dot(r, r)) <= rtol * b_norm:
            break
        z = r / diag
        rz, rz_old = _dot(r, z), rz
        d = z + (rz / rz_old) * d
    return y


def proportional_fair(capacity_bps, flow_edge_indptr, flow_edges, weight=None, demand_bps=None,
                      reachable=None, *, rtol: float = 1e-9, max_iter: int = 100) -> np.ndarray:
    """Weighted proportional fair rates of single-path flows.

    Parameters are those of :func:`meshnet.allocation.max_min_fair`; ``rtol`` is the relative
    tolerance on binding constraints, ``max_iter`` bounds the interior-point iterations.

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
                                max_iter: int = 100) -> MultipathRates:
    """Weighted proportional fair rates of flows split over several paths.

    Parameters are those of :func:`meshnet.allocation.max_min_fair_multipath`.
    """
    prob = build_problem(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                         path_fraction, weight, demand_bps, reachable)
    sub = _solve(prob, rtol, max_iter)
    return MultipathRates(sub, prob.flow_rates(sub))
