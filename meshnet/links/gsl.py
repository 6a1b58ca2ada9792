"""Ground-to-satellite links (radio, so no acquisition time: a selected link is up at once).

Two rules:

* elevation (default): a station has ``antennas`` ground terminals; any satellite above
  ``min_elevation_deg`` (true elevation above the station's ellipsoid horizon) is a candidate.
  Antennas keep their satellite until it sets below the mask or an unlinked candidate is higher
  by more than ``handover_margin_deg``; free antennas spread over the groups in view (group =
  shell and ascending/descending direction) before doubling up, highest first in a group. The
  full rule is in :mod:`meshnet.kernels._gsl` and docs/links.md. Releases are reported as DOWN
  rows (reasons ``below_mask``, ``handover``, ``invalid``).
* Hypatia: when ``max_gsl_length_km`` is set (in ``[ground]`` or by a Hypatia directory), a
  station links to every satellite within that distance, with no elevation test, no antenna
  cap and no memory.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import MeshnetError
from .reasons import BELOW_MASK, DOWN, HANDOVER, INVALID, UP

#: Station-satellite pairs per step above which the threaded kernels are used.
PARALLEL_MIN_PAIRS = 4_000_000

#: Defaults of the elevation rule (also in GroundConfig and docs/links.md).
DEFAULT_ANTENNAS = 8
DEFAULT_HANDOVER_MARGIN_DEG = 10.0


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
        ``min_elevation_deg``, ``antennas``, ``handover_margin_deg``, ``gsl_capacity_bps``,
        ``max_gsl_length_km``.
    ground : GroundStations
        ``r_km`` (G, 3) Earth-fixed, ``lat_deg``, ``lon_deg``.
    max_gsl_length_km : float, optional
        The distance rule's limit when the config sets none (a Hypatia directory's own).
    parallel : bool, optional
        Force the threaded (True) or serial (False) kernels; default by problem size.
    shell : array_like of int, optional
        Each satellite's shell index (-1 or absent: one shell); with the direction of motion it
        makes the groups antennas spread over.

    The elevation rule has memory (which satellite each antenna holds): call :meth:`step` or
    :meth:`step_rows` once per time step, in time order.
    """

    def __init__(self, ground_cfg, ground, max_gsl_length_km: float | None = None,
                 parallel: bool | None = None, shell=None):
        self.parallel = parallel
        self.min_elevation_deg = float(getattr(ground_cfg, "min_elevation_deg", 25.0))
        self.antennas = int(getattr(ground_cfg, "antennas", DEFAULT_ANTENNAS) or 1)
        self.handover_margin_deg = float(getattr(ground_cfg, "handover_margin_deg",
                                                 DEFAULT_HANDOVER_MARGIN_DEG))
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
        self.shell = None if shell is None else np.asarray(shell, dtype=np.int64)
        self._base = None  # 2 * shell of every satellite, cached
        self._n_groups = 2
        #: Satellite held by each antenna (-1: free), the elevation rule's memory.
        self.held = np.full((self.n_ground, self.antennas), -1, dtype=np.int64)

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

    def step(self, r_km, v_km_s=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sat, station, length_km)`` of the links up at this step, sorted by (sat, station).

        ``v_km_s`` (Earth-fixed or inertial: only the z component is used) gives each
        satellite's direction (ascending/descending); without it a shell is one group.
        """
        sat, station, length, state, _ = self.step_rows(r_km, v_km_s)
        up = state == UP
        return sat[up], station[up], length[up]

    def step_rows(self, r_km, v_km_s=None):
        """All ground-link rows of this step: ``(sat, station, length_km, state, reason)``.

        Links up (state ``UP``, reason 0), then, for the elevation rule, the links released at
        this step (state ``DOWN``, reason ``below_mask`` / ``handover`` / ``invalid``, length
        the current distance); all sorted by (sat, station). A satellite is never both.
        """
        from ..kernels import _links as k

        if self.n_ground == 0:
            e = np.empty(0, np.int32)
            return e, e, np.empty(0, np.float64), np.empty(0, np.int8), np.empty(0, np.int8)
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
        if self.parallel is None and 0.0 < max_d2 < math.inf:
            # Only the satellites in the grid cells around each station are tested (the same
            # test, the same arrays as the brute-force kernels below, which remain for an
            # explicit ``parallel`` choice and as the reference in tests/test_gsl.py).
            offsets, sat, sin_el, length = k.gsl_grid(r, self.r_gs, self.up, sin_min, max_d2,
                                                      use_len)
            counts = np.diff(offsets)
            return self._rows(r, v_km_s, use_len, offsets, counts, sat, sin_el, length)
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
        return self._rows(r, v_km_s, use_len, offsets, counts, sat, sin_el, length)

    def _rows(self, r, v_km_s, use_len, offsets, counts, sat, sin_el, length):
        total = int(offsets[-1])
        station = np.repeat(np.arange(self.n_ground, dtype=np.int64), counts)
        state = np.full(total, UP, np.int8)
        reason = np.zeros(total, np.int8)
        if not use_len:
            sat, station, length, state, reason = self._assign(
                r, v_km_s, offsets, sat, station, sin_el, length)
        order = np.lexsort((station, sat))
        return (sat[order].astype(np.int32), station[order].astype(np.int32), length[order],
                state[order], reason[order])

    def groups(self, v_km_s, n_sats: int) -> tuple[np.ndarray, int]:
        """Group of every satellite, ``2 * shell + (0 ascending / 1 descending)``, and count.

        Ascending means moving north (``v_z >= 0``; the same in the Earth-fixed and the
        inertial frame). Without velocities every satellite counts as ascending.
        """
        if self._base is None or self._base.shape[0] != n_sats:
            shell = self.shell
            if shell is None or shell.shape[0] != n_sats:
                shell = np.zeros(n_sats, np.int64)
            shell = np.where(shell >= 0, shell, 0)
            self._base = 2 * shell
            self._n_groups = 2 * (int(shell.max()) + 1 if n_sats else 1)
        if v_km_s is None:
            return self._base, self._n_groups
        v = np.asarray(v_km_s, dtype=np.float64).reshape(n_sats, 3)
        return self._base + (v[:, 2] < 0), self._n_groups

    def _assign(self, r, v_km_s, offsets, sat, station, sin_el, length):
        """The elevation rule: update the antennas, return the up and released rows."""
        from ..kernels._gsl import RELEASE_BELOW_MASK, RELEASE_HANDOVER, gsl_assign

        group, n_groups = self.groups(v_km_s, r.shape[0])
        elev = np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))
        sat_ok = np.isfinite(r[:, 0])  # an SGP4 failure leaves the whole row NaN
        n_max = self.n_ground * self.antennas
        rel_sat = np.empty(n_max, np.int64)
        rel_st = np.empty(n_max, np.int64)
        rel_code = np.empty(n_max, np.int64)
        keep = np.empty(sat.shape[0], np.bool_)
        n_rel = gsl_assign(offsets, sat, group[sat], elev, n_groups, sat_ok,
                           self.handover_margin_deg, self.held, rel_sat, rel_st, rel_code, keep)
        rel_sat, rel_st, rel_code = rel_sat[:n_rel], rel_st[:n_rel], rel_code[:n_rel]
        rel_len = np.linalg.norm(r[rel_sat] - self.r_gs[rel_st], axis=1)
        rel_reason = np.where(rel_code == RELEASE_BELOW_MASK, BELOW_MASK,
                              np.where(rel_code == RELEASE_HANDOVER, HANDOVER, INVALID))
        return (np.concatenate([sat[keep], rel_sat]),
                np.concatenate([station[keep], rel_st]),
                np.concatenate([length[keep], rel_len]),
                np.concatenate([np.full(int(keep.sum()), UP, np.int8),
                                np.full(n_rel, DOWN, np.int8)]),
                np.concatenate([np.zeros(int(keep.sum()), np.int8),
                                rel_reason.astype(np.int8)]))
