"""Ground-to-satellite links (radio, so no acquisition time: a selected link is up at once).

Two rules:

* elevation (default): a station sees the satellites above ``min_elevation_deg`` (true
  elevation above the station's ellipsoid horizon) and links to the ``gsl_per_station``
  highest of them;
* Hypatia: when ``max_gsl_length_km`` is set (in ``[ground]`` or by a Hypatia directory), a
  station links to every satellite within that distance, with no elevation test.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import MeshnetError


def station_up_vectors(lat_deg, lon_deg) -> np.ndarray:
    """Unit ellipsoid normals (local vertical) of stations at geodetic latitude/longitude."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


class GroundLinks:
    """Selects each step's ground-to-satellite links.

    Parameters
    ----------
    ground_cfg : GroundConfig
        ``min_elevation_deg``, ``gsl_per_station``, ``gsl_capacity_bps``,
        ``max_gsl_length_km``.
    ground : GroundStations
        ``r_km`` (G, 3) Earth-fixed, ``lat_deg``, ``lon_deg``.
    max_gsl_length_km : float, optional
        Overrides the config's distance rule (a Hypatia directory's own value).
    """

    def __init__(self, ground_cfg, ground, max_gsl_length_km: float | None = None):
        self.min_elevation_deg = float(getattr(ground_cfg, "min_elevation_deg", 25.0))
        self.per_station = int(getattr(ground_cfg, "gsl_per_station", 1) or 1)
        self.capacity_bps = float(getattr(ground_cfg, "gsl_capacity_bps", 20e9))
        own = getattr(ground_cfg, "max_gsl_length_km", None)
        self.max_gsl_length_km = own if own is not None else max_gsl_length_km
        if ground is None or len(getattr(ground, "names", ())) == 0:
            self.r_gs = np.zeros((0, 3))
            self.up = np.zeros((0, 3))
        else:
            self.r_gs = np.ascontiguousarray(ground.r_km, dtype=np.float64).reshape(-1, 3)
            self.up = np.ascontiguousarray(station_up_vectors(ground.lat_deg, ground.lon_deg))
        self.n_ground = self.r_gs.shape[0]

    def step(self, r_km) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sat, station, length_km)`` of the selected links, sorted by (sat, station)."""
        from ..kernels._links import gsl_count, gsl_fill

        if self.n_ground == 0:
            e = np.empty(0, np.int32)
            return e, e, np.empty(0, np.float64)
        r = np.ascontiguousarray(r_km, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] != 3:
            raise MeshnetError(f"satellite positions must be (N, 3), got {r.shape}")
        use_len = self.max_gsl_length_km is not None
        sin_min = math.sin(math.radians(self.min_elevation_deg))
        max_len = float(self.max_gsl_length_km) if use_len else 0.0
        counts = np.empty(self.n_ground, dtype=np.int64)
        gsl_count(r, self.r_gs, self.up, sin_min, max_len, use_len, counts)
        offsets = np.zeros(self.n_ground + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        sat = np.empty(total, dtype=np.int64)
        sin_el = np.empty(total, dtype=np.float64)
        length = np.empty(total, dtype=np.float64)
        gsl_fill(r, self.r_gs, self.up, sin_min, max_len, use_len, offsets, sat, sin_el, length)
        station = np.repeat(np.arange(self.n_ground, dtype=np.int64), counts)
        if not use_len:
            # Highest elevation first, ties by satellite id; keep the first few per station.
            order = np.lexsort((sat, -sin_el, station))
            rank = np.arange(total) - offsets[station[order]]
            keep = order[rank < self.per_station]
            sat, station, length = sat[keep], station[keep], length[keep]
        order = np.lexsort((station, sat))
        return (sat[order].astype(np.int32), station[order].astype(np.int32),
                length[order])
