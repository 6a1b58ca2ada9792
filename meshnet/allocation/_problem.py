"""Validation of allocation inputs and their lowering to subflows and group resources.

Both fairness methods see the same problem: *subflows* (one per path) crossing directed edges,
each subflow in at most one *group* whose capacity is its flow's demand. The public functions in
:mod:`meshnet.allocation.maxmin` and :mod:`meshnet.allocation.proportional` validate once here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import MeshnetError

# A flow's path fractions must sum to one within this tolerance.
FRACTION_TOL = 1e-6


class MultipathRates(NamedTuple):
    """Rates of a multi-path allocation.

    Attributes
    ----------
    path_rate_bps : numpy.ndarray
        float64[P], the rate of each path (subflow).
    flow_rate_bps : numpy.ndarray
        float64[F], the summed rate of each flow over its paths.
    """

    path_rate_bps: np.ndarray
    flow_rate_bps: np.ndarray


@dataclass(frozen=True)
class Problem:
    """Subflow form of an allocation problem (validated, dtypes fixed for the kernels)."""

    capacity_bps: np.ndarray  # float64[E]
    sub_indptr: np.ndarray  # int64[S+1]
    sub_edges: np.ndarray  # int32[nnz]
    sub_weight: np.ndarray  # float64[S]
    group: np.ndarray  # int32[S], -1 = no group
    group_cap_bps: np.ndarray  # float64[F]
    sub_flow: np.ndarray | None  # int32[S] owner flow, None when S == F (one path per flow)
    n_flows: int

    def flow_rates(self, sub_rate: np.ndarray) -> np.ndarray:
        if self.sub_flow is None:
            return sub_rate
        return np.bincount(self.sub_flow, weights=sub_rate, minlength=self.n_flows)


def _fail(what: str, fix: str) -> None:
    raise MeshnetError(f"allocation: {what}; {fix}")


def _vector(x, name: str, dtype, n: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        _fail(f"{name} must be one-dimensional, found shape {arr.shape}", "pass a flat array")
    if n is not None and arr.size != n:
        _fail(f"{name} has {arr.size} entries, expected {n}", "give one entry per item")
    if np.dtype(dtype).kind in "iu" and arr.size and arr.dtype.kind not in "iu":
        _fail(f"{name} must hold integers, found dtype {arr.dtype}", "pass an integer array")
    return np.ascontiguousarray(arr, dtype=dtype)


def _csr(indptr, indices, n_cols: int, rows: str, cols: str, ptr_name: str, idx_name: str):
    indptr = _vector(indptr, ptr_name, np.int64)
    if indptr.size == 0 or indptr[0] != 0:
        _fail(f"{ptr_name} must start at 0 and have one entry per {rows} plus one",
              "build it as numpy.concatenate([[0], numpy.cumsum(counts)])")
    indices = _vector(indices, idx_name, np.int32 if n_cols < 2**31 else np.int64)
    if indptr[-1] != indices.size:
        _fail(f"{ptr_name}[-1] = {indptr[-1]} but {idx_name} has {indices.size} entries",
              f"{ptr_name} must end at len({idx_name})")
    if indptr.size > 1 and np.any(indptr[1:] < indptr[:-1]):
        _fail(f"{ptr_name} decreases", "it must be non-decreasing (a CSR row pointer)")
    if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
        _fail(f"{idx_name} holds {cols} ids outside [0, {n_cols})",
              f"use ids below the number of {cols}")
    return indptr, indices


def _capacity(capacity_bps) -> np.ndarray:
    cap = _vector(capacity_bps, "capacity_bps", np.float64)
    if cap.size and not (cap.min() >= 0.0):
        _fail("capacity_bps has negative or NaN entries", "capacities must be >= 0 (inf allowed)")
    return cap


def build_problem(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                  path_fraction=None, weight=None, demand_bps=None,
                  reachable=None) -> Problem:
    """Validate the public inputs and lower them to subflows and groups.

    ``flow_path_indptr=None`` means one path per flow (the single-path form).
    """
    cap = _capacity(capacity_bps)
    n_edges = cap.size
    sub_indptr, sub_edges = _csr(path_edge_indptr, path_edges, n_edges,
                                 "path", "edge", "path_edge_indptr", "path_edges")
    n_sub = sub_indptr.size - 1
    if flow_path_indptr is None:
        n_flows = n_sub
        sub_flow = None
    else:
        fptr = _vector(flow_path_indptr, "flow_path_indptr", np.int64)
        if fptr.size == 0 or fptr[0] != 0 or fptr[-1] != n_sub or np.any(fptr[1:] < fptr[:-1]):
            _fail("flow_path_indptr must rise from 0 to the number of paths "
                  f"({n_sub}) without decreasing", "build it from the paths per flow")
        n_flows = fptr.size - 1
        sub_flow = np.repeat(np.arange(n_flows, dtype=np.int32), np.diff(fptr))

    if weight is None:
        w = np.ones(n_flows)
    else:
        w = _vector(weight, "weight", np.float64, n_flows)
        if n_flows and not (w.min() >= 0.0 and np.isfinite(w).all()):
            _fail("weight has negative or non-finite entries",
                  "weights must be >= 0 (0 gives the flow nothing)")
    if demand_bps is None:
        gcap = np.full(n_flows, np.inf)
    else:
        gcap = _vector(demand_bps, "demand_bps", np.float64, n_flows).copy()
        if n_flows and not (gcap.min() >= 0.0):
            _fail("demand_bps has negative or NaN entries",
                  "demands must be >= 0 (inf for an elastic flow)")
    if reachable is not None:
        ok = _vector(reachable, "reachable", np.bool_, n_flows)
        gcap[~ok] = 0.0

    if sub_flow is None:
        sub_w = w
        owner = np.arange(n_flows, dtype=np.int32)
    else:
        if path_fraction is None:
            n_paths = np.diff(fptr)
            frac = 1.0 / n_paths[sub_flow]
        else:
            frac = _vector(path_fraction, "path_fraction", np.float64, n_sub)
            if n_sub and not (frac.min() >= 0.0 and np.isfinite(frac).all()):
                _fail("path_fraction has negative or non-finite entries",
                      "fractions must be >= 0 and sum to 1 over each flow's paths")
            total = np.bincount(sub_flow, weights=frac, minlength=n_flows)
            has_paths = np.diff(fptr) > 0
            bad = has_paths & (np.abs(total - 1.0) > FRACTION_TOL)
            if bad.any():
                f = int(np.flatnonzero(bad)[0])
                _fail(f"path_fraction of flow {f} sums to {total[f]:.9g}",
                      "fractions must sum to 1 over each flow's paths")
        sub_w = w[sub_flow] * frac
        owner = sub_flow
    group = np.where(np.isfinite(gcap)[owner], owner, -1).astype(np.int32)
    return Problem(cap, sub_indptr, sub_edges, np.ascontiguousarray(sub_w, np.float64), group,
                   gcap, sub_flow, n_flows)
