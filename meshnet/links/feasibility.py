"""Feasibility of candidate inter-satellite links, one reason code per link and step.

See :mod:`meshnet.links.reasons` for the checks and their order.

Examples
--------
>>> round(geometric_range_km(550.0, grazing_altitude_km=80.0), 1)
5016.6
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import MeshnetError
from ..units import R_EARTH_KM

#: Links per call above which the parallel kernel is used.
PARALLEL_MIN_LINKS = 40_000


def geometric_range_km(altitude_km, altitude_b_km=None, grazing_altitude_km: float = 80.0,
                       r_earth_km: float = R_EARTH_KM):
    """Longest link whose line of sight stays above ``grazing_altitude_km``.

    ``sqrt((R+h_a)^2 - (R+h_g)^2) + sqrt((R+h_b)^2 - (R+h_g)^2)``; with one altitude this is
    Hypatia's ``2 sqrt((R+h)^2 - (R+h_g)^2)``.

    Examples
    --------
    >>> round(geometric_range_km(550.0, 550.0, 80.0), 1)
    5016.6
    """
    hb = altitude_km if altitude_b_km is None else altitude_b_km
    rg = r_earth_km + grazing_altitude_km
    ra = r_earth_km + np.asarray(altitude_km, dtype=np.float64)
    rb = r_earth_km + np.asarray(hb, dtype=np.float64)
    out = np.sqrt(np.maximum(ra * ra - rg * rg, 0.0)) + np.sqrt(np.maximum(rb * rb - rg * rg, 0.0))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class FeasibilityLimits:
    """The numbers the feasibility checks use (from :class:`~meshnet.links.LinksConfig`)."""

    grazing_altitude_km: float = 80.0
    range_cap_km: float = 5400.0
    sun_exclusion_deg: float = 5.0
    polar_cutoff_deg: float | None = 70.0
    max_angular_rate_deg_s: float = 1.0
    cross_seam: bool = False
    coplanar_tolerance_deg: float = 1.0

    @classmethod
    def from_config(cls, cfg, constellation=None) -> FeasibilityLimits:
        """Limits of a links table; a constellation's own ``max_isl_length_km`` caps the range."""
        cap = float(cfg.max_range_km)
        own = getattr(constellation, "max_isl_length_km", None)
        if own is not None and np.isfinite(own) and own > 0:
            cap = min(cap, float(own))
        if getattr(cfg, "capacity_model", None) == "rate_ladder":
            # A link whose lowest rung does not close cannot be UP: the budget's reach.
            cap = min(cap, cfg.link_budget.reach_km())
        return cls(
            grazing_altitude_km=float(cfg.grazing_altitude_km),
            range_cap_km=cap,
            sun_exclusion_deg=float(cfg.sun_exclusion_deg),
            polar_cutoff_deg=None if cfg.polar_cutoff_deg is None else float(
                cfg.polar_cutoff_deg),
            max_angular_rate_deg_s=float(cfg.max_angular_rate_deg_s),
            cross_seam=bool(cfg.cross_seam),
            coplanar_tolerance_deg=float(cfg.coplanar_tolerance_deg),
        )

    @property
    def graze_radius_km(self) -> float:
        return R_EARTH_KM + self.grazing_altitude_km

    def vector(self) -> np.ndarray:
        """The float64 parameter vector of the kernels (layout in ``kernels._links``)."""
        from ..kernels import _links as k
        from ..kernels._geometry import OMEGA_EARTH_RAD_S

        p = np.empty(k.N_PARAMS, dtype=np.float64)
        p[k.P_GRAZE_R_KM] = self.graze_radius_km
        p[k.P_RANGE_CAP_KM] = self.range_cap_km
        p[k.P_COS_SUN] = (math.cos(math.radians(self.sun_exclusion_deg))
                          if self.sun_exclusion_deg > 0 else 2.0)
        p[k.P_SIN_POLAR] = (math.sin(math.radians(self.polar_cutoff_deg))
                            if self.polar_cutoff_deg is not None else 2.0)
        p[k.P_MAX_RATE_RAD_S] = math.radians(self.max_angular_rate_deg_s)
        p[k.P_ALLOW_SEAM] = 1.0 if self.cross_seam else 0.0
        p[k.P_COS_COPLANAR] = math.cos(math.radians(self.coplanar_tolerance_deg))
        p[k.P_OMEGA] = OMEGA_EARTH_RAD_S
        p[k.P_R_EARTH_KM] = R_EARTH_KM
        return p


def plane_keys(constellation, n: int | None = None) -> np.ndarray:
    """One int64 per satellite naming its (shell, plane), or -1 where unknown."""
    shell = getattr(constellation, "shell", None)
    plane = getattr(constellation, "plane", None)
    if n is None:
        n = len(constellation.names)
    if shell is None or plane is None:
        return np.full(n, -1, dtype=np.int64)
    shell = np.asarray(shell, dtype=np.int64)
    plane = np.asarray(plane, dtype=np.int64)
    return np.where((shell >= 0) & (plane >= 0), shell * (1 << 20) + plane, -1)


def evaluate_links(r_km, v_km_s, a, b, sun_dir, limits: FeasibilityLimits,
                   plane_key=None, parallel: bool | None = None):
    """Reason code and length of every candidate link ``a[i]--b[i]`` at one instant.

    Parameters
    ----------
    r_km, v_km_s : array_like
        ``(N, 3)`` Earth-fixed positions (km) and velocities (km/s); NaN for a satellite
        without a position.
    a, b : array_like
        Satellite ids of the link ends.
    sun_dir : array_like
        ``(3,)`` unit vector towards the Sun, Earth-fixed.
    limits : FeasibilityLimits
    plane_key : array_like, optional
        ``(N,)`` plane labels from :func:`plane_keys`; where -1 (or not given), "same plane" is
        decided from the orbit normals (within ``coplanar_tolerance_deg``).

    Returns
    -------
    reason : numpy.ndarray
        int8 codes (:data:`~meshnet.links.reasons.REASON_NAMES`), 0 when feasible.
    length_km : numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[7000.0, 0, 0], [-7000.0, 0, 0]])
    >>> v = np.array([[0, 7.5, 0], [0, -7.5, 0]])
    >>> reason, _ = evaluate_links(r, v, [0], [1], [0, 0, 1.0], FeasibilityLimits())
    >>> reason.tolist()  # opposite sides of the Earth
    [3]
    """
    from ..kernels import _links as k

    r = np.ascontiguousarray(r_km, dtype=np.float64)
    v = np.ascontiguousarray(v_km_s, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != 3 or v.shape != r.shape:
        raise MeshnetError(f"positions and velocities must both be (N, 3), got {r.shape} "
                           f"and {v.shape}")
    a = np.ascontiguousarray(a, dtype=np.int32)
    b = np.ascontiguousarray(b, dtype=np.int32)
    if a.shape != b.shape:
        raise MeshnetError("link ends a and b must have the same length")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= r.shape[0]):
        raise MeshnetError(f"link ends must be satellite ids 0..{r.shape[0] - 1}")
    sun = np.ascontiguousarray(sun_dir, dtype=np.float64).reshape(3)
    if plane_key is None:
        plane_key = np.full(r.shape[0], -1, dtype=np.int64)
    plane_key = np.ascontiguousarray(plane_key, dtype=np.int64)
    reason = np.empty(a.shape[0], dtype=np.int8)
    length = np.empty(a.shape[0], dtype=np.float64)
    if parallel is None:
        parallel = a.shape[0] >= PARALLEL_MIN_LINKS
    kern = k.feasibility_parallel if parallel else k.feasibility_serial
    kern(r, v, a, b, plane_key, sun, limits.vector(), reason, length)
    return reason, length
