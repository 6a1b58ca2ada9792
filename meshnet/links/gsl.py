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

#: Station-satellite pairs per step above which the threaded kernels are used.
PARALLEL_MIN_PAIRS = 4_000_000


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
        The distance rule's limit when the config sets none (a Hypatia directory's own).
    parallel : bool, optional
        Force the threaded (True) or serial (False) kernels; default by problem size.
    """

    def __init__(self, ground_cfg, ground, max_gsl_length_km: float | None = None,
                 parallel: bool | None = None):
        self.parallel = parallel
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

    def _max_slant_km(self, r_km, min_elevation_deg: float) -> float:
        """Longest slant range at which any satellite can be above the elevation mask.

        ``sqrt(r_s^2 - r_g^2 cos^2 e) - r_g sin e`` grows with the satellite radius and shrinks
        with the station radius, so the farthest satellite and the lowest station bound it
        (with a 1 km margin; the elevation test itself decides).
        """
        r2 = np.einsum("ij,ij->i", r_km, r_km)
        r2 = r2[np.isfinite(r2)]
        if r2.size == 0:
            return 0.0
        rs = math.sqrt(float(r2.max()))
        rg = float(np.min(np.linalg.norm(self.r_gs, axis=1)))
        e = math.radians(min_elevation_deg)
        return math.sqrt(max(rs * rs - (rg * math.cos(e)) ** 2, 0.0)) - rg * math.sin(e) + 1.0

    def step(self, r_km) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sat, station, length_km)`` of the selected links, sorted by (sat, station)."""
        from ..kernels import _links as k

        if self.n_ground == 0:
            e = np.empty(0, np.int32)
            return e, e, np.empty(0, np.float64)
        r = np.ascontiguousarray(r_km, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] != 3:
            raise MeshnetError(f"satellite positions must be (N, 3), got {r.shape}")
        use_len = self.max_gsl_length_km is not None
        sin_min = math.sin(math.radians(self.min_elevation_deg))
        if use_len:
            max_len = float(self.max_gsl_length_km)
        else:
            max_len = self._max_slant_km(r, self.min_elevation_deg)
        max_d2 = max_len * max_len
        counts = np.empty(self.n_ground, dtype=np.int64)
        # Threads only pay off for big jobs: waking them costs more than ~1 ms of work, and
        # far more on a loaded machine.
        parallel = self.parallel if self.parallel is not None else (
            r.shape[0] * self.n_ground >= PARALLEL_MIN_PAIRS)
        count, fill = (k.gsl_count, k.gsl_fill) if parallel else (k.gsl_count_serial,
                                                                   k.gsl_fill_serial)
        count(r, self.r_gs, self.up, sin_min, max_d2, use_len, counts)
        offsets = np.zeros(self.n_ground + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        sat = np.empty(total, dtype=np.int64)
        sin_el = np.empty(total, dtype=np.float64)
        length = np.empty(total, dtype=np.float64)
        fill(r, self.r_gs, self.up, sin_min, max_d2, use_len, offsets, sat, sin_el, length)
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
