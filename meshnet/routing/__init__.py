"""Routing: shortest-path kernels behind a scipy.sparse.csgraph-shaped API, and policies.

Importing this package compiles nothing; kernels compile (or load from Numba's cache) on first
use.
"""

from __future__ import annotations

from ._input import relay_mask_for
from .kshortest import edge_disjoint_paths, k_shortest_paths
from .paths import PathSet, reconstruct_path
from .shortest import (
    EcmpNextHops,
    NextHopTable,
    ecmp_next_hops,
    next_hop_table,
    shortest_path_lengths,
    widest_paths,
)

__all__ = [
    "EcmpNextHops",
    "NextHopTable",
    "PathSet",
    "ecmp_next_hops",
    "edge_disjoint_paths",
    "k_shortest_paths",
    "next_hop_table",
    "reconstruct_path",
    "relay_mask_for",
    "shortest_path_lengths",
    "widest_paths",
]
