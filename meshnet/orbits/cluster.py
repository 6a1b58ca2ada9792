"""A formation cluster like Google's Suncatcher: N satellites flying within a kilometre of each
other around a reference orbit, neighbours 100 to 200 m apart.

Design
------
Each satellite is a passive relative orbit obtained from small differences of mean orbital
elements (no thrust, no special propagator), so the cluster propagates through the same SGP4
path as every other satellite. The formation is a flat hexagonal lattice of points ``q_k``
(spacing ``d``) mapped onto the two orthonormal *general circular orbit* modes of the
Clohessy-Wiltshire (Hill) equations. In the Hill frame of the reference orbit (x radial,
y along-track, z cross-track, u = argument of latitude)::

    m1(u) = ( sin u / 2,  cos u,  sqrt(3)/2 sin u )
    m2(u) = ( cos u / 2, -sin u,  sqrt(3)/2 cos u )
    r_k(u) = q_k1 m1(u) + q_k2 m2(u)

``m1`` and ``m2`` are unit length and orthogonal at every ``u``, so the lattice is rigid to
first order: it turns once per orbit in a plane tilted 30 deg from the along-track/cross-track
plane, and every distance between two satellites (and to the centre) stays at its lattice
value. Reference orbit + Hill-frame offsets would need a custom propagator; element
differences keep one propagation path and include J2 and drag consistently.

The modes are turned into relative orbital elements (D'Amico's near-circular set)::

    de_x = -q2 / (2a),  de_y = -q1 / (2a),  di_x = sqrt(3)/2 q1 / a,  di_y = -sqrt(3)/2 q2 / a,
    da = 0,  dlambda = 0

and then into mean elements of each satellite. J2 would make satellites with different
inclination drift apart along-track (their SGP4 mean motion recovery and secular rates differ),
so each satellite's Kozai mean motion is tuned until its secular drift of mean argument of
latitude plus ``cos(i) x`` nodal drift equals the reference's. What remains are SGP4's
short-period terms and second-order effects: with the defaults (81 satellites, 150 m lattice)
neighbour distances stay between 137 and 163 m over an orbit and between 117 and 185 m over
three days. The lattice spacing is the middle of the configured bounds (smaller if the radius
requires); tests check the bounds over a whole orbit.

Examples
--------
>>> from datetime import datetime, UTC
>>> from meshnet.orbits.config import ClusterConfig
>>> c = cluster_constellation(ClusterConfig(), datetime(2025, 6, 1, tzinfo=UTC))
>>> c.n, c.names[0], round(c.shells[0].inclination_deg, 1)
(81, 'C-00', 98.0)
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from ..errors import ScenarioError
from ..units import R_EARTH_KM
from .config import ClusterConfig
from .constellation import Constellation, ShellInfo
from .walker import make_satrec, mean_motion_from_altitude

#: WGS72 J2 (SGP4's value).
_J2 = 0.001082616
#: Mean motion of the mean Sun, rad/day (one tropical year), which sun-synchronous nodes follow.
_SUN_RATE_RAD_DAY = 2.0 * math.pi / 365.2421897
_TAU = 2.0 * math.pi


def sun_synchronous_inclination_deg(altitude_km: float) -> float:
    """Inclination whose J2 nodal regression follows the mean Sun (circular orbit).

    Examples
    --------
    >>> round(sun_synchronous_inclination_deg(650.0), 2)
    97.99
    """
    a = R_EARTH_KM + altitude_km
    n_rad_day = mean_motion_from_altitude(altitude_km) * _TAU
    cos_i = -_SUN_RATE_RAD_DAY / (1.5 * n_rad_day * _J2 * (R_EARTH_KM / a) ** 2)
    if cos_i < -1.0:
        raise ScenarioError(f"no sun-synchronous orbit at {altitude_km} km; set "
                            "[constellation.cluster].inclination_deg")
    return math.degrees(math.acos(cos_i))


def mean_sun_right_ascension_deg(epoch: datetime) -> float:
    """Right ascension of the mean Sun (its mean longitude), good to about 1 deg."""
    jd = epoch.timestamp() / 86400.0 + 2440587.5
    return (280.46061837 + 0.98564736629 * (jd - 2451545.0)) % 360.0


def hex_lattice(n: int, spacing_km: float) -> np.ndarray:
    """The ``n`` points of a hexagonal lattice (spacing ``spacing_km``) closest to the origin,
    ordered by distance then angle; (n, 2) km."""
    if n <= 0:
        return np.zeros((0, 2))
    k = int(math.ceil(math.sqrt(n))) + 2
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    x = (i + 0.5 * j).ravel()
    y = (j * math.sqrt(3.0) / 2.0).ravel()
    r = np.round(np.hypot(x, y), 9)
    ang = np.round(np.arctan2(y, x) % _TAU, 9)
    order = np.lexsort((ang, r))[:n]
    return np.stack([x[order], y[order]], axis=1) * spacing_km


def lattice_pairs(points_km: np.ndarray, spacing_km: float) -> np.ndarray:
    """(K, 2) int32 index pairs of nearest lattice neighbours (distance ~ spacing)."""
    if len(points_km) < 2:
        return np.zeros((0, 2), dtype=np.int32)
    d = np.linalg.norm(points_km[:, None, :] - points_km[None, :, :], axis=2)
    a, b = np.nonzero(np.triu(d < 1.01 * spacing_km, k=1))
    return np.stack([a, b], axis=1).astype(np.int32)


def _drift_rate(sat, cos_i_ref: float) -> float:
    """Secular along-track rate (rad/min): mean argument of latitude + cos(i) x node."""
    return sat.mdot + sat.argpdot + sat.nodedot * cos_i_ref


def cluster_constellation(cfg: ClusterConfig, epoch: datetime) -> Constellation:
    """Satellites of a formation cluster (see the module notes for the design)."""
    n = cfg.n_sats
    spacing = 0.5 * (cfg.spacing_min_km + cfg.spacing_max_km)
    unit = hex_lattice(n, 1.0)
    extent = float(np.max(np.linalg.norm(unit, axis=1))) if n > 1 else 0.0
    if extent * spacing > cfg.radius_km:
        spacing = cfg.radius_km / extent
        if spacing < cfg.spacing_min_km * (1.0 + 1e-9):
            raise ScenarioError(
                f"[constellation.cluster]: {n} satellites at least {cfg.spacing_min_km} km apart "
                f"do not fit within radius_km = {cfg.radius_km} (a hexagonal lattice needs "
                f"{extent * cfg.spacing_min_km:.3f} km); raise radius_km or lower n_sats")
    q = unit * spacing
    a_km = R_EARTH_KM + cfg.altitude_km
    inc_ref = (cfg.inclination_deg if cfg.inclination_deg is not None
               else sun_synchronous_inclination_deg(cfg.altitude_km))
    raan_ref = (cfg.raan_deg if cfg.raan_deg is not None
                else mean_sun_right_ascension_deg(epoch) + 15.0 * (cfg.ltan_hours - 12.0))
    n_ref = mean_motion_from_altitude(cfg.altitude_km)
    i_rad = math.radians(inc_ref)
    sin_i, cos_i = math.sin(i_rad), math.cos(i_rad)
    if abs(sin_i) < 1e-6:
        raise ScenarioError("[constellation.cluster].inclination_deg must not be 0 or 180 "
                            "(the formation uses node differences)")
    u_ref = cfg.arg_latitude_deg

    def build(k: int, mean_motion: float):
        q1, q2 = q[k]
        dex, dey = -q2 / (2.0 * a_km), -q1 / (2.0 * a_km)
        dix, diy = math.sqrt(3.0) / 2.0 * q1 / a_km, -math.sqrt(3.0) / 2.0 * q2 / a_km
        ecc = math.hypot(dex, dey)
        argp = math.degrees(math.atan2(dey, dex)) if ecc > 0.0 else 0.0
        draan = math.degrees(diy / sin_i)
        u = u_ref - draan * cos_i  # dlambda = du + dOmega cos i = 0
        return make_satrec(k + 1, epoch, inclination_deg=inc_ref + math.degrees(dix),
                           raan_deg=raan_ref + draan, eccentricity=ecc, arg_perigee_deg=argp,
                           mean_anomaly_deg=u - argp, mean_motion_rev_per_day=mean_motion)

    reference = make_satrec(0, epoch, inclination_deg=inc_ref, raan_deg=raan_ref,
                            eccentricity=0.0, arg_perigee_deg=0.0, mean_anomaly_deg=u_ref,
                            mean_motion_rev_per_day=n_ref)
    target = _drift_rate(reference, cos_i)
    sats = []
    for k in range(n):
        mm = n_ref
        sat = build(k, mm)
        for _ in range(4):  # Newton on the Kozai mean motion: d(rate)/d(n) ~ 1
            miss = _drift_rate(sat, cos_i) - target  # rad/min
            if abs(miss) < 1e-15:
                break
            mm -= miss * 1440.0 / _TAU
            sat = build(k, mm)
        sats.append(sat)
    width = max(2, len(str(n - 1)))
    names = np.array([f"{cfg.name}-{k:0{width}d}" for k in range(n)], dtype=object)
    info = ShellInfo(name=cfg.name, altitude_km=float(cfg.altitude_km),
                     inclination_deg=float(inc_ref), n_planes=1, sats_per_plane=n,
                     pattern="cluster", phasing=0)
    return Constellation(names=names, satrecs=tuple(sats), shell=np.zeros(n),
                         plane=np.zeros(n), slot=np.arange(n), shells=(info,),
                         cluster_pairs=lattice_pairs(q, spacing),
                         cluster_spacing_km=(float(cfg.spacing_min_km),
                                             float(cfg.spacing_max_km)),
                         cluster_radius_km=float(cfg.radius_km), source="cluster")
