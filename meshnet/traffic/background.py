"""Background traffic between ground stations: a gravity model weighted by population.

The demand from station ``i`` to station ``j`` (ordered pairs, ``i != j``) is proportional to

    population_i * population_j / distance_ij ** distance_exponent

over pairs at least ``min_distance_km`` apart on the great circle (closer pairs would not use
the satellite mesh), optionally multiplied by a log-normal factor drawn with the scenario seed,
optionally cut to the heaviest ``pairs``, and scaled so that all demands add up to
``total_offered_bps``. ``distance_exponent = 0`` is the plain product of populations.
Stations whose population is unknown (NaN) are left out; if no population is known at all,
every station weighs the same.

Examples
--------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> from meshnet.traffic.config import BackgroundConfig
>>> ground = SimpleNamespace(names=np.array(["A", "B", "C"]), lat_deg=np.array([0., 0., 0.]),
...     lon_deg=np.array([0., 30., 60.]), population=np.array([3e6, 1e6, 1e6]))
>>> src, dst, bps = background_demands(BackgroundConfig(total_offered_bps=14e9), ground,
...                                    np.random.default_rng(0), n_satellites=10)
>>> list(zip(src.tolist(), dst.tolist(), (bps / 1e9).round(3).tolist()))
[(10, 11, 3.0), (10, 12, 3.0), (11, 10, 3.0), (11, 12, 1.0), (12, 10, 3.0), (12, 11, 1.0)]
"""

from __future__ import annotations

import numpy as np

from ..units import R_EARTH_KM
from .config import BackgroundConfig
from .placement import _ids_by_name


def great_circle_km(lat_deg, lon_deg) -> np.ndarray:
    """``(G, G)`` great-circle distances on a sphere of radius ``R_EARTH_KM`` (haversine)."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    return 2.0 * R_EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def background_demands(cfg: BackgroundConfig, ground, rng: np.random.Generator, *,
                       n_satellites: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steady demands between ground stations.

    Parameters
    ----------
    cfg : BackgroundConfig
        The ``[traffic.background]`` table.
    ground : GroundStations
        Needs ``names``, ``lat_deg``, ``lon_deg`` and ``population`` (NaN = unknown).
    rng : numpy.random.Generator
        Seeded from the scenario's seed; used only when ``noise_sigma > 0``.
    n_satellites : int
        Satellites in the network: ground station ``g`` is node ``n_satellites + g``.

    Returns
    -------
    src, dst : numpy.ndarray
        ``(F,)`` int32 node ids, ordered pairs sorted by (src, dst).
    demand_bps : numpy.ndarray
        ``(F,)`` float64, adding up to ``total_offered_bps`` (empty when disabled or no pair
        qualifies).

    Raises
    ------
    NodeNameError
        ``cfg.stations`` names an unknown station.
    """
    empty = (np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float64))
    names = np.asarray(ground.names, dtype=object) if ground is not None else np.empty(0, object)
    g = names.shape[0]
    if not cfg.enabled or cfg.total_offered_bps <= 0 or g < 2:
        return empty
    if cfg.stations:
        idx = _ids_by_name(cfg.stations, names, np.empty(0, object),
                           "ground station in [traffic.background].stations")
    else:
        idx = np.arange(g)
    pop = np.asarray(ground.population, dtype=np.float64)[idx]
    if np.isnan(pop).all():
        pop = np.ones_like(pop)
    else:
        keep = ~np.isnan(pop)
        idx, pop = idx[keep], pop[keep]
    if cfg.top_n is not None and idx.shape[0] > cfg.top_n:
        top = np.argsort(-pop, kind="stable")[:cfg.top_n]
        top.sort()
        idx, pop = idx[top], pop[top]
    lat = np.asarray(ground.lat_deg, dtype=np.float64)[idx]
    lon = np.asarray(ground.lon_deg, dtype=np.float64)[idx]
    dist = great_circle_km(lat, lon)
    i, j = np.nonzero(~np.eye(idx.shape[0], dtype=bool) & (dist >= cfg.min_distance_km))
    if i.size == 0:
        return empty
    w = pop[i] * pop[j]
    if cfg.distance_exponent > 0:
        w = w / dist[i, j] ** cfg.distance_exponent
    if cfg.noise_sigma > 0:
        w = w * rng.lognormal(0.0, cfg.noise_sigma, size=w.shape[0])
    if cfg.pairs is not None and w.shape[0] > cfg.pairs:
        heavy = np.sort(np.argsort(-w, kind="stable")[:cfg.pairs])
        i, j, w = i[heavy], j[heavy], w[heavy]
    keep = w > 0
    i, j, w = i[keep], j[keep], w[keep]
    if w.size == 0:
        return empty
    demand = w * (cfg.total_offered_bps / w.sum())
    src = (n_satellites + idx[i]).astype(np.int32)
    dst = (n_satellites + idx[j]).astype(np.int32)
    return src, dst, demand.astype(np.float64)

