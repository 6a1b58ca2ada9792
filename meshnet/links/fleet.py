"""Steady-state fleet figures of a laser mesh: acquisitions per laser per day, uptime, link life.

SpaceX's published fleet figures (T. Brashears, SPIE Photonics West, January 2024, press
reports) are whole-day averages of a running fleet. A simulation that starts from a fresh
matching has a start-up transient (the first hour of ``dynamic`` on the real catalogue shows
two to three times the steady acquisition rate), so :class:`FleetMeter` discards a warm-up
and measures the rest.

Definitions (ISLs only; every figure over the measured window, after ``warmup_s``):

``acquisitions``
    Links entering ACQUIRING (or UP directly when the acquisition time is 0) at a measured
    step after not being live (ACQUIRING or UP) at the step before; each link is counted once,
    although two heads acquire. A link that began acquiring during the warm-up is not counted;
    without a warm-up, links UP at the first step predate the run and are not counted.
``acquisitions_per_laser_per_day``
    ``acquisitions / (satellites x terminals) / days``: link acquisitions per head, the unit
    of "266,000 acquisitions a day over more than 9,000 lasers, about 30 per laser".
    ``laser_acquisitions_per_laser_per_day`` is twice that (each head's own acquisitions).
``link_time_up_pct``
    UP link-time / (UP + ACQUIRING) link-time of the assigned links. Idle heads are not in it.
``head_time_up_pct``
    UP link ends / (satellites x terminals x steps): the share of all laser heads carrying.
``mean_link_life_s``
    Assigned (UP + ACQUIRING) link-time / acquisitions: by Little's law the mean time from an
    acquisition to the release of that link in a stationary mesh; unlike a mean over links
    that both began and ended inside the window it is not biased against long links.

Examples
--------
>>> import numpy as np
>>> from meshnet.links.model import LinkTable
>>> def table(t_s, states):
...     n = len(states)
...     return LinkTable(int(t_s * 1e9), np.array([0, 1][:n], np.int32),
...                      np.array([1, 2][:n], np.int32), np.zeros(n, np.int8),
...                      np.array(states, np.int8), np.zeros(n, np.int8), np.ones(n),
...                      np.zeros(n))
>>> meter = FleetMeter(n_sats=3, terminals=2, warmup_s=1.0)
>>> for t, st in enumerate([[2], [2], [2, 1], [2, 2]]):
...     meter.add(table(t, st))
>>> f = meter.figures()
>>> f["acquisitions"], f["steps"], round(f["link_time_up_pct"], 3)
(1, 3, 80.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MeshnetError
from ..units import NS_PER_S, SECONDS_PER_DAY
from .reasons import ACQUIRING, DOWN, ISL, REASON_NAMES, UP


@dataclass
class FleetMeter:
    """Accumulate steady-state fleet figures from link tables, step by step.

    Parameters
    ----------
    n_sats : int
        Satellites in the mesh (all of them: a satellite with no position still has heads).
    terminals : int
        Laser heads per satellite.
    warmup_s : float
        Time from the first table added that is discarded (its tables only set the state
        that the first measured step is compared with).
    """

    n_sats: int
    terminals: int
    warmup_s: float = 0.0

    def __post_init__(self):
        if self.terminals is None or int(self.terminals) < 1:
            raise MeshnetError("fleet figures need a number of laser heads per satellite and "
                               "static topologies have none; use topology = 'dynamic' (or "
                               "leave out --warmup)")
        if self.warmup_s < 0:
            raise MeshnetError(f"warm-up must be >= 0 s, found {self.warmup_s}")
        self.t0_ns: int | None = None
        self.t_prev_ns: int | None = None
        self.step_ns: int | None = None
        self.prev_live = np.empty(0, np.int64)
        self.steps = 0
        self.up_rows = 0
        self.acq_rows = 0
        self.acquisitions = 0
        self.breaks = np.zeros(len(REASON_NAMES), np.int64)
        self.t_first_ns: int | None = None
        self.t_last_ns: int | None = None

    def add(self, table) -> None:
        """Add the :class:`~meshnet.links.model.LinkTable` of the next step."""
        t_ns = int(table.t_ns)
        if self.t_prev_ns is not None and t_ns <= self.t_prev_ns:
            raise MeshnetError(f"link tables must advance in time: {t_ns} ns after "
                               f"{self.t_prev_ns} ns")
        if self.t0_ns is None:
            self.t0_ns = t_ns
        elif self.step_ns is None:
            self.step_ns = t_ns - self.t_prev_ns
        self.t_prev_ns = t_ns
        isl = np.asarray(table.kind) == ISL
        a = np.asarray(table.a)[isl].astype(np.int64)
        b = np.asarray(table.b)[isl].astype(np.int64)
        state = np.asarray(table.state)[isl]
        live = (state == UP) | (state == ACQUIRING)
        key = a[live] * (1 << 32) + b[live]
        order = np.argsort(key, kind="stable")
        key, live_state = key[order], state[live][order]
        measured = t_ns - self.t0_ns >= round(self.warmup_s * NS_PER_S)
        if measured:
            if self.t_first_ns is None:
                self.t_first_ns = t_ns
            self.t_last_ns = t_ns
            self.steps += 1
            self.up_rows += int((state == UP).sum())
            self.acq_rows += int((state == ACQUIRING).sum())
            entered = ~np.isin(key, self.prev_live, assume_unique=True)
            if t_ns == self.t0_ns:
                # The first table has no step before it: links already UP there predate the
                # run (a warm start) and are not acquisitions; ACQUIRING ones are.
                entered &= live_state == ACQUIRING
            self.acquisitions += int(entered.sum())
            reason = np.asarray(table.reason)[isl]
            self.breaks += np.bincount(reason[state == DOWN], minlength=len(REASON_NAMES))
        self.prev_live = key

    def figures(self) -> dict:
        """The steady-state figures of the measured window (see the module docs)."""
        if self.steps == 0:
            raise MeshnetError(f"no step after the {self.warmup_s:g} s warm-up; run longer "
                               "or shorten the warm-up")
        step_s = (self.step_ns or 0) / NS_PER_S
        window_s = self.steps * step_s
        heads = self.n_sats * int(self.terminals)
        days = window_s / SECONDS_PER_DAY
        assigned = self.up_rows + self.acq_rows
        per_laser = self.acquisitions / heads / days if days > 0 and heads else float("nan")
        return dict(
            warmup_s=float(self.warmup_s),
            window_s=window_s,
            steps=self.steps,
            step_s=step_s,
            n_sats=int(self.n_sats),
            terminals=int(self.terminals),
            acquisitions=int(self.acquisitions),
            acquisitions_per_laser_per_day=per_laser,
            laser_acquisitions_per_laser_per_day=2.0 * per_laser,
            link_time_up_pct=100.0 * self.up_rows / assigned if assigned else float("nan"),
            head_time_up_pct=100.0 * 2 * self.up_rows / (heads * self.steps),
            head_time_busy_pct=100.0 * 2 * assigned / (heads * self.steps),
            mean_isl_degree=2.0 * self.up_rows / (self.n_sats * self.steps),
            mean_link_life_s=(assigned * step_s / self.acquisitions if self.acquisitions
                              else float("inf")),
            breaks_by_reason={REASON_NAMES[i]: int(c) for i, c in enumerate(self.breaks)
                              if c and i},
        )


def fleet_figures(tables, n_sats: int, terminals: int, warmup_s: float = 0.0) -> dict:
    """Steady-state fleet figures of a sequence of link tables (see :class:`FleetMeter`).

    Parameters
    ----------
    tables : iterable
        :class:`~meshnet.links.model.LinkTable` objects, or ``(t_ns, LinkTable)`` pairs as
        :func:`~meshnet.links.model.link_tables` yields them, in time order.
    n_sats, terminals : int
    warmup_s : float
        Discarded from the start.
    """
    meter = FleetMeter(n_sats, terminals, warmup_s)
    for item in tables:
        meter.add(item[1] if isinstance(item, tuple) else item)
    return meter.figures()


def format_figures(f: dict) -> str:
    """A short text report of :func:`fleet_figures`."""
    return "\n".join([
        f"fleet figures after a {f['warmup_s']:g} s warm-up, over {f['window_s'] / 3600:.2f} h "
        f"({f['steps']:,} steps of {f['step_s']:g} s), {f['n_sats']:,} satellites x "
        f"{f['terminals']} heads",
        f"  acquisitions per laser per day   {f['acquisitions_per_laser_per_day']:.2f} "
        f"(each head's own: {f['laser_acquisitions_per_laser_per_day']:.2f})",
        f"  link-time up                     {f['link_time_up_pct']:.3f} % of assigned",
        f"  head-time up                     {f['head_time_up_pct']:.3f} % of all heads "
        f"(busy incl. acquiring {f['head_time_busy_pct']:.3f} %)",
        f"  mean link life                   {f['mean_link_life_s'] / 60:.1f} min",
        f"  mean ISL degree                  {f['mean_isl_degree']:.3f}",
        "  breaks by reason                 " + (", ".join(
            f"{k} {v:,}" for k, v in f["breaks_by_reason"].items()) or "none"),
    ])
