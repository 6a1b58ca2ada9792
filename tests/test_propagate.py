"""Propagation against skyfield's own EarthSatellite.at(t) ITRS positions, Sun and geodetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from naive_orbits import sgp4_scalar_teme, skyfield_itrs
from skyfield.api import wgs84
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
    orbits = propagate(sub, grid, method="numba")
    ref_r, ref_v = skyfield_itrs(sub.satrecs, range(200), grid)
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
    whole = propagate(c, grid, method="sgp4")
    chunked = propagate(c, grid, chunk_steps=3, method="sgp4")
    np.testing.assert_array_equal(whole.r_km, chunked.r_km)
    ref_r, _ = skyfield_itrs(c.satrecs, range(c.n), grid)
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
    grid = TimeGrid.from_duration(epoch, 2 * 86400.0, 3600.0)
    orbits = propagate(c, grid, method="numba")
    reference = propagate(c, grid, method="sgp4")
    np.testing.assert_array_equal(orbits.status, reference.status)
    assert orbits.status.dtype == np.uint8
    assert orbits.status[0, 0] == 0 and (orbits.status[-1, 0] != 0)
    failed = orbits.status[:, 0] != 0
    for o in (orbits, reference):  # every engine: a failed satellite is NaN, never stale
        assert np.isnan(o.r_km[failed, 0]).all() and np.isnan(o.v_km_s[failed, 0]).all()
        assert (o.status[:, 1] == 0).all() and np.isfinite(o.r_km[:, 1]).all()


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
    np.testing.assert_allclose(sun, ref, atol=1e-8)  # rad: interpolated between 10-min knots
    # off-knot times and a single step
    odd = TimeGrid(datetime(2025, 6, 21, 3, 7, 13, tzinfo=UTC),
                   np.array([0, 123_456_789_012, 4_000_000_000_000], dtype=np.int64))
    t2 = odd.skyfield_times(timescale())
    ref2 = (eph["sun"] - eph["earth"]).at(t2).frame_xyz(itrs).km.T
    ref2 /= np.linalg.norm(ref2, axis=1, keepdims=True)
    np.testing.assert_allclose(sun_direction_ecef(odd), ref2, atol=1e-8)
    assert sun_direction_ecef(odd[:1]).shape == (1, 3)
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


def test_numba_kernel_matches_satrec_array(catalogue):
    """The fused Numba kernel against sgp4's SatrecArray path, on 600 real satellites."""
    sub = Constellation(names=catalogue.names[:600], satrecs=catalogue.satrecs[:600],
                        shell=np.zeros(600), plane=np.zeros(600), slot=np.zeros(600))
    grid = TimeGrid.from_duration(datetime(2026, 2, 23, tzinfo=UTC), 86400.0, 86400.0 / 24)
    fast = propagate(sub, grid, method="numba")
    ref = propagate(sub, grid, method="sgp4")
    np.testing.assert_array_equal(fast.status, ref.status)
    ok = ref.status == 0
    assert np.abs(fast.r_km - ref.r_km)[ok].max() < 1e-8  # km: 10 micrometres
    assert np.abs(fast.v_km_s - ref.v_km_s)[ok].max() < 1e-10
    assert np.isnan(fast.r_km[~ok]).all()


def test_parallel_kernel_equals_serial_twin():
    from meshnet.orbits._kernels import near_earth_params, sgp4_itrs, sgp4_itrs_serial

    epoch = datetime(2025, 3, 1, tzinfo=UTC)
    c = walker_constellation([ShellConfig(altitude_km=500, inclination_deg=97, planes=5,
                                          sats_per_plane=7)], epoch)
    grid = TimeGrid.from_duration(epoch, 600.0, 7.0)
    params, ids = near_earth_params(c.satrecs)
    jd, fr = grid.jd_utc()
    rot = teme_to_itrs_matrices(grid)
    outs = []
    for kernel in (sgp4_itrs, sgp4_itrs_serial):
        r = np.empty((len(grid), c.n, 3))
        v = np.empty_like(r)
        st = np.zeros((len(grid), c.n), dtype=np.uint8)
        kernel(params, ids, jd, fr, rot, 7.2921150e-5, r, v, st)
        outs.append((r, v, st))
    for a, b in zip(outs[0], outs[1], strict=True):
        np.testing.assert_array_equal(a, b)
    # one entry against the scalar Satrec.sgp4 call, rotated by hand
    err, r_teme, _ = sgp4_scalar_teme(c.satrecs[3], jd[5], fr[5])
    assert err == 0
    np.testing.assert_allclose(outs[0][0][5, 3], rot[5] @ r_teme, atol=1e-8)


def test_deep_space_satellites_fall_back_to_satrec_array():
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    geo = make_satrec(1, epoch, inclination_deg=0.05, raan_deg=0, eccentricity=0.0002,
                      arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=1.0027)
    leo = make_satrec(2, epoch, inclination_deg=53, raan_deg=0, eccentricity=0.0002,
                      arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=15.1)
    assert geo.method == "d" and leo.method == "n"
    c = Constellation(names=np.array(["geo", "leo"], dtype=object), satrecs=(geo, leo),
                      shell=[0, 0], plane=[0, 0], slot=[0, 1])
    grid = TimeGrid.from_duration(epoch, 3600.0, 600.0)
    fast = propagate(c, grid, method="numba")
    ref = propagate(c, grid, method="sgp4")
    assert np.abs(fast.r_km - ref.r_km).max() < 1e-8
    assert np.linalg.norm(fast.r_km[0, 0]) > 40000.0
    sky, _ = skyfield_itrs(c.satrecs, [0, 1], grid)
    assert np.abs(fast.r_km - sky).max() * 1000.0 < 1.0


def test_unknown_method():
    from meshnet.errors import MeshnetError

    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=1,
                                          sats_per_plane=1)], datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(MeshnetError, match="propagate method 'fast' is not known; choose one"):
        propagate(c, TimeGrid.from_duration(datetime(2025, 1, 1, tzinfo=UTC), 1, 1),
                  method="fast")


def test_interpolation_matches_exact_sgp4(catalogue):
    """Method "interp" (exact knots + degree-5 Lagrange) against exact SGP4 at every step."""
    sub = Constellation(names=catalogue.names[::10], satrecs=catalogue.satrecs[::10],
                        shell=np.zeros(955), plane=np.zeros(955), slot=np.zeros(955))
    grid = TimeGrid.from_duration(datetime(2026, 2, 23, 5, tzinfo=UTC), 900.0, 1.0)
    fast = propagate(sub, grid, method="interp")
    exact = propagate(sub, grid, method="numba")
    np.testing.assert_array_equal(fast.status, exact.status)
    ok = exact.status == 0
    assert np.linalg.norm(fast.r_km - exact.r_km, axis=2)[ok].max() < 2e-5  # km: 2 cm
    assert np.linalg.norm(fast.v_km_s - exact.v_km_s, axis=2)[ok].max() < 1e-6  # 1 mm/s
    # and the skyfield reference at a few of those steps
    sky, _ = skyfield_itrs(sub.satrecs, range(0, 955, 50), grid[::97])
    assert np.abs(fast.r_km[::97, ::50] - sky).max() * 1000.0 < 1.0


def test_interpolation_handles_decay_and_eccentric_orbits():
    from meshnet.orbits._kernels import (
        interp_itrs,
        interp_itrs_serial,
    )

    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    doomed = make_satrec(1, epoch, inclination_deg=50, raan_deg=0, eccentricity=0.001,
                         arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=16.3,
                         bstar=0.5)
    elliptic = make_satrec(2, epoch, inclination_deg=63, raan_deg=10, eccentricity=0.1,
                           arg_perigee_deg=270, mean_anomaly_deg=0, mean_motion_rev_per_day=13.0)
    fine = make_satrec(3, epoch, inclination_deg=50, raan_deg=0, eccentricity=0.001,
                       arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=15.0)
    c = Constellation(names=np.array(["doomed", "elliptic", "fine"], dtype=object),
                      satrecs=(doomed, elliptic, fine), shell=[0] * 3, plane=[0] * 3,
                      slot=[0, 1, 2])
    grid = TimeGrid.from_duration(epoch, 3 * 3600.0, 2.0)
    exact = propagate(c, grid, method="numba")
    assert exact.status[0, 0] == 0 and exact.status[-1, 0] != 0  # decays inside the run
    fast = propagate(c, grid, method="interp")
    np.testing.assert_array_equal(fast.status, exact.status)
    ok = exact.status == 0
    assert np.abs(fast.r_km - exact.r_km)[ok].max() < 1e-3  # km
    assert np.isnan(fast.r_km[~ok]).all()
    assert interp_itrs is not None and interp_itrs_serial is not None


def test_parallel_interp_kernel_equals_serial_twin(monkeypatch):
    from meshnet.orbits import _kernels

    epoch = datetime(2025, 3, 1, tzinfo=UTC)
    c = walker_constellation([ShellConfig(altitude_km=500, inclination_deg=97, planes=4,
                                          sats_per_plane=5)], epoch)
    grid = TimeGrid.from_duration(epoch, 1200.0, 3.0)
    parallel = propagate(c, grid, method="interp")
    monkeypatch.setattr(_kernels, "interp_itrs", _kernels.interp_itrs_serial)
    serial = propagate(c, grid, method="interp")
    np.testing.assert_array_equal(parallel.r_km, serial.r_km)
    np.testing.assert_array_equal(parallel.v_km_s, serial.v_km_s)


def test_out_buffers_are_filled_and_checked():
    from meshnet.errors import MeshnetError
    from meshnet.orbits.propagate import Orbits

    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=3,
                                          sats_per_plane=4)], epoch)
    grid = TimeGrid.from_duration(epoch, 100.0, 1.0)
    buf = Orbits(np.full((100, 12, 3), 7.0), np.empty((100, 12, 3)),
                 np.full((100, 12), 9, dtype=np.uint8))
    got = propagate(c, grid, out=buf, method="interp")
    assert got.r_km is buf.r_km
    np.testing.assert_allclose(got.r_km, propagate(c, grid, method="numba").r_km, atol=2e-5)
    assert (got.status == 0).all()
    with pytest.raises(MeshnetError, match=r"needs C-contiguous float64 \(100, 12, 3\)"):
        propagate(c, grid, out=Orbits(np.empty((99, 12, 3)), np.empty((99, 12, 3)),
                                      np.zeros((99, 12), dtype=np.uint8)))


def test_polar_motion_applied_as_skyfield_with_the_iers_table():
    """ITRS positions equal skyfield's with the polar-motion table of skyfield-data's
    finals2000A.all installed (to a micrometre), and differ by metres from skyfield's without
    it (so this test fails if polar motion is dropped)."""
    import warnings

    import skyfield_data
    from skyfield.api import EarthSatellite, Loader
    from skyfield.data import iers

    assert timescale().polar_motion_table is not None
    load = Loader(skyfield_data.get_skyfield_data_path(), expire=False, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table's predictions have ended
        plain = load.timescale(builtin=False)
        with_pm = load.timescale(builtin=False)
        with load.open("finals2000A.all") as fh:
            iers.install_polar_motion_table(with_pm, iers.parse_x_y_dut1_from_finals_all(fh))
    epoch = datetime(2024, 6, 1, 6, tzinfo=UTC)  # inside the table (measured, not predicted)
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=4,
                                          sats_per_plane=3, phasing=1)], epoch)
    grid = TimeGrid.from_duration(epoch, 3000.0, 600.0)
    for method in ("sgp4", "numba"):
        r = propagate(c, grid, method=method).r_km
        err_pm = err_plain = 0.0
        for k in range(c.n):
            sat = EarthSatellite.from_satrec(c.satrecs[k], with_pm)
            ref = sat.at(grid.skyfield_times(with_pm)).frame_xyz(itrs).km.T
            err_pm = max(err_pm, np.linalg.norm(r[:, k] - ref, axis=1).max() * 1000.0)
            sat = EarthSatellite.from_satrec(c.satrecs[k], plain)
            ref = sat.at(grid.skyfield_times(plain)).frame_xyz(itrs).km.T
            err_plain = max(err_plain, np.linalg.norm(r[:, k] - ref, axis=1).max() * 1000.0)
        assert err_pm < 1e-3  # metres: 0.14 um measured
        assert 5.0 < err_plain < 30.0  # the pole's offset, 15 m at LEO in mid-2024

