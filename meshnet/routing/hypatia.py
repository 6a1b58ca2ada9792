"""Routing a Hypatia satellite-network directory with Hypatia's semantics.

Hypatia's ``algorithm_free_one_only_over_isls`` (snkas/hypatia, satgenpy), which this module
reproduces, builds every step's graph as:

- ISLs from ``isls.txt`` (static), weighted by straight-line length in metres;
- a ground station attaches to *every* satellite within ``max_gsl_length_m`` (distance only,
  no elevation mask), weighted by length;
- ground stations never relay; one shortest path (by length) per (node, destination station).

Interface numbering (what ns-3 sees): satellite ``u``'s ISL interfaces are numbered
``0..n_isls[u]-1`` in the order its ISLs appear in ``isls.txt``; its single GSL interface is
number ``n_isls[u]``; a ground station's only interface is 0.

Where this departs from satgenpy: satgenpy runs Floyd-Warshall on the satellite graph and then,
per (satellite, station), picks the best attachment satellite and the best neighbour; here the
station is a virtual root of one multi-source Dijkstra per station (every satellite in range
starts at its GSL length). Both give shortest paths; they can differ only on exact ties (satgenpy
takes the first neighbour in ``isls.txt`` order, meshnet the lower node id). satgenpy also
stops with an error when an ISL grows longer than ``max_isl_length_m``; meshnet keeps the ISL
(the shared Kuiper-630 directory never comes close).

Examples
--------
>>> from meshnet.orbits.hypatia import load_hypatia_dir  # doctest: +SKIP
>>> net = load_hypatia_dir("../shared/data/hypatia_kuiper_630")  # doctest: +SKIP
>>> topo = hypatia_topology(net)  # doctest: +SKIP
>>> state = hypatia_forwarding_state(topo, sat_r_km)  # doctest: +SKIP
>>> state.next_hop.shape  # doctest: +SKIP
(100, 1256)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MeshnetError
from ..graph import GROUND, SATELLITE, Snapshot
from ..kernels import _routing as K


@dataclass(frozen=True)
class HypatiaTopology:
    """The static part of a Hypatia network: ISL graph, interface numbers, stations.

    Attributes
    ----------
    n_sats, n_ground : int
        Node counts; station ``g`` is node ``n_sats + g``.
    isls : numpy.ndarray
        ``(L, 2)`` int32 ISLs in ``isls.txt`` order.
    indptr, indices : numpy.ndarray
        Satellite-only symmetric CSR of the ISLs (rows sorted by neighbour id).
    edge_src, reverse_edge : numpy.ndarray
        Per directed edge: source satellite and index of the opposite edge.
    edge_isl : numpy.ndarray
        Per directed edge: row of ``isls`` it comes from.
    edge_if : numpy.ndarray
        Per directed edge ``u -> v``: ``u``'s interface number for that ISL.
    n_isls : numpy.ndarray
        ``(n_sats,)`` ISLs per satellite (its GSL interface number).
    ground_r_m : numpy.ndarray
        ``(n_ground, 3)`` station positions in metres (ECEF).
    max_gsl_length_m : float
        GSL range.
    gsl_bandwidth : numpy.ndarray
        ``(n_sats + n_ground,)`` aggregate GSL bandwidth per node (1.0 where unknown).
    node_names : numpy.ndarray
        Satellite names, then station names.
    """

    n_sats: int
    n_ground: int
    isls: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    edge_src: np.ndarray
    reverse_edge: np.ndarray
    edge_isl: np.ndarray
    edge_if: np.ndarray
    n_isls: np.ndarray
    ground_r_m: np.ndarray
    max_gsl_length_m: float
    gsl_bandwidth: np.ndarray
    node_names: np.ndarray

    @property
    def n_nodes(self) -> int:
        return self.n_sats + self.n_ground

    @property
    def node_kind(self) -> np.ndarray:
        kind = np.full(self.n_nodes, GROUND, np.int8)
        kind[: self.n_sats] = SATELLITE
        return kind


def isl_interfaces(isls: np.ndarray, n_sats: int) -> tuple[np.ndarray, np.ndarray]:
    """Hypatia's ISL interface numbers: ``(if_a, if_b)`` per ISL row and ISLs per satellite.

    Satellite ``u`` numbers its ISLs 0, 1, ... in the order they appear in ``isls.txt``.

    Examples
    --------
    >>> import numpy as np
    >>> if_a, if_b = isl_interfaces(np.array([[0, 1], [0, 2], [1, 2]]), 3)[0]
    >>> if_a.tolist(), if_b.tolist()
    ([0, 1, 1], [0, 0, 1])
    """
    isls = np.asarray(isls, np.int64).reshape(-1, 2)
    count = np.zeros(n_sats, np.int64)
    if_a = np.empty(isls.shape[0], np.int32)
    if_b = np.empty(isls.shape[0], np.int32)
    for i, (a, b) in enumerate(isls.tolist()):
        if_a[i] = count[a]
        count[a] += 1
        if_b[i] = count[b]
        count[b] += 1
    return (if_a, if_b), count.astype(np.int32)


def hypatia_topology(network) -> HypatiaTopology:
    """Precompute the static graph and interface numbering of a ``HypatiaNetwork``.

    Parameters
    ----------
    network : meshnet.orbits.hypatia.HypatiaNetwork
        From :func:`meshnet.orbits.hypatia.load_hypatia_dir`.
    """
    n_sats = int(network.constellation.n)
    n_ground = int(network.ground.n)
    if network.max_gsl_length_km is None:
        raise MeshnetError(f"{network.path}: description.txt has no max_gsl_length_m; "
                           "Hypatia routing needs the GSL range")
    isls = np.asarray(network.isls, np.int32).reshape(-1, 2)
    (if_a, if_b), n_isls = isl_interfaces(isls, n_sats)
    n_l = isls.shape[0]
    src = np.concatenate([isls[:, 0], isls[:, 1]]).astype(np.int64)
    dst = np.concatenate([isls[:, 1], isls[:, 0]]).astype(np.int64)
    rows = np.concatenate([np.arange(n_l), np.arange(n_l)])
    ifs = np.concatenate([if_a, if_b])
    order = np.lexsort((dst, src))
    indptr = np.zeros(n_sats + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_sats), out=indptr[1:])
    indices = dst[order].astype(np.int32)
    rev = K.reverse_edges(indptr, indices)
    bw = getattr(network, "gsl_bandwidth", None)
    bandwidth = (np.ones(n_sats + n_ground) if bw is None
                 else np.asarray(bw, np.float64).copy())
    names = np.concatenate([np.asarray(network.constellation.names, dtype=object),
                            np.asarray(network.ground.names, dtype=object)])
    return HypatiaTopology(
        n_sats=n_sats, n_ground=n_ground, isls=isls, indptr=indptr, indices=indices,
        edge_src=src[order].astype(np.int32), reverse_edge=rev,
        edge_isl=rows[order].astype(np.int32), edge_if=ifs[order].astype(np.int32),
        n_isls=n_isls, ground_r_m=np.ascontiguousarray(network.ground.r_km, np.float64) * 1000.0,
        max_gsl_length_m=float(network.max_gsl_length_km) * 1000.0, gsl_bandwidth=bandwidth,
        node_names=names)


@dataclass(frozen=True)
class ForwardingState:
    """Every node's forwarding entry towards every ground station at one time.

    Arrays are ``(n_ground, n_nodes)``: row ``g`` is the destination station (node
    ``n_sats + g``), column ``u`` the current node (satellites, then stations); entry
    ``[g, u]`` is Hypatia's ``(next_hop, cur_if, next_if)`` for ``(cur=u, dst=n_sats + g)``,
    ``-1`` where the destination cannot be reached (and for a station to itself).
    ``dist_m[g, u]`` is the path length (inf where unreachable).
    """

    t_ns: int
    next_hop: np.ndarray
    cur_if: np.ndarray
    next_if: np.ndarray
    dist_m: np.ndarray

    def path(self, source: int, destination: int, n_sats: int) -> np.ndarray:
        """Node sequence from ``source`` to station node ``destination`` (empty if none)."""
        g = destination - n_sats
        out = [int(source)]
        u = int(source)
        while u != destination:
            u = int(self.next_hop[g, u])
            if u < 0 or len(out) > self.next_hop.shape[1]:
                return np.zeros(0, np.int32)
            out.append(u)
        return np.asarray(out, np.int32)


def _positions(topology: HypatiaTopology, sat_r_km) -> np.ndarray:
    r = np.ascontiguousarray(sat_r_km, dtype=np.float64)
    if r.shape != (topology.n_sats, 3):
        raise MeshnetError(f"satellite positions must be ({topology.n_sats}, 3) km, got "
                           f"{r.shape}")
    return r


def hypatia_forwarding_state(topology: HypatiaTopology, sat_r_km, t_ns: int = 0,
                             parallel: bool = True) -> ForwardingState:
    """Hypatia's forwarding state of every node towards every ground station.

    Parameters
    ----------
    topology : HypatiaTopology
        From :func:`hypatia_topology`.
    sat_r_km : numpy.ndarray
        ``(n_sats, 3)`` Earth-fixed satellite positions (km) at ``t_ns``.
    t_ns : int
        Time stamp carried into the result.
    parallel : bool
        Parallel over destination stations (identical results to the serial twin).
    """
    r = _positions(topology, sat_r_km)
    isl_m = np.empty(topology.indices.shape[0])
    K.isl_lengths_m(r, topology.edge_src, topology.indices, isl_m)
    gs_indptr, gs_sat, gs_len = K.gsl_in_range(r, topology.ground_r_m, topology.max_gsl_length_m)
    n, g = topology.n_nodes, topology.n_ground
    next_hop = np.empty((g, n), np.int32)
    cur_if = np.empty((g, n), np.int32)
    next_if = np.empty((g, n), np.int32)
    dist_m = np.empty((g, n))
    fn = K.hypatia_fstate if parallel else K.hypatia_fstate_serial
    fn(topology.indptr, topology.indices, isl_m, topology.reverse_edge, topology.edge_if,
       topology.n_isls, gs_indptr, gs_sat, gs_len, next_hop, cur_if, next_if, dist_m)
    return ForwardingState(int(t_ns), next_hop, cur_if, next_if, dist_m)


def hypatia_snapshot(topology: HypatiaTopology, sat_r_km, t_ns: int = 0,
                     isl_capacity_bps: float = 10e9, gsl_capacity_bps: float = 10e9) -> Snapshot:
    """The step's graph built Hypatia's way, as a :class:`~meshnet.graph.Snapshot`.

    ISLs from ``isls.txt`` plus a GSL from every station to every satellite within range.
    Route it with ground stations as non-relays (``ground_relay = false``) to get Hypatia's
    paths; ``link_id`` is the ISL row for ISLs and ``n_isls_total + k`` for GSLs.
    """
    r = _positions(topology, sat_r_km)
    a = topology.isls[:, 0].astype(np.int64)
    b = topology.isls[:, 1].astype(np.int64)
    d = r[a] - r[b]
    isl_km = np.sqrt(np.einsum("ij,ij->i", d, d))
    gs_indptr, gs_sat, gs_len = K.gsl_in_range(r, topology.ground_r_m, topology.max_gsl_length_m)
    g_of = np.repeat(np.arange(topology.n_ground), np.diff(gs_indptr)) + topology.n_sats
    cap = np.concatenate([np.full(a.shape[0], isl_capacity_bps),
                          np.full(gs_sat.shape[0], gsl_capacity_bps)])
    return Snapshot.from_links(
        t_ns, topology.node_names, topology.node_kind,
        np.concatenate([a, g_of]), np.concatenate([b, gs_sat.astype(np.int64)]),
        np.concatenate([isl_km, gs_len / 1000.0]), cap)


def hypatia_relay_mask(topology: HypatiaTopology) -> np.ndarray:
    """Satellites relay, ground stations never (Hypatia's rule)."""
    return topology.node_kind == SATELLITE
