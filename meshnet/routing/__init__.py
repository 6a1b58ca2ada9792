"""Routing: shortest-path kernels behind a scipy.sparse.csgraph-shaped API, and policies.

- Paths on one graph (:mod:`.shortest`, :mod:`.kshortest`): :func:`shortest_path_lengths`
  (Dijkstra, or BFS with ``weight="hops"``), :func:`distance_matrix` (among a few nodes,
  each search stopped once they are settled), :func:`next_hop_table`, :func:`widest_paths`,
  :func:`ecmp_next_hops`, :func:`k_shortest_paths`, :func:`edge_disjoint_paths`,
  :func:`reconstruct_path`. Inputs: a :class:`~meshnet.graph.Snapshot`, an ``(indptr,
  indices, weights)`` tuple or a scipy sparse matrix; ``relay_mask`` keeps nodes (ground
  stations, see :func:`relay_mask_for`) out of the middle of paths.
- Policies (:mod:`.policies`, chosen by ``[routing] policy``): :func:`make_policy` returns an
  object whose ``route(snapshot, src, dst, ...)`` gives :class:`Routes`.
- Hypatia semantics and forwarding state (:mod:`.hypatia`), one pair over time
  (:func:`trace_paths`) and node names (:func:`resolve_node`).

Importing this package compiles nothing; kernels compile (or load from Numba's cache) on first
use.
"""

from __future__ import annotations

from ._input import relay_mask_for
from .config import RoutingConfig
from .hypatia import (
    ForwardingState,
    HypatiaTopology,
    hypatia_forwarding_state,
    hypatia_snapshot,
    hypatia_topology,
)
from .kshortest import edge_disjoint_paths, k_shortest_paths
from .paths import PathSet, reconstruct_path
from .policies import ROUTING_POLICIES, Routes, RoutingPolicy, make_policy
from .shortest import (
    EcmpNextHops,
    NextHopTable,
    distance_matrix,
    ecmp_next_hops,
    next_hop_table,
    shortest_path_lengths,
    widest_paths,
)
from .trace import PathTrace, PathTraceSummary, resolve_node, trace_paths

__all__ = [
    "ROUTING_POLICIES",
    "Routes",
    "RoutingConfig",
    "RoutingPolicy",
    "make_policy",
    "EcmpNextHops",
    "ForwardingState",
    "HypatiaTopology",
    "PathTrace",
    "PathTraceSummary",
    "NextHopTable",
    "PathSet",
    "distance_matrix",
    "ecmp_next_hops",
    "edge_disjoint_paths",
    "hypatia_forwarding_state",
    "hypatia_snapshot",
    "hypatia_topology",
    "k_shortest_paths",
    "next_hop_table",
    "reconstruct_path",
    "relay_mask_for",
    "resolve_node",
    "shortest_path_lengths",
    "trace_paths",
    "widest_paths",
]
