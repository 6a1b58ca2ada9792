"""Numba SGP4 (near-Earth branch) fused with the TEME -> ITRS rotation.

A line-by-line port of the propagation part of Vallado's SGP4 (``sgp4/propagation.py`` /
``SGP4.cpp`` in python-sgp4, AIAA 2006-6753), for satellites whose period is under 225 minutes
(``method == 'n'``); deep-space satellites stay on sgp4's own ``SatrecArray``. The per-satellite
coefficients come from python-sgp4's ``sgp4init`` (see :func:`near_earth_params`), so only the
time-dependent part is re-implemented. Tested against ``SatrecArray`` to micrometres.

Kernels are plain functions over arrays: ``params`` (N, K) per-satellite coefficients, the
UTC Julian dates split ``jd + fr``, per-time rotations ``rot`` (T, 3, 3), and outputs filled
in place. ``sgp4_itrs`` runs the time steps in parallel; ``sgp4_itrs_serial`` is its twin.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Column layout of the per-satellite parameter array.
(P_ISIMP, P_MO, P_MDOT, P_ARGPO, P_ARGPDOT, P_NODEO, P_NODEDOT, P_NODECF, P_CC1, P_BSTAR, P_CC4,
 P_T2COF, P_OMGCOF, P_ETA, P_XMCOF, P_DELMO, P_D2, P_D3, P_D4, P_CC5, P_SINMAO, P_T3COF, P_T4COF,
 P_T5COF, P_NO_UNKOZAI, P_ECCO, P_INCLO, P_AYCOF, P_XLCOF, P_CON41, P_X1MTH2, P_X7THM1, P_XKE,
 P_J2, P_RADIUSEARTHKM, P_JDSATEPOCH, P_JDSATEPOCHF, P_AO23, P_SININCLO,
 P_COSINCLO) = range(40)
N_PARAMS = 40

_TWOPI = 2.0 * math.pi
_X2O3 = 2.0 / 3.0


@njit(cache=True, error_model="numpy")
def _fmod(x, y):
    """C's fmod (result has the sign of x), as SGP4.cpp uses it."""
    return x - y * math.trunc(x / y)


@njit(cache=True, error_model="numpy")
def _small_rotation(s0, c0, delta):
    """sin and cos of (a + delta) from s0 = sin a, c0 = cos a, for a small correction delta.

    SGP4's short-period corrections to the argument of latitude, node and inclination are of
    order J2 (< 1e-2 rad); a Taylor series then matches libm's sin/cos to ~1e-17 and saves the
    transcendental calls (and the atan2) that dominate the propagation time.
    """
    if abs(delta) > 0.05:
        sd = math.sin(delta)
        cd = math.cos(delta)
    else:
        d2 = delta * delta
        sd = delta * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0 * (1.0 - d2 / 42.0)))
        cd = 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0 * (1.0 - d2 / 30.0))
    return s0 * cd + c0 * sd, c0 * cd - s0 * sd


@njit(cache=True, error_model="numpy")
def _propagate_one(p, tsince, out_r, out_v):
    """SGP4 near-Earth propagation of one satellite; TEME km and km/s into out_r/out_v.

    Returns the SGP4 error code (0 ok, 1, 2, 4 or 6).
    """
    xke = p[P_XKE]
    vkmpersec = p[P_RADIUSEARTHKM] * xke / 60.0
    t = tsince
    xmdf = p[P_MO] + p[P_MDOT] * t
    argpdf = p[P_ARGPO] + p[P_ARGPDOT] * t
    nodedf = p[P_NODEO] + p[P_NODEDOT] * t
    argpm = argpdf
    mm = xmdf
    t2 = t * t
    nodem = nodedf + p[P_NODECF] * t2
    tempa = 1.0 - p[P_CC1] * t
    tempe = p[P_BSTAR] * p[P_CC4] * t
    templ = p[P_T2COF] * t2
    if p[P_ISIMP] != 1.0:
        delomg = p[P_OMGCOF] * t
        delmtemp = 1.0 + p[P_ETA] * math.cos(xmdf)
        delm = p[P_XMCOF] * (delmtemp * delmtemp * delmtemp - p[P_DELMO])
        temp = delomg + delm
        mm = xmdf + temp
        argpm = argpdf - temp
        t3 = t2 * t
        t4 = t3 * t
        tempa = tempa - p[P_D2] * t2 - p[P_D3] * t3 - p[P_D4] * t4
        tempe = tempe + p[P_BSTAR] * p[P_CC5] * (math.sin(mm) - p[P_SINMAO])
        templ = templ + p[P_T3COF] * t3 + t4 * (p[P_T4COF] + t * p[P_T5COF])
    nm = p[P_NO_UNKOZAI]
    em = p[P_ECCO]
    if nm <= 0.0:
        return 2
    am = p[P_AO23] * tempa * tempa  # (xke / no_unkozai)^(2/3), precomputed
    nm = xke / (am * math.sqrt(am))
    em = em - tempe
    if em >= 1.0 or em < -0.001:
        return 1
    if em < 1.0e-6:
        em = 1.0e-6
    mm = mm + p[P_NO_UNKOZAI] * templ
    xlm = mm + argpm + nodem
    nodem = _fmod(nodem, _TWOPI)
    argpm = _fmod(argpm, _TWOPI)
    xlm = _fmod(xlm, _TWOPI)
    mm = _fmod(xlm - argpm - nodem, _TWOPI)
    sinim = p[P_SININCLO]  # near-Earth: the mean inclination is constant
    cosim = p[P_COSINCLO]
    ep = em
    argpp = argpm
    nodep = nodem
    mp = mm
    sinip = sinim
    cosip = cosim
    axnl = ep * math.cos(argpp)
    temp = 1.0 / (am * (1.0 - ep * ep))
    aynl = ep * math.sin(argpp) + temp * p[P_AYCOF]
    xl = mp + argpp + nodep + temp * p[P_XLCOF] * axnl
    u = _fmod(xl - nodep, _TWOPI)
    eo1 = u
    tem5 = 9999.9
    ktr = 1
    sineo1 = 0.0
    coseo1 = 0.0
    while abs(tem5) >= 1.0e-12 and ktr <= 10:
        sineo1 = math.sin(eo1)
        coseo1 = math.cos(eo1)
        tem5 = 1.0 - coseo1 * axnl - sineo1 * aynl
        tem5 = (u - aynl * coseo1 + axnl * sineo1 - eo1) / tem5
        if abs(tem5) >= 0.95:
            tem5 = 0.95 if tem5 > 0.0 else -0.95
        eo1 = eo1 + tem5
        ktr = ktr + 1
    ecose = axnl * coseo1 + aynl * sineo1
    esine = axnl * sineo1 - aynl * coseo1
    el2 = axnl * axnl + aynl * aynl
    pl = am * (1.0 - el2)
    if pl < 0.0:
        return 4
    rl = am * (1.0 - ecose)
    rdotl = math.sqrt(am) * esine / rl
    rvdotl = math.sqrt(pl) / rl
    betal = math.sqrt(1.0 - el2)
    temp = esine / (1.0 + betal)
    sinu = am / rl * (sineo1 - aynl - axnl * temp)
    cosu = am / rl * (coseo1 - axnl + aynl * temp)
    norm = 1.0 / math.sqrt(sinu * sinu + cosu * cosu)  # 1 up to rounding
    sinu *= norm
    cosu *= norm
    sin2u = (cosu + cosu) * sinu
    cos2u = 1.0 - 2.0 * sinu * sinu
    temp = 1.0 / pl
    temp1 = 0.5 * p[P_J2] * temp
    temp2 = temp1 * temp
    con41 = p[P_CON41]
    x1mth2 = p[P_X1MTH2]
    mrt = rl * (1.0 - 1.5 * temp2 * betal * con41) + 0.5 * temp1 * x1mth2 * cos2u
    # su = u - 0.25 temp2 x7thm1 sin2u, xnode = nodep + ..., xinc = xincp + ... (SGP4.cpp)
    sinsu, cossu = _small_rotation(sinu, cosu, -0.25 * temp2 * p[P_X7THM1] * sin2u)
    snod, cnod = _small_rotation(math.sin(nodep), math.cos(nodep),
                                 1.5 * temp2 * cosip * sin2u)
    sini, cosi = _small_rotation(sinip, cosip, 1.5 * temp2 * cosip * sinip * cos2u)
    mvt = rdotl - nm * temp1 * x1mth2 * sin2u / xke
    rvdot = rvdotl + nm * temp1 * (x1mth2 * cos2u + 1.5 * con41) / xke
    xmx = -snod * cosi
    xmy = cnod * cosi
    ux = xmx * sinsu + cnod * cossu
    uy = xmy * sinsu + snod * cossu
    uz = sini * sinsu
    vx = xmx * cossu - cnod * sinsu
    vy = xmy * cossu - snod * sinsu
    vz = sini * cossu
    mr = mrt * p[P_RADIUSEARTHKM]
    out_r[0] = mr * ux
    out_r[1] = mr * uy
    out_r[2] = mr * uz
    out_v[0] = (mvt * ux + rvdot * vx) * vkmpersec
    out_v[1] = (mvt * uy + rvdot * vy) * vkmpersec
    out_v[2] = (mvt * uz + rvdot * vz) * vkmpersec
    if mrt < 1.0:
        return 6
    return 0


@njit(cache=True, error_model="numpy")
def _step(params, sat_ids, jd, fr, rot, omega_rad_s, r_out, v_out, status):
    """All satellites ``sat_ids`` at one time: SGP4 then rotation into ITRS."""
    r = np.empty(3)
    v = np.empty(3)
    for k in range(sat_ids.shape[0]):
        n = sat_ids[k]
        p = params[k]
        tsince = (jd - p[P_JDSATEPOCH]) * 1440.0 + (fr - p[P_JDSATEPOCHF]) * 1440.0
        err = _propagate_one(p, tsince, r, v)
        status[n] = err
        if err != 0:
            for i in range(3):
                r_out[n, i] = np.nan
                v_out[n, i] = np.nan
            continue
        for i in range(3):
            r_out[n, i] = rot[i, 0] * r[0] + rot[i, 1] * r[1] + rot[i, 2] * r[2]
        for i in range(3):
            v_out[n, i] = rot[i, 0] * v[0] + rot[i, 1] * v[1] + rot[i, 2] * v[2]
        # velocity relative to the rotating Earth: v - omega x r
        v_out[n, 0] += omega_rad_s * r_out[n, 1]
        v_out[n, 1] -= omega_rad_s * r_out[n, 0]


@njit(cache=True, parallel=True, error_model="numpy")
def sgp4_itrs(params, sat_ids, jd, fr, rot, omega_rad_s, r_out, v_out, status):
    """Fill ``r_out``/``v_out`` (T, N, 3) and ``status`` (T, N) for the ``sat_ids`` columns;
    time steps in parallel."""
    for t in prange(jd.shape[0]):
        _step(params, sat_ids, jd[t], fr[t], rot[t], omega_rad_s, r_out[t], v_out[t], status[t])


@njit(cache=True, error_model="numpy")
def sgp4_itrs_serial(params, sat_ids, jd, fr, rot, omega_rad_s, r_out, v_out, status):
    """Serial twin of :func:`sgp4_itrs`."""
    for t in range(jd.shape[0]):
        _step(params, sat_ids, jd[t], fr[t], rot[t], omega_rad_s, r_out[t], v_out[t], status[t])


def near_earth_params(satrecs) -> tuple[np.ndarray, np.ndarray]:
    """Per-satellite SGP4 coefficients for the kernel.

    The accelerated ``Satrec`` does not expose its internal coefficients, so each satellite's
    elements go through python-sgp4's own (pure Python) ``sgp4init`` again, with the same
    gravity model, operation mode and epoch. Returns ``(params (M, K), ids (M,))`` for the
    near-Earth satellites; deep-space ones (``method == 'd'``) and ones whose initialisation
    failed are left out (the caller propagates those with ``SatrecArray``).
    """
    from sgp4.earth_gravity import wgs72, wgs72old, wgs84
    from sgp4.model import Satrec as PySatrec

    models = [wgs72old, wgs72, wgs84]
    rows, ids = [], []
    for n, sat in enumerate(satrecs):
        if sat.method != "n" or sat.error != 0:
            continue
        which = next((i for i, g in enumerate(models)
                      if g.radiusearthkm == sat.radiusearthkm and abs(g.xke - sat.xke) < 1e-15),
                     None)
        if which is None:
            continue
        py = PySatrec()
        py.sgp4init(which, sat.operationmode, sat.satnum,
                    sat.jdsatepoch - 2433281.5 + sat.jdsatepochF, sat.bstar, sat.ndot, sat.nddot,
                    sat.ecco, sat.argpo, sat.inclo, sat.mo, sat.no_kozai, sat.nodeo)
        if py.method != "n" or py.error != 0:
            continue
        row = np.empty(N_PARAMS)
        row[P_ISIMP] = float(py.isimp)
        for col, attr in ((P_MO, "mo"), (P_MDOT, "mdot"), (P_ARGPO, "argpo"),
                          (P_ARGPDOT, "argpdot"), (P_NODEO, "nodeo"), (P_NODEDOT, "nodedot"),
                          (P_NODECF, "nodecf"), (P_CC1, "cc1"), (P_BSTAR, "bstar"),
                          (P_CC4, "cc4"), (P_T2COF, "t2cof"), (P_OMGCOF, "omgcof"),
                          (P_ETA, "eta"), (P_XMCOF, "xmcof"), (P_DELMO, "delmo"), (P_D2, "d2"),
                          (P_D3, "d3"), (P_D4, "d4"), (P_CC5, "cc5"), (P_SINMAO, "sinmao"),
                          (P_T3COF, "t3cof"), (P_T4COF, "t4cof"), (P_T5COF, "t5cof"),
                          (P_NO_UNKOZAI, "no_unkozai"), (P_ECCO, "ecco"), (P_INCLO, "inclo"),
                          (P_AYCOF, "aycof"), (P_XLCOF, "xlcof"), (P_CON41, "con41"),
                          (P_X1MTH2, "x1mth2"), (P_X7THM1, "x7thm1"), (P_XKE, "xke"),
                          (P_J2, "j2"), (P_RADIUSEARTHKM, "radiusearthkm")):
            row[col] = float(getattr(py, attr))
        # the epoch split exactly as the accelerated Satrec holds it
        row[P_JDSATEPOCH] = sat.jdsatepoch
        row[P_JDSATEPOCHF] = sat.jdsatepochF
        row[P_AO23] = (py.xke / py.no_unkozai) ** _X2O3
        row[P_SININCLO] = math.sin(py.inclo)
        row[P_COSINCLO] = math.cos(py.inclo)
        rows.append(row)
        ids.append(n)
    params = np.array(rows, dtype=np.float64).reshape(-1, N_PARAMS)
    return np.ascontiguousarray(params), np.array(ids, dtype=np.int64)


#: Knots of the interpolation window, in units of the knot spacing, relative to the start of
#: the interval that holds the time: a centred 6-point (degree 5) Lagrange stencil.
WINDOW = 6
_NODES = np.arange(-2.0, 4.0)


@njit(cache=True, error_model="numpy")
def lagrange_weights(s, out):
    """Degree-5 Lagrange weights at ``s`` (in [0, 1)) for nodes -2..3."""
    for i in range(WINDOW):
        w = 1.0
        xi = i - 2.0
        for m in range(WINDOW):
            if m != i:
                xm = m - 2.0
                w *= (s - xm) / (xi - xm)
        out[i] = w


@njit(cache=True, error_model="numpy")
def _interp_step(params, sat_ids, direct, jd, fr, j, s, r_knot, v_knot, st_knot, rot,
                 omega_rad_s, r_out, v_out, status):
    """All satellites at one time in knot interval ``j`` (fraction ``s``): degree-5 Lagrange
    interpolation of the TEME positions and velocities of knots ``j .. j+5``, then ITRS.

    Satellites flagged ``direct``, or with a failed knot in the window, are propagated exactly.
    """
    wts = np.empty(WINDOW)
    lagrange_weights(s, wts)
    r = np.empty(3)
    v = np.empty(3)
    for k in range(sat_ids.shape[0]):
        n = sat_ids[k]
        exact = direct[k]
        if not exact:
            for q in range(WINDOW):
                if st_knot[j + q, k] != 0:
                    exact = True
                    break
        if exact:
            p = params[k]
            tsince = (jd - p[P_JDSATEPOCH]) * 1440.0 + (fr - p[P_JDSATEPOCHF]) * 1440.0
            err = _propagate_one(p, tsince, r, v)
            status[n] = err
            if err != 0:
                for i in range(3):
                    r_out[n, i] = np.nan
                    v_out[n, i] = np.nan
                continue
        else:
            status[n] = 0
            for i in range(3):
                acc_r = 0.0
                acc_v = 0.0
                for q in range(WINDOW):
                    acc_r += wts[q] * r_knot[j + q, k, i]
                    acc_v += wts[q] * v_knot[j + q, k, i]
                r[i] = acc_r
                v[i] = acc_v
        for i in range(3):
            r_out[n, i] = rot[i, 0] * r[0] + rot[i, 1] * r[1] + rot[i, 2] * r[2]
        for i in range(3):
            v_out[n, i] = rot[i, 0] * v[0] + rot[i, 1] * v[1] + rot[i, 2] * v[2]
        v_out[n, 0] += omega_rad_s * r_out[n, 1]
        v_out[n, 1] -= omega_rad_s * r_out[n, 0]


@njit(cache=True, parallel=True, error_model="numpy")
def interp_itrs(params, sat_ids, direct, jd, fr, interval, frac, r_knot, v_knot, st_knot, rot,
                omega_rad_s, r_out, v_out, status):
    """Interpolated propagation: time ``t`` lies in knot interval ``interval[t]`` at fraction
    ``frac[t]``; ``r_knot``, ``v_knot`` (K, M, 3) and ``st_knot`` (K, M) are exact SGP4 TEME
    states on a uniform knot lattice. Time steps run in parallel."""
    for t in prange(jd.shape[0]):
        _interp_step(params, sat_ids, direct, jd[t], fr[t], interval[t], frac[t], r_knot,
                     v_knot, st_knot, rot[t], omega_rad_s, r_out[t], v_out[t], status[t])


@njit(cache=True, error_model="numpy")
def interp_itrs_serial(params, sat_ids, direct, jd, fr, interval, frac, r_knot, v_knot,
                       st_knot, rot, omega_rad_s, r_out, v_out, status):
    """Serial twin of :func:`interp_itrs`."""
    for t in range(jd.shape[0]):
        _interp_step(params, sat_ids, direct, jd[t], fr[t], interval[t], frac[t], r_knot,
                     v_knot, st_knot, rot[t], omega_rad_s, r_out[t], v_out[t], status[t])

