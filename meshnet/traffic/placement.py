"""Compute nodes: which satellites (or ground data centres) carry accelerators.

Examples
--------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> from meshnet.traffic.config import ComputeConfig
>>> sats = SimpleNamespace(names=np.array([f"S{p}-{s}" for p in range(2) for s in range(4)]),
...     shell=np.zeros(8, np.int32), plane=np.repeat(np.arange(2), 4).astype(np.int32),
...     slot=np.tile(np.arange(4), 2).astype(np.int32))
>>> ground = SimpleNamespace(names=np.array(["Tokyo"]), population=np.array([37e6]))
>>> nodes = place_compute(ComputeConfig(placement="every_kth", every_k=2), sats, ground,
...                       np.random.default_rng(0))
>>> nodes.node_ids.tolist(), nodes.names.tolist()
([0, 2, 4, 6], ['S0-0', 'S0-2', 'S1-0', 'S1-2'])
>>> place_compute(ComputeConfig(placement="ground", ground_sites=("Tokyo",)), sats, ground,
...               np.random.default_rng(0)).node_ids.tolist()
[8]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from ..errors import NodeNameError, ScenarioError
from .config import ComputeConfig


@dataclass(frozen=True)
class ComputeNodes:
    """The compute nodes of a scenario, in node-id order (or in the order ``names`` gave).

    Attributes
    ----------
    node_ids : numpy.ndarray
        ``(K,)`` int32 network node ids (satellites ``0..N-1``, ground ``N..N+G-1``).
    names : numpy.ndarray
        ``(K,)`` object node names.
    accelerators : numpy.ndarray
        ``(K,)`` int32 accelerators per node.
    tflops : numpy.ndarray
        ``(K,)`` float64 total dense TFLOPS per node (accelerators x per-accelerator TFLOPS).
    shell, plane, slot : numpy.ndarray
        ``(K,)`` int32 orbital indices; -1 for ground nodes and where unknown (TLE catalogues).
    n_satellites : int
        Satellites in the constellation: node ids from here on are ground stations.
    injection_bps : float or None
        Cap on each node's total send (and receive) rate; None = only its links limit it.
    """

    node_ids: np.ndarray
    names: np.ndarray
    accelerators: np.ndarray
    tflops: np.ndarray
    shell: np.ndarray
    plane: np.ndarray
    slot: np.ndarray
    n_satellites: int
    injection_bps: float | None = None

    def __len__(self) -> int:
        return int(self.node_ids.shape[0])

    @property
    def is_ground(self) -> np.ndarray:
        """``(K,)`` bool: the node is a ground station."""
        return self.node_ids >= self.n_satellites

    def index_of(self, names, what: str = "compute node") -> np.ndarray:
        """Positions of ``names`` in this set; :class:`NodeNameError` naming the first miss."""
        lookup = {str(n): i for i, n in enumerate(self.names)}
        out = np.empty(len(names), np.int32)
        for k, name in enumerate(names):
            if name not in lookup:
                raise NodeNameError(_unknown(name, what, list(lookup)))
            out[k] = lookup[name]
        return out

    def subset(self, index) -> ComputeNodes:
        """The nodes at positions ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return ComputeNodes(
            node_ids=self.node_ids[index], names=self.names[index],
            accelerators=self.accelerators[index], tflops=self.tflops[index],
            shell=self.shell[index], plane=self.plane[index], slot=self.slot[index],
            n_satellites=self.n_satellites, injection_bps=self.injection_bps)


def _unknown(name, what: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "check the spelling against the node names"
    return f"unknown {what} '{name}'; {hint}"


def _int_array(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, -1, np.int32)
    return np.asarray(values, dtype=np.int32).reshape(n)


def place_compute(cfg: ComputeConfig, constellation, ground, rng: np.random.Generator
                  ) -> ComputeNodes:
    """Choose the compute nodes that ``cfg`` describes.

    Parameters
    ----------
    cfg : ComputeConfig
        The ``[traffic.compute]`` table.
    constellation : Constellation
        Needs ``names`` and the per-satellite ``shell``, ``plane``, ``slot`` arrays (-1 unknown).
    ground : GroundStations
        Needs ``names``.
    rng : numpy.random.Generator
        Seeded from the scenario's seed; used only by ``placement = 'random'``.

    Returns
    -------
    ComputeNodes

    Raises
    ------
    NodeNameError
        A name in ``names`` or ``ground_sites`` matches no node, or several.
    ScenarioError
        The placement needs orbital plane/slot numbers the constellation lacks, or selects
        no satellite.
    """
    sat_names = np.asarray(constellation.names, dtype=object)
    n_sats = int(sat_names.shape[0])
    g_names = np.asarray(ground.names, dtype=object) if ground is not None else np.array(
        [], dtype=object)
    shell = _int_array(getattr(constellation, "shell", None), n_sats)
    plane = _int_array(getattr(constellation, "plane", None), n_sats)
    slot = _int_array(getattr(constellation, "slot", None), n_sats)
    key = "[traffic.compute]"

    if cfg.placement == "names":
        ids = _ids_by_name(cfg.names, sat_names, g_names, f"compute node in {key}.names")
    elif cfg.placement == "ground":
        ids = n_sats + _ids_by_name(cfg.ground_sites, g_names, np.array([], dtype=object),
                                    f"ground station in {key}.ground_sites")
    else:
        in_shell = np.ones(n_sats, bool) if cfg.shell < 0 else shell == cfg.shell
        if cfg.shell >= 0 and not in_shell.any():
            n_shells = int(shell.max()) + 1 if n_sats and shell.max() >= 0 else 0
            raise ScenarioError(
                f"{key}.shell = {cfg.shell} selects no satellite; the constellation has "
                f"{n_shells} shell(s) numbered from 0")
        if cfg.placement in ("every_kth", "block"):
            if n_sats and ((plane[in_shell] < 0).any() or (slot[in_shell] < 0).any()):
                raise ScenarioError(
                    f"{key}.placement = '{cfg.placement}' needs orbital plane and slot numbers, "
                    "which this constellation does not have (TLE catalogue?); use 'random', "
                    "'shell' or 'names'")
        if cfg.placement == "every_kth":
            ids = np.flatnonzero(in_shell & (slot % cfg.every_k == cfg.offset))
        elif cfg.placement == "shell":
            ids = np.flatnonzero(in_shell)
        elif cfg.placement == "block":
            ids = _block(cfg, in_shell, plane, slot, key)
        elif cfg.placement == "random":
            pool = np.flatnonzero(in_shell)
            if cfg.count > pool.size:
                raise ScenarioError(
                    f"{key}.count = {cfg.count} exceeds the {pool.size} satellites available")
            ids = np.sort(rng.choice(pool, size=cfg.count, replace=False))
        else:  # pragma: no cover - config validation lists the placements
            raise ScenarioError(f"{key}.placement = '{cfg.placement}' is not known")
        if ids.size == 0:
            raise ScenarioError(f"{key}: placement '{cfg.placement}' selects no satellite")

    ids = np.asarray(ids, dtype=np.int32)
    is_ground = ids >= n_sats
    sat_ids = np.where(is_ground, 0, ids)  # safe index; ground rows are masked below
    names = np.empty(ids.shape[0], dtype=object)
    names[~is_ground] = sat_names[ids[~is_ground]]
    names[is_ground] = g_names[ids[is_ground] - n_sats]
    k = ids.shape[0]
    acc = np.full(k, cfg.accelerators_per_node, np.int32)

    def orbital(arr):
        if n_sats == 0:
            return np.full(k, -1, np.int32)
        return np.where(is_ground, -1, arr[sat_ids]).astype(np.int32)

    return ComputeNodes(
        node_ids=ids, names=names, accelerators=acc,
        tflops=acc.astype(np.float64) * cfg.accelerator_tflops,
        shell=orbital(shell), plane=orbital(plane), slot=orbital(slot),
        n_satellites=n_sats, injection_bps=cfg.injection_bps)


def _ids_by_name(wanted, names, more_names, what: str) -> np.ndarray:
    """Node ids of ``wanted`` among ``names`` then ``more_names`` (offset by len(names))."""
    table: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        table.setdefault(str(n), []).append(i)
    for i, n in enumerate(more_names):
        table.setdefault(str(n), []).append(len(names) + i)
    out = np.empty(len(wanted), np.int64)
    for k, name in enumerate(wanted):
        hits = table.get(name)
        if not hits:
            raise NodeNameError(_unknown(name, what, list(table)))
        if len(hits) > 1:
            raise NodeNameError(
                f"{what}: '{name}' matches {len(hits)} nodes (ids {hits[:4]}); names must be "
                "unique, pick another placement")
        out[k] = hits[0]
    return out


def _block(cfg: ComputeConfig, in_shell, plane, slot, key: str) -> np.ndarray:
    planes = np.unique(plane[in_shell])
    slots = np.unique(slot[in_shell])
    n_planes, n_slots = int(planes.max()) + 1, int(slots.max()) + 1
    if cfg.plane_count > n_planes or cfg.slot_count > n_slots:
        raise ScenarioError(
            f"{key}: a block of {cfg.plane_count} planes x {cfg.slot_count} slots does not fit "
            f"shell {cfg.shell} ({n_planes} planes x {n_slots} slots)")
    want_p = (cfg.plane_start + np.arange(cfg.plane_count)) % n_planes
    want_s = (cfg.slot_start + np.arange(cfg.slot_count)) % n_slots
    return np.flatnonzero(in_shell & np.isin(plane, want_p) & np.isin(slot, want_s))
