"""Walker shells against closed forms, and Hypatia-compatible shells against Hypatia's TLEs."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from meshnet.orbits.config import ShellConfig
from meshnet.orbits.propagate import propagate
from meshnet.orbits.walker import (
    altitude_from_mean_motion,
    format_tle_line2,
    mean_motion_from_altitude,
    shell_elements,
    walker_constellation,
)
from meshnet.timegrid import TimeGrid
from meshnet.units import R_EARTH_KM

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HYPATIA = DATA / "hypatia_kuiper_630"
EPOCH = datetime(2025, 4, 1, tzinfo=UTC)


def _wrap(deg):
    return (np.asarray(deg) + 180.0) % 360.0 - 180.0


def _elements(c):
    raan = np.degrees([s.nodeo for s in c.satrecs])
    u = np.degrees([s.argpo + s.mo for s in c.satrecs]) % 360.0
    return raan, u


@pytest.mark.parametrize("pattern,spread", [("delta", 360.0), ("star", 180.0)])
def test_plane_slot_and_phasing_spacing(pattern, spread):
    p, s, f = 6, 8, 2
    shell = ShellConfig(altitude_km=700, inclination_deg=60, planes=p, sats_per_plane=s,
                        phasing=f, pattern=pattern, raan_offset_deg=10.0)
    c = walker_constellation([shell], EPOCH)
    raan, u = _elements(c)
    raan = raan.reshape(p, s)
    u = u.reshape(p, s)
    # every satellite of a plane shares its RAAN; planes are spread/P apart from the offset
    np.testing.assert_allclose(_wrap(raan - raan[:, :1]), 0.0, atol=1e-9)
    np.testing.assert_allclose(_wrap(raan[:, 0] - (10.0 + np.arange(p) * spread / p)), 0,
                               atol=1e-9)
    # in-plane spacing 360/S
    np.testing.assert_allclose(_wrap(np.diff(u, axis=1) - 360.0 / s), 0.0, atol=1e-9)
    # phasing: slot 0 of plane p+1 leads slot 0 of plane p by F * 360 / (P S)
    np.testing.assert_allclose(_wrap(np.diff(u[:, 0]) - f * 360.0 / (p * s)), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.degrees([x.inclo for x in c.satrecs]), 60.0, atol=1e-12)
    assert c.names[s + 3] == "S0-P01-03" and c.plane[s + 3] == 1 and c.slot[s + 3] == 3


def test_geometry_from_positions():
    """Plane normals and in-plane angles measured on SGP4 positions follow the closed forms."""
    p, s = 4, 6
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=p,
                                          sats_per_plane=s)], EPOCH)
    from sgp4.api import SatrecArray

    from meshnet.orbits.walker import sgp4_epoch_days
    jd = sgp4_epoch_days(EPOCH) + 2433281.5
    _, r, v = SatrecArray(list(c.satrecs)).sgp4(np.array([jd]), np.array([0.0]))
    r, v = r[:, 0], v[:, 0]
    h = np.cross(r, v)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    incl = np.degrees(np.arccos(h[:, 2]))
    raan = np.degrees(np.arctan2(h[:, 0], -h[:, 1]))
    np.testing.assert_allclose(incl, 53.0, atol=0.05)  # osculating vs mean: short-period terms
    rad = np.radians(raan.reshape(p, s))
    plane_raan = np.degrees(np.arctan2(np.sin(rad).mean(1), np.cos(rad).mean(1)))
    np.testing.assert_allclose(_wrap(np.diff(plane_raan) - 360.0 / p), 0.0, atol=0.05)
    rr = r.reshape(p, s, 3)
    cos_adj = np.einsum("psk,psk->ps", rr[:, 1:], rr[:, :-1]) / (
        np.linalg.norm(rr[:, 1:], axis=2) * np.linalg.norm(rr[:, :-1], axis=2))
    np.testing.assert_allclose(np.degrees(np.arccos(cos_adj)), 360.0 / s, atol=0.15)


def test_altitude_over_an_orbit():
    for alt in (550.0, 1200.0):
        c = walker_constellation([ShellConfig(altitude_km=alt, inclination_deg=53, planes=2,
                                              sats_per_plane=3)], EPOCH)
        period_s = 86400.0 / mean_motion_from_altitude(alt)
        o = propagate(c, TimeGrid.from_duration(EPOCH, period_s, 20.0))
        radius = np.linalg.norm(o.r_km, axis=2)
        # SGP4 mean elements: the mean radius is the Kepler radius to within J2 effects (~km)
        assert abs(radius.mean() - (R_EARTH_KM + alt)) < 10.0
        assert radius.max() - radius.min() < 30.0


def test_mean_motion_altitude_round_trip():
    assert altitude_from_mean_motion(mean_motion_from_altitude(630.0)) == pytest.approx(630.0)
    assert 15.0 < mean_motion_from_altitude(550.0) < 15.1


def test_several_shells_names_and_labels():
    shells = [ShellConfig(name="a", altitude_km=550, inclination_deg=53, planes=3,
                          sats_per_plane=2),
              ShellConfig(name="b", mean_motion_rev_per_day=15.19, inclination_deg=70, planes=2,
                          sats_per_plane=4)]
    c = walker_constellation(shells, EPOCH)
    assert c.n == 14
    assert list(c.shell) == [0] * 6 + [1] * 8
    assert c.names[6] == "S1-P00-00" and c.names[-1] == "S1-P01-03"
    assert [s.name for s in c.shells] == ["a", "b"]
    assert c.shells[1].altitude_km == pytest.approx(altitude_from_mean_motion(15.19))
    assert len(set(c.names.tolist())) == c.n


def test_hypatia_kuiper_tles_match_hypatia_file():
    path = HYPATIA / "tles.txt"
    if not path.exists():
        pytest.skip(f"Hypatia directory not found at {HYPATIA}")
    lines = path.read_text().splitlines()
    shell = ShellConfig(name="Kuiper-630", mean_motion_rev_per_day=14.80, inclination_deg=51.9,
                        planes=34, sats_per_plane=34, eccentricity=1e-7,
                        odd_plane_half_slot_shift=True)
    el = shell_elements(shell)
    for k in range(34 * 34):
        mine = format_tle_line2(k + 1, inclination_deg=51.9, raan_deg=el["raan_deg"][k],
                                eccentricity=1e-7, arg_perigee_deg=0.0,
                                mean_anomaly_deg=el["mean_anomaly_deg"][k],
                                mean_motion_rev_per_day=14.80)
        assert mine == lines[3 + 3 * k], f"satellite {k}"
    # and the propagated satellites agree with Hypatia's to the TLE's rounding (1e-4 deg)
    from meshnet.orbits.hypatia import read_hypatia_tles

    theirs, _, _ = read_hypatia_tles(path)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    ours = walker_constellation([shell], epoch)
    grid = TimeGrid.from_duration(epoch, 200.0, 50.0)
    diff = np.linalg.norm(propagate(ours, grid).r_km - propagate(theirs, grid).r_km, axis=2)
    assert diff.max() < 0.02  # km: 1e-4 deg of argument of latitude is 12 m at 7,000 km
    assert math.isclose(theirs.shells[0].inclination_deg, 51.9)
