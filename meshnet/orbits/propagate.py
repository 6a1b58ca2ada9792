"""Satellite positions and velocities in the Earth-fixed frame (ITRS), the Sun's direction, and
geodetic coordinates.

``propagate`` runs SGP4 for all satellites over a batch of times, then rotates TEME into ITRS
with the rotation skyfield itself uses:
``ITRS <- TEME = W(xp, yp) . Rz(-theta_GMST1982(UT1))``, which is exactly skyfield's
``itrs.rotation_at(t) @ TEME.rotation_at(t).T`` (the precession-nutation matrices cancel), with
UT1 and the polar motion ``W`` from skyfield-data's ``finals2000A.all`` (the timescale of
:mod:`meshnet.orbits._skyfield` installs its polar-motion table; without ``W`` positions are
off by 10-15 m). The rotation is computed once per time and applied to all satellites.

Two SGP4 engines give the same numbers (to about a micrometre; tests hold them to each other):

- ``method="sgp4"``: sgp4's own ``SatrecArray`` (Vallado's C++), all satellites x a batch of
  times per call, then a batched matrix product for the rotation.
- ``method="numba"``: a Numba port of SGP4's near-Earth propagation fused with the rotation,
  time steps in parallel (``meshnet/orbits/_kernels.py``); satellites in deep space (period
  of 225 min or more) still go through ``SatrecArray``. ``SatrecArray`` takes about 2.4 ms per
  step for 4,408 satellites on a 2-core machine, above the 2 ms budget; the fused kernel needs
  about half that on one core and scales with cores.
- ``method="interp"``: for closely spaced steps, exact SGP4 (the
  kernel) on a uniform lattice of knots about a minute apart and degree-5 Lagrange interpolation
  of the knots' TEME positions and, separately, velocities in between (``interp_itrs``).
  The spacing is chosen per run so that the interpolation error bound,
  ``3.52 h^6 a w^6 / 720`` for orbital rate ``w`` at perigee, stays under 5 mm; measured
  against exact SGP4 on the whole Starlink catalogue: see tests. (SGP4's velocity is not the
  exact derivative of its position, so a Hermite interpolant using it errs by centimetres to
  metres; positions and velocities are interpolated independently instead.) The interpolant
  is checked against exact SGP4 at the midpoint of every knot interval; a satellite that misses
  by more than 2 cm there (extreme drag, decay), has eccentricity above 0.02, or fails SGP4 at
  a knot of the window, is propagated exactly at every step; steps too far apart to gain
  anything fall back to "numba".
- ``method="auto"`` (default): "interp" for large batches, "sgp4" for small ones (where the
  kernel's one-time set-up would dominate).

A satellite SGP4 cannot propagate at some time (decayed, eccentricity out of range, ...)
gets NaN position and velocity there and its SGP4 error code in ``status``; nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sgp4.api import SatrecArray

from ..errors import MeshnetError
from ..timegrid import TimeGrid
from ._skyfield import ephemeris, timescale

#: SGP4 error codes stored in :attr:`Orbits.status` (0 = ok), as python-sgp4 defines them.
SGP4_STATUS = {
    0: "ok",
    1: "mean eccentricity out of range (>= 1 or < -0.001)",
    2: "mean motion below zero",
    3: "perturbed eccentricity out of range",
    4: "semi-latus rectum below zero",
    5: "(unused)",
    6: "orbit decayed (radius below 1 Earth radius)",
}

#: Earth rotation rate used by skyfield's ITRS velocity transform (rad/s).
_EARTH_ANGVEL_RAD_S = 7.2921150e-5

#: Below this many propagations (satellites x steps) "auto" uses SatrecArray.
_KERNEL_MIN_WORK = 200_000

#: Propagation engines accepted by :func:`propagate`.
METHODS = ("auto", "interp", "numba", "sgp4")

#: Interpolation error budget of method "interp" (km) and its eligibility limit.
_INTERP_TOL_KM = 5e-6
_INTERP_CHECK_KM = 2e-5
_INTERP_MAX_ECC = 0.02

#: Spacing of the Sun's knots (s) in :func:`sun_direction_ecef`.
_SUN_KNOT_S = 600

#: Default number of time steps per SGP4 batch: bounds temporary memory (N x chunk x 3 x 2
#: float64 in TEME) while keeping the per-call overhead negligible.
_CHUNK_STEPS = 256


@dataclass(frozen=True)
class Orbits:
    """Propagated states.

    Attributes
    ----------
    r_km : numpy.ndarray
        (T, N, 3) float64 C-contiguous ITRS (Earth-fixed) positions; NaN where status != 0.
    v_km_s : numpy.ndarray
        (T, N, 3) float64 ITRS velocities (relative to the rotating Earth).
    status : numpy.ndarray
        (T, N) uint8 SGP4 error code, 0 = ok (see :data:`SGP4_STATUS`).
    """

    r_km: np.ndarray
    v_km_s: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """(T, N) bool: SGP4 succeeded."""
        return self.status == 0


def satrec_array(constellation) -> SatrecArray:
    """A ``SatrecArray`` of the constellation (cached on the object: building it costs ~ms)."""
    cached = getattr(constellation, "_satrec_array", None)
    if cached is None:
        cached = SatrecArray(list(constellation.satrecs))
        try:
            object.__setattr__(constellation, "_satrec_array", cached)
        except (AttributeError, TypeError):
            pass
    return cached


def near_earth_params(constellation):
    """Kernel coefficients of the near-Earth satellites (cached on the object)."""
    cached = getattr(constellation, "_near_earth_params", None)
    if cached is None:
        from ._kernels import near_earth_params as build

        cached = build(constellation.satrecs)
        try:
            object.__setattr__(constellation, "_near_earth_params", cached)
        except (AttributeError, TypeError):
            pass
    return cached


def teme_to_itrs_matrices(grid: TimeGrid, ts=None) -> np.ndarray:
    """(T, 3, 3) rotations taking TEME vectors into ITRS at each time of ``grid``.

    Equal to skyfield's ``itrs.rotation_at(t) @ TEME.rotation_at(t).T``.
    """
    from skyfield.functions import mxm, rot_z
    from skyfield.sgp4lib import theta_GMST1982

    ts = ts or timescale()
    t = grid.skyfield_times(ts)
    theta, _ = theta_GMST1982(t.whole, t.ut1_fraction)
    rot = rot_z(-np.asarray(theta, dtype=np.float64))  # (3, 3, T)
    if ts.polar_motion_table is not None:
        rot = mxm(t.polar_motion_matrix(), rot)
    rot = np.asarray(rot, dtype=np.float64)
    if rot.ndim == 2:
        rot = rot[:, :, None]
    return np.ascontiguousarray(np.moveaxis(rot, -1, 0))


def propagate(constellation, grid: TimeGrid, *, chunk_steps: int = _CHUNK_STEPS,
              method: str = "auto", out: Orbits | None = None) -> Orbits:
    """ITRS positions and velocities of every satellite at every time of ``grid``.

    Parameters
    ----------
    constellation : Constellation
        Satellites (any source).
    grid : TimeGrid
        Sample times.
    chunk_steps : int
        Time steps per ``SatrecArray`` batch (memory bound only; results do not depend on it).
    method : {"auto", "interp", "numba", "sgp4"}
        SGP4 engine (see the module notes): "numba" and "sgp4" agree to ~1e-6 m; "interp"
        (the default for large batches) interpolates between exact knots to a few mm.
    out : Orbits, optional
        Preallocated result arrays of the right shapes to fill (saves the page faults of fresh
        arrays when a long run is propagated chunk by chunk).

    Returns
    -------
    Orbits
        ``r_km`` and ``v_km_s`` of shape (T, N, 3), ``status`` (T, N).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from meshnet.orbits.config import ShellConfig
    >>> from meshnet.orbits.walker import walker_constellation
    >>> c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=2,
    ...                                       sats_per_plane=2)], datetime(2025, 1, 1, tzinfo=UTC))
    >>> grid = TimeGrid.from_duration(datetime(2025, 1, 1, tzinfo=UTC), 10.0, 1.0)
    >>> orbits = propagate(c, grid)
    >>> orbits.r_km.shape, bool(orbits.ok.all())
    ((10, 4, 3), True)
    """
    if chunk_steps < 1:
        raise MeshnetError(f"chunk_steps must be >= 1, got {chunk_steps}")
    if method not in METHODS:
        raise MeshnetError(f"propagate method '{method}' is not known; choose one of "
                           + ", ".join(METHODS))
    n_t, n_sat = len(grid), constellation.n
    if out is None:
        r_out = np.empty((n_t, n_sat, 3), dtype=np.float64)
        v_out = np.empty((n_t, n_sat, 3), dtype=np.float64)
        status = np.zeros((n_t, n_sat), dtype=np.uint8)
    else:
        r_out, v_out, status = out.r_km, out.v_km_s, out.status
        ok = (r_out.shape == v_out.shape == (n_t, n_sat, 3) and status.shape == (n_t, n_sat)
              and r_out.dtype == v_out.dtype == np.float64 and status.dtype == np.uint8
              and r_out.flags.c_contiguous and v_out.flags.c_contiguous
              and status.flags.c_contiguous)
        if not ok:
            raise MeshnetError(f"propagate(out=...) needs C-contiguous float64 ({n_t}, {n_sat}, 3)"
                               f" arrays and uint8 ({n_t}, {n_sat}) status")
        status[:] = 0
    if n_t == 0 or n_sat == 0:
        return Orbits(r_out, v_out, status)
    rot_all = teme_to_itrs_matrices(grid)
    jd_all, fr_all = grid.jd_utc()
    omega = _EARTH_ANGVEL_RAD_S
    rest = None  # satellite ids left for SatrecArray (None = all)
    if method == "auto":
        method = "interp" if n_sat * n_t >= _KERNEL_MIN_WORK else "sgp4"
    if method in ("interp", "numba"):
        from ._kernels import sgp4_itrs

        params, ids = near_earth_params(constellation)
        if ids.size and method == "interp":
            _interpolated(params, ids, grid, jd_all, fr_all, rot_all, omega, r_out, v_out,
                          status)
        elif ids.size:
            sgp4_itrs(params, ids, jd_all, fr_all, rot_all, omega, r_out, v_out, status)
        if ids.size == n_sat:
            return Orbits(r_out, v_out, status)
        rest = np.setdiff1d(np.arange(n_sat), ids)
    if rest is None:
        sats = satrec_array(constellation)
    else:
        sats = SatrecArray([constellation.satrecs[k] for k in rest])
    for start in range(0, n_t, chunk_steps):
        stop = min(start + chunk_steps, n_t)
        err, r_teme, v_teme = sats.sgp4(jd_all[start:stop], fr_all[start:stop])  # (N, t, 3)
        rot = rot_all[start:stop]
        # (t, N, 3) = rot[t] @ r[n, t]: batched matmul over time.
        r_itrs = np.matmul(r_teme.transpose(1, 0, 2), rot.transpose(0, 2, 1))
        v_itrs = np.matmul(v_teme.transpose(1, 0, 2), rot.transpose(0, 2, 1))
        # Velocity relative to the rotating Earth: v - omega x r (skyfield's _itrs_angvel term).
        v_itrs[..., 0] += omega * r_itrs[..., 1]
        v_itrs[..., 1] -= omega * r_itrs[..., 0]
        st = err.T
        bad = st != 0
        if bad.any():
            r_itrs[bad] = np.nan
            v_itrs[bad] = np.nan
        if rest is None:
            r_out[start:stop] = r_itrs
            v_out[start:stop] = v_itrs
            status[start:stop] = st
        else:
            r_out[start:stop, rest] = r_itrs
            v_out[start:stop, rest] = v_itrs
            status[start:stop, rest] = st
    return Orbits(r_out, v_out, status)


def _interpolated(params, ids, grid, jd_all, fr_all, rot_all, omega, r_out, v_out, status):
    """Method "interp" for the near-Earth satellites ``ids``: exact SGP4 on a uniform lattice of
    knots, degree-5 Lagrange interpolation in between (see the module notes)."""
    from . import _kernels as k

    ecc = params[:, k.P_ECCO]
    direct = ecc > _INTERP_MAX_ECC
    smooth = ~direct
    n_t = len(grid)
    t_ns = grid.t_ns
    span_ns = int(t_ns[-1] - t_ns[0])
    h_ns = 0
    if smooth.any() and span_ns > 0:
        n_rad_s = params[smooth, k.P_NO_UNKOZAI] / 60.0
        e = ecc[smooth]
        w = n_rad_s * (1.0 + e) ** 2 / (1.0 - e * e) ** 1.5  # angular rate at perigee
        a_km = params[smooth, k.P_AO23] * params[smooth, k.P_RADIUSEARTHKM]
        # |error| <= max|f^(6)| / 720 x max|prod(s - x_i)| h^6, f^(6) ~ a w^6, prod <= 3.52
        h_s = np.min((_INTERP_TOL_KM * 720.0 / (3.52 * a_km * w**6)) ** (1.0 / 6.0))
        h_ns = int(h_s * 1e9)
        steps = np.diff(t_ns)
        if (steps == steps[0]).all() and h_ns >= steps[0]:
            h_ns = int(h_ns // steps[0] * steps[0])  # knots on grid times where possible
    n_intervals = -(-span_ns // h_ns) if h_ns > 0 else n_t
    if h_ns <= 0 or n_intervals + k.WINDOW > n_t // 2:  # too few steps per knot to gain
        k.sgp4_itrs(params, ids, jd_all, fr_all, rot_all, omega, r_out, v_out, status)
        return
    # Knot lattice t0 + (i - 2) h, i = 0 .. n_intervals + 5: every interval has a centred window.
    knot_ns = t_ns[0] + (np.arange(n_intervals + k.WINDOW, dtype=np.int64) - 2) * h_ns
    knot_grid = TimeGrid(grid.epoch, knot_ns)
    jd_k, fr_k = knot_grid.jd_utc()
    m = ids.size
    r_knot = np.empty((knot_ns.size, m, 3))
    v_knot = np.empty((knot_ns.size, m, 3))
    st_knot = np.zeros((knot_ns.size, m), dtype=np.uint8)
    eye = np.broadcast_to(np.eye(3), (knot_ns.size, 3, 3)).copy()
    k.sgp4_itrs(params, np.arange(m), jd_k, fr_k, eye, 0.0, r_knot, v_knot, st_knot)
    # A posteriori check at every interval's midpoint (where the stencil errs most): a
    # satellite the model bends too fast for (extreme drag, decay, clamped eccentricity) is
    # propagated exactly instead.
    mid_ns = knot_ns[2:2 + n_intervals] + h_ns // 2
    jd_m, fr_m = TimeGrid(grid.epoch, mid_ns).jd_utc()
    r_mid = np.empty((n_intervals, m, 3))
    v_mid = np.empty((n_intervals, m, 3))
    st_mid = np.zeros((n_intervals, m), dtype=np.uint8)
    k.sgp4_itrs(params, np.arange(m), jd_m, fr_m, eye[:n_intervals], 0.0, r_mid, v_mid, st_mid)
    wts = np.empty(k.WINDOW)
    k.lagrange_weights(0.5 + (h_ns // 2 - h_ns / 2) / h_ns, wts)
    for q in range(k.WINDOW):
        r_mid -= wts[q] * r_knot[q:q + n_intervals]
    r_mid = np.abs(r_mid)
    r_mid[~np.isfinite(r_mid)] = 0.0  # failed knots are handled per window by the kernel
    miss = r_mid.max(axis=(0, 2)) if n_intervals else np.zeros(m)
    direct = direct | (miss > _INTERP_CHECK_KM)
    rel = t_ns - t_ns[0]
    interval = np.minimum(rel // h_ns, n_intervals - 1).astype(np.int64)
    frac = (rel - interval * h_ns) / h_ns
    k.interp_itrs(params, ids, direct, jd_all, fr_all, interval, frac, r_knot, v_knot, st_knot,
                  rot_all, omega, r_out, v_out, status)


def sun_direction_ecef(grid: TimeGrid) -> np.ndarray:
    """(T, 3) unit vectors from the Earth's centre to the Sun in ITRS (de421, geometric).

    Equal to skyfield's ``(sun - earth).at(t).frame_xyz(itrs)``, normalised, to ~1e-9 rad:
    the Sun's direction in the TEME frame (which moves about 1 deg per day) is computed with
    skyfield at knots every 10 minutes and interpolated linearly, then turned into ITRS with
    the per-step rotation of :func:`teme_to_itrs_matrices` (skyfield's precession-nutation,
    the costly part, is then needed only at the knots).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> s = sun_direction_ecef(TimeGrid.from_duration(datetime(2025, 3, 20, tzinfo=UTC), 60, 30))
    >>> s.shape, bool(abs(s[0, 2]) < 0.01)  # equinox: the Sun is over the equator
    ((2, 3), True)
    """
    from skyfield.sgp4lib import TEME

    n_t = len(grid)
    if n_t == 0:
        return np.zeros((0, 3))
    t_ns = grid.t_ns
    knot_step = _SUN_KNOT_S * 1_000_000_000
    k0 = t_ns.min() // knot_step
    k1 = -(-t_ns.max() // knot_step)
    knot_ns = np.arange(k0, max(k1, k0 + 1) + 1, dtype=np.int64) * knot_step
    eph = ephemeris()
    ts = timescale()
    tk = TimeGrid(grid.epoch, knot_ns).skyfield_times(ts)
    sun_teme = np.asarray((eph["sun"] - eph["earth"]).at(tk).frame_xyz(TEME).km,
                          dtype=np.float64).reshape(3, -1)
    sun_teme /= np.linalg.norm(sun_teme, axis=0, keepdims=True)
    x = t_ns.astype(np.float64)
    xk = knot_ns.astype(np.float64)
    interp = np.stack([np.interp(x, xk, sun_teme[i]) for i in range(3)], axis=1)
    xyz = np.einsum("tij,tj->ti", teme_to_itrs_matrices(grid, ts), interp)
    return np.ascontiguousarray(xyz / np.linalg.norm(xyz, axis=1, keepdims=True))


#: WGS84 ellipsoid (km).
_WGS84_A_KM = 6378.137
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)


def ecef_to_geodetic(r_km: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 geodetic latitude, longitude (degrees) and altitude (km) of ECEF points.

    Works on any (..., 3) array; NaN in, NaN out.

    Examples
    --------
    >>> lat, lon, alt = ecef_to_geodetic(np.array([[6378.137 + 550.0, 0.0, 0.0]]))
    >>> float(lat[0]), float(lon[0]), round(float(alt[0]), 9)
    (0.0, 0.0, 550.0)
    """
    r = np.asarray(r_km, dtype=np.float64)
    if r.shape[-1] != 3:
        raise MeshnetError(f"ecef_to_geodetic expects (..., 3) positions, got shape {r.shape}")
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    a, e2 = _WGS84_A_KM, _WGS84_E2
    lat = np.arctan2(z, p * (1.0 - e2))
    for _ in range(4):  # fixed-point iteration; converges to < 1e-12 rad for LEO in 3-4 steps
        sin_lat = np.sin(lat)
        n_curv = a / np.sqrt(1.0 - e2 * sin_lat * sin_lat)
        lat = np.arctan2(z + e2 * n_curv * sin_lat, p)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n_curv = a / np.sqrt(1.0 - e2 * sin_lat * sin_lat)
    alt = p * cos_lat + z * sin_lat - a * a / n_curv
    return np.degrees(lat), np.degrees(lon), alt


__all__ = ["Orbits", "SGP4_STATUS", "ecef_to_geodetic", "propagate", "sun_direction_ecef",
           "teme_to_itrs_matrices"]
