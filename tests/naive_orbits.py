"""Slow, obvious references for meshnet.orbits: skyfield's own EarthSatellite, one satellite at
a time, the way a skyfield user writes it."""

from __future__ import annotations

import numpy as np
from skyfield.api import EarthSatellite
from skyfield.framelib import itrs

from meshnet.orbits._skyfield import timescale


def skyfield_itrs(satrecs, ids, grid):
    """(T, len(ids), 3) ITRS positions (km) and velocities (km/s) from skyfield."""
    ts = timescale()
    t = grid.skyfield_times(ts)
    r = np.empty((len(grid), len(ids), 3))
    v = np.empty_like(r)
    for j, k in enumerate(ids):
        pos = EarthSatellite.from_satrec(satrecs[k], ts).at(t)
        rr, vv = pos.frame_xyz_and_velocity(itrs)
        r[:, j] = rr.km.T
        v[:, j] = vv.km_per_s.T
    return r, v


def sgp4_scalar_teme(satrec, jd, fr):
    """TEME state of one satellite at one time through the scalar ``Satrec.sgp4`` call."""
    err, r, v = satrec.sgp4(jd, fr)
    return err, np.array(r), np.array(v)
