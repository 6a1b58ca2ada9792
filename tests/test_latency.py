"""The great-circle RTT bound (meshnet.latency): hand calculations, an ideal dense network that
nearly reaches it, and real routes that never beat it."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from meshnet.latency import (
    STRETCH_FLAG,
    LatencyBound,
    StretchStats,
    ground_bound_km,
    ground_link_span,
    outside_earth_km,
    rtt_bound_s,
    surface_point_km,
)

R = 6378.135
C_KM_S = 299_792.458


def _hand_bound_km(lat1, lon1, lat2, lon2, h_km, mask_deg):
    """The issue's definition, written out with spherical trigonometry (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat, dlon = p2 - p1, math.radians(lon2 - lon1)
    hav = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    sigma = 2 * math.asin(math.sqrt(hav))
    e = math.radians(mask_deg)
    # Slant range at elevation e (law of sines), and the ground angle it covers.
    r = R + h_km
    slant = math.sqrt(r * r - (R * math.cos(e)) ** 2) - R * math.sin(e)
    theta = math.asin(slant * math.cos(e) / r)
    return R * sigma + 2 * (slant - R * theta)


@pytest.mark.parametrize("pair", [((35.69, 139.69), (40.71, -74.01)),   # Tokyo - New York
                                  ((35.69, 139.69), (51.51, -0.13)),    # Tokyo - London
                                  ((-23.55, -46.63), (1.35, 103.82))])  # Sao Paulo - Singapore
def test_ground_bound_matches_hand_calculation(pair):
    (la1, lo1), (la2, lo2) = pair
    got = ground_bound_km(surface_point_km(la1, lo1), surface_point_km(la2, lo2), 550.0, 25.0)
    assert float(got) == pytest.approx(_hand_bound_km(la1, lo1, la2, lo2, 550.0, 25.0),
                                       abs=1e-6)  # km


def test_ground_link_span_mask_and_distance_rule():
    theta, slant = ground_link_span(R, 550.0, min_elevation_deg=25.0)
    # Elevation of the satellite seen from the station at that span is the mask.
    st = np.array([R, 0.0, 0.0])
    sat = (R + 550.0) * np.array([math.cos(theta), math.sin(theta), 0.0])
    los = sat - st
    el = math.degrees(math.asin(np.dot(los, st / R) / np.linalg.norm(los)))
    assert el == pytest.approx(25.0, abs=1e-9)
    assert slant == pytest.approx(np.linalg.norm(los), abs=1e-9)
    # Hypatia's distance rule: the span where the slant reaches the limit.
    theta2, slant2 = ground_link_span(R, 550.0, max_gsl_length_km=1000.0)
    assert slant2 == pytest.approx(1000.0, abs=1e-9)
    assert theta2 < theta
    # A limit beyond the horizon stops at the horizon.
    theta3, _ = ground_link_span(R, 550.0, max_gsl_length_km=1e5)
    assert theta3 == pytest.approx(math.acos(R / (R + 550.0)))


def test_close_stations_share_one_satellite():
    a, b = surface_point_km(51.51, -0.13), surface_point_km(48.86, 2.35)  # London - Paris
    got = float(ground_bound_km(a, b, 550.0, 25.0))
    sigma = math.acos(float(np.dot(a, b)) / R**2)
    r = R + 550.0
    assert got == pytest.approx(2 * math.sqrt(R**2 + r**2 - 2 * R * r * math.cos(sigma / 2)))
    assert got > 2 * 550.0  # up and down at least


def _dense_ring_network(lat1, lon1, lat2, lon2, h_km, mask_deg, n=2000):
    """Satellites every 0.18 deg on the great circle through two stations, at altitude h."""
    a, b = surface_point_km(lat1, lon1), surface_point_km(lat2, lon2)
    u = a / np.linalg.norm(a)
    w = np.cross(a, b)
    w /= np.linalg.norm(w)
    v = np.cross(w, u)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    sats = (R + h_km) * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)
    g = nx.Graph()
    for i in range(n):
        g.add_edge(i, (i + 1) % n, weight=float(np.linalg.norm(sats[i] - sats[(i + 1) % n])))
    for name, st in (("A", a), ("B", b)):
        los = sats - st
        sin_el = los @ (st / np.linalg.norm(st)) / np.linalg.norm(los, axis=1)
        for i in np.nonzero(sin_el >= math.sin(math.radians(mask_deg)))[0]:
            g.add_edge(name, int(i), weight=float(np.linalg.norm(los[i])))
    return g, a, b


@pytest.mark.parametrize("pair", [((35.69, 139.69, 40.71, -74.01)),
                                  ((48.86, 2.35, 40.42, -3.70))])  # Paris - Madrid
def test_bound_is_nearly_reached_by_an_ideal_dense_network(pair):
    g, a, b = _dense_ring_network(*pair, 550.0, 25.0)
    best = nx.dijkstra_path_length(g, "A", "B")
    bound = float(ground_bound_km(a, b, 550.0, 25.0))
    assert bound <= best
    # The ring flies at 550 km, not on the ground: its arc is (R + h) / R = 8.6 % longer.
    assert best <= bound * (R + 550.0) / R + 1.0


def test_bound_grows_with_altitude_so_the_lowest_shell_bounds_a_multi_shell_network():
    a, b = surface_point_km(35.69, 139.69), surface_point_km(40.71, -74.01)
    low, high = (float(ground_bound_km(a, b, h, 25.0)) for h in (540.0, 1200.0))
    assert low < high


def test_outside_earth_path_straight_when_clear_and_wrapped_when_blocked():
    r = R + 550.0
    a = np.array([r, 0.0, 0.0])
    b = r * np.array([math.cos(0.3), math.sin(0.3), 0.0])
    assert float(outside_earth_km(a, b)) == pytest.approx(float(np.linalg.norm(a - b)))
    far = np.array([-r, 0.0, 0.0])
    t = math.sqrt(r * r - R * R)
    arc = R * (math.pi - 2 * math.acos(R / r))
    assert float(outside_earth_km(a, far)) == pytest.approx(2 * t + arc)
    # A polyline hugging the Earth from a to far is never shorter.
    ang = np.linspace(0, math.pi, 2001)
    poly = np.stack([np.cos(ang), np.sin(ang), 0 * ang], axis=1) * R
    poly[0], poly[-1] = a, far
    poly_len = float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())
    assert float(outside_earth_km(a, far)) <= poly_len


def test_real_routes_never_beat_the_bound():
    """Every station pair's shortest-delay route on starlink_550 is at least the bound."""
    from scipy.sparse.csgraph import dijkstra

    from meshnet.links import link_model, model_tables
    from meshnet.scenario import load_scenario
    from meshnet.world import build_world

    sc = load_scenario("starlink_550")
    world = build_world(sc)
    grid = sc.grid(duration_s=2, step_s=1)
    model = link_model(sc, grid, world)
    lb = LatencyBound.for_world(sc, world)
    n = world.n_sats
    checked = 0
    for _t, table in model_tables(model, world.constellation, grid):
        snap = table.to_snapshot(model.node_names, model.node_kind)
        dist = dijkstra(snap.to_scipy("delay_s"), indices=np.arange(n, n + world.n_ground))[:, n:]
        src, dst = np.meshgrid(np.arange(world.n_ground), np.arange(world.n_ground),
                               indexing="ij")
        bound = lb.one_way_s(src.ravel() + n, dst.ravel() + n).reshape(dist.shape)
        ok = np.isfinite(dist) & (src != dst)
        # Stations may relay in this plain scipy graph: that only makes paths shorter.
        assert np.all(dist[ok] >= bound[ok] - 1e-9)
        checked += int(ok.sum())
    assert checked > 1000


def test_stretch_stats_summary_against_hand_counts():
    st = np.stack([surface_point_km(35.69, 139.69), surface_point_km(40.71, -74.01),
                   surface_point_km(51.51, -0.13)])
    lb = LatencyBound(5, st, 550.0, 25.0)
    acc = StretchStats(lb)
    src = np.array([5, 5, 6, 0])        # the last pair has a satellite end: ignored
    dst = np.array([6, 7, 7, 6])
    b = lb.one_way_s(src[:3], dst[:3])
    acc.add(src, dst, np.array([1.5 * b[0], 2.5 * b[1], np.nan, 0.1]))
    acc.add(src, dst, np.array([1.1 * b[0], 1.9 * b[1], 1.2 * b[2], 0.1]))
    s = acc.summary(np.array(["Tokyo", "New York", "London"]))
    assert s["pairs"] == 3
    assert s["flagged_pairs"] == 1                       # Tokyo-London at 2.5x once
    assert s["worst"]["src"] == "Tokyo" and s["worst"]["dst"] == "London"
    assert s["worst"]["stretch"] == pytest.approx(2.5)
    assert s["worst"]["mean_stretch"] == pytest.approx(2.2)
    assert s["flagged_pair_steps_pct"] == pytest.approx(20.0)  # 1 of 5 pair-steps
    assert s["median_stretch"] == pytest.approx(1.5, abs=StretchStats.BIN)
    assert s["flag"] == STRETCH_FLAG


def test_paths_command_reports_bound_stretch_and_flag(tmp_path):
    import csv

    from meshnet.cli import main

    out = tmp_path / "p.csv"
    assert main(["paths", "starlink_550", "--src", "Tokyo", "--dst", "New York",
                 "--duration", "3", "--step", "1", "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3
    a, b = surface_point_km(35.6895, 139.6917), surface_point_km(40.7128, -74.006)
    for row in rows:
        rtt, bound, stretch = (float(row[k]) for k in ("rtt_ms", "bound_rtt_ms", "stretch"))
        # On the WGS84 ellipsoid with the lowest satellite of the step (543 km) rather than a
        # sphere at 550 km: 0.2 % apart (0.16 ms); a wrong mask or altitude moves it by more.
        assert bound == pytest.approx(rtt_bound_s(a, b, 550.0, 25.0) * 1e3, abs=0.3)
        assert rtt >= bound
        assert stretch == pytest.approx(rtt / bound)
        assert (row["flagged"] == "true") == (stretch > STRETCH_FLAG)
