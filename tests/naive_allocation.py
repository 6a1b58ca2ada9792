"""Slow, obvious references for meshnet.allocation (independent of meshnet's own code).

All take the multi-path form: ``capacity[E]``, ``flow_path_indptr[F+1]``,
``path_edge_indptr[P+1]``, ``path_edges``, ``path_fraction[P]``, ``weight[F]``, ``demand[F]``
(``inf`` = elastic), and return path rates ``[P]``. The weight of path ``p`` of flow ``f`` is
``weight[f] * path_fraction[p]``; a flow's demand caps the sum of its path rates.

* :func:`maxmin_lp`: iterated max-min by linear programming (scipy HiGHS).
* :func:`maxmin_python`: progressive filling in plain Python loops.
* :func:`maxmin_numpy`: progressive filling vectorised with numpy, one round per bottleneck
  level (the benchmark's baseline).
* :func:`proportional_slsqp` and :func:`proportional_gap`: proportional fairness by a generic
  NLP solver, and an LP certificate of optimality for any candidate allocation.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _lists(flow_path_indptr, path_edge_indptr, path_edges, path_fraction, weight):
    n_flows = len(flow_path_indptr) - 1
    owner = []
    for f in range(n_flows):
        owner += [f] * (flow_path_indptr[f + 1] - flow_path_indptr[f])
    n_paths = len(owner)
    edges = [list(path_edges[path_edge_indptr[p]:path_edge_indptr[p + 1]])
             for p in range(n_paths)]
    a = [float(weight[owner[p]]) * float(path_fraction[p]) for p in range(n_paths)]
    return n_flows, owner, edges, a


def _constraints(capacity, owner, edges, demand, n_paths):
    """Dense ``A x <= b`` over edges and finite demands."""
    rows, rhs = [], []
    for e, c in enumerate(capacity):
        row = np.zeros(n_paths)
        for p in range(n_paths):
            row[p] = edges[p].count(e)
        if row.any() and np.isfinite(c):
            rows.append(row)
            rhs.append(c)
    for f, d in enumerate(demand):
        if np.isfinite(d):
            row = np.array([1.0 if owner[p] == f else 0.0 for p in range(n_paths)])
            if row.any():
                rows.append(row)
                rhs.append(d)
    return np.array(rows).reshape(-1, n_paths), np.array(rhs)


def maxmin_lp(capacity, flow_path_indptr, path_edge_indptr, path_edges, path_fraction, weight,
              demand, rtol=1e-8):
    """Weighted max-min fair path rates by iterated LP.

    Each round maximises ``t`` such that every unfixed path ``p`` has ``x_p >= a_p t``; then each
    unfixed path whose rate cannot exceed ``a_p t`` (a second LP per path) is fixed at
    ``a_p t``. Every path must be limited by some finite constraint.
    """
    _, owner, edges, a = _lists(flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                                weight)
    n = len(a)
    a_ub, b_ub = _constraints(capacity, owner, edges, demand, n)
    fixed = {p: 0.0 for p in range(n) if a[p] <= 0}
    while len(fixed) < n:
        free = [p for p in range(n) if p not in fixed]
        # variables: x_0..x_{n-1}, t
        bounds = [(fixed[p], fixed[p]) if p in fixed else (0, None) for p in range(n)]
        bounds.append((0, None))
        g = np.zeros((len(free), n + 1))
        for i, p in enumerate(free):
            g[i, p] = -1.0
            g[i, n] = a[p]
        a_all = np.vstack([np.hstack([a_ub, np.zeros((a_ub.shape[0], 1))]), g])
        b_all = np.concatenate([b_ub, np.zeros(len(free))])
        cost = np.zeros(n + 1)
        cost[n] = -1.0
        res = scipy.optimize.linprog(cost, A_ub=a_all, b_ub=b_all, bounds=bounds,
                                     method="highs", options=HIGHS_OPTIONS)
        assert res.status == 0, res.message
        t = res.x[n]
        newly = []
        for p in free:
            bounds_p = list(bounds)
            bounds_p[n] = (t, t)
            cost = np.zeros(n + 1)
            cost[p] = -1.0
            rp = scipy.optimize.linprog(cost, A_ub=a_all, b_ub=b_all, bounds=bounds_p,
                                        method="highs", options=HIGHS_OPTIONS)
            assert rp.status == 0, rp.message
            if rp.x[p] <= a[p] * t * (1 + rtol) + rtol:
                newly.append(p)
        assert newly, "no bottlenecked path found"
        for p in newly:
            fixed[p] = a[p] * t
    return np.array([fixed[p] for p in range(n)])


def maxmin_python(capacity, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                  weight, demand, tol=1e-12):
    """Weighted max-min fair path rates by progressive filling, plain Python."""
    n_flows, owner, edges, a = _lists(flow_path_indptr, path_edge_indptr, path_edges,
                                      path_fraction, weight)
    n = len(a)
    # resources: ("e", e) with capacity, ("f", f) with demand; members listed per crossing
    resources = []
    for e, c in enumerate(capacity):
        resources.append((float(c), [p for p in range(n) for x in edges[p] if x == e]))
    for f in range(n_flows):
        resources.append((float(demand[f]), [p for p in range(n) if owner[p] == f]))
    rate = [0.0] * n
    active = {p for p in range(n) if a[p] > 0}
    while active:
        dt = np.inf
        for cap, members in resources:
            ws = sum(a[p] for p in members if p in active)
            if ws > 0:
                dt = min(dt, (cap - sum(rate[p] for p in members)) / ws)
        if dt == np.inf:
            for p in active:
                rate[p] = np.inf
            break
        dt = max(dt, 0.0)
        for p in active:
            rate[p] += a[p] * dt
        done = set()
        for cap, members in resources:
            if np.isfinite(cap) and any(p in active for p in members):
                if cap - sum(rate[p] for p in members) <= tol * max(cap, 1.0):
                    done.update(p for p in members if p in active)
        active -= done
    return np.array(rate)


def maxmin_numpy(capacity, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                 weight, demand, tol=1e-10):
    """Weighted max-min fair path rates by progressive filling, vectorised with numpy.

    One round per distinct bottleneck level: compute every resource's residual and active
    weight, raise all active paths to the first saturation, freeze the paths on saturated
    resources.
    """
    path_edge_indptr = np.asarray(path_edge_indptr)
    flow_path_indptr = np.asarray(flow_path_indptr)
    capacity = np.asarray(capacity, float)
    demand = np.asarray(demand, float)
    n_edges, n_flows = capacity.size, flow_path_indptr.size - 1
    n_paths = path_edge_indptr.size - 1
    owner = np.repeat(np.arange(n_flows), np.diff(flow_path_indptr))
    a = np.asarray(weight, float)[owner] * np.asarray(path_fraction, float)
    # incidence (resource, path) over edges then demands
    rows = np.concatenate([np.asarray(path_edges, np.int64), n_edges + owner])
    cols = np.concatenate([np.repeat(np.arange(n_paths), np.diff(path_edge_indptr)),
                           np.arange(n_paths)])
    cap = np.concatenate([capacity, demand])
    n_res = cap.size
    rate = np.zeros(n_paths)
    active = a > 0
    scale = np.where(np.isfinite(cap), np.maximum(cap, 1.0), 1.0)
    while active.any():
        act_nnz = active[cols]
        wsum = np.bincount(rows, weights=a[cols] * act_nnz, minlength=n_res)
        load = np.bincount(rows, weights=rate[cols], minlength=n_res)
        resid = cap - load
        live = wsum > 0
        dts = resid[live] / wsum[live]
        dt = dts.min() if dts.size else np.inf
        if not np.isfinite(dt):
            rate[active] = np.inf
            break
        dt = max(dt, 0.0)
        rate[active] += a[active] * dt
        saturated = live & (resid - dt * wsum <= tol * scale)
        active[cols[saturated[rows] & act_nnz]] = False
    return rate


def proportional_slsqp(capacity, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                       weight, demand):
    """Weighted proportional fair path rates by SLSQP on the primal (small problems only)."""
    _, owner, edges, a = _lists(flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                                weight)
    n = len(a)
    a = np.array(a)
    a_ub, b_ub = _constraints(capacity, owner, edges, demand, n)
    x0 = np.full(n, 1e-3 * b_ub.min() / max(1, n))

    def f(x):
        return -a @ np.log(x), -a / x

    res = scipy.optimize.minimize(
        f, x0, jac=True, method="SLSQP", bounds=[(1e-12, None)] * n,
        constraints=[{"type": "ineq", "fun": lambda x: b_ub - a_ub @ x,
                      "jac": lambda x: -a_ub}],
        options={"ftol": 1e-13, "maxiter": 2000})
    # status 8 (positive directional derivative) is SLSQP stalling at the optimum's precision
    assert res.status in (0, 8), res.message
    return res.x


def proportional_gap(capacity, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                     weight, demand, x):
    """Relative optimality gap of a feasible positive allocation ``x`` for ``sum a log x``.

    By concavity, ``U(y) <= U(x) + sum a_p (y_p - x_p) / x_p`` for every feasible ``y``, so
    ``max_y sum (a_p / x_p) y_p - sum a_p`` (one LP) bounds how far ``x`` is from optimal.
    Returned relative to ``sum a_p``.
    """
    _, owner, edges, a = _lists(flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                                weight)
    a = np.array(a)
    a_ub, b_ub = _constraints(capacity, owner, edges, demand, a.size)
    res = scipy.optimize.linprog(-(a / x), A_ub=a_ub, b_ub=b_ub, bounds=[(0, None)] * a.size,
                                 method="highs", options=HIGHS_OPTIONS)
    assert res.status == 0, res.message
    return (-res.fun - a.sum()) / a.sum()
