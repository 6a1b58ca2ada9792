"""Allocation methods by name: ``maxmin`` (default) and ``proportional``, or your own.

Every method is registered in its multi-path form; single-path calls go through the same
entry with one path per flow.

A method of your own (``[allocation] method = "path/to/file.py:name"``, ``"pkg.mod:name"``
or an entry point of the group ``meshnet.allocation``) is a function with the signature of
:func:`meshnet.allocation.max_min_fair_multipath`::

    def my_method(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                  path_fraction, weight, demand_bps, reachable):
        ...
        return path_rate_bps, flow_rate_bps

Its answer is checked at every call (shapes, finite non-negative rates, flow rates equal to
the sum of their paths, no edge loaded beyond its capacity by more than 1e-6, no flow beyond
its demand); a violation stops the run with one line (:class:`AllocationPluginError`).
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError
from ..routing.plugins import PluginRegistry
from ._problem import MultipathRates
from .maxmin import max_min_fair, max_min_fair_multipath
from .proportional import proportional_fair, proportional_fair_multipath

ALLOCATION_METHODS = PluginRegistry("allocation method")


class AllocationPluginError(MeshnetError):
    """An allocation method of the user's raised or returned invalid rates."""


def _checked(name, fn):
    """``fn`` (a user's multi-path method) with its answers checked."""

    def multi(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, path_fraction=None,
              weight=None, demand_bps=None, reachable=None):
        cap = np.asarray(capacity_bps, np.float64)
        fpi = np.asarray(flow_path_indptr, np.int64)
        pei = np.asarray(path_edge_indptr, np.int64)
        n_flows, n_paths = fpi.shape[0] - 1, pei.shape[0] - 1
        try:
            out = fn(cap, fpi, pei, np.asarray(path_edges, np.int32), path_fraction, weight,
                     demand_bps, reachable)
            path_rate, flow_rate = (np.asarray(x, np.float64) for x in out)
        except Exception as exc:
            raise AllocationPluginError(
                f"allocation method '{name}' raised {type(exc).__name__}: {exc}") from None
        where = f"allocation method '{name}' ({n_flows} flows, {n_paths} paths)"
        if path_rate.shape != (n_paths,) or flow_rate.shape != (n_flows,):
            raise AllocationPluginError(
                f"{where}: returned shapes {path_rate.shape}, {flow_rate.shape}; expected "
                f"({n_paths},), ({n_flows},)")
        bad = ~np.isfinite(path_rate) | (path_rate < 0)
        if bad.any():
            raise AllocationPluginError(f"{where}: path {int(np.flatnonzero(bad)[0])} has rate "
                                        f"{path_rate[bad][0]!r}; rates must be finite, >= 0")
        sums = np.add.reduceat(np.append(path_rate, 0.0), fpi[:-1]) * (np.diff(fpi) > 0)
        off = np.abs(sums - flow_rate) > 1e-6 * np.maximum(1.0, np.abs(flow_rate))
        if off.any():
            f = int(np.flatnonzero(off)[0])
            raise AllocationPluginError(f"{where}: flow {f} rate {flow_rate[f]:.6g} is not the "
                                        f"sum of its paths' rates {sums[f]:.6g}")
        counts = np.diff(pei)
        load = np.bincount(np.asarray(path_edges, np.int64),
                           weights=np.repeat(path_rate, counts), minlength=cap.shape[0])
        over = load > cap * (1 + 1e-6) + 1e-3
        if over.any():
            e = int(np.flatnonzero(over)[0])
            raise AllocationPluginError(f"{where}: edge {e} loaded to {load[e]:.6g} bps beyond "
                                        f"its capacity {cap[e]:.6g} bps")
        if demand_bps is not None:
            dem = np.asarray(demand_bps, np.float64)
            over = flow_rate > dem * (1 + 1e-6) + 1e-3
            if over.any():
                f = int(np.flatnonzero(over)[0])
                raise AllocationPluginError(f"{where}: flow {f} gets {flow_rate[f]:.6g} bps "
                                            f"beyond its demand {dem[f]:.6g} bps")
        return MultipathRates(path_rate, flow_rate)

    return multi


def _method(name: str):
    """``(single, multi)`` of a method: a built-in pair, or a checked user function."""
    obj = ALLOCATION_METHODS.get(name)
    if ALLOCATION_METHODS.builtin(name) and isinstance(obj, tuple):
        return obj
    if not callable(obj):
        raise AllocationPluginError(f"allocation method '{name}' is a {type(obj).__name__}; "
                                    "expected a function (see meshnet.allocation.registry)")
    multi = _checked(name, obj)

    def single(capacity_bps, flow_edge_indptr, flow_edges, weight=None, demand_bps=None,
               reachable=None):
        n = len(flow_edge_indptr) - 1
        return multi(capacity_bps, np.arange(n + 1), flow_edge_indptr, flow_edges, None,
                     weight, demand_bps, reachable).flow_rate_bps

    return single, multi

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
    single, _ = _method(method)
    return single(capacity_bps, flow_edge_indptr, flow_edges, weight, demand_bps, reachable)


def allocate_multipath(method: str, capacity_bps, flow_path_indptr, path_edge_indptr,
                       path_edges, path_fraction=None, weight=None, demand_bps=None,
                       reachable=None) -> MultipathRates:
    """Rates of flows split over several paths by the named method (see
    :func:`max_min_fair_multipath`)."""
    _, multi = _method(method)
    return multi(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                 weight, demand_bps, reachable)
