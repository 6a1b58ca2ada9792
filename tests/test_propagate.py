"""Propagation against skyfield's own EarthSatellite.at(t) ITRS positions, Sun and geodetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84
from skyfield.framelib import itrs

from meshnet.orbits._skyfield import ephemeris, timescale
from meshnet.orbits.config import ShellConfig
from meshnet.orbits.constellation import Constellation
from meshnet.orbits.propagate import (
    ecef_to_geodetic,
    propagate,
    sun_direction_ecef,
    teme_to_itrs_matrices,
)
from meshnet.orbits.walker import make_satrec, walker_constellation
from meshnet.timegrid import TimeGrid

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CATALOGUE = DATA / "starlink_2026-02-23.tle"


def _skyfield_itrs(satrecs, ids, grid):
    """(T, len(ids), 3) positions and velocities the way a skyfield user computes them."""
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


@pytest.fixture(scope="module")
def catalogue():
    if not CATALOGUE.exists():
        pytest.skip(f"real catalogue not found at {CATALOGUE}")
    from meshnet.orbits.tle import tle_constellation

    return tle_constellation(CATALOGUE, label_planes=False)


def test_real_catalogue_matches_skyfield_within_1_m(catalogue):
    rng = np.random.default_rng(7)
    ids = np.sort(rng.choice(catalogue.n, size=200, replace=False))
    sub = Constellation(names=catalogue.names[ids],
                        satrecs=tuple(catalogue.satrecs[k] for k in ids),
                        shell=np.full(200, -1), plane=np.full(200, -1), slot=np.full(200, -1))
    # 10 times over half a day, starting off the catalogue's epochs (not on a whole second).
    grid = TimeGrid(datetime(2026, 2, 23, 3, 17, 11, 250000, tzinfo=UTC),
                    (np.arange(10) * 4321.5e9).astype(np.int64))
    orbits = propagate(sub, grid)
    ref_r, ref_v = _skyfield_itrs(sub.satrecs, range(200), grid)
    ok = orbits.status == 0
    assert ok.mean() > 0.99  # a decaying satellite may legitimately fail
    err_m = np.linalg.norm(orbits.r_km - ref_r, axis=2)[ok] * 1000.0
    assert err_m.max() < 1.0
    verr_m_s = np.linalg.norm(orbits.v_km_s - ref_v, axis=2)[ok] * 1000.0
    assert verr_m_s.max() < 1e-3
    assert orbits.r_km.flags["C_CONTIGUOUS"] and orbits.r_km.shape == (10, 200, 3)


def test_walker_matches_skyfield_and_chunking_is_invisible():
    epoch = datetime(2025, 3, 1, 12, tzinfo=UTC)
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=6,
                                          sats_per_plane=5, phasing=1)], epoch)
    grid = TimeGrid.from_duration(epoch, 3000.0, 300.0)
    whole = propagate(c, grid)
    chunked = propagate(c, grid, chunk_steps=3)
    np.testing.assert_array_equal(whole.r_km, chunked.r_km)
    ref_r, _ = _skyfield_itrs(c.satrecs, range(c.n), grid)
    assert np.abs(whole.r_km - ref_r).max() * 1000.0 < 1.0


def test_sgp4_failure_is_nan_and_status_not_exception():
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    doomed = make_satrec(1, epoch, inclination_deg=50, raan_deg=0, eccentricity=0.001,
                         arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=16.3,
                         bstar=0.5)
    fine = make_satrec(2, epoch, inclination_deg=50, raan_deg=0, eccentricity=0.001,
                       arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=15.0)
    c = Constellation(names=np.array(["doomed", "fine"], dtype=object), satrecs=(doomed, fine),
                      shell=[0, 0], plane=[0, 0], slot=[0, 1])
    orbits = propagate(c, TimeGrid.from_duration(epoch, 2 * 86400.0, 3600.0))
    assert orbits.status.dtype == np.uint8
    assert orbits.status[0, 0] == 0 and (orbits.status[-1, 0] != 0)
    failed = orbits.status[:, 0] != 0
    assert np.isnan(orbits.r_km[failed, 0]).all() and np.isnan(orbits.v_km_s[failed, 0]).all()
    assert (orbits.status[:, 1] == 0).all() and np.isfinite(orbits.r_km[:, 1]).all()


def test_rotation_equals_skyfield_frames():
    from skyfield.functions import mxm
    from skyfield.sgp4lib import TEME

    grid = TimeGrid.from_duration(datetime(2026, 2, 23, tzinfo=UTC), 86400.0, 8640.0)
    t = grid.skyfield_times(timescale())
    ref = mxm(itrs.rotation_at(t), np.swapaxes(TEME.rotation_at(t), 0, 1))
    np.testing.assert_allclose(teme_to_itrs_matrices(grid), np.moveaxis(ref, -1, 0), atol=1e-14)


def test_sun_direction_matches_skyfield():
    grid = TimeGrid.from_duration(datetime(2025, 6, 21, tzinfo=UTC), 86400.0, 3600.0)
    sun = sun_direction_ecef(grid)
    assert sun.shape == (24, 3)
    np.testing.assert_allclose(np.linalg.norm(sun, axis=1), 1.0, atol=1e-12)
    eph = ephemeris()
    t = grid.skyfield_times(timescale())
    ref = (eph["sun"] - eph["earth"]).at(t).frame_xyz(itrs).km.T
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(sun, ref, atol=1e-12)
    # June solstice: declination about +23.44 deg.
    assert np.degrees(np.arcsin(sun[:, 2])).mean() == pytest.approx(23.44, abs=0.05)


def test_ecef_to_geodetic_matches_skyfield_wgs84():
    rng = np.random.default_rng(1)
    lat = rng.uniform(-89.9, 89.9, 200)
    lon = rng.uniform(-180, 180, 200)
    alt_km = rng.uniform(0, 2000, 200)
    r = wgs84.latlon(lat, lon, elevation_m=alt_km * 1000).itrs_xyz.km.T
    glat, glon, galt = ecef_to_geodetic(r)
    np.testing.assert_allclose(glat, lat, atol=1e-9)
    np.testing.assert_allclose(glon, lon, atol=1e-9)
    np.testing.assert_allclose(galt, alt_km, atol=1e-9)
    nan_lat, _, _ = ecef_to_geodetic(np.full((2, 3), np.nan))
    assert np.isnan(nan_lat).all()


def test_empty_inputs():
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=1,
                                          sats_per_plane=1)], epoch)
    o = propagate(c, TimeGrid(epoch, np.zeros(0, dtype=np.int64)))
    assert o.r_km.shape == (0, 1, 3)
