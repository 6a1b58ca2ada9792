"""Bandwidth allocation: how flows share the capacity of directed edges.

``maxmin`` (weighted max-min fairness by progressive filling, the default) and
``proportional`` (weighted proportional fairness) are registered by name; see
:mod:`meshnet.allocation.maxmin` for the semantics shared by both (weights, demand caps,
multi-path subflows, flows with no edges).
"""

from __future__ import annotations

from ._problem import MultipathRates
from .config import AllocationConfig
from .maxmin import edge_load_bps, max_min_fair, max_min_fair_multipath
from .proportional import proportional_fair, proportional_fair_multipath
from .registry import ALLOCATION_METHODS, allocate, allocate_multipath

__all__ = [
    "ALLOCATION_METHODS",
    "AllocationConfig",
    "MultipathRates",
    "allocate",
    "allocate_multipath",
    "edge_load_bps",
    "max_min_fair",
    "max_min_fair_multipath",
    "proportional_fair",
    "proportional_fair_multipath",
]
