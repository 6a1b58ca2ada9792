"""The physical objects a scenario describes: satellites and ground stations, with node ids.

Node ids are int32: satellites ``0..N-1`` in constellation order, then ground stations
``N..N+G-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import GROUND, SATELLITE


@dataclass(frozen=True)
class World:
    """Satellites and ground stations of a scenario, loaded once per run."""

    constellation: object
    ground: object
    hypatia: object | None = None

    @property
    def n_sats(self) -> int:
        return int(self.constellation.n)

    @property
    def n_ground(self) -> int:
        return len(self.ground.names)

    @property
    def n_nodes(self) -> int:
        return self.n_sats + self.n_ground

    @property
    def node_names(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.constellation.names, dtype=object),
                               np.asarray(self.ground.names, dtype=object)])

    @property
    def node_kind(self) -> np.ndarray:
        kind = np.full(self.n_nodes, SATELLITE, dtype=np.int8)
        kind[self.n_sats:] = GROUND
        return kind


def build_world(scenario) -> World:
    """Load the constellation and ground stations a scenario names.

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> w = build_world(load_scenario("starlink_550"))
    >>> w.n_sats, w.n_ground
    (1584, 100)
    """
    from .orbits.constellation import load_constellation
    from .orbits.ground import load_ground

    cfg = scenario.constellation
    if getattr(cfg, "hypatia_dir", None):
        from .orbits.hypatia import load_hypatia_dir

        net = load_hypatia_dir(scenario.base_dir / cfg.hypatia_dir)
        return World(constellation=net.constellation, ground=net.ground, hypatia=net)
    constellation = load_constellation(cfg, scenario.run.epoch, scenario.base_dir)
    ground = load_ground(scenario.ground, scenario.base_dir)
    _report_health(constellation, scenario)
    return World(constellation=constellation, ground=ground)


#: Eccentricity above which a satellite is reported as off a LEO mesh's near-circular regime.
MAX_ECCENTRICITY = 0.02
#: Mean motion below this (rev/day; GEO is 1.0) is reported as a broken or non-LEO element set.
MIN_MEAN_MOTION_REV_PER_DAY = 0.5
#: Instants checked across the run for SGP4 errors (start, end and evenly in between).
HEALTH_SAMPLES = 25


def orbit_health(constellation, epoch, duration_s: float) -> dict[str, list[int]]:
    """Satellites that will not behave in a run: reason -> satellite indices.

    Reasons: an SGP4 error code (decay, eccentricity out of range, ...) at any of
    :data:`HEALTH_SAMPLES` instants across ``[epoch, epoch + duration_s]``; eccentricity above
    :data:`MAX_ECCENTRICITY`; mean motion below :data:`MIN_MEAN_MOTION_REV_PER_DAY`. Such
    satellites stay in the run; where SGP4 fails they have no position, and their links carry
    the reason ``invalid``.

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> sc = load_scenario("starlink_550")
    >>> orbit_health(build_world(sc).constellation, sc.run.epoch, sc.run.duration_s)
    {}
    """
    import math

    from sgp4.api import SatrecArray

    from .orbits.propagate import SGP4_STATUS
    from .timegrid import TimeGrid

    sats = constellation.satrecs
    out: dict[str, list[int]] = {}
    if not sats:
        return out
    ecc = np.array([s.ecco for s in sats])
    n_rev_day = np.array([s.no_kozai for s in sats]) * 1440.0 / (2 * math.pi)
    for k in np.flatnonzero(ecc > MAX_ECCENTRICITY):
        out.setdefault(f"eccentric (e > {MAX_ECCENTRICITY})", []).append(int(k))
    for k in np.flatnonzero(~(n_rev_day >= MIN_MEAN_MOTION_REV_PER_DAY)):
        out.setdefault(f"mean motion below {MIN_MEAN_MOTION_REV_PER_DAY} rev/day", []).append(
            int(k))
    samples = max(2, min(HEALTH_SAMPLES, int(duration_s // 60) + 1))
    t_s = np.linspace(0.0, float(duration_s), samples)
    grid = TimeGrid(epoch, np.round(t_s * 1e9).astype(np.int64))
    jd, fr = grid.jd_utc()
    err, _, _ = SatrecArray(list(sats)).sgp4(jd, fr)
    first = np.where(err.any(axis=1), err[np.arange(len(sats)), np.argmax(err != 0, axis=1)], 0)
    for k in np.flatnonzero(first):
        reason = SGP4_STATUS.get(int(first[k]), f"SGP4 error {int(first[k])}")
        out.setdefault(f"SGP4 fails within the run: {reason}", []).append(int(k))
    return out


def _report_health(constellation, scenario) -> None:
    """One stderr line per reason (via the ``meshnet`` logger), with a count and examples."""
    import logging

    try:
        health = orbit_health(constellation, scenario.run.epoch, scenario.run.duration_s)
    except Exception as exc:  # a report must never stop a run  # noqa: BLE001
        logging.getLogger("meshnet").warning("meshnet: note: orbit check skipped (%s)", exc)
        return
    names = constellation.names
    for reason, ids in health.items():
        examples = ", ".join(str(names[k]) for k in ids[:3]) + (", ..." if len(ids) > 3 else "")
        logging.getLogger("meshnet").warning(
            "meshnet: note: %d of %d satellites: %s (%s); their links are 'invalid' "
            "while they have no position", len(ids), len(names), reason, examples)
