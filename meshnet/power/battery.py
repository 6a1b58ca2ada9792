"""A battery per satellite, and the policy that decides how fast its accelerators may run.

Each step of ``dt_s`` seconds, per satellite (vectorised over all of them):

* solar input ``P_sun = solar_peak_w x lit fraction`` (Sun-tracking arrays);
* fixed loads ``P_fix = bus_w + laser_w x active laser heads`` (up or acquiring ISL ends);
* accelerator load at full rate ``P_acc = accelerators x accelerator_w`` (0 off compute nodes);
* the energy the battery may give above its floor, as a power over the step:
  ``P_bat = (E - min_soc x capacity) / dt``.

Policy ``throttle``: accelerators run at ``factor = clip((P_sun - P_fix + P_bat) / P_acc, 0,
1)``, the fraction of their full draw the budget allows (available / needed). Policy
``pause``: accelerators run at 1 until a step's full draw would take the battery below
``min_soc``; they then stop (factor 0) and stay stopped until the charge is back to
``resume_soc`` (hysteresis: no flapping at the floor). Then the battery moves by
``(P_sun - P_fix - factor x P_acc) x dt``, capped at ``capacity_wh`` (surplus array power is
shunted) and at 0 below (the fixed loads alone can drain it: reported, not prevented).

Policy ``shed_lasers``: laser heads before compute. A satellite switches off **all** its laser
heads (each saving ``laser_w``) when its battery, at the end of step k, could not carry step
k+1's full load (its sunlight of step k, its heads as in step k, accelerators at full rate)
without going below ``min_soc``: ``E_{k+1} + (P_sun - P_fix - P_acc) x dt < min_soc x
capacity``. The decision applies to the links from step k+1 (the link model takes the mask for
its next step; the battery is integrated over step k with the heads then active: a one-step
lag, which the one-step forecast covers). The heads stay off until the charge is back to
``resume_soc`` (hysteresis), then their links re-acquire. Accelerators are throttled as in
``throttle`` only when the step's budget is short with the heads as they are: after shedding
every head is not enough, or in a step whose shortage came unforecast.

Accelerators draw ``factor x P_acc`` for the whole step whether their job is computing or
waiting on the network (a conservative bound: idle H100s draw a fraction of TDP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_WH_PER_J = 1.0 / 3600.0


def shed_decision(energy_wh, solar_w, fixed_w, accel_w, dt_s, capacity_wh, min_soc, shed,
                  resume_soc):
    """Which satellites have their laser heads off in the next step (policy ``shed_lasers``).

    Parameters
    ----------
    energy_wh : numpy.ndarray
        (N,) stored energy at the end of the step just integrated.
    solar_w, fixed_w, accel_w : numpy.ndarray
        (N,) array output, fixed loads (bus and the heads then active) and the accelerators'
        full draw during that step: the forecast for the next step.
    dt_s, capacity_wh, min_soc : float
    shed : numpy.ndarray of bool
        (N,) heads off during the step just integrated.
    resume_soc : float
        Charge at which shed heads come back on.

    Returns
    -------
    numpy.ndarray of bool
        (N,) heads off in the next step.

    Examples
    --------
    >>> shed_decision(np.array([720.0]), np.array([0.0]), np.array([1200.0]), np.array([0.0]),
    ...               60.0, 1000.0, 0.7, np.array([False]), 0.8)  # 20 Wh a step, 20 Wh left
    array([False])
    >>> shed_decision(np.array([719.0]), np.array([0.0]), np.array([1200.0]), np.array([0.0]),
    ...               60.0, 1000.0, 0.7, np.array([False]), 0.8)
    array([ True])
    """
    e = np.asarray(energy_wh, np.float64)
    was = np.asarray(shed, bool)
    net_w = (np.asarray(solar_w, np.float64) - np.asarray(fixed_w, np.float64)
             - np.asarray(accel_w, np.float64))
    short = e + net_w * dt_s * _WH_PER_J < min_soc * capacity_wh
    resumed = was & (e >= resume_soc * capacity_wh)
    return (was & ~resumed) | (~was & short)


def battery_step(energy_wh, solar_w, fixed_w, accel_w, dt_s, capacity_wh, min_soc, policy,
                 paused=None, resume_soc=1.0):
    """Advance every battery by one step; return ``(energy_wh, factor, paused)``.

    Parameters
    ----------
    energy_wh : numpy.ndarray
        (N,) stored energy at the step's start.
    solar_w, fixed_w, accel_w : numpy.ndarray
        (N,) array output, fixed loads and the accelerators' full draw during the step.
    dt_s : float
        Step length.
    capacity_wh, min_soc : float
        Battery size and the floor the policy keeps.
    policy : {"throttle", "pause", "shed_lasers"}
        ``shed_lasers`` throttles like ``throttle`` with the loads given (the heads are shed
        by :func:`shed_decision`).
    paused : numpy.ndarray of bool, optional
        (N,) policy ``pause``: whether each node was paused before this step.
    resume_soc : float
        Policy ``pause``: charge at which a paused node restarts.

    Returns
    -------
    energy_wh : numpy.ndarray
        (N,) stored energy at the step's end.
    factor : numpy.ndarray
        (N,) compute-rate factor in [0, 1] during the step (1 where ``accel_w`` is 0).
    paused : numpy.ndarray of bool
        (N,) pause state after the step (all false for ``throttle``).

    Examples
    --------
    >>> e, f, p = battery_step(np.array([710.0]), np.array([0.0]), np.array([100.0]),
    ...                        np.array([1000.0]), 3600.0, 1000.0, 0.7, "throttle")
    >>> float(f[0]), float(e[0])  # 10 Wh over the floor: bus takes 100, so nothing is left
    (0.0, 610.0)
    """
    e = np.asarray(energy_wh, np.float64)
    net_w = np.asarray(solar_w, np.float64) - np.asarray(fixed_w, np.float64)
    acc = np.asarray(accel_w, np.float64)
    floor_wh = min_soc * capacity_wh
    avail_w = net_w + (e - floor_wh) / (dt_s * _WH_PER_J)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(acc > 0, np.clip(avail_w / acc, 0.0, 1.0), 1.0)
    if policy in ("throttle", "shed_lasers"):
        factor = share
        paused = np.zeros(e.shape, bool)
    elif policy == "pause":
        was = np.zeros(e.shape, bool) if paused is None else np.asarray(paused, bool)
        resumed = was & (e >= resume_soc * capacity_wh)
        stay = was & ~resumed
        # A running node stops when its full draw would breach the floor this step.
        stop = (~was | resumed) & (acc > 0) & (share < 1.0)
        paused = stay | stop
        factor = np.where(paused, 0.0, 1.0)
    else:
        raise ValueError(f"unknown power policy {policy!r}")
    e_next = np.clip(e + (net_w - factor * acc) * dt_s * _WH_PER_J, 0.0, capacity_wh)
    return e_next, factor, paused


@dataclass
class PowerModel:
    """Batteries of every satellite through a run; hands the engine a compute rate per node.

    Parameters
    ----------
    config : meshnet.power.config.PowerConfig
    n_sats, n_nodes : int
        Satellites (ids ``0 .. n_sats - 1``) and all nodes (ground nodes always run at 1).
    accel_w : numpy.ndarray
        (n_sats,) accelerators' full draw on each satellite (0 where it has none).
    sun_km : numpy.ndarray
        (T, 3) Sun position per step, same frame as the positions given to :meth:`step`.
    dt_s : float
    """

    config: object
    n_sats: int
    n_nodes: int
    accel_w: np.ndarray
    sun_km: np.ndarray
    dt_s: float
    energy_wh: np.ndarray = field(init=False)
    paused: np.ndarray = field(init=False)
    dark_s: np.ndarray = field(init=False)
    min_soc_seen: np.ndarray = field(init=False)
    throttled_s: np.ndarray = field(init=False)
    paused_s: np.ndarray = field(init=False)
    shed: np.ndarray = field(init=False)
    shed_heads: np.ndarray = field(init=False)
    shed_s: np.ndarray = field(init=False)
    shed_head_s: np.ndarray = field(init=False)
    #: Policy ``shed_lasers``: called with :attr:`shed` after each step (the run hands it
    #: ``LinkModel.set_lasers_off``, so the links of step k+1 see step k's decision).
    on_shed: object = None
    steps: int = 0
    any_stopped_s: float = 0.0  # time at least one compute node had factor 0
    any_slowed_s: float = 0.0  # time at least one compute node had factor < 1

    def __post_init__(self):
        cap = self.config.capacity_wh
        self.accel_w = np.asarray(self.accel_w, np.float64)
        self.energy_wh = np.full(self.n_sats, self.config.initial_soc * cap)
        self.paused = np.zeros(self.n_sats, bool)
        self.dark_s = np.zeros(self.n_sats)
        self.min_soc_seen = np.full(self.n_sats, self.config.initial_soc)
        self.throttled_s = np.zeros(self.n_sats)
        self.paused_s = np.zeros(self.n_sats)
        self.shed = np.zeros(self.n_sats, bool)  # policy shed_lasers: heads off next step
        self.shed_heads = np.zeros(self.n_sats)  # heads active when they were shed
        self.shed_s = np.zeros(self.n_sats)
        self.shed_head_s = np.zeros(self.n_sats)

    @classmethod
    def for_run(cls, config, world, compute, grid, dt_s, accelerators_per_node):
        """The model of one run: Sun from skyfield over ``grid``, accelerators on ``compute``."""
        from .sunlight import sun_position_ecef_km

        accel = np.zeros(world.n_sats)
        if compute is not None:
            ids = np.asarray(compute.node_ids)
            ids = ids[ids < world.n_sats]
            accel[ids] = accelerators_per_node * config.accelerator_w
        return cls(config, world.n_sats, world.n_nodes, accel, sun_position_ecef_km(grid),
                   dt_s)

    def step(self, k: int, r_km: np.ndarray, active_heads: np.ndarray) -> np.ndarray:
        """Advance one step; return the (n_nodes,) compute-rate factor for the engine.

        Parameters
        ----------
        k : int
            Step index into ``sun_km``.
        r_km : numpy.ndarray
            (n_sats, 3) positions at the step's start.
        active_heads : numpy.ndarray
            (n_sats,) laser heads in use (up or acquiring) on each satellite.

        With policy ``shed_lasers``, :attr:`shed` is then the (n_sats,) mask of satellites
        whose heads are off in the next step: hand it to
        :meth:`meshnet.links.model.LinkModel.set_lasers_off`.
        """
        from .sunlight import lit_fraction

        cfg = self.config
        lit = np.nan_to_num(lit_fraction(r_km, self.sun_km[k]), nan=0.0)
        solar_w = cfg.solar_peak_w * lit
        heads = np.asarray(active_heads, np.float64)
        fixed_w = cfg.bus_w + cfg.laser_w * heads
        off = self.shed  # heads off during this step (decided at the previous one)
        if off.any():
            self.shed_s[off] += self.dt_s
            self.shed_head_s[off] += self.shed_heads[off] * self.dt_s
        self.energy_wh, factor, self.paused = battery_step(
            self.energy_wh, solar_w, fixed_w, self.accel_w, self.dt_s, cfg.capacity_wh,
            cfg.min_soc, cfg.policy, self.paused, cfg.resume_soc)
        if cfg.policy == "shed_lasers":
            nxt = shed_decision(self.energy_wh, solar_w, fixed_w, self.accel_w, self.dt_s,
                                cfg.capacity_wh, cfg.min_soc, off, cfg.resume_soc)
            new = nxt & ~off
            self.shed_heads[new] = heads[new]
            self.shed = nxt
            if self.on_shed is not None:
                self.on_shed(nxt)
        soc = self.energy_wh / cfg.capacity_wh
        np.minimum(self.min_soc_seen, soc, out=self.min_soc_seen)
        self.dark_s += (1.0 - lit) * self.dt_s
        has = self.accel_w > 0
        self.throttled_s[has & (factor > 0) & (factor < 1)] += self.dt_s
        self.paused_s[has & (factor <= 0)] += self.dt_s
        if has.any():
            self.any_stopped_s += self.dt_s * bool(np.any(factor[has] <= 0))
            self.any_slowed_s += self.dt_s * bool(np.any(factor[has] < 1))
        self.steps += 1
        rate = np.ones(self.n_nodes)
        rate[: self.n_sats] = factor
        return rate

    # ---------------------------------------------------------------- results
    def eclipse_fraction(self) -> np.ndarray:
        """(n_sats,) time-weighted shadow over the run: mean of (1 - lit fraction)."""
        return self.dark_s / max(self.steps * self.dt_s, 1e-12)

    def max_depth_of_discharge(self) -> np.ndarray:
        """(n_sats,) 1 - the lowest state of charge reached."""
        return 1.0 - self.min_soc_seen

    def records(self, names) -> dict:
        """Columns of ``power.parquet``: one row per satellite."""
        ids = np.arange(self.n_sats, dtype=np.int32)
        return {
            "node": ids,
            "name": np.asarray(names)[: self.n_sats].astype(str),
            "compute": self.accel_w > 0,
            "eclipse_fraction": self.eclipse_fraction(),
            "max_depth_of_discharge": self.max_depth_of_discharge(),
            "min_soc": self.min_soc_seen.copy(),
            "final_soc": self.energy_wh / self.config.capacity_wh,
            "throttled_s": self.throttled_s.copy(),
            "paused_s": self.paused_s.copy(),
            "lasers_shed_s": self.shed_s.copy(),
            "laser_head_s_shed": self.shed_head_s.copy(),
        }

    def summary(self) -> dict:
        """Run-level figures for ``summary.json``."""
        ecl = self.eclipse_fraction()
        dod = self.max_depth_of_discharge()
        has = self.accel_w > 0
        return {
            "policy": self.config.policy,
            "mean_eclipse_fraction": float(ecl.mean()) if ecl.size else 0.0,
            "max_eclipse_fraction": float(ecl.max()) if ecl.size else 0.0,
            "max_depth_of_discharge": float(dod.max()) if dod.size else 0.0,
            "compute_nodes": int(has.sum()),
            "compute_mean_eclipse_fraction": float(ecl[has].mean()) if has.any() else None,
            "compute_max_depth_of_discharge": float(dod[has].max()) if has.any() else None,
            "node_throttled_s": float(self.throttled_s[has].sum()),
            "node_paused_s": float(self.paused_s[has].sum()),
            "any_compute_node_stopped_s": self.any_stopped_s,
            "any_compute_node_slowed_s": self.any_slowed_s,
            "sats_shed": int(np.count_nonzero(self.shed_s > 0)),
            "lasers_shed_sat_s": float(self.shed_s.sum()),
            "laser_head_hours_shed": float(self.shed_head_s.sum() / 3600.0),
            "duration_s": self.steps * self.dt_s,
            "solar_peak_w": self.config.solar_peak_w,
            "capacity_wh": self.config.capacity_wh,
        }


def active_heads(n_sats: int, a, b, kind, state) -> np.ndarray:
    """(n_sats,) laser heads in use per satellite: ends of ISLs that are up or acquiring."""
    isl = (np.asarray(kind) == 0) & (np.asarray(state) >= 1)
    ends = np.concatenate([np.asarray(a)[isl], np.asarray(b)[isl]])
    ends = ends[ends < n_sats]
    return np.bincount(ends, minlength=n_sats)[:n_sats].astype(np.float64)
