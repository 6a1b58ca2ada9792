"""Power and eclipse: the shadow against the beta-angle formula and a Monte Carlo disc overlap,
batteries and policies worked by hand, the engine's throttled step time, config errors."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from test_engine import LinePolicy, OnePhaseJob, alloc, line_snapshot

from meshnet.engine import FluidEngine
from meshnet.errors import ScenarioError
from meshnet.power import (
    PowerConfig,
    active_heads,
    battery_step,
    beta_eclipse_fraction,
    lit_fraction,
    sun_position_ecef_km,
)
from meshnet.power.sunlight import R_SUN_KM
from meshnet.scenario import load_scenario, parse_scenario
from meshnet.timegrid import TimeGrid
from meshnet.units import MU_EARTH_KM3_S2, R_EARTH_KM

AU_KM = 149_597_870.7
H_KM = 550.0


def circular_orbit(beta_deg, altitude_km=H_KM, dt_s=1.0):
    """One period of a circular orbit in the x-y plane and a Sun at 1 au, ``beta`` above the
    orbit plane (the beta angle); returns positions (T, 1, 3), the Sun (3,) and the period."""
    a = R_EARTH_KM + altitude_km
    period_s = 2 * np.pi * np.sqrt(a**3 / MU_EARTH_KM3_S2)
    t = np.arange(0.0, period_s, dt_s)
    th = 2 * np.pi * t / period_s
    r = a * np.stack([np.cos(th), np.sin(th), np.zeros_like(th)], axis=1)[:, None, :]
    b = np.radians(beta_deg)
    sun = AU_KM * np.array([np.cos(b), 0.0, np.sin(b)])
    return r, sun, period_s


@pytest.mark.parametrize("beta_deg, penumbra_s", [(0.0, 8.5), (30.0, 10.2), (45.0, 13.2),
                                                  (60.0, 25.1)])
def test_eclipse_time_matches_the_cylindrical_beta_formula(beta_deg, penumbra_s):
    dt = 0.25
    r, sun, period_s = circular_orbit(beta_deg, dt_s=dt)
    lit = lit_fraction(r, sun)[:, 0]
    dark_s = float(np.sum(1.0 - lit)) * dt
    umbra_s = float(np.sum(lit == 0.0)) * dt
    shadowed_s = float(np.sum(lit < 1.0)) * dt
    cyl_s = beta_eclipse_fraction(H_KM, beta_deg) * period_s
    # The disc-weighted darkness puts the shadow's edge where the Sun's centre meets the
    # limb, which for a Sun 1 au away is the cylinder: measured within 0.2 s of a 95.6 min
    # orbit; 0.5 s allowed for the 0.25 s sampling.
    assert dark_s == pytest.approx(cyl_s, abs=0.5)
    # Penumbra: the umbra is shorter and the whole shadow longer than the cylinder, each edge
    # by the time the Sun's disc takes to set (measured per edge: 8.5, 10.2, 13.2, 25.1 s).
    assert umbra_s < cyl_s < shadowed_s
    assert (shadowed_s - umbra_s) / 2 == pytest.approx(penumbra_s, abs=0.5)


def test_penumbra_at_zero_beta_lasts_one_sun_diameter_of_orbit_by_hand():
    # At beta = 0 the satellite crosses the shadow's edge square on: the penumbra lasts as long
    # as the orbit takes to turn through the Sun's angular diameter, 2 asin(R_sun / 1 au) / w.
    r, sun, period_s = circular_orbit(0.0, dt_s=0.05)
    lit = lit_fraction(r, sun)[:, 0]
    per_edge_s = np.count_nonzero((lit > 0) & (lit < 1)) * 0.05 / 2
    hand_s = 2 * np.arcsin(R_SUN_KM / AU_KM) / (2 * np.pi / period_s)  # 8.49 s
    assert per_edge_s == pytest.approx(hand_s, abs=0.15)


def test_published_eclipse_minutes_at_550_km():
    # PHYSICS.md: 35.6 / 33.6 / 30.0 / 20.5 min of a 95.6 min orbit at beta 0 / 30 / 45 / 60.
    period_min = 2 * np.pi * np.sqrt((R_EARTH_KM + H_KM) ** 3 / MU_EARTH_KM3_S2) / 60
    got = [beta_eclipse_fraction(H_KM, b) * period_min for b in (0, 30, 45, 60)]
    assert got == pytest.approx([35.6, 33.6, 30.0, 20.5], abs=0.06)


def test_no_eclipse_above_the_critical_beta():
    beta_crit = np.degrees(np.arcsin(R_EARTH_KM / (R_EARTH_KM + H_KM)))  # 67.0 deg
    assert beta_eclipse_fraction(H_KM, beta_crit + 0.01) == 0.0
    # The penumbra reaches a Sun radius (0.27 deg) past the cylinder's critical beta.
    lit_above = lit_fraction(*circular_orbit(beta_crit + 0.5)[:2])
    assert np.all(lit_above == 1.0)
    lit_below = lit_fraction(*circular_orbit(beta_crit - 0.5)[:2])
    assert np.any(lit_below < 1.0)


def _monte_carlo_lit(r, sun, n=400_000, seed=3):
    """Fraction of uniform points of the Sun's (flat) disc, seen from r, outside the Earth's."""
    to_sun = sun - r
    d = np.linalg.norm(to_sun)
    a = np.arcsin(R_SUN_KM / d)
    b = np.arcsin(R_EARTH_KM / np.linalg.norm(r))
    c = np.arccos(np.dot(-r, to_sun) / (np.linalg.norm(r) * d))
    rng = np.random.default_rng(seed)
    rho = a * np.sqrt(rng.random(n))
    phi = 2 * np.pi * rng.random(n)
    x, y = rho * np.cos(phi) + c, rho * np.sin(phi)  # Earth's centre at the origin
    return float(np.mean(x * x + y * y > b * b))


def test_penumbra_is_monotone_across_the_edge_and_matches_a_hand_overlap():
    a_km = R_EARTH_KM + H_KM
    sun = np.array([AU_KM, 0.0, 0.0])
    b = np.arcsin(R_EARTH_KM / a_km)
    # Satellite angle theta from the anti-Sun direction; the Sun's centre sits on the limb
    # (c = b) when the perpendicular distance to the Sun line is R: sin(theta) = R / a.
    th_edge = np.arcsin(R_EARTH_KM / a_km)
    th = th_edge + np.radians(np.linspace(-0.6, 0.6, 241))
    r = a_km * np.stack([-np.cos(th), np.sin(th), np.zeros_like(th)], axis=1)
    lit = lit_fraction(r, sun)
    assert np.all((lit >= 0.0) & (lit <= 1.0))
    assert lit[0] == 0.0 and lit[-1] == 1.0
    assert np.all(np.diff(lit) >= 0.0)
    assert np.count_nonzero((lit > 0) & (lit < 1)) > 10
    # Hand case: the Sun's centre on the Earth's limb. Half the Sun's disc would be covered by
    # a straight limb; the limb curves away from the Sun, so slightly more than half is lit.
    # The Sun is 1 au away, not at infinity: find by bisection the angle where the Sun's
    # centre is exactly on the limb, c = b (the parallax moves it by ~1 % of the Sun's disc).
    def c_minus_b(t):
        p = a_km * np.array([-np.cos(t), np.sin(t), 0.0])
        to_sun = sun - p
        c = np.arccos(np.dot(-p, to_sun) / (a_km * np.linalg.norm(to_sun)))
        return c - b

    lo, hi = th_edge - 1e-3, th_edge + 1e-3
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if c_minus_b(mid) < 0 else (lo, mid)
    edge = a_km * np.array([-np.cos(lo), np.sin(lo), 0.0])
    half = lit_fraction(edge[None, :], sun)[0]
    assert 0.5 < half < 0.502
    # Against an independent Monte Carlo over the Sun's disc (1-sigma ~ 0.0008).
    for k in (80, 120, 160):
        assert lit[k] == pytest.approx(_monte_carlo_lit(r[k], sun), abs=0.004)
    assert b > 0


def test_sun_position_from_skyfield_is_one_au_along_the_sun_direction():
    from meshnet.orbits.propagate import sun_direction_ecef

    grid = TimeGrid.from_duration(datetime(2026, 1, 3, tzinfo=UTC), 3600, 600)
    s = sun_position_ecef_km(grid)
    d = np.linalg.norm(s, axis=1)
    assert np.all((d > 0.983 * AU_KM) & (d < 0.984 * AU_KM))  # perihelion, early January
    np.testing.assert_allclose(s / d[:, None], sun_direction_ecef(grid), atol=1e-12)


def test_battery_energy_balance_by_hand():
    # 1000 Wh, floor 70 % = 700 Wh, steps of 0.1 h; bus 100 W, accelerators 1000 W.
    e = np.array([800.0])
    fixed, acc, dt = np.array([100.0]), np.array([1000.0]), 360.0
    expected = [  # solar W, factor, energy after (Wh)
        (0.0, 0.9, 700.0),  # 100 Wh above the floor = 1000 W: 100 for the bus, 900 compute
        (0.0, 0.0, 690.0),  # at the floor: compute stops, the bus drains 10 Wh below it
        (2000.0, 1.0, 780.0),  # 1900 W net - 100 W to refill the floor: 1800 W >= 1000 W
        (5000.0, 1.0, 1000.0),  # + 390 Wh, capped at capacity (the surplus is shunted)
    ]
    for solar, factor, after in expected:
        e, f, _ = battery_step(e, np.array([solar]), fixed, acc, dt, 1000.0, 0.7, "throttle")
        assert f[0] == pytest.approx(factor, abs=1e-12)
        assert e[0] == pytest.approx(after, abs=1e-9)


def test_throttle_factor_is_available_over_needed():
    # 3 satellites, one step of 60 s at the floor: only the array's net output is available.
    e = np.full(3, 700.0)
    solar = np.array([3000.0, 600.0, 1100.0])
    fixed = np.array([100.0, 100.0, 100.0])
    acc = np.array([2000.0, 2000.0, 0.0])  # the third has no accelerators
    e2, f, _ = battery_step(e, solar, fixed, acc, 60.0, 1000.0, 0.7, "throttle")
    np.testing.assert_allclose(f, [1.0, 500.0 / 2000.0, 1.0])
    np.testing.assert_allclose(e2, [700.0 + 900.0 / 60, 700.0, 700.0 + 1000.0 / 60])


def test_pause_holds_until_the_resume_charge():
    kw = dict(capacity_wh=1000.0, min_soc=0.7, policy="pause", resume_soc=0.8)
    fixed, acc, dt = np.array([100.0]), np.array([1000.0]), 360.0
    e, paused = np.array([750.0]), None
    steps = [  # solar W, factor, energy after, paused after
        (0.0, 0.0, 740.0, True),  # full draw would breach the floor: stop (throttle: 0.4)
        (1200.0, 0.0, 850.0, True),  # recharging; 740 < 800 Wh: stays paused
        (1200.0, 1.0, 860.0, False),  # 850 >= 800 Wh: resumes at full rate
        (0.0, 1.0, 750.0, False),  # 160 Wh above the floor covers 1100 W for 0.1 h
        (0.0, 0.0, 740.0, True),  # 50 Wh cannot: stop again
        (1200.0, 0.0, 850.0, True),  # 740 -> 850 Wh, still below 800 at the step's start
    ]
    for solar, factor, after, now_paused in steps:
        e, f, paused = battery_step(e, np.array([solar]), fixed, acc, dt, paused=paused, **kw)
        assert (f[0], e[0], bool(paused[0])) == pytest.approx((factor, after, now_paused))
    # Hysteresis: at 790 Wh a paused node stays paused although full draw would fit.
    _, f, p = battery_step(np.array([790.0]), np.array([5000.0]), fixed, acc, dt,
                           paused=np.array([True]), **kw)
    assert f[0] == 0.0 and p[0]
    # A running node at 790 Wh with the same input keeps running.
    _, f, p = battery_step(np.array([790.0]), np.array([5000.0]), fixed, acc, dt,
                           paused=np.array([False]), **kw)
    assert f[0] == 1.0 and not p[0]


def test_active_heads_count_up_and_acquiring_isl_ends_only():
    a = np.array([0, 0, 1, 2, 0])
    b = np.array([1, 2, 2, 3, 4])
    kind = np.array([0, 0, 0, 0, 1])  # the last is a ground link (node 4 is a station)
    state = np.array([2, 1, 0, 2, 2])  # up, acquiring, down, up, up
    np.testing.assert_array_equal(active_heads(4, a, b, kind, state), [2, 1, 2, 1])


# ------------------------------------------------------------------ the engine
GBPS = 1e9


@pytest.mark.parametrize("rate, expected_s", [((1.0, 1.0), 3.0), ((0.5, 1.0), 5.0),
                                              ((0.8, 0.25), 9.0)])
def test_step_compute_stretched_by_the_slowest_rank(rate, expected_s):
    # 2 s of compute, then 1 GB over 8 Gbps = 1 s of communication: the compute takes
    # 2 / min(factor) s (the slowest rank sets the pace of synchronous data parallel).
    job = OnePhaseJob([0], [1], [1e9], compute_s=2.0, overlap=0.0)
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(line_snapshot([8 * GBPS]), 20.0, compute_rate=np.array(rate))
    (rec,) = eng.job_records()
    assert rec["step_time_s"] == pytest.approx(expected_s, rel=1e-9)
    assert rec["power_delay_s"] == pytest.approx(expected_s - 3.0, rel=1e-9, abs=1e-12)
    assert rec["exposed_comm_s"] == pytest.approx(1.0, rel=1e-9)
    assert rec["compute_rate"] == min(rate)


def test_factor_zero_holds_the_step_until_power_returns():
    job = OnePhaseJob([0], [1], [1e9], compute_s=2.0, overlap=0.0)
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(line_snapshot([8 * GBPS], t_ns=0), 10.0, compute_rate=np.array([0.0, 1.0]))
    assert eng.job_records() == []  # held: no compute, no flows
    assert eng.flows.n == 0
    eng.step(line_snapshot([8 * GBPS], t_ns=10 * 10**9), 10.0,
             compute_rate=np.array([1.0, 1.0]))
    (rec,) = eng.job_records()
    assert rec["start_s"] == 0.0 and rec["end_s"] == pytest.approx(13.0)
    assert rec["power_delay_s"] == pytest.approx(10.0)


def test_engine_without_rates_is_unchanged():
    job = OnePhaseJob([0], [1], [1e9], compute_s=2.0, overlap=0.0)
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(line_snapshot([8 * GBPS]), 20.0)
    (rec,) = eng.job_records()
    assert rec["step_time_s"] == pytest.approx(3.0) and rec["power_delay_s"] == 0.0


# ------------------------------------------------------------------ config
BASE = """
[scenario]
name = "p"
epoch = 2026-03-20T00:00:00Z
[constellation.cluster]
n_sats = 4
altitude_km = 650.0
ltan_hours = 18.0
"""


@pytest.mark.parametrize("table, message", [
    ("[power]\npolicy = 'shed_lasers'\nresume_soc = 0.7", "[power].resume_soc (0.7) must be "
     "above min_soc (0.7) for policy 'shed_lasers'"),
    ("[power]\npolicy = 'pause'\nresume_soc = 0.6", "[power].resume_soc (0.6) must be above"),
    ("[power]\npolicy = 'sleep'", "[power].policy = 'sleep' is not known"),
    ("[power]\ncapacity_kwh = 5", "unknown key [power].capacity_kwh; did you mean "
                                 "'capacity_wh'?"),
    ("[power]\nmin_soc = -0.1", "[power].min_soc must be >= 0.0"),
    ("[power]\ncapacity_wh = 0", "[power].capacity_wh must be > 0.0"),
])
def test_config_errors_name_file_and_key(table, message):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(BASE + table, source="p.toml")
    text = str(exc.value)
    assert text.startswith("p.toml: ") and message in text and "\n" not in text


def test_power_defaults_and_builtin_scenarios():
    cfg = PowerConfig()
    assert not cfg.enabled
    assert cfg.solar_peak_w == pytest.approx(105.0 * 0.20 * 1361.0)
    assert PowerConfig(solar_w=5000.0).solar_peak_w == 5000.0
    assert parse_scenario(BASE).power == cfg
    for name in ("starlink_550_power", "suncatcher_81_power"):
        sc = load_scenario(name)
        assert sc.power.enabled and sc.traffic.compute.accelerators_per_node == 8


def test_run_writes_power_outputs(tmp_path):
    """A short end-to-end run of a small shell in eclipse: power.parquet and the summary."""
    import pyarrow.parquet as pq

    from meshnet.runner import run_scenario

    text = """
[scenario]
name = "p"
epoch = 2026-03-20T00:00:00Z
step_s = 30.0
[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
[ground]
stations = "none"
[traffic.compute]
placement = "block"
shell = 0
plane_count = 2
slot_count = 2
accelerators_per_node = 8
[[traffic.jobs]]
name = "j"
model_params = 1e8
compute_s = 10.0
[traffic.background]
enabled = false
[power]
enabled = true
capacity_wh = 2000.0
"""
    sc = parse_scenario(text, source="p.toml")
    res = run_scenario(sc, sc.grid(duration_s=5760.0), tmp_path, plots=False, progress=False)
    tab = pq.read_table(tmp_path / "power.parquet").to_pydict()
    assert len(tab["node"]) == 144 and sum(tab["compute"]) == 4
    ecl = np.array(tab["eclipse_fraction"])
    # Every satellite of a 53 deg shell at 550 km on this day spends 0-37 % in shadow.
    assert np.all((ecl >= 0.0) & (ecl <= 0.38)) and ecl.mean() > 0.2
    p = res.summary["power"]
    # 5.6 kW + bus through ~35 min of eclipse needs > 0.6 kWh of a 2 kWh battery: throttled
    # to the floor (30 % depth), then the bus (1 kW) and at most 4 laser heads (200 W) alone
    # drain it further for at most the rest of a 35.6 min eclipse.
    dod = p["compute_max_depth_of_discharge"]
    assert p["node_throttled_s"] > 0 and p["node_paused_s"] > 0
    assert 0.3 <= dod <= 0.3 + 1200.0 * 35.6 / 60.0 / 2000.0
    assert res.summary["jobs"][0]["power_delay_s"] > 0
    assert "compute lost to power" in res.report()
