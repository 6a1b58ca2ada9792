"""Policy ``shed_lasers``: laser heads off before the accelerators, and the links it takes down."""

from __future__ import annotations

import numpy as np
import pytest

from meshnet.config import parse_table
from meshnet.links import ACQUIRING, DOWN, UP, link_model, model_tables
from meshnet.links.reasons import GSL, ISL, MANOEUVRE, POWER, REASON_NAMES
from meshnet.power import PowerConfig
from meshnet.power.battery import PowerModel, battery_step, shed_decision
from meshnet.scenario import parse_scenario
from meshnet.world import build_world

NS = 1_000_000_000

# 1000 Wh, floor 70 % (700 Wh), heads back at 80 %, steps of 0.1 h; bus 100 W, 4 heads of
# 50 W, accelerators 500 W.
CAP, MIN, RESUME, DT = 1000.0, 0.7, 0.8, 360.0
BUS, LASER, HEADS, ACC = 100.0, 50.0, 4, 500.0


def _run(e0, solars, shed0=False):
    """Drive one satellite: heads active unless shed (as the link model would report)."""
    e, shed = np.array([e0]), np.array([shed0])
    out = []
    for solar in solars:
        heads = 0.0 if shed[0] else float(HEADS)
        fixed = np.array([BUS + LASER * heads])
        sol = np.array([solar])
        e, f, _ = battery_step(e, sol, fixed, np.array([ACC]), DT, CAP, MIN, "shed_lasers")
        shed = shed_decision(e, sol, fixed, np.array([ACC]), DT, CAP, MIN, shed, RESUME)
        out.append((heads, float(f[0]), float(e[0]), bool(shed[0])))
    return out


def test_shed_energy_balance_by_hand():
    expected = [  # heads on in the step, factor, energy after (Wh), heads off next step
        (4, 1.0, 740.0, False),  # 600 - 300 - 500 W = -200 W: -20 Wh; 720 Wh next: fine
        (4, 1.0, 720.0, False),  # the next step would end at 700 Wh: not below the floor
        (4, 1.0, 700.0, True),  # 680 Wh forecast: shed the heads for the next step
        (0, 1.0, 700.0, True),  # 600 - 100 - 500 = 0: shedding 4 x 50 W holds the battery
        (0, 0.0, 690.0, True),  # shadow: shedding is not enough, accelerators stop
        (0, 1.0, 830.0, False),  # sunlight 2000 W: +140 Wh, >= 800 Wh: heads back on
        (4, 1.0, 950.0, False),  # 2000 - 300 - 500 W
    ]
    got = _run(760.0, [600.0, 600.0, 600.0, 600.0, 0.0, 2000.0, 2000.0])
    for (h, f, e, s), (gh, gf, ge, gs) in zip(expected, got, strict=True):
        assert (gh, gs) == (h, s)
        assert gf == pytest.approx(f, abs=1e-12) and ge == pytest.approx(e, abs=1e-9)
    # The saving of a shed step is laser_w x heads x dt: 4 x 50 W x 0.1 h = 20 Wh.
    on = _run(700.0, [600.0])[0]
    off = _run(700.0, [600.0], shed0=True)[0]
    assert on[1] < 1.0  # heads on at the floor: the accelerators pay for the lasers
    assert off[2] - on[2] == pytest.approx(0.0, abs=1e-9)  # both held at the floor ...
    assert on[1] * ACC == pytest.approx(ACC - LASER * HEADS)  # ... the heads cost 200 W


def test_accelerators_untouched_while_shedding_suffices():
    # Penumbra-like 600 W for many steps: once shed, the battery holds and compute runs full.
    got = _run(760.0, [600.0] * 20)
    assert all(f == 1.0 for _h, f, _e, _s in got)
    assert min(e for _h, _f, e, _s in got) >= CAP * MIN - 1e-9
    # With the heads never shed (policy throttle) the same inputs throttle compute.
    e, fs = np.array([760.0]), []
    for _ in range(20):
        e, f, _ = battery_step(e, np.array([600.0]), np.array([BUS + LASER * HEADS]),
                               np.array([ACC]), DT, CAP, MIN, "throttle")
        fs.append(f[0])
    assert min(fs) < 1.0


def test_heads_come_back_with_hysteresis():
    fixed, acc, sol = np.array([BUS]), np.array([ACC]), np.array([2000.0])
    # Shed at 799 Wh: stays shed although the full load with heads on would fit.
    s = shed_decision(np.array([799.0]), sol, fixed, acc, DT, CAP, MIN, np.array([True]), RESUME)
    assert s[0]
    s = shed_decision(np.array([800.0]), sol, fixed, acc, DT, CAP, MIN, np.array([True]), RESUME)
    assert not s[0]
    # A satellite with heads on at 799 Wh and the same input keeps them on.
    s = shed_decision(np.array([799.0]), sol, fixed, acc, DT, CAP, MIN, np.array([False]),
                      RESUME)
    assert not s[0]


def _model(n=1):
    cfg = PowerConfig(enabled=True, capacity_wh=CAP, min_soc=MIN, resume_soc=RESUME,
                      solar_w=0.0, laser_w=LASER, bus_w=BUS, policy="shed_lasers")
    sun = np.tile([1.5e8, 0.0, 0.0], (50, 1))
    return PowerModel(cfg, n, n, np.full(n, ACC), sun, DT)


def test_power_model_hands_the_mask_on_and_counts_head_hours():
    pm = _model()
    seen = []
    pm.on_shed = seen.append
    r = np.array([[-7000.0, 0.0, 0.0]])  # in the umbra: no solar input
    pm.energy_wh[:] = 900.0
    heads = []
    for k in range(6):
        h = 0.0 if pm.shed[0] else float(HEADS)
        heads.append(h)
        pm.step(k, r, np.array([h]))
    # 900 -> 820 (forecast 740: fine) -> 740 (forecast 660: shed) -> 700 (heads off, 40 Wh
    # above the floor: accelerators at 0.6) -> 690 -> 680 -> 670 (stopped; the bus drains)
    assert heads == [4, 4, 0, 0, 0, 0]
    assert [bool(m[0]) for m in seen] == [False, True, True, True, True, True]
    np.testing.assert_allclose(pm.energy_wh, [670.0])
    rec = pm.records(["s0"])
    assert rec["lasers_shed_s"][0] == pytest.approx(4 * DT)
    assert rec["laser_head_s_shed"][0] == pytest.approx(4 * DT * HEADS)
    summ = pm.summary()
    assert summ["laser_head_hours_shed"] == pytest.approx(4 * 0.1 * HEADS)
    assert summ["sats_shed"] == 1 and summ["policy"] == "shed_lasers"


def test_config_accepts_shed_lasers():
    cfg = parse_table(PowerConfig, {"enabled": True, "policy": "shed_lasers"}, "power", "p.toml")
    assert cfg.policy == "shed_lasers" and cfg.resume_soc > cfg.min_soc


def test_reason_power_appended():
    assert REASON_NAMES[POWER] == "power" and POWER == len(REASON_NAMES) - 1
    assert REASON_NAMES[MANOEUVRE] == "manoeuvre"


# ------------------------------------------------------------------ the link model
SMALL = """
[scenario]
name = "small_shed"
epoch = 2024-06-21T12:00:00Z
duration_s = 60.0
step_s = 2.0
seed = 3

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 1

[ground]
stations = "top100"
antennas = 2

[links]
topology = "{topology}"
acquisition_s = 6.0
"""


def _tables(topology="plus_grid", off=None, extra=""):
    """Link tables; ``off = (sat, k_on, k_off)``: lasers off decided after step k_on and
    back on after step k_off (so steps k_on+1 .. k_off are shed)."""
    sc = parse_scenario(SMALL.replace("{topology}", topology) + extra)
    world = build_world(sc)
    grid = sc.grid()
    model = link_model(sc, grid, world)
    tabs = []
    for k, (_t, tab) in enumerate(model_tables(model, world.constellation, grid)):
        tabs.append(tab)
        if off is not None and k == off[1]:
            mask = np.zeros(model.n_sats, bool)
            mask[off[0]] = True
            model.set_lasers_off(mask)
        if off is not None and k == off[2]:
            model.set_lasers_off(np.zeros(model.n_sats, bool))
    return tabs


def _touching(tab, s):
    return (tab.a == s) | (tab.b == s)


def _pairs(tab, mask):
    return {(int(a), int(b), int(k)): (int(st), int(r)) for a, b, k, st, r in zip(
        tab.a[mask], tab.b[mask], tab.kind[mask], tab.state[mask], tab.reason[mask],
        strict=True)}


@pytest.fixture(scope="module")
def base():
    return _tables()


def test_shed_satellite_links_down_next_step_ground_kept_then_reacquire(base):
    s = int(next(t.a[(t.kind == GSL) & (t.state == UP)][0] for t in base[4:]
                 if ((t.kind == GSL) & (t.state == UP)).any()))
    k_on, k_off, acq_steps = 4, 12, 3  # acquisition 6 s = 3 steps of 2 s
    tabs = _tables(off=(s, k_on, k_off))
    saw_gsl = False
    for k, (tb, tf) in enumerate(zip(base, tabs, strict=True)):
        isl = _touching(tf, s) & (tf.kind == ISL)
        gsl_b = _pairs(tb, _touching(tb, s) & (tb.kind == GSL))
        gsl_f = _pairs(tf, _touching(tf, s) & (tf.kind == GSL))
        # Other satellites' ISLs are untouched; the ground links of s (radio) too.
        others = ~_touching(tf, s) & (tf.kind == ISL)
        assert _pairs(tb, ~_touching(tb, s) & (tb.kind == ISL)) == _pairs(tf, others)
        assert gsl_b == gsl_f
        if k_on < k <= k_off:
            assert isl.sum() == 4
            assert np.all(tf.state[isl] == DOWN) and np.all(tf.reason[isl] == POWER)
            saw_gsl |= any(st == UP for st, _r in gsl_f.values())
        else:
            assert not np.any(tf.reason[_touching(tf, s)] == POWER)
            b_isl = _pairs(tb, _touching(tb, s) & (tb.kind == ISL))
            f_isl = _pairs(tf, isl)
            if k <= k_on or k > k_off + acq_steps:
                assert f_isl == b_isl
            else:  # heads back on: every link acquires for acquisition_s
                assert all(st == (ACQUIRING if b_isl[key][0] == UP else b_isl[key][0])
                           for key, (st, _r) in f_isl.items())
                assert any(st == ACQUIRING for st, _r in f_isl.values())
    assert saw_gsl  # the satellite kept a ground link up while its lasers were off


def test_shed_in_dynamic_topology_frees_no_heads_and_a_fault_reason_wins():
    tabs = _tables("dynamic", off=(7, 3, 100), extra="""
[[faults.events]]
kind = "manoeuvre"
satellite = 7
start_s = 20.0
duration_s = 10.0
""")
    for k, t in enumerate(tabs):
        mine = _touching(t, 7) & (t.kind == ISL)
        if k > 3:
            assert not np.any(t.state[mine] != DOWN)  # no ISL of 7 acquires or is up
            t_s = t.t_ns / NS
            if mine.any():
                want = MANOEUVRE if 20.0 <= t_s < 30.0 else POWER
                assert set(t.reason[mine].tolist()) <= {want}


# ------------------------------------------------------------------ end to end
RUN = """
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
policy = "shed_lasers"
"""


def test_run_sheds_lasers_with_a_one_step_lag(tmp_path):
    import pyarrow.parquet as pq

    from meshnet.runner import run_scenario

    sc = parse_scenario(RUN, source="p.toml")
    res = run_scenario(sc, sc.grid(duration_s=3000.0), tmp_path, plots=False, progress=False)
    pw = pq.read_table(tmp_path / "power.parquet").to_pydict()
    shed_s = np.array(pw["lasers_shed_s"])
    head_s = np.array(pw["laser_head_s_shed"])
    assert (shed_s > 0).sum() > 0 and np.all(head_s <= 4 * shed_s + 1e-9)
    summ = res.summary["power"]
    assert summ["laser_head_hours_shed"] == pytest.approx(head_s.sum() / 3600.0)
    assert "laser-head hours" in res.report()
    cols = pq.read_table(tmp_path / "links.parquet",
                         columns=["t_s", "a", "b", "reason", "state"]).to_pydict()
    t_s, a, b = (np.asarray(cols[c]) for c in ("t_s", "a", "b"))
    is_power = np.asarray(cols["reason"]) == "power"
    assert is_power.any() and set(np.asarray(cols["state"])[is_power]) == {"down"}
    assert t_s[is_power].min() > t_s.min()  # decided at a step, applied from the next one
    # Every step a satellite is shed, all 4 of its ISLs are DOWN for power.
    for s in np.nonzero(shed_s > 0)[0][:5]:
        mine = is_power & ((a == s) | (b == s))
        _t, per_step = np.unique(t_s[mine], return_counts=True)
        assert (per_step == 4).sum() * 30.0 >= shed_s[s] - 1e-9
    assert summ["link_s_down_power"] == pytest.approx(is_power.sum() * 30.0)
