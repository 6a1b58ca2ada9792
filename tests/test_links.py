"""Laser link model: topology, feasibility reasons, state, capacity, ground links."""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_links import (  # noqa: E402
    REASONS,
    brute_candidates,
    naive_greedy,
    naive_lifetime,
    naive_reason,
    walker,
)

from meshnet.config import parse_table  # noqa: E402
from meshnet.errors import MeshnetError, ScenarioError  # noqa: E402
from meshnet.links import (  # noqa: E402
    ACQUIRING,
    DOWN,
    GSL,
    ISL,
    REASON_NAMES,
    UP,
    FeasibilityLimits,
    LinkModel,
    LinksConfig,
    evaluate_links,
    geometric_range_km,
    plane_keys,
)
from meshnet.links.capacity import capacity_bps  # noqa: E402
from meshnet.links.dynamic import kdtree_candidates  # noqa: E402
from meshnet.units import C_KM_S, R_EARTH_KM  # noqa: E402

S = 1_000_000_000
NO_SUN = dict(sun_exclusion_deg=0.0)


def degrees(table, n, states=(UP,)):
    isl = (table.kind == ISL) & np.isin(table.state, states)
    return (np.bincount(table.a[isl], minlength=n) + np.bincount(table.b[isl], minlength=n))


def pair_const(n):
    return SimpleNamespace(names=np.array([f"S{i}" for i in range(n)], dtype=object),
                           shell=np.full(n, -1), plane=np.full(n, -1), slot=np.full(n, -1),
                           shells=(), static_isls=np.array([[0, 1]]), max_isl_length_km=None,
                           max_gsl_length_km=None)


# --- topology -----------------------------------------------------------------------------


def test_plus_grid_degree_exactly_four_on_walker_delta():
    r, v, const = walker(24, 18, 550.0, 53.0, phasing=1)
    model = LinkModel(LinksConfig(**NO_SUN), None, const, None, 1.0)
    table = model.step(0, r, v, [1.0, 0.0, 0.0])
    assert np.all(table.state == UP)
    assert np.all(table.a < table.b)
    assert len(table) == 2 * const.n
    assert np.all(degrees(table, const.n) == 4)
    snap = table.to_snapshot(model.node_names, model.node_kind)
    assert np.all(snap.degree() == 4)
    assert np.allclose(snap.delay_s, snap.length_km / C_KM_S)


def test_plus_grid_cross_plane_shift():
    r, v, const = walker(18, 10, 550.0, 53.0)
    model = LinkModel(LinksConfig(cross_plane_shift=2, **NO_SUN), None, const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0.0, 0.0])
    pairs = set(zip(t.a.tolist(), t.b.tolist(), strict=True))
    assert (3, 15) in pairs          # plane 0 slot 3 -- plane 1 slot 5
    assert (4, 171) in pairs         # plane 17 slot 1 -- plane 0 slot 1+2+F (the wrap)
    assert np.all(degrees(t, const.n, (DOWN, ACQUIRING, UP)) == 4)


def test_plus_grid_wrap_follows_the_walker_phasing():
    # Starlink-550 with F = 39: the wrap partner of plane 71 slot k is plane 0 slot k + 39.
    r, v, const = walker(72, 22, 550.0, 53.0, phasing=39)
    model = LinkModel(LinksConfig(**NO_SUN), None, const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0.0, 0.0])
    assert np.all(t.state == UP)
    cross = const.plane[t.a] != const.plane[t.b]
    assert t.length_km[cross].max() < 1.5 * np.median(t.length_km[cross])
    pairs = set(zip(t.a.tolist(), t.b.tolist(), strict=True))
    assert (39 % 22, 71 * 22) in pairs


def test_walker_star_seam_gets_no_links():
    r, v, const = walker(6, 11, 780.0, 86.4, pattern="star")
    plane = const.plane
    for cross_seam in (False, True):
        model = LinkModel(LinksConfig(cross_seam=cross_seam, **NO_SUN), None, const, None, 1.0)
        t = model.step(0, r, v, [1.0, 0.0, 0.0])
        seam = ((plane[t.a] == 0) & (plane[t.b] == 5)) | ((plane[t.a] == 5) & (plane[t.b] == 0))
        if cross_seam:
            assert seam.sum() == 11
        else:
            assert seam.sum() == 0
            deg = degrees(t, const.n, states=(DOWN, ACQUIRING, UP))
            assert np.all(deg[(plane == 0) | (plane == 5)] == 3)
            assert np.all(deg[(plane > 0) & (plane < 5)] == 4)


def test_counter_rotating_pair_is_a_seam_failure():
    # Plane 0 and plane 5 of a star shell move in opposite directions where they meet.
    r, v, const = walker(6, 11, 780.0, 86.4, pattern="star")
    reason, _ = evaluate_links(r, v, [0], [55], [1.0, 0, 0], FeasibilityLimits())
    assert REASON_NAMES[reason[0]] == "seam"
    reason, _ = evaluate_links(r, v, [0], [55], [1.0, 0, 0],
                               FeasibilityLimits(cross_seam=True))
    assert REASON_NAMES[reason[0]] != "seam"


def test_static_topology_from_file(tmp_path):
    r, v, const = walker(4, 6, 550.0, 53.0)
    f = tmp_path / "isls.txt"
    f.write_text("0 1\n# comment\n1 0\n6 0\n")
    model = LinkModel(LinksConfig(topology="static", static_file=str(f), **NO_SUN), None,
                      const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    assert t.a.tolist() == [0, 0] and t.b.tolist() == [1, 6]
    f.write_text("0 99\n")
    model = LinkModel(LinksConfig(topology="static", static_file=str(f)), None, const, None,
                      1.0)
    with pytest.raises(ScenarioError, match=r"isls.txt:1: satellite id 99"):
        model.step(0, r, v, [1.0, 0, 0])


def test_cluster_knn_respects_terminals():
    rng = np.random.default_rng(1)
    n = 81
    base = np.array([R_EARTH_KM + 650.0, 0.0, 0.0])
    grid = np.stack(np.meshgrid(np.arange(9), np.arange(9)), -1).reshape(-1, 2) * 0.15
    r = base + np.column_stack([np.zeros(n), grid]) + rng.normal(0, 0.005, (n, 3))
    v = np.tile([0.0, 7.5, 0.0], (n, 1))
    const = pair_const(n)
    model = LinkModel(LinksConfig(topology="cluster", **NO_SUN), None, const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    deg = degrees(t, n)
    assert deg.max() <= 4 and deg.mean() > 3.0
    assert np.median(t.length_km) < 0.16 and t.length_km.max() < 0.35  # near neighbours


# --- feasibility -------------------------------------------------------------------------


def test_geometric_range_limit_550km():
    assert geometric_range_km(550.0, grazing_altitude_km=80.0) == pytest.approx(5016.6, abs=0.05)
    rs = R_EARTH_KM + 550.0
    lim = geometric_range_km(550.0)
    results = []
    for d in (lim - 0.5, lim + 0.5):
        half = math.asin(d / 2 / rs)
        r = rs * np.array([[math.cos(half), math.sin(half), 0.0],
                           [math.cos(half), -math.sin(half), 0.0]])
        v = np.array([[0.0, 0.0, 7.6], [0.0, 0.0, 7.6]])
        reason, length = evaluate_links(r, v, [0], [1], [0.0, 0.0, 1.0],
                                        FeasibilityLimits(range_cap_km=1e9))
        assert length[0] == pytest.approx(d)
        results.append(REASON_NAMES[reason[0]])
    assert results == ["none", "earth_blocked"]


def test_range_cap_and_opposite_sides():
    rs = R_EARTH_KM + 550.0
    r = np.array([[rs, 0, 0], [-rs, 0, 0], [rs * math.cos(0.4), rs * math.sin(0.4), 0]])
    v = np.array([[0, 0, 7.6], [0, 0, -7.6], [0, 0, 7.6]])
    reason, length = evaluate_links(r, v, [0, 0], [1, 2], [0, 0, 1.0],
                                    FeasibilityLimits(range_cap_km=2000.0, cross_seam=True))
    assert [REASON_NAMES[x] for x in reason] == ["earth_blocked", "out_of_range"]
    assert length[0] == pytest.approx(2 * rs)


def test_polar_cutoff_applies_to_cross_plane_links_only():
    r, v, const = walker(6, 20, 780.0, 86.4, pattern="star")
    key = plane_keys(const)
    lat = np.degrees(np.arcsin(r[:, 2] / np.linalg.norm(r, axis=1)))
    polar_sat = int(np.argmax(np.abs(lat)))
    p, s = divmod(polar_sat, 20)
    in_plane = (polar_sat, p * 20 + (s + 1) % 20)
    cross = (polar_sat, (p + 1) * 20 + s if p < 5 else (p - 1) * 20 + s)
    assert abs(lat[polar_sat]) > 70
    lim = FeasibilityLimits(sun_exclusion_deg=0.0, max_angular_rate_deg_s=10.0)
    reason, _ = evaluate_links(r, v, [in_plane[0], cross[0]], [in_plane[1], cross[1]],
                               [1.0, 0, 0], lim, key)
    assert [REASON_NAMES[x] for x in reason] == ["none", "polar"]
    reason, _ = evaluate_links(r, v, [cross[0]], [cross[1]], [1.0, 0, 0],
                               replace(lim, polar_cutoff_deg=None), key)
    assert REASON_NAMES[reason[0]] == "none"


def test_angular_rate_limit():
    rs = R_EARTH_KM + 550.0
    r = np.array([[rs, 0, 0], [rs, 100.0, 0]])
    v = np.array([[0, 0, 7.6], [0, 0, -7.6]])  # crossing at 15 km/s, 100 km apart
    reason, _ = evaluate_links(r, v, [0], [1], [0, 0, 1.0], FeasibilityLimits(cross_seam=True))
    assert REASON_NAMES[reason[0]] == "angular_rate"


def _skyfield():
    import skyfield_data
    from skyfield.api import Loader

    load = Loader(skyfield_data.get_skyfield_data_path(), expire=False, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return load.timescale(builtin=False), load("de421.bsp")


def test_sun_exclusion_matches_skyfield_angle():
    from skyfield.api import wgs84
    from skyfield.framelib import itrs

    from meshnet.orbits.propagate import sun_direction_ecef
    from meshnet.timegrid import TimeGrid

    epoch = datetime(2024, 6, 21, 12, 0, tzinfo=UTC)
    ts, eph = _skyfield()
    t = ts.utc(2024, 6, 21, 12, 0, 0)
    sun_dir = sun_direction_ecef(TimeGrid(epoch, np.array([0], np.int64)))[0]
    # Terminal A at 550 km, 30 deg east of the sub-solar point: sunlit, low latitude.
    lat, lon = 10.0, math.degrees(math.atan2(sun_dir[1], sun_dir[0])) + 30.0
    site = wgs84.latlon(lat, lon, elevation_m=550_000.0)
    ra = site.itrs_xyz.km
    sun_from_a = (eph["earth"] + site).at(t).observe(eph["sun"]).frame_xyz(itrs).km
    sun_from_a = sun_from_a / np.linalg.norm(sun_from_a)
    perp = np.cross(sun_from_a, [0.0, 0.0, 1.0])
    perp /= np.linalg.norm(perp)
    for angle_deg, expect in ((4.0, "sun"), (6.0, "none"), (4.9, "sun"), (5.1, "none")):
        th = math.radians(angle_deg)
        look = math.cos(th) * sun_from_a + math.sin(th) * perp
        rb = ra + 800.0 * look
        # Independent angle between A's line of sight and the Sun seen from A (skyfield).
        ang = math.degrees(math.acos(np.clip(look @ sun_from_a, -1, 1)))
        assert ang == pytest.approx(angle_deg, abs=1e-9)
        r = np.array([ra, rb])
        v = np.zeros((2, 3))
        reason, _ = evaluate_links(r, v, [0], [1], sun_dir, FeasibilityLimits())
        assert REASON_NAMES[reason[0]] == expect, angle_deg
        # The same link seen from the other end (the Sun is behind A for B's terminal).
        reason, _ = evaluate_links(r[::-1].copy(), v, [0], [1], sun_dir, FeasibilityLimits())
        assert REASON_NAMES[reason[0]] == expect


def test_sun_behind_the_earth_does_not_blind():
    s = np.array([1.0, 0.0, 0.0])
    rs = R_EARTH_KM + 550.0
    ra = np.array([-rs, 0.0, 0.0])            # in eclipse on the night side
    rb = ra + 300.0 * np.array([math.cos(0.01), math.sin(0.01), 0.0])  # towards the Sun
    reason, _ = evaluate_links(np.array([ra, rb]), np.zeros((2, 3)), [0], [1], s,
                               FeasibilityLimits(grazing_altitude_km=0.0))
    assert REASON_NAMES[reason[0]] == "none"


def test_feasibility_kernel_matches_naive_reference():
    rng = np.random.default_rng(7)
    parts = [walker(12, 10, 550.0, 53.0, t_s=300.0), walker(6, 10, 780.0, 86.4, pattern="star"),
             walker(8, 8, 1200.0, 97.6, t_s=1000.0)]
    r = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    n = r.shape[0]
    r[5] = np.nan
    a = rng.integers(0, n, 3000)
    b = rng.integers(0, n, 3000)
    # Neighbouring ids are mostly close pairs: every reason shows up.
    b[:1500] = np.minimum(a[:1500] + rng.integers(1, 15, 1500), n - 1)
    keep = a != b
    a, b = a[keep], b[keep]
    sun = rng.normal(size=3)
    sun /= np.linalg.norm(sun)
    lim = FeasibilityLimits(sun_exclusion_deg=15.0, max_angular_rate_deg_s=0.5,
                            polar_cutoff_deg=60.0)
    reason, length = evaluate_links(r, v, a, b, sun, lim, parallel=False)
    reason_p, length_p = evaluate_links(r, v, a, b, sun, lim, parallel=True)
    assert np.array_equal(reason, reason_p)
    assert np.array_equal(length, length_p, equal_nan=True)
    got = [REASON_NAMES[x] for x in reason]
    want = [naive_reason(r[i], r[j], v[i], v[j], sun, sun_deg=15.0, max_rate_deg_s=0.5,
                         polar_deg=60.0) for i, j in zip(a, b, strict=True)]
    assert got == want
    assert set(got) == set(REASONS)


# --- state --------------------------------------------------------------------------------


def _two_sats():
    rs = R_EARTH_KM + 550.0
    r = np.array([[rs, 0.0, 0.0], [rs * math.cos(0.1), rs * math.sin(0.1), 0.0]])
    v = np.array([[0.0, 0.0, 7.6], [0.0, 0.0, 7.6]])
    los = (r[1] - r[0]) / np.linalg.norm(r[1] - r[0])
    return r, v, los


@pytest.mark.parametrize("step_s", [1.0, 0.5, 7.0])
def test_acquisition_lasts_exactly_acquisition_s(step_s):
    r, v, los = _two_sats()
    model = LinkModel(LinksConfig(topology="static"), None, pair_const(2), None, step_s)
    dark = np.array([0.0, 0.0, 1.0])
    states = []
    times = np.arange(0, 80 * S, int(step_s * S))
    for t in times:
        sun = los if t < 10 * S else dark  # blinded for the first 10 s
        states.append(model.step(int(t), r, v, sun).state[0])
    states = np.array(states)
    feasible_from = times[np.argmax(times >= 10 * S)]
    acq = (states == ACQUIRING)
    assert np.all(states[times < 10 * S] == DOWN)
    assert times[acq].min() == feasible_from
    first_up = times[states == UP].min()
    assert first_up == feasible_from + math.ceil(30 * S / (step_s * S)) * int(step_s * S)
    assert np.all(states[times >= first_up] == UP)


def test_warm_and_cold_start():
    r, v, _ = _two_sats()
    dark = np.array([0.0, 0.0, 1.0])
    warm = LinkModel(LinksConfig(topology="static"), None, pair_const(2), None, 1.0)
    cold = LinkModel(LinksConfig(topology="static", warm_start=False), None, pair_const(2),
                     None, 1.0)
    assert warm.step(0, r, v, dark).state[0] == UP
    assert cold.step(0, r, v, dark).state[0] == ACQUIRING
    assert cold.step(29 * S, r, v, dark).state[0] == ACQUIRING
    assert cold.step(30 * S, r, v, dark).state[0] == UP
    with pytest.raises(MeshnetError, match="advance in time"):
        cold.step(30 * S, r, v, dark)


# --- dynamic ------------------------------------------------------------------------------


def test_dynamic_terminal_limit_and_stability_walker():
    const = walker(36, 20, 550.0, 53.0, phasing=1)[2]
    for terminals in (1, 2, 3):
        model = LinkModel(LinksConfig(topology="dynamic", terminals=terminals), None, const,
                          None, 1.0)
        prev = None
        for k in range(0, 20):
            r, v, _ = walker(36, 20, 550.0, 53.0, phasing=1, t_s=float(k))
            t = model.step(k * S, r, v, [0.3, 0.9, 0.3] / np.linalg.norm([0.3, 0.9, 0.3]))
            assert degrees(t, const.n, (ACQUIRING, UP)).max() <= terminals
            live = {(a, b) for a, b, s in zip(t.a.tolist(), t.b.tolist(), t.state.tolist(),
                                              strict=True) if s != DOWN}
            if prev:
                assert len(prev & live) / len(prev) > 0.95
            prev = live
        assert degrees(t, const.n, (ACQUIRING, UP)).mean() > terminals - 0.2


def test_dynamic_prefers_in_plane_neighbours():
    r, v, const = walker(36, 20, 550.0, 53.0, phasing=1)
    model = LinkModel(LinksConfig(topology="dynamic", terminals=2, **NO_SUN), None, const,
                      None, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    same_plane = const.plane[t.a] == const.plane[t.b]
    assert same_plane.mean() > 0.99


def test_kdtree_candidates_match_all_pairs_search():
    parts = [walker(24, 20, 550.0, 53.0, t_s=100.0), walker(12, 10, 570.0, 70.0)]
    r = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(3)
    free = np.sort(rng.choice(r.shape[0], 400, replace=False))
    got = kdtree_candidates(r, v, free, 8, 1.0, 5000.0)
    want = brute_candidates(r, v, free, 8, 1.0, 5000.0)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert (got[2] == 0).sum() > 100


def test_lifetime_and_matching_kernels_match_naive():
    from meshnet.kernels._links import greedy_matching, predicted_lifetime

    parts = [walker(12, 10, 550.0, 53.0, t_s=300.0), walker(8, 8, 1200.0, 97.6, t_s=1000.0)]
    r = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(5)
    a = rng.integers(0, r.shape[0], 500).astype(np.int32)
    b = rng.integers(0, r.shape[0], 500).astype(np.int32)
    keep = a != b
    a, b = a[keep], b[keep]
    got = np.empty(a.shape[0])
    predicted_lifetime(r, v, a, b, R_EARTH_KM + 80.0, 5400.0, 3600.0, got)
    want = [naive_lifetime(r[i], r[j], v[i], v[j], R_EARTH_KM + 80.0, 5400.0, 3600.0)
            for i, j in zip(a, b, strict=True)]
    assert np.allclose(got, want, atol=1e-6)
    assert (got > 0).sum() > 20 and (got == 0).sum() > 20
    order = rng.permutation(a.shape[0]).astype(np.int64)
    degree = rng.integers(0, 3, r.shape[0]).astype(np.int64)
    accept = np.zeros(a.shape[0], bool)
    greedy_matching(a, b, order, degree.copy(), 3, accept)
    assert accept.tolist() == naive_greedy(a.tolist(), b.tolist(), order.tolist(),
                                           degree.tolist(), 3)


# --- capacity and ground links -------------------------------------------------------------


def test_capacity_models():
    d = np.array([500.0, 3000.0, 6000.0, 6000.0])
    st = np.array([UP, UP, UP, ACQUIRING])
    assert capacity_bps(d, st, "fixed", 100e9, 3000.0).tolist() == [100e9, 100e9, 100e9, 0.0]
    assert capacity_bps(d, st, "link_budget", 100e9, 3000.0).tolist() == [
        100e9, 100e9, 25e9, 0.0]
    r, v, const = walker(12, 12, 550.0, 53.0)
    model = LinkModel(LinksConfig(capacity_model="link_budget", reference_range_km=2000.0,
                                  **NO_SUN), None, const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    want = np.minimum(100e9, 100e9 * (2000.0 / t.length_km) ** 2)
    assert np.allclose(t.capacity_bps, want)


def replace_ns(ns, **kw):
    return SimpleNamespace(**{**vars(ns), **kw})


def _stations(lat, lon):
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    la, lo = np.radians(lat), np.radians(lon)
    r = R_EARTH_KM * np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], 1)
    return SimpleNamespace(names=np.array([f"G{i}" for i in range(len(lat))], dtype=object),
                           lat_deg=lat, lon_deg=lon, r_km=r)


def test_gsl_elevation_rule_against_naive_elevation():
    r, v, const = walker(24, 24, 550.0, 53.0, t_s=50.0)
    g = _stations([0.0, 40.0, -33.9, 51.5, 80.0], [0.0, -74.0, 151.2, -0.1, 10.0])
    gcfg = SimpleNamespace(min_elevation_deg=25.0, antennas=2, gsl_capacity_bps=20e9,
                           max_gsl_length_km=None)
    model = LinkModel(LinksConfig(**NO_SUN), gcfg, const, g, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    gsl = t.kind == GSL
    assert np.all(t.state[gsl] == UP) and np.all(t.capacity_bps[gsl] == 20e9)
    n = const.n
    for gi in range(5):
        up = np.array([np.cos(np.radians(g.lat_deg[gi])) * np.cos(np.radians(g.lon_deg[gi])),
                       np.cos(np.radians(g.lat_deg[gi])) * np.sin(np.radians(g.lon_deg[gi])),
                       np.sin(np.radians(g.lat_deg[gi]))])
        d = r - g.r_km[gi]
        elev = np.degrees(np.arcsin(d @ up / np.linalg.norm(d, axis=1)))
        # Two antennas: the highest ascending and the highest descending satellite in view
        # (group spread), or the two highest when only one direction is in view.
        vis = [i for i in np.argsort(-elev, kind="stable") if elev[i] >= 25.0]
        firsts = [next((i for i in vis if (v[i, 2] < 0) == d), None) for d in (False, True)]
        want = [i for i in firsts if i is not None]
        want = sorted(want + [i for i in vis if i not in want][:2 - len(want)])
        got = sorted(t.a[gsl & (t.b == n + gi)].tolist())
        assert got == want
        assert np.allclose(t.length_km[gsl & (t.b == n + gi)],
                           np.linalg.norm(d[got], axis=1))
    snap = t.to_snapshot(model.node_names, model.node_kind)
    assert snap.n_nodes == n + 5
    # Threaded and serial kernels agree.
    from meshnet.links.gsl import GroundLinks

    for rule in (None, 2000.0):
        cfg = replace_ns(gcfg, max_gsl_length_km=rule)
        got = [GroundLinks(cfg, g, parallel=p).step(r) for p in (False, True)]
        for x, y in zip(*got, strict=True):
            assert np.array_equal(x, y)


def test_gsl_hypatia_distance_rule():
    r, v, const = walker(24, 24, 550.0, 53.0, t_s=50.0)
    g = _stations([10.0, -20.0], [20.0, 100.0])
    gcfg = SimpleNamespace(min_elevation_deg=25.0, antennas=1, gsl_capacity_bps=1e9,
                           max_gsl_length_km=1500.0)
    model = LinkModel(LinksConfig(**NO_SUN), gcfg, const, g, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    gsl = t.kind == GSL
    for gi in range(2):
        want = np.nonzero(np.linalg.norm(r - g.r_km[gi], axis=1) <= 1500.0)[0].tolist()
        assert t.a[gsl & (t.b == const.n + gi)].tolist() == want
        assert len(want) > 1


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize("table, match", [
    ({"terminals": 0}, r"demo.toml: \[links\].terminals must be >= 1, found 0"),
    ({"max_range_km": -5.0}, r"\[links\].max_range_km must be > 0.0, found -5.0"),
    ({"topology": "plusgrid"}, r"\[links\].topology = 'plusgrid' is not known; did you mean "
                               r"'plus_grid'\?"),
    ({"topology": "mesh"}, r"is not known; choose one of: cluster, dynamic, plus_grid, static"),
    ({"terminal": 3}, r"unknown key \[links\].terminal; did you mean 'terminals'\?"),
    ({"capacity_model": "shannon"}, r"capacity_model = 'shannon' is not known"),
    ({"terminals": 3}, r"terminals = 3 is too few for plus_grid"),
    ({"sun_exclusion_deg": 120.0}, r"sun_exclusion_deg must be <= 90.0"),
    ({"static_file": "x.txt"}, r"static_file is only used by topology = 'static'"),
])
def test_bad_parameters_give_clear_errors(table, match):
    with pytest.raises(ScenarioError, match=match):
        parse_table(LinksConfig, table, "links", "demo.toml")


def test_bad_parameters_in_code_are_checked_by_the_model():
    r, v, const = walker(2, 2, 550.0, 53.0)
    with pytest.raises(ScenarioError, match="terminals must be >= 1"):
        LinkModel(LinksConfig(topology="dynamic", terminals=0), None, const, None, 1.0)
    with pytest.raises(ScenarioError, match="needs the satellites' plane and slot labels"):
        LinkModel(LinksConfig(), None, pair_const(4), None, 1.0).step(0, r, v, [1.0, 0, 0])
    with pytest.raises(ScenarioError, match="static_file"):
        const2 = pair_const(4)
        const2.static_isls = None
        LinkModel(LinksConfig(topology="static"), None, const2, None, 1.0).step(
            0, r, v, [1.0, 0, 0])


def test_dynamic_reoptimisation_repoints_roaming_heads_without_breaking_limits():
    import dataclasses

    from meshnet.links import ACQUIRING, REASSIGNED, UP
    from meshnet.links.model import link_tables
    from meshnet.scenario import load_scenario

    base = load_scenario("starlink_550")
    counts = {}
    for interval in (None, 120.0):
        sc = base.replace(links=dataclasses.replace(
            base.links, topology="dynamic", terminals=3, reoptimise_interval_s=interval))
        prev, new_links, reassigned = None, 0, 0
        for _, tab in link_tables(sc, sc.grid(duration_s=600, step_s=10)):
            live = (tab.kind == 0) & ((tab.state == UP) | (tab.state == ACQUIRING))
            degree = np.bincount(np.concatenate([tab.a[live], tab.b[live]]), minlength=1584)
            assert degree.max() <= 3
            keys = set(zip(tab.a[live].tolist(), tab.b[live].tolist(), strict=True))
            # A link reported reassigned is no longer live in the same step.
            gone = tab.reason == REASSIGNED
            assert not keys & set(zip(tab.a[gone].tolist(), tab.b[gone].tolist(), strict=True))
            if prev is not None:
                new_links += len(keys - prev)
            prev = keys
            reassigned += int(gone.sum())
        counts[interval] = (new_links, reassigned)
    assert counts[None][1] == 0
    assert counts[120.0][1] > 0
    assert counts[120.0][0] > 3 * max(1, counts[None][0])
