"""Formation cluster: neighbour distances and radius over a whole orbit."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meshnet.errors import ScenarioError
from meshnet.orbits.cluster import (
    cluster_constellation,
    hex_lattice,
    sun_synchronous_inclination_deg,
)
from meshnet.orbits.config import ClusterConfig
from meshnet.orbits.propagate import propagate
from meshnet.orbits.walker import mean_motion_from_altitude
from meshnet.timegrid import TimeGrid

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _one_orbit(c, altitude_km, step_s=20.0):
    period_s = 86400.0 / mean_motion_from_altitude(altitude_km)
    return propagate(c, TimeGrid.from_duration(EPOCH, period_s + step_s, step_s))


@pytest.mark.parametrize("cfg", [ClusterConfig(),
                                 ClusterConfig(n_sats=30, radius_km=2.0, spacing_min_km=0.3,
                                               spacing_max_km=0.5, altitude_km=550.0,
                                               inclination_deg=53.0, raan_deg=40.0)])
def test_neighbour_distances_stay_in_bounds_over_an_orbit(cfg):
    c = cluster_constellation(cfg, EPOCH)
    assert c.n == cfg.n_sats and c.source == "cluster"
    o = _one_orbit(c, cfg.altitude_km)
    assert (o.status == 0).all()
    a, b = c.cluster_pairs[:, 0], c.cluster_pairs[:, 1]
    d = np.linalg.norm(o.r_km[:, a] - o.r_km[:, b], axis=2)
    assert d.min() >= cfg.spacing_min_km and d.max() <= cfg.spacing_max_km
    # every satellite's nearest neighbour too (not only the lattice pairs)
    r = o.r_km
    full = np.linalg.norm(r[:, :, None, :] - r[:, None, :, :], axis=3)
    full[:, np.arange(c.n), np.arange(c.n)] = np.inf
    nearest = full.min(axis=2)
    assert nearest.min() >= cfg.spacing_min_km and nearest.max() <= cfg.spacing_max_km
    # all within the radius of the reference (node 0 sits at the lattice centre)
    assert np.linalg.norm(r - r[:, :1], axis=2).max() <= cfg.radius_km


def test_sun_synchronous_default():
    c = cluster_constellation(ClusterConfig(), EPOCH)
    assert c.shells[0].inclination_deg == pytest.approx(97.99, abs=0.02)
    assert sun_synchronous_inclination_deg(650.0) == pytest.approx(97.99, abs=0.02)
    assert len(c.cluster_pairs) > 150  # hexagonal lattice: about 3 pairs per satellite
    assert c.names[80] == "C-80"


def test_hex_lattice_spacing():
    q = hex_lattice(19, 0.15)
    d = np.linalg.norm(q[:, None] - q[None], axis=2)
    d[np.arange(19), np.arange(19)] = np.inf
    np.testing.assert_allclose(d.min(axis=1), 0.15)


def test_too_many_for_radius():
    with pytest.raises(ScenarioError, match=r"81 satellites at least 0.1 km apart do not fit "
                                            r"within radius_km = 0.3"):
        cluster_constellation(ClusterConfig(radius_km=0.3), EPOCH)
