"""The grid-filtered ground-link search equals the brute-force kernels (its twins) exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meshnet.kernels import _links as k


def _shell(rng, n, r_km=6903.0):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None] * (r_km + rng.uniform(-30, 30, (n, 1)))


def _stations(rng, n):
    v = rng.normal(size=(n, 3))
    up = v / np.linalg.norm(v, axis=1)[:, None]
    return up * 6371.0, up


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("use_len", [False, True])
def test_grid_equals_brute_force(seed, use_len):
    rng = np.random.default_rng(seed)
    r = _shell(rng, 3000)
    r[rng.choice(3000, 20, replace=False)] = np.nan  # failed propagation: never linked
    r_gs, up = _stations(rng, 60)
    # A station right under a satellite, and a satellite exactly at the distance bound.
    r_gs[0] = r[5] / np.linalg.norm(r[5]) * 6371.0
    up[0] = r_gs[0] / 6371.0
    max_len = 1100.0 if not use_len else 900.0
    r[7] = r_gs[1] + up[1] * max_len
    sin_min = math.sin(math.radians(25.0))
    max_d2 = max_len * max_len
    counts = np.empty(60, np.int64)
    k.gsl_count_serial(r, r_gs, up, sin_min, max_d2, use_len, counts)
    offsets = np.zeros(61, np.int64)
    np.cumsum(counts, out=offsets[1:])
    sat = np.empty(offsets[-1], np.int64)
    sin_el = np.empty(offsets[-1])
    length = np.empty(offsets[-1])
    k.gsl_fill_serial(r, r_gs, up, sin_min, max_d2, use_len, offsets, sat, sin_el, length)
    g_off, g_sat, g_sin, g_len = k.gsl_grid(r, r_gs, up, sin_min, max_d2, use_len)
    assert offsets[-1] > 60
    assert np.array_equal(g_off, offsets)
    assert np.array_equal(g_sat, sat)
    assert np.array_equal(g_sin, sin_el)
    assert np.array_equal(g_len, length)


def test_grid_with_no_valid_satellite():
    r = np.full((5, 3), np.nan)
    r_gs, up = _stations(np.random.default_rng(0), 3)
    off, sat, _, _ = k.gsl_grid(r, r_gs, up, 0.4, 1e6, False)
    assert np.array_equal(off, np.zeros(4, np.int64)) and sat.size == 0
