"""The fault schedule of one run: every event drawn up front, queried step by step.

:class:`FaultSchedule` is built once per run from the ``[faults]`` table, the satellites and
stations, and the run's end time. Random processes are drawn in continuous time over the whole
run before the first step, from generators seeded with ``[scenario].seed`` (one stream per
process), in rounds of one draw per unit: so the same seed gives the same events whatever the
step size, and a run split into windows (or a longer run) sees the same events where they
overlap. Per step, :meth:`FaultSchedule.at` returns a :class:`StepFaults` mask with
vectorised interval tests (``start <= t < end``); the link model consumes it and knows
nothing of how it was drawn.

Examples
--------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> from meshnet.faults.config import FaultsConfig, FaultEventConfig
>>> cfg = FaultsConfig(events=(FaultEventConfig(kind="satellite", satellite=1, start_s=10.0,
...                                             end_s=20.0),))
>>> const = SimpleNamespace(names=np.array(["a", "b", "c"], dtype=object))
>>> s = FaultSchedule.build(cfg, const, None, t_end_ns=60 * 10**9, seed=0)
>>> s.satellites_down(15 * 10**9).tolist(), s.satellites_down(20 * 10**9).tolist()
([False, True, False], [False, False, False])
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from ..errors import ScenarioError
from .config import FaultsConfig, parse_plane

#: Event kinds (int8 in the schedule); ``accelerator`` is reserved for radiation restarts of
#: the accelerators (they take no link down; added by the compute model).
SATELLITE, TERMINAL, PLANE, GROUND_STATION, REGION, STORM, MANOEUVRE, ACCELERATOR = range(8)
KIND_NAMES = ("satellite", "terminal", "plane", "ground_station", "region", "storm",
              "manoeuvre", "accelerator")
#: Effect of a satellite-level event: 1 = no links at all, 2 = laser terminals down.
NO_EFFECT, FAILED, LASERS = 0, 1, 2
EFFECT_NAMES = ("none", "failed", "lasers")
CAUSE_NAMES = ("scheduled", "random")

#: Streams mixed into the scenario seed, one per process (independent of each other and of
#: the link model's own draws).
_STREAMS = {"satellite": 0xFA0171, "terminal": 0xFA0172, "station": 0xFA0173,
            "manoeuvre": 0xFA0174, "storm": 0xFA0175, "scheduled": 0xFA0176,
            "accelerator": 0xFA0177}
NS = 1_000_000_000
R_EARTH_MEAN_KM = 6371.0
#: Heads per satellite assumed for terminal faults when the topology sets no count (static).
DEFAULT_HEADS = 4


@dataclass(frozen=True)
class StepFaults:
    """The fault mask of one step.

    Attributes
    ----------
    sat_effect : numpy.ndarray
        int8 (N,): ``NO_EFFECT``, ``FAILED`` (no links at all) or ``LASERS`` (ISLs down).
    sat_kind : numpy.ndarray
        int8 (N,): kind of the event that sets ``sat_effect`` (failed before lasers; among
        equals satellite/plane/region before storm before manoeuvre); -1 where none.
    head_sat, head : numpy.ndarray
        int64: the failed laser heads, as (satellite, head index) pairs.
    station_failed : numpy.ndarray
        bool (G,).
    """

    sat_effect: np.ndarray
    sat_kind: np.ndarray
    head_sat: np.ndarray
    head: np.ndarray
    station_failed: np.ndarray

    @property
    def any(self) -> bool:
        return bool(self.sat_effect.any() or self.head.shape[0] or self.station_failed.any())

    def heads_lost(self, n_sats: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Failed heads per satellite with index in ``[lo, hi)`` (int64, (N,))."""
        keep = self.head >= lo
        if hi is not None:
            keep &= self.head < hi
        return np.bincount(self.head_sat[keep], minlength=n_sats).astype(np.int64)


#: Priority of a kind when several events hit one satellite (higher wins within an effect).
_KIND_RANK = np.array([6, 0, 5, 0, 4, 3, 2, 0], dtype=np.int64)


class FaultSchedule:
    """All fault events of a run (see the module docs); build with :meth:`build`.

    Attributes
    ----------
    events : dict of numpy.ndarray
        One row per event: ``kind`` (str), ``cause`` (scheduled / random), ``effect``,
        ``target`` (text), ``node_ids`` and ``node_names`` (lists; satellites ``0..N-1``,
        stations ``N..``; empty for a region, whose satellites change with time), ``heads``
        (terminal events: the head index of each node), ``start_s``, ``end_s``.
    """

    def __init__(self, n_sats: int, n_ground: int, sat_names, station_names):
        self.n_sats = int(n_sats)
        self.n_ground = int(n_ground)
        self.sat_names = np.asarray(sat_names, dtype=object)
        self.station_names = np.asarray(station_names, dtype=object)
        self._rows: list[dict] = []
        # interval tables, appended then frozen to arrays
        self._sat: list = []   # (sat, start_ns, end_ns, effect, kind)
        self._head: list = []  # (sat, head, start_ns, end_ns)
        self._st: list = []    # (station, start_ns, end_ns)
        self._reg: list = []   # (unit xyz, radius_rad, start_ns, end_ns, effect)
        self._acc: list = []   # (sat, start_ns, end_ns): accelerator restarts
        self.accelerators_per_node = 1

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, cfg: FaultsConfig, constellation, ground, t_end_ns: int, seed: int = 0,
              heads_per_satellite: int | None = None, where: str = "<scenario>",
              accelerators_per_node: int = 1) -> FaultSchedule:
        """Draw every event up to ``t_end_ns`` (ns after the epoch).

        Parameters
        ----------
        cfg : FaultsConfig
        constellation : object with ``names`` (and ``shell``/``plane`` for plane events)
        ground : GroundStations or None
        t_end_ns : int
            End of the run; random events starting at or after it are not drawn.
        seed : int
            ``[scenario].seed``.
        heads_per_satellite : int, optional
            Laser heads per satellite (terminal faults); default 4.
        accelerators_per_node : int
            Devices per satellite: the accelerator upset rate is per device.
        """
        names = np.asarray(constellation.names, dtype=object)
        st_names = (np.asarray(ground.names, dtype=object) if ground is not None
                    else np.empty(0, dtype=object))
        self = cls(names.shape[0], st_names.shape[0], names, st_names)
        self.heads = int(heads_per_satellite or DEFAULT_HEADS)
        self.heads_known = heads_per_satellite is not None
        self.accelerators_per_node = int(accelerators_per_node)
        n = self.n_sats
        shell = np.asarray(getattr(constellation, "shell", np.zeros(n)), dtype=np.int64)
        if shell.shape[0] != n:
            shell = np.zeros(n, np.int64)
        self._shell = shell
        self._plane = getattr(constellation, "plane", None)
        for i, ev in enumerate(cfg.events):
            rng = np.random.default_rng([int(seed), _STREAMS["scheduled"], i])
            self._scheduled(ev, rng, f"faults.events[{i}]", where)
        t_end_s = t_end_ns / NS
        if cfg.random:
            self._random(cfg, int(seed), t_end_s, where)
        self._freeze()
        return self

    def _sat_id(self, value, key, where) -> int:
        if isinstance(value, int):
            if not 0 <= value < self.n_sats:
                raise ScenarioError(f"{where}: [{key}].satellite = {value} is outside "
                                    f"0..{self.n_sats - 1}")
            return value
        hit = np.nonzero(self.sat_names == value)[0]
        if hit.shape[0] == 0:
            close = difflib.get_close_matches(str(value), [str(x) for x in self.sat_names],
                                              n=1)
            hint = f"did you mean '{close[0]}'?" if close else "give a name or an id"
            raise ScenarioError(f"{where}: [{key}].satellite = '{value}' is not a satellite "
                                f"of this constellation; {hint}")
        return int(hit[0])

    def _shell_pool(self, shell, dotted, where) -> np.ndarray:
        if shell is None:
            return np.arange(self.n_sats)
        pool = np.nonzero(self._shell == shell)[0]
        if pool.shape[0] == 0:
            raise ScenarioError(f"{where}: {dotted} = {shell} has no satellites; shells "
                                f"are 0..{int(self._shell.max()) if self.n_sats else 0}")
        return pool

    def _scheduled(self, ev, rng, key, where) -> None:
        t0 = int(round(ev.start_s * NS))
        t1 = int(round(ev.end_time_s * NS))
        effect = FAILED if ev.resolved_effect == "failed" else LASERS
        kind = KIND_NAMES.index(ev.kind)
        if ev.kind == "accelerator":
            self._add_accelerator(self._sat_id(ev.satellite, key, where), t0, t1,
                                  cause="scheduled")
        elif ev.kind in ("satellite", "manoeuvre"):
            sats = np.array([self._sat_id(ev.satellite, key, where)])
            self._add_sats(kind, "scheduled", effect, sats, t0, t1, str(self.sat_names[sats[0]]))
        elif ev.kind == "plane":
            shell, plane = parse_plane(ev.plane, key, where)
            labels = self._plane
            if labels is None:
                raise ScenarioError(f"{where}: [{key}].plane: this constellation has no plane "
                                    "labels; name satellites instead")
            sats = np.nonzero((self._shell == shell) & (np.asarray(labels) == plane))[0]
            if sats.shape[0] == 0:
                raise ScenarioError(f"{where}: [{key}].plane = '{ev.plane}' has no "
                                    "satellites")
            self._add_sats(kind, "scheduled", effect, sats, t0, t1, f"plane {shell}/{plane}")
        elif ev.kind == "storm":
            pool = self._shell_pool(ev.shell, f"[{key}].shell", where)
            frac = 0.2 if ev.fraction is None else ev.fraction
            sats = np.sort(rng.permutation(pool)[:int(round(frac * pool.shape[0]))])
            what = "all shells" if ev.shell is None else f"shell {ev.shell}"
            self._add_sats(kind, "scheduled", effect, sats, t0, t1,
                           f"{100 * frac:g} % of {what}")
        elif ev.kind == "terminal":
            if ev.fraction is None:
                sat = self._sat_id(ev.satellite, key, where)
                if self.heads_known and ev.head >= self.heads:
                    raise ScenarioError(f"{where}: [{key}].head = {ev.head}, but satellites "
                                        f"have {self.heads} laser heads (0..{self.heads - 1})")
                self._add_heads("scheduled", np.array([sat]), np.array([ev.head]), t0, t1,
                                f"{self.sat_names[sat]} head {ev.head}")
            else:
                pool = self._shell_pool(ev.shell, f"[{key}].shell", where)
                all_heads = pool.shape[0] * self.heads
                pick = np.sort(rng.permutation(all_heads)[:int(round(ev.fraction * all_heads))])
                what = "all shells" if ev.shell is None else f"shell {ev.shell}"
                self._add_heads("scheduled", pool[pick // self.heads], pick % self.heads, t0,
                                t1, f"{100 * ev.fraction:g} % of heads of {what}")
        elif ev.kind == "ground_station":
            hit = np.nonzero(self.station_names == ev.station)[0]
            if hit.shape[0] == 0:
                close = difflib.get_close_matches(ev.station,
                                                  [str(x) for x in self.station_names], n=1)
                hint = f"did you mean '{close[0]}'?" if close else (
                    "this scenario has no such station (see [ground].stations)")
                raise ScenarioError(f"{where}: [{key}].station = '{ev.station}' is not a "
                                    f"ground station; {hint}")
            self._add_station("scheduled", int(hit[0]), t0, t1)
        elif ev.kind == "region":
            lat, lon = np.radians(ev.lat_deg), np.radians(ev.lon_deg)
            unit = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
            self._reg.append((unit, ev.radius_km / R_EARTH_MEAN_KM, t0, t1, effect))
            self._row(REGION, "scheduled", effect,
                      f"region {ev.lat_deg:g},{ev.lon_deg:g} r {ev.radius_km:g} km", [], [],
                      [], t0, t1)

    def _random(self, cfg, seed: int, t_end_s: float, where: str) -> None:
        n = self.n_sats
        day = 86400.0
        if cfg.satellite_mtbf_days > 0 and n:
            rng = np.random.default_rng([seed, _STREAMS["satellite"]])
            for u, s, e in _renewal(rng, n, cfg.satellite_mtbf_days * day,
                                    cfg.satellite_mttr_s, t_end_s):
                self._add_sats(SATELLITE, "random", FAILED, np.array([u]), _ns(s), _ns(e),
                               str(self.sat_names[u]))
        if cfg.terminal_mtbf_days > 0 and n:
            rng = np.random.default_rng([seed, _STREAMS["terminal"]])
            for u, s, e in _renewal(rng, n * self.heads, cfg.terminal_mtbf_days * day,
                                    cfg.terminal_mttr_s, t_end_s):
                sat, head = divmod(u, self.heads)
                self._add_heads("random", np.array([sat]), np.array([head]), _ns(s), _ns(e),
                                f"{self.sat_names[sat]} head {head}")
        if cfg.station_mtbf_days > 0 and self.n_ground:
            rng = np.random.default_rng([seed, _STREAMS["station"]])
            for u, s, e in _renewal(rng, self.n_ground, cfg.station_mtbf_days * day,
                                    cfg.station_mttr_s, t_end_s):
                self._add_station("random", u, _ns(s), _ns(e))
        if cfg.manoeuvres_per_day > 0 and n:
            rng = np.random.default_rng([seed, _STREAMS["manoeuvre"]])
            for u, s, e in _renewal(rng, n, day / cfg.manoeuvres_per_day,
                                    cfg.manoeuvre_duration_s, t_end_s, fixed_repair=True):
                self._add_sats(MANOEUVRE, "random", LASERS, np.array([u]), _ns(s), _ns(e),
                               str(self.sat_names[u]))
        rate = cfg.accelerator_upsets_per_device_day * self.accelerators_per_node
        if rate > 0 and n:
            # Radiation upsets restart one node's accelerators; no link goes down.
            rng = np.random.default_rng([seed, _STREAMS["accelerator"]])
            for u, s, e in _renewal(rng, n, day / rate, cfg.accelerator_restart_s, t_end_s,
                                    fixed_repair=True):
                self._add_accelerator(u, _ns(s), _ns(e))
        if cfg.storms_per_day > 0 and n:
            rng = np.random.default_rng([seed, _STREAMS["storm"]])
            pool = self._shell_pool(cfg.storm_shell, "[faults].storm_shell", where)
            effect = FAILED if cfg.storm_effect == "failed" else LASERS
            t, k = 0.0, 0
            while True:
                t += rng.exponential(day / cfg.storms_per_day)
                if t >= t_end_s:
                    break
                victims = np.random.default_rng([seed, _STREAMS["storm"], k])
                sats = np.sort(victims.permutation(pool)[
                    :int(round(cfg.storm_fraction * pool.shape[0]))])
                self._add_sats(STORM, "random", effect, sats, _ns(t),
                               _ns(t + cfg.storm_duration_s),
                               f"{100 * cfg.storm_fraction:g} % of "
                               + ("all shells" if cfg.storm_shell is None
                                  else f"shell {cfg.storm_shell}"))
                k += 1

    def _row(self, kind, cause, effect, target, ids, names, heads, t0, t1) -> None:
        self._rows.append({"kind": KIND_NAMES[kind], "cause": cause,
                           "effect": EFFECT_NAMES[effect], "target": target,
                           "node_ids": [int(x) for x in ids],
                           "node_names": [str(x) for x in names],
                           "heads": [int(x) for x in heads], "start_ns": int(t0),
                           "end_ns": int(t1)})

    def _add_sats(self, kind, cause, effect, sats, t0, t1, target) -> None:
        self._row(kind, cause, effect, target, sats, self.sat_names[sats], [], t0, t1)
        for s in sats:
            self._sat.append((int(s), t0, t1, effect, kind))

    def _add_heads(self, cause, sats, heads, t0, t1, target) -> None:
        self._row(TERMINAL, cause, NO_EFFECT, target, sats, self.sat_names[sats], heads, t0, t1)
        for s, h in zip(sats, heads, strict=True):
            self._head.append((int(s), int(h), t0, t1))

    def _add_accelerator(self, sat, t0, t1, cause="random") -> None:
        self._row(ACCELERATOR, cause, NO_EFFECT, str(self.sat_names[sat]), [sat],
                  [self.sat_names[sat]], [], t0, t1)
        self._acc.append((int(sat), t0, t1))

    def _add_station(self, cause, g, t0, t1) -> None:
        self._row(GROUND_STATION, cause, FAILED, str(self.station_names[g]),
                  [self.n_sats + g], [self.station_names[g]], [], t0, t1)
        self._st.append((int(g), t0, t1))

    def _freeze(self) -> None:
        def cols(rows, n, dtypes):
            if not rows:
                return [np.empty(0, d) for d in dtypes]
            return [np.array([r[i] for r in rows], dtype=d) for i, d in enumerate(dtypes)]

        i64 = np.int64
        (self.sat_id, self.sat_t0, self.sat_t1, self.sat_eff, self.sat_kind_) = cols(
            self._sat, 5, (i64, i64, i64, np.int8, np.int8))
        self.head_sat, self.head_idx, self.head_t0, self.head_t1 = cols(
            self._head, 4, (i64, i64, i64, i64))
        self.st_id, self.st_t0, self.st_t1 = cols(self._st, 3, (i64, i64, i64))
        self.acc_id, self.acc_t0, self.acc_t1 = cols(self._acc, 3, (i64, i64, i64))
        self.reg_unit = (np.array([r[0] for r in self._reg]) if self._reg
                         else np.empty((0, 3)))
        self.reg_rad, self.reg_t0, self.reg_t1, self.reg_eff = cols(
            [r[1:] for r in self._reg], 4, (np.float64, i64, i64, np.int8))
        order = np.lexsort((np.arange(len(self._rows)), [r["start_ns"] for r in self._rows]))
        rows = [self._rows[i] for i in order]
        self.events = {
            "event": np.arange(len(rows), dtype=np.int32),
            "kind": np.array([r["kind"] for r in rows], dtype=object),
            "cause": np.array([r["cause"] for r in rows], dtype=object),
            "effect": np.array([r["effect"] for r in rows], dtype=object),
            "target": np.array([r["target"] for r in rows], dtype=object),
            "node_ids": [r["node_ids"] for r in rows],
            "node_names": [r["node_names"] for r in rows],
            "heads": [r["heads"] for r in rows],
            "start_s": np.array([r["start_ns"] / NS for r in rows], dtype=np.float64),
            "end_s": np.array([r["end_ns"] / NS if r["end_ns"] < _FOREVER else np.inf
                               for r in rows], dtype=np.float64),
        }

    # -- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    def counts_by_kind(self) -> dict:
        """Number of events of each kind (kinds with none left out)."""
        kinds, counts = np.unique(self.events["kind"].astype(str), return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}

    def at(self, t_ns: int, r_km=None) -> StepFaults:
        """The mask at ``t_ns``; ``r_km`` (N, 3) Earth-fixed positions for region events."""
        t = int(t_ns)
        n = self.n_sats
        act = (self.sat_t0 <= t) & (t < self.sat_t1)
        sats = self.sat_id[act]
        prio = self.sat_eff[act].astype(np.int64)
        prio = np.where(prio == FAILED, 2, 1) * 16 + _KIND_RANK[self.sat_kind_[act]]
        kinds = self.sat_kind_[act].astype(np.int64)
        if self.reg_rad.shape[0] and r_km is not None:
            ract = np.nonzero((self.reg_t0 <= t) & (t < self.reg_t1))[0]
            if ract.shape[0]:
                r = np.asarray(r_km, dtype=np.float64)
                with np.errstate(invalid="ignore", divide="ignore"):
                    u = r / np.linalg.norm(r, axis=1)[:, None]
                ang = np.arccos(np.clip(u @ self.reg_unit[ract].T, -1.0, 1.0))  # (N, R)
                inside = ang <= self.reg_rad[ract][None, :]
                si, ri = np.nonzero(inside)
                eff = self.reg_eff[ract][ri].astype(np.int64)
                sats = np.concatenate([sats, si])
                prio = np.concatenate([prio, np.where(eff == FAILED, 2, 1) * 16
                                       + _KIND_RANK[REGION]])
                kinds = np.concatenate([kinds, np.full(si.shape[0], REGION)])
        best = np.zeros(n, np.int64)
        np.maximum.at(best, sats, prio)
        effect = np.where(best >= 32, FAILED, np.where(best >= 16, LASERS, NO_EFFECT))
        kind = np.full(n, -1, np.int64)
        # the kind of the winning interval (ties: any of them, they share the kind rank)
        win = prio == best[sats]
        kind[sats[win]] = kinds[win]
        hact = (self.head_t0 <= t) & (t < self.head_t1)
        st = np.zeros(self.n_ground, dtype=bool)
        st[self.st_id[(self.st_t0 <= t) & (t < self.st_t1)]] = True
        return StepFaults(effect.astype(np.int8), kind.astype(np.int8), self.head_sat[hact],
                          self.head_idx[hact], st)

    def satellites_down(self, t_ns: int, r_km=None) -> np.ndarray:
        """Satellites with no links at all at ``t_ns`` (bool (N,)): the per-node down query."""
        return self.at(t_ns, r_km).sat_effect == FAILED

    def lasers_down(self, t_ns: int, r_km=None) -> np.ndarray:
        """Satellites whose laser terminals are down (failed ones included)."""
        return self.at(t_ns, r_km).sat_effect != NO_EFFECT

    def stations_down(self, t_ns: int) -> np.ndarray:
        return self.at(t_ns).station_failed

    def accelerators_down(self, t_ns: int) -> np.ndarray:
        """Satellites whose accelerators are restarting at ``t_ns`` (bool (N,))."""
        t = int(t_ns)
        down = np.zeros(self.n_sats, dtype=bool)
        down[self.acc_id[(self.acc_t0 <= t) & (t < self.acc_t1)]] = True
        return down

    def node_outages(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(node, start_s, end_s)`` of every interval a satellite cannot compute: failed
        satellites (effect ``failed``; region events, whose satellites move, are left out)
        and accelerator restarts. The training jobs' interruptions (:mod:`meshnet.jobs`)."""
        keep = self.sat_eff == FAILED
        node = np.concatenate([self.sat_id[keep], self.acc_id])
        t0 = np.concatenate([self.sat_t0[keep], self.acc_t0]) / NS
        t1 = np.concatenate([self.sat_t1[keep], self.acc_t1]).astype(np.float64)
        t1 = np.where(t1 >= _FOREVER, np.inf, t1 / NS)
        order = np.lexsort((node, t0))
        return node[order], t0[order], t1[order]

    def head_hours_lost(self, t0_ns: int, t1_ns: int, heads: int | None = None) -> float:
        """Laser-head hours lost in ``[t0, t1)``: every head of a failed or laser-down
        satellite plus each failed head, summed over events (overlaps counted once per event;
        region events, whose satellites change with time, are not counted)."""
        h = int(heads or self.heads)

        def overlap(a, b):
            return np.clip(np.minimum(b, t1_ns) - np.maximum(a, t0_ns), 0, None).sum() / NS

        return (h * overlap(self.sat_t0, self.sat_t1)
                + overlap(self.head_t0, self.head_t1)) / 3600.0


_FOREVER = np.iinfo(np.int64).max // 4


def _ns(t_s: float) -> int:
    return _FOREVER if not np.isfinite(t_s) else int(round(t_s * NS))


def _renewal(rng, n: int, mtbf_s: float, mttr_s, t_end_s: float, fixed_repair=False):
    """Alternating up/down renewal process of ``n`` units from time 0 to ``t_end_s``.

    Up times are exponential with mean ``mtbf_s``; down times exponential with mean
    ``mttr_s`` (or exactly ``mttr_s`` when ``fixed_repair``; None: down for good). Each
    round draws one up (and down) time for every unit, so the draws do not depend on
    ``t_end_s``. Yields ``(unit, start_s, end_s)`` in round order.
    """
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        start = t + rng.exponential(mtbf_s, n)
        if mttr_s is None:
            end = np.full(n, np.inf)
        elif fixed_repair:
            end = start + float(mttr_s)
        else:
            end = start + rng.exponential(mttr_s, n)
        hit = np.nonzero(alive & (start < t_end_s))[0]
        for u in hit:
            yield int(u), float(start[u]), float(end[u])
        alive &= (start < t_end_s) & np.isfinite(end)
        t = end


def schedule_for(scenario, world, grid, heads_per_satellite=None) -> FaultSchedule | None:
    """The run's schedule (None when ``[faults]`` has no events and no random processes).

    Events are drawn up to the end of ``grid``; the draws do not depend on it (see the
    module docs), so windows of one run agree.
    """
    cfg = getattr(scenario, "faults", None)
    if cfg is None or not cfg.active or getattr(world, "hypatia", None) is not None:
        return None
    step_ns = grid.step_ns if len(grid) > 1 else int(round(scenario.run.step_s * NS))
    t_end = int(grid.t_ns[-1]) + step_ns if len(grid) else 0
    return FaultSchedule.build(cfg, world.constellation, world.ground, t_end,
                               seed=int(scenario.run.seed),
                               heads_per_satellite=heads_per_satellite,
                               accelerators_per_node=_accelerators_per_node(scenario),
                               where=str(scenario.source or "<scenario>"))


def _accelerators_per_node(scenario) -> int:
    compute = getattr(getattr(scenario, "traffic", None), "compute", None)
    return int(getattr(compute, "accelerators_per_node", 1) or 1)
