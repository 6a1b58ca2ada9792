"""Optical inter-satellite links and ground links: topology, feasibility, state, capacity.

Importing this package compiles nothing; the Numba kernels compile on first use.
"""

from __future__ import annotations

from .config import LinksConfig
from .feasibility import FeasibilityLimits, evaluate_links, geometric_range_km, plane_keys
from .model import LinkModel, LinkTable, link_model, link_tables, model_tables
from .reasons import (
    ACQUIRING,
    ANGULAR_RATE,
    DOWN,
    EARTH_BLOCKED,
    GSL,
    INVALID,
    ISL,
    KIND_NAMES,
    NONE,
    OUT_OF_RANGE,
    POLAR,
    REASON_NAMES,
    REASSIGNED,
    SEAM,
    STATE_NAMES,
    SUN,
    UP,
)
from .state import LinkStates, link_state
from .topology import TOPOLOGIES

__all__ = [
    "ACQUIRING", "ANGULAR_RATE", "DOWN", "EARTH_BLOCKED", "GSL", "INVALID", "ISL",
    "KIND_NAMES", "NONE", "OUT_OF_RANGE", "POLAR", "REASON_NAMES", "REASSIGNED", "SEAM",
    "STATE_NAMES",
    "SUN", "TOPOLOGIES", "UP", "FeasibilityLimits", "LinkModel", "LinkStates", "LinkTable",
    "LinksConfig", "evaluate_links", "geometric_range_km", "link_model", "link_state",
    "link_tables", "model_tables", "plane_keys",
]
