"""Allocation methods by name: ``maxmin`` (default) and ``proportional``.

Every method is registered in its multi-path form; single-path calls go through the same
entry with one path per flow.
"""

from __future__ import annotations

import numpy as np

from ..config import Registry
from ._problem import MultipathRates
from .maxmin import max_min_fair, max_min_fair_multipath
from .proportional import proportional_fair, proportional_fair_multipath

ALLOCATION_METHODS = Registry("allocation method")

ALLOCATION_METHODS.register("maxmin")((max_min_fair, max_min_fair_multipath))
ALLOCATION_METHODS.register("proportional")((proportional_fair, proportional_fair_multipath))


def allocate(method: str, capacity_bps, flow_edge_indptr, flow_edges, weight=None,
             demand_bps=None, reachable=None) -> np.ndarray:
    """Rates of single-path flows by the named method (see :func:`max_min_fair`).

    Examples
    --------
    >>> import numpy as np
    >>> allocate("maxmin", np.array([10e9, 4e9]), [0, 2, 3, 4], [0, 1, 0, 1]).tolist()
    [2000000000.0, 8000000000.0, 2000000000.0]
    """
    single, _ = ALLOCATION_METHODS.get(method)
    return single(capacity_bps, flow_edge_indptr, flow_edges, weight, demand_bps, reachable)


def allocate_multipath(method: str, capacity_bps, flow_path_indptr, path_edge_indptr,
                       path_edges, path_fraction=None, weight=None, demand_bps=None,
                       reachable=None) -> MultipathRates:
    """Rates of flows split over several paths by the named method (see
    :func:`max_min_fair_multipath`)."""
    _, multi = ALLOCATION_METHODS.get(method)
    return multi(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                 weight, demand_bps, reachable)
