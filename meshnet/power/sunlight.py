"""Sunlight on each satellite: Earth's shadow as a cone, with penumbra.

The lit fraction of a satellite is the fraction of the Sun's disc it sees past the Earth's
disc (Montenbruck and Gill, *Satellite Orbits*, 2000, sec. 3.4.2, "conical shadow model"):
seen from the satellite, the Sun has apparent radius ``a = asin(R_sun / |s - r|)``, the Earth
``b = asin(R_earth / |r|)``, and their centres are ``c`` apart. Then

* ``c >= a + b``: full Sun, lit fraction 1;
* ``c <= b - a``: umbra, 0;
* ``c < a - b``: annular (impossible in LEO, kept for completeness), ``1 - b^2 / a^2``;
* otherwise penumbra: 1 minus the area of the two discs' overlap over the Sun's disc area.

The discs are treated as flat (angles of a fraction of a degree for the Sun); the Earth is a
sphere of radius :data:`meshnet.units.R_EARTH_KM` (no atmosphere, no oblateness; both move the
shadow's edge by about a second of orbit, well inside a 1 s step's resolution).
"""

from __future__ import annotations

import numpy as np

from ..timegrid import TimeGrid
from ..units import R_EARTH_KM

#: Nominal solar radius (km; IAU 2015 Resolution B3).
R_SUN_KM = 695_700.0


def sun_position_ecef_km(grid: TimeGrid) -> np.ndarray:
    """(T, 3) position of the Sun relative to the Earth's centre in ITRS (km), de421.

    The direction is :func:`meshnet.orbits.propagate.sun_direction_ecef`; the distance is
    skyfield's at 10-minute knots, interpolated linearly (it changes by < 0.02 % a day).
    """
    from ..orbits._skyfield import ephemeris, timescale
    from ..orbits.propagate import _SUN_KNOT_S, sun_direction_ecef

    n_t = len(grid)
    if n_t == 0:
        return np.zeros((0, 3))
    direction = sun_direction_ecef(grid)
    knot_step = _SUN_KNOT_S * 1_000_000_000
    k0 = grid.t_ns.min() // knot_step
    k1 = -(-grid.t_ns.max() // knot_step)
    knot_ns = np.arange(k0, max(k1, k0 + 1) + 1, dtype=np.int64) * knot_step
    eph = ephemeris()
    tk = TimeGrid(grid.epoch, knot_ns).skyfield_times(timescale())
    dist_km = np.asarray((eph["sun"] - eph["earth"]).at(tk).distance().km, np.float64)
    dist = np.interp(grid.t_ns.astype(np.float64), knot_ns.astype(np.float64),
                     dist_km.reshape(-1))
    return np.ascontiguousarray(direction * dist[:, None])


def lit_fraction(r_km: np.ndarray, sun_km: np.ndarray, r_earth_km: float = R_EARTH_KM,
                 r_sun_km: float = R_SUN_KM) -> np.ndarray:
    """Fraction of the Sun's disc seen by each satellite, in [0, 1].

    Parameters
    ----------
    r_km : numpy.ndarray
        (..., N, 3) satellite positions from the Earth's centre (any frame; NaN allowed).
    sun_km : numpy.ndarray
        (..., 3) the Sun's position from the Earth's centre in the same frame, broadcast
        against ``r_km``'s leading axes.

    Returns
    -------
    numpy.ndarray
        (..., N) lit fraction; NaN where a position is NaN.

    Examples
    --------
    >>> sun = np.array([1.496e8, 0.0, 0.0])
    >>> lit_fraction(np.array([[7000.0, 0, 0], [-7000.0, 0, 0], [0, 7000.0, 0]]), sun)
    array([1., 0., 1.])
    """
    r = np.asarray(r_km, np.float64)
    s = np.asarray(sun_km, np.float64)[..., None, :]
    to_sun = s - r
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_earth = np.linalg.norm(r, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.arcsin(np.minimum(1.0, r_sun_km / d_sun))
        b = np.arcsin(np.minimum(1.0, r_earth_km / d_earth))
        cos_c = -np.einsum("...i,...i->...", r, to_sun) / (d_earth * d_sun)
        c = np.arccos(np.clip(cos_c, -1.0, 1.0))
        out = np.ones_like(c)
        umbra = c <= b - a
        out[umbra] = 0.0
        annular = c < a - b
        out[annular] = 1.0 - (b[annular] / a[annular]) ** 2
        pen = ~umbra & ~annular & (c < a + b)
        out[pen] = 1.0 - _overlap(a[pen], b[pen], c[pen]) / (np.pi * a[pen] ** 2)
    out[np.isnan(c)] = np.nan
    return np.clip(out, 0.0, 1.0, out=out)


def _overlap(a, b, c):
    """Area of the overlap of two discs of radii ``a`` and ``b`` whose centres are ``c`` apart
    (partial overlap: ``|a - b| < c < a + b``)."""
    x = (c * c + a * a - b * b) / (2.0 * c)
    y = np.sqrt(np.maximum(0.0, a * a - x * x))
    return (a * a * np.arccos(np.clip(x / a, -1.0, 1.0))
            + b * b * np.arccos(np.clip((c - x) / b, -1.0, 1.0)) - c * y)


def beta_eclipse_fraction(altitude_km: float, beta_deg: float,
                          r_earth_km: float = R_EARTH_KM) -> float:
    """Eclipse fraction of a circular orbit in a cylindrical shadow (no penumbra).

    ``f = (1/pi) arccos( sqrt(h^2 + 2 R h) / ((R + h) cos beta) )``, 0 above the critical
    beta ``asin(R / (R + h))`` (Wertz, *Space Mission Analysis and Design*, eclipse section).

    Examples
    --------
    >>> round(beta_eclipse_fraction(550.0, 0.0) * 95.6, 1)  # minutes of a 95.6 min orbit
    35.6
    """
    h = float(altitude_km)
    r = float(r_earth_km)
    arg = np.sqrt(h * h + 2.0 * r * h) / ((r + h) * np.cos(np.radians(beta_deg)))
    return float(np.arccos(arg) / np.pi) if arg < 1.0 else 0.0


__all__ = ["R_SUN_KM", "beta_eclipse_fraction", "lit_fraction", "sun_position_ecef_km"]
