"""The engine-facing link model: one :class:`LinkTable` per time step.

Examples
--------
>>> from meshnet.scenario import load_scenario
>>> from meshnet.world import build_world
>>> sc = load_scenario("starlink_550")
>>> world = build_world(sc)
>>> grid = sc.grid(duration_s=2, step_s=1)
>>> model = link_model(sc, grid, world)
>>> for t_ns, table in model_tables(model, world.constellation, grid):
...     snap = table.to_snapshot(model.node_names, model.node_kind)
>>> snap.n_nodes  # 1,584 satellites, then 100 ground stations
1684
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import parse_table
from ..graph import GROUND, SATELLITE, Snapshot
from ..units import C_KM_S
from .capacity import capacity_bps
from .config import LinksConfig
from .feasibility import FeasibilityLimits, plane_keys
from .gsl import GroundLinks
from .intershell import with_inter_shell
from .reasons import GSL, ISL, UP
from .topology import TOPOLOGIES


@dataclass(frozen=True)
class LinkTable:
    """Every reported link at one step, in a fixed order: ISLs by (a, b), then GSLs by (a, b).

    Attributes
    ----------
    t_ns : int
    a, b : numpy.ndarray
        int32 node ids, ``a < b`` (satellites ``0..N-1``, ground stations ``N..N+G-1``).
    kind : numpy.ndarray
        int8 ``ISL`` (0) or ``GSL`` (1).
    state : numpy.ndarray
        int8 ``DOWN`` (0), ``ACQUIRING`` (1), ``UP`` (2).
    reason : numpy.ndarray
        int8 reason code (:data:`~meshnet.links.reasons.REASON_NAMES`), 0 unless DOWN.
    length_km, capacity_bps : numpy.ndarray
        float64; capacity is 0 unless UP.

    Which rows appear: for fixed topologies (plus_grid, cluster, static) every candidate ISL;
    for ``dynamic`` and for the inter-shell links of a multi-shell fixed topology the assigned
    ISLs plus those that broke at this step; GSLs when up, plus
    (elevation rule) those released at this step (DOWN, reason ``below_mask`` / ``handover``).
    """

    t_ns: int
    a: np.ndarray
    b: np.ndarray
    kind: np.ndarray
    state: np.ndarray
    reason: np.ndarray
    length_km: np.ndarray
    capacity_bps: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def delay_s(self) -> np.ndarray:
        """One-way propagation delay of every link (length / c)."""
        return self.length_km / C_KM_S

    @property
    def up(self) -> np.ndarray:
        return self.state == UP

    def to_snapshot(self, node_names, node_kind) -> Snapshot:
        """The graph of the links that are UP; ``link_id`` is the row in this table."""
        from ..kernels._links import links_to_csr

        up = np.nonzero(self.state == UP)[0]
        # Same arrays as Snapshot.from_links (tests/test_links.py compares them), built by a
        # counting sort instead of a lexsort over all directed edges.
        indptr, indices, link = links_to_csr(len(node_names), self.a, self.b, up)
        length = self.length_km[up][link]
        return Snapshot(
            t_ns=int(self.t_ns),
            node_names=np.asarray(node_names, dtype=object),
            node_kind=np.asarray(node_kind, dtype=np.int8),
            indptr=indptr,
            indices=indices,
            delay_s=length / C_KM_S,
            length_km=length,
            capacity_bps=np.asarray(self.capacity_bps, np.float64)[up][link],
            link_id=up.astype(np.int32)[link],
        )


def _checked(cfg) -> LinksConfig:
    """Re-run the table checks on a config built in code (parse_table checks files)."""
    values = dataclasses.asdict(cfg)  # nested tables ([links.budget]) as dicts
    return parse_table(type(cfg), values, "links", "<LinksConfig>")


class LinkModel:
    """Stateful link model of one run: call :meth:`step` with increasing ``t_ns``.

    Parameters
    ----------
    links_cfg : LinksConfig
    ground_cfg : GroundConfig
    constellation : Constellation
        ``names``, and ``shell``/``plane``/``slot`` labels where known.
    ground : GroundStations or None
    step_s : float
        The run's time step (informational; acquisition is measured in time, so a wait that
        is not a whole number of steps is rounded up to the next step).
    base_dir : path, optional
        Where a relative ``static_file`` is looked up.
    seed : int
        The scenario seed (``[scenario].seed``), handed to a topology that draws random
        numbers (``dynamic`` with ``acquisition_sigma > 0``).
    """

    def __init__(self, links_cfg, ground_cfg, constellation, ground, step_s: float, *,
                 base_dir=None, seed: int = 0):
        self.cfg = _checked(links_cfg)
        self.ground_cfg = ground_cfg
        self.constellation = constellation
        self.ground = ground
        self.step_s = float(step_s)
        self.n_sats = len(constellation.names)
        self.limits = FeasibilityLimits.from_config(self.cfg, constellation)
        self.plane_key = plane_keys(constellation, self.n_sats)
        policy = TOPOLOGIES.get(self.cfg.topology)
        base = policy(self.cfg, constellation, self.limits, self.plane_key, base_dir)
        if hasattr(base, "reseed"):
            base.reseed(int(seed))
        # Fixed topologies of several shells get the inter-shell heads (links/intershell.py).
        self.isl = with_inter_shell(base, self.cfg, constellation, self.limits, self.plane_key)
        self.gsl = GroundLinks(ground_cfg, ground,
                               getattr(constellation, "max_gsl_length_km", None),
                               shell=getattr(constellation, "shell", None))
        self.n_ground = self.gsl.n_ground
        names = [np.asarray(constellation.names, dtype=object)]
        if ground is not None and self.n_ground:
            names.append(np.asarray(ground.names, dtype=object))
        self.node_names = np.concatenate(names)
        self.node_kind = np.full(self.n_sats + self.n_ground, SATELLITE, dtype=np.int8)
        self.node_kind[self.n_sats:] = GROUND
        self.faults = None
        self._fault_mask = None

    def set_faults(self, schedule) -> None:
        """Apply a :class:`~meshnet.faults.FaultSchedule` from the next step on (None: off).

        The rules are in :mod:`meshnet.links.fault_mask` and docs/faults.md.
        """
        from .fault_mask import FaultMask

        self.faults = schedule
        power_off = None if self._fault_mask is None else self._fault_mask.power_off
        self._fault_mask = None if schedule is None else FaultMask(schedule, self)
        if power_off is not None:
            self.set_lasers_off(power_off)

    def set_lasers_off(self, off) -> None:
        """Switch off the laser heads of satellites from the next step on (power shedding).

        ``off`` is an (n_sats,) bool mask (None: none off). Their ISLs go DOWN with reason
        ``power`` and their ground links stay; when a satellite's heads come back its links are
        assigned again and acquire for ``acquisition_s`` (links/fault_mask.py, docs/power.md).
        """
        from .fault_mask import FaultMask

        if off is None:
            if self._fault_mask is not None:
                self._fault_mask.power_off = None
            return
        off = np.asarray(off, dtype=bool)
        if off.shape != (self.n_sats,):
            raise ValueError(f"lasers-off mask must have shape ({self.n_sats},), got {off.shape}")
        if self._fault_mask is None:
            self._fault_mask = FaultMask(None, self)
        self._fault_mask.power_off = off.copy()

    @property
    def n_terminals(self) -> int | None:
        return getattr(self.isl, "n_terminals", self.cfg.n_terminals)

    def step(self, t_ns: int, r_km, v_km_s, sun_dir) -> LinkTable:
        """Links at ``t_ns`` from Earth-fixed positions/velocities and the Sun direction."""
        r = np.ascontiguousarray(r_km, dtype=np.float64)
        v = np.ascontiguousarray(v_km_s, dtype=np.float64)
        if r.shape != (self.n_sats, 3) or v.shape != r.shape:
            from ..errors import MeshnetError

            raise MeshnetError(f"expected positions and velocities of shape ({self.n_sats}, 3)"
                               f", got {r.shape} and {v.shape}")
        sun = np.ascontiguousarray(sun_dir, dtype=np.float64).reshape(3)
        fm = self._fault_mask
        if fm is not None:
            fm.set_step(int(t_ns), r)  # the layers' fault hooks read this step's mask
        isl = self.isl.step(int(t_ns), r, v, sun)
        cap = capacity_bps(isl.length_km, isl.state, self.cfg.capacity_model,
                           self.cfg.capacity_bps, self.cfg.reference_range_km,
                           self.cfg.link_budget)
        if fm is None:
            g_sat, g_st, g_len, g_state, g_reason = self.gsl.step_rows(r, v)
        else:
            released = fm.before_gsl(r)
            g_sat, g_st, g_len, g_state, g_reason = fm.after_gsl(
                self.gsl.step_rows(fm.gsl_positions(r), v), released, r)
        n_isl, n_gsl = isl.a.shape[0], g_sat.shape[0]
        return LinkTable(
            t_ns=int(t_ns),
            a=np.concatenate([isl.a, g_sat]).astype(np.int32),
            b=np.concatenate([isl.b, g_st + self.n_sats]).astype(np.int32),
            kind=np.concatenate([np.full(n_isl, ISL, np.int8), np.full(n_gsl, GSL, np.int8)]),
            state=np.concatenate([isl.state, g_state]),
            reason=np.concatenate([isl.reason, g_reason]),
            length_km=np.concatenate([isl.length_km, g_len]),
            capacity_bps=np.concatenate([cap, np.where(g_state == UP, self.gsl.capacity_bps,
                                                       0.0)]),
        )


def _chunk_steps(n_sats: int) -> int:
    # Positions and velocities of a chunk stay around 64 MB.
    return int(max(1, min(600, (1 << 26) // max(1, n_sats * 48))))


def link_tables(scenario, grid, progress: bool = False, world=None, chunk_steps=None):
    """Yield ``(t_ns, LinkTable)`` for every step of ``grid``, propagating in chunks.

    Parameters
    ----------
    scenario : Scenario
    grid : TimeGrid
    progress : bool
        Show a tqdm progress bar on stderr.
    world : World, optional
        Already loaded satellites and stations (:func:`meshnet.world.build_world`).
    chunk_steps : int, optional
        Steps propagated at once (default: about 64 MB of positions).

    To keep the model (and its ``node_names`` / ``node_kind``), build it with
    :func:`link_model` and drive it with :func:`model_tables`.
    """
    from ..orbits.propagate import propagate, sun_direction_ecef
    from ..world import build_world

    if world is None:
        world = build_world(scenario)
    model = link_model(scenario, grid, world)
    yield from model_tables(model, world.constellation, grid, progress, chunk_steps,
                            propagate, sun_direction_ecef)


def link_model(scenario, grid, world) -> LinkModel:
    """The :class:`LinkModel` of a scenario's world on ``grid``."""
    step_s = grid.step_ns / 1e9 if len(grid) > 1 else float(scenario.run.step_s)
    model = LinkModel(scenario.links, scenario.ground, world.constellation, world.ground,
                      step_s, base_dir=getattr(scenario, "base_dir", None),
                      seed=int(scenario.run.seed))
    attach_faults(model, scenario, world, grid)
    return model


def attach_faults(model, scenario, world, grid):
    """Build the scenario's fault schedule for ``grid`` and hand it to ``model``.

    Returns the :class:`~meshnet.faults.FaultSchedule` (None without ``[faults]``).
    """
    from ..faults.schedule import schedule_for

    schedule = schedule_for(scenario, world, grid, model.n_terminals)
    model.set_faults(schedule)
    return schedule


def model_tables(model, constellation, grid, progress=False, chunk_steps=None,
                 propagate=None, sun_direction_ecef=None):
    """Drive ``model`` over ``grid``: propagate chunk by chunk and yield ``(t_ns, table)``."""
    if propagate is None or sun_direction_ecef is None:
        from ..orbits.propagate import propagate, sun_direction_ecef
    n = len(grid)
    chunk = int(chunk_steps) if chunk_steps else _chunk_steps(model.n_sats)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="step", desc="links", leave=False)
    try:
        for start in range(0, n, chunk):
            sub = grid[start:start + chunk]
            orb = propagate(constellation, sub)
            sun = np.asarray(sun_direction_ecef(sub), dtype=np.float64)
            r_all, v_all = orb.r_km, orb.v_km_s
            status = getattr(orb, "status", None)
            for k in range(len(sub)):
                r, v = r_all[k], v_all[k]
                if status is not None and status[k].any():
                    bad = status[k] != 0
                    r = r.copy()
                    v = v.copy()
                    r[bad] = np.nan
                    v[bad] = np.nan
                t_ns = int(sub.t_ns[k])
                yield t_ns, model.step(t_ns, r, v, sun[k])
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
