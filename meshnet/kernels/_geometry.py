"""Small geometric helpers shared by the link kernels (private; arrays and scalars only).

All positions are Earth-fixed (ECEF) km; velocities km/s in the Earth-fixed frame.
"""

from __future__ import annotations

import math

from numba import njit

#: Earth rotation rate (rad/s), WGS72 / IERS value; turns Earth-fixed velocities inertial.
OMEGA_EARTH_RAD_S = 7.292115146706979e-5


@njit(cache=True, inline="always")
def segment_min_radius(ax, ay, az, bx, by, bz):
    """Smallest distance from the Earth's centre to the segment a--b (km)."""
    dx, dy, dz = bx - ax, by - ay, bz - az
    dd = dx * dx + dy * dy + dz * dz
    if dd <= 0.0:
        return math.sqrt(ax * ax + ay * ay + az * az)
    t = -(ax * dx + ay * dy + az * dz) / dd
    if t < 0.0:
        t = 0.0
    elif t > 1.0:
        t = 1.0
    px, py, pz = ax + t * dx, ay + t * dy, az + t * dz
    return math.sqrt(px * px + py * py + pz * pz)


@njit(cache=True, inline="always")
def in_earth_shadow(x, y, z, sx, sy, sz, r_earth_km):
    """True when the Earth hides the Sun (unit direction s) from point (x, y, z).

    Cylindrical shadow: the Sun is 23,000 Earth radii away, so the penumbra is a few km wide.
    """
    along = x * sx + y * sy + z * sz
    if along >= 0.0:
        return False
    px, py, pz = x - along * sx, y - along * sy, z - along * sz
    return px * px + py * py + pz * pz < r_earth_km * r_earth_km


@njit(cache=True, inline="always")
def orbit_normal(x, y, z, vx, vy, vz, omega):
    """Unit angular-momentum vector r x v_inertial from Earth-fixed r, v (Earth-fixed axes)."""
    # v_inertial = v_fixed + omega z^ x r
    ix = vx - omega * y
    iy = vy + omega * x
    iz = vz
    hx = y * iz - z * iy
    hy = z * ix - x * iz
    hz = x * iy - y * ix
    n = math.sqrt(hx * hx + hy * hy + hz * hz)
    if n <= 0.0:
        return 0.0, 0.0, 0.0
    return hx / n, hy / n, hz / n
