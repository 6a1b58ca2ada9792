"""Weighted max-min fair allocation by progressive filling (Bertsekas and Gallager, sec. 6.5).

Semantics
---------
* Resources are directed edges with ``capacity_bps`` (``inf`` never binds, ``0`` blocks).
* Every flow grows at a rate proportional to its ``weight`` until it crosses a saturated edge
  or reaches its ``demand_bps``; then it is frozen. The result is the unique weighted max-min
  fair allocation: no flow's rate/weight can rise without lowering that of a flow whose
  rate/weight is no higher.
* Multi-path: a flow split over several paths is carried as one *subflow* per path. Subflow
  ``p`` of flow ``f`` has weight ``weight[f] * path_fraction[p]`` and competes on its path's
  edges like any flow; the flow's demand caps the *sum* over its paths (a subflow stops
  growing when the total reaches the demand, whichever path got there). The fractions thus set
  how the flow shares contended links, not a fixed split of its rate: a path through idle
  links can carry more than its fraction.
* A flow with no edges (source equals destination) gets its demand, ``inf`` if elastic. A flow
  marked unreachable (``reachable=False``) or with no paths gets 0 and loads nothing.
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError
from ..kernels import _allocation as _k
from ._problem import MultipathRates, Problem, _csr, _vector, build_problem


def _solve(prob: Problem) -> np.ndarray:
    # Only the edges some subflow crosses take part: on a 41k-satellite mesh most of the
    # 170,000 directed edges carry nothing, and the kernel's per-resource state would cost
    # more to set up than the filling itself. Ids keep their order, so the result is the same.
    used, sub_edges = _k.compact_edges(prob.capacity_bps.shape[0], prob.sub_edges)
    return _k.maxmin_progressive_filling(np.ascontiguousarray(prob.capacity_bps[used]),
                                         prob.sub_indptr, sub_edges, prob.sub_weight,
                                         prob.group, prob.group_cap_bps)


def max_min_fair(capacity_bps, flow_edge_indptr, flow_edges, weight=None, demand_bps=None,
                 reachable=None) -> np.ndarray:
    """Weighted max-min fair rates of single-path flows.

    Parameters
    ----------
    capacity_bps : array_like, float64[E]
        Capacity of each directed edge (>= 0, ``inf`` allowed).
    flow_edge_indptr : array_like, int64[F+1]
        CSR row pointer: flow ``f`` crosses ``flow_edges[flow_edge_indptr[f]:...[f+1]]``.
    flow_edges : array_like, int32[nnz]
        Edge ids in ``[0, E)``.
    weight : array_like, float64[F], optional
        Weights (default 1); a flow of weight 0 gets rate 0 and loads nothing.
    demand_bps : array_like, float64[F], optional
        Rate caps (default ``inf``, elastic).
    reachable : array_like, bool[F], optional
        ``False`` for flows without a route: they get 0 (their edges are ignored).

    Returns
    -------
    numpy.ndarray
        float64[F] rate of each flow in bit/s.

    Raises
    ------
    MeshnetError
        Malformed CSR, wrong lengths, negative capacity or demand, non-positive weight.

    Examples
    --------
    Two links of 10 and 4 Gbps in a line; flow 0 crosses both, flow 1 the first, flow 2 the
    second. The 4 Gbps link is the bottleneck of flows 0 and 2 (2 Gbps each); flow 1 takes
    what is left of the 10 Gbps link.

    >>> import numpy as np
    >>> rates = max_min_fair(np.array([10e9, 4e9]), np.array([0, 2, 3, 4]),
    ...                      np.array([0, 1, 0, 1]))
    >>> (rates / 1e9).tolist()
    [2.0, 8.0, 2.0]
    """
    return _solve(build_problem(capacity_bps, None, flow_edge_indptr, flow_edges,
                                weight=weight, demand_bps=demand_bps, reachable=reachable))


def max_min_fair_multipath(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                           path_fraction=None, weight=None, demand_bps=None,
                           reachable=None) -> MultipathRates:
    """Weighted max-min fair rates of flows split over several paths.

    Parameters
    ----------
    capacity_bps : array_like, float64[E]
        Capacity of each directed edge.
    flow_path_indptr : array_like, int64[F+1]
        Flow ``f`` owns paths ``flow_path_indptr[f]:flow_path_indptr[f+1]``.
    path_edge_indptr : array_like, int64[P+1], path_edges : array_like, int32[nnz]
        Edges crossed by each path (CSR).
    path_fraction : array_like, float64[P], optional
        Share of its flow's weight given to each path (>= 0, summing to 1 per flow; default
        an equal split).
    weight, demand_bps, reachable : array_like, optional
        Per flow, as in :func:`max_min_fair`; the demand caps the sum over a flow's paths.

    Returns
    -------
    MultipathRates
        ``(path_rate_bps[P], flow_rate_bps[F])``.

    Examples
    --------
    One flow split evenly over two disjoint 10 Gbps paths, and a second flow on the first
    path only: they share path 0 equally (equal weights 0.5 vs 1 give 1/3 vs 2/3 there).

    >>> import numpy as np
    >>> r = max_min_fair_multipath(np.array([10e9, 10e9]), np.array([0, 2, 3]),
    ...                            np.array([0, 1, 2, 3]), np.array([0, 1, 0]))
    >>> np.round(r.path_rate_bps / 1e9, 3).tolist(), np.round(r.flow_rate_bps / 1e9, 3).tolist()
    ([3.333, 10.0, 6.667], [13.333, 6.667])
    """
    prob = build_problem(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                         path_fraction, weight, demand_bps, reachable)
    sub = _solve(prob)
    return MultipathRates(sub, prob.flow_rates(sub))


def edge_load_bps(n_edges, flow_edge_indptr, flow_edges, rates_bps) -> np.ndarray:
    """Summed rate on each directed edge.

    Parameters
    ----------
    n_edges : int
        Number of edges (``capacity_bps.size``).
    flow_edge_indptr, flow_edges : array_like
        CSR of the edges each flow (or path) crosses.
    rates_bps : array_like, float64[F]
        Rate of each flow (or path).

    Returns
    -------
    numpy.ndarray
        float64[n_edges].

    Examples
    --------
    >>> edge_load_bps(2, [0, 2, 3], [0, 1, 0], [1.0, 2.0]).tolist()
    [3.0, 1.0]
    """
    n_edges = int(n_edges)
    if n_edges < 0:
        raise MeshnetError(f"allocation: n_edges = {n_edges} is negative; pass capacity_bps.size")
    indptr, edges = _csr(flow_edge_indptr, flow_edges, n_edges, "flow", "edge",
                         "flow_edge_indptr", "flow_edges")
    rates = _vector(rates_bps, "rates_bps", np.float64, indptr.size - 1)
    return _k.edge_load(n_edges, indptr, edges, rates)
