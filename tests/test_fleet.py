"""Fleet figures (meshnet.links.fleet) and the calibrated link management of ``dynamic``:
acquisition-time draws, make-before-break hand-overs, seeding."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_links import walker  # noqa: E402

from meshnet.config import parse_table  # noqa: E402
from meshnet.errors import MeshnetError, ScenarioError  # noqa: E402
from meshnet.links import (  # noqa: E402
    ACQUIRING,
    DOWN,
    REASSIGNED,
    UP,
    LinkModel,
    LinksConfig,
)
from meshnet.links.dynamic import ACQUISITION_STREAM, acquisition_times_ns  # noqa: E402
from meshnet.links.fleet import FleetMeter, fleet_figures, format_figures  # noqa: E402
from meshnet.links.model import LinkTable  # noqa: E402

S = 1_000_000_000


def table(t_s, rows):
    """A LinkTable of ISL rows ``(a, b, state[, reason])`` at ``t_s``."""
    rows = sorted(rows)
    n = len(rows)
    a = np.array([r[0] for r in rows], np.int32)
    b = np.array([r[1] for r in rows], np.int32)
    st = np.array([r[2] for r in rows], np.int8)
    reason = np.array([r[3] if len(r) > 3 else 0 for r in rows], np.int8)
    return LinkTable(int(t_s * S), a, b, np.zeros(n, np.int8), st, reason, np.ones(n),
                     np.zeros(n))


# --- fleet figures against a hand calculation ----------------------------------------------


def hand_tables():
    """4 satellites x 2 heads, 10 steps of 60 s (hand-calculated figures in the tests)."""
    out = []
    for k in range(10):
        rows = [(0, 1, UP)]                      # up throughout (from before the run)
        if k <= 4:
            rows.append((1, 2, UP))              # breaks at step 5
        if k == 5:
            rows.append((1, 2, DOWN, 7))
        if 3 <= k <= 9:                          # acquires at steps 3-4, up from 5
            rows.append((2, 3, ACQUIRING if k < 5 else UP))
        if k >= 6:                               # acquires at 6, up from 7
            rows.append((1, 3, ACQUIRING if k < 7 else UP))
        out.append(table(60.0 * k, rows))
    return out


def test_fleet_figures_match_a_hand_calculation():
    f = fleet_figures(hand_tables(), n_sats=4, terminals=2)
    # Live link-steps: (0,1) 10 up; (1,2) 5 up; (2,3) 2 acq + 5 up; (1,3) 1 acq + 3 up.
    up, acq = 10 + 5 + 5 + 3, 2 + 1
    assert f["steps"] == 10 and f["window_s"] == 600.0
    # Acquisitions: (2,3) at step 3 and (1,3) at step 6; (0,1), (1,2) were UP at the first
    # step (a warm start): they predate the run and are not counted.
    assert f["acquisitions"] == 2
    assert f["link_time_up_pct"] == pytest.approx(100.0 * up / (up + acq))
    assert f["head_time_up_pct"] == pytest.approx(100.0 * 2 * up / (4 * 2 * 10))
    assert f["head_time_busy_pct"] == pytest.approx(100.0 * 2 * (up + acq) / 80)
    assert f["acquisitions_per_laser_per_day"] == pytest.approx(2 / 8 / (600 / 86400))
    assert f["laser_acquisitions_per_laser_per_day"] == pytest.approx(
        2 * f["acquisitions_per_laser_per_day"])
    assert f["mean_link_life_s"] == pytest.approx((up + acq) * 60.0 / 2)
    # A link ACQUIRING at the first step (a cold start) is an acquisition.
    cold = [table(0.0, [(0, 1, ACQUIRING), (1, 2, UP)]), table(1.0, [(0, 1, UP), (1, 2, UP)])]
    assert fleet_figures(cold, 3, 2)["acquisitions"] == 1
    assert f["breaks_by_reason"] == {"sun": 1}
    assert "acquisitions per laser per day" in format_figures(f)


def test_fleet_warmup_is_discarded():
    # Warm-up 240 s = steps 0-3: the state at step 3 is the reference, (2,3) began acquiring
    # inside the warm-up and is not counted; only (1,3) at step 6 is.
    f = fleet_figures([(t.t_ns, t) for t in hand_tables()], 4, 2, warmup_s=240.0)
    up, acq = 6 + 1 + 5 + 3, 1 + 1
    assert f["steps"] == 6 and f["window_s"] == 360.0
    assert f["acquisitions"] == 1
    assert f["link_time_up_pct"] == pytest.approx(100.0 * up / (up + acq))
    assert f["head_time_up_pct"] == pytest.approx(100.0 * 2 * up / (8 * 6))
    assert f["acquisitions_per_laser_per_day"] == pytest.approx(1 / 8 / (360 / 86400))
    assert f["breaks_by_reason"] == {"sun": 1}
    # A warm-up that covers everything is an error, as are tables going back in time.
    with pytest.raises(MeshnetError, match="no step after"):
        fleet_figures(hand_tables(), 4, 2, warmup_s=600.0)
    meter = FleetMeter(4, 2)
    meter.add(hand_tables()[1])
    with pytest.raises(MeshnetError, match="advance in time"):
        meter.add(hand_tables()[0])
    with pytest.raises(MeshnetError, match="laser heads"):
        FleetMeter(4, None)


# --- acquisition-time distribution --------------------------------------------------------


def test_acquisition_times_lognormal_median_and_spread():
    rng = np.random.default_rng(7)
    t_s = acquisition_times_ns(rng, 40_000, 8.0, 0.5) / 1e9
    # Median of 40,000 lognormal draws: standard error ~ 1.25 sigma/sqrt(n) = 0.3 %.
    assert np.median(t_s) == pytest.approx(8.0, rel=0.015)
    assert np.std(np.log(t_s)) == pytest.approx(0.5, rel=0.02)
    assert np.mean(t_s) == pytest.approx(8.0 * np.exp(0.5**2 / 2), rel=0.02)
    fixed = acquisition_times_ns(rng, 5, 8.0, 0.0)
    assert (fixed == 8 * S).all()


def two_shells(t_s=0.0):
    parts = [walker(24, 20, 550.0, 53.0, t_s=t_s), walker(12, 10, 570.0, 70.0, t_s=t_s)]
    r = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    n = r.shape[0]
    const = SimpleNamespace(names=[f"s{i}" for i in range(n)],
                            shell=np.r_[np.zeros(480, int), np.ones(120, int)],
                            plane=np.r_[parts[0][2].plane, parts[1][2].plane],
                            slot=np.r_[parts[0][2].slot, parts[1][2].slot], n=n)
    return r, v, const


SUN = np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3])


def run_model(cfg, steps, step_s=1.0, seed=0):
    const = two_shells()[2]
    model = LinkModel(cfg, None, const, None, step_s, seed=seed)
    out = []
    for k in range(steps):
        r, v, _ = two_shells(k * step_s)
        out.append(model.step(int(k * step_s * S), r, v, SUN))
    return model, out


def test_dynamic_draws_acquisition_times_with_the_documented_median():
    cfg = LinksConfig(topology="dynamic", acquisition_s=12.0, acquisition_sigma=0.6,
                      warm_start=False)
    model, _ = run_model(cfg, 1)
    acq_s = model.isl.acq_ns / 1e9
    assert acq_s.shape[0] > 700
    # ~870 draws: the sample median is within ~5 % of 12 s (standard error ~2.5 %).
    assert np.median(acq_s) == pytest.approx(12.0, rel=0.08)
    assert np.std(np.log(acq_s)) == pytest.approx(0.6, rel=0.1)


def test_acquisition_draws_are_reproducible_from_the_seed():
    cfg = LinksConfig(topology="dynamic", acquisition_s=5.0, acquisition_sigma=0.5,
                      warm_start=False, reoptimise_interval_s=4.0)

    def states(seed):
        _, tabs = run_model(cfg, 12, seed=seed)
        return [np.stack([t.a, t.b, t.state, t.reason]) for t in tabs]

    one, again, other = states(3), states(3), states(4)
    assert all(np.array_equal(x, y) for x, y in zip(one, again, strict=True))
    assert not all(x.shape == y.shape and np.array_equal(x, y)
                   for x, y in zip(one, other, strict=True))


def test_scenario_seed_reaches_the_topology():
    from meshnet.links import link_model
    from meshnet.scenario import apply_overrides, load_scenario
    from meshnet.world import build_world

    sc = load_scenario("starlink_fleet")
    sc = apply_overrides(sc, ["scenario.seed=11"])
    model = link_model(sc, sc.grid(duration_s=2, step_s=1), build_world(sc))
    ref = np.random.default_rng([11, ACQUISITION_STREAM])
    assert model.isl.seed == 11
    assert model.isl.rng.standard_normal() == ref.standard_normal()


# --- make-before-break --------------------------------------------------------------------


def live_degree(tab, n):
    live = (tab.state == UP) | (tab.state == ACQUIRING)
    return np.bincount(np.r_[tab.a[live], tab.b[live]], minlength=n)


def test_make_before_break_keeps_the_old_link_up_until_the_new_one_is_up():
    terminals = 4
    cfg = LinksConfig(topology="dynamic", terminals=terminals, reoptimise_interval_s=20.0,
                      acquisition_s=6.0, acquisition_sigma=0.3, handover="make_before_break")
    model, tabs = run_model(cfg, 150)
    n = model.n_sats
    state = [dict(zip(zip(t.a.tolist(), t.b.tolist(), strict=True), t.state.tolist(),
                      strict=True)) for t in tabs]
    handovers = 0
    for k, t in enumerate(tabs):
        deg = live_degree(t, n)
        assert deg.max() <= terminals                     # never more heads than fitted
        for a, b in zip(t.a[t.reason == REASSIGNED].tolist(),
                        t.b[t.reason == REASSIGNED].tolist(), strict=True):
            handovers += 1
            assert state[k - 1][(a, b)] == UP             # it carried up to its release
            # A replacement at one of its ends became UP at this very step, and the old link
            # was UP during every step of the replacement's acquisition.
            new = [key for key, s in state[k].items() if s == UP and key != (a, b)
                   and {a, b} & set(key) and state[k - 1].get(key) == ACQUIRING]
            assert new, (k, a, b)
            for key in new:
                j = k - 1
                while j >= 0 and state[j].get(key) == ACQUIRING:
                    assert state[j][(a, b)] == UP
                    j -= 1
    assert handovers > 20
    # The matching keeps one head free for hand-overs: outside hand-overs at most 3 in use.
    assert max(live_degree(t, n).max() for t in tabs[:1]) <= terminals - 1


def test_break_before_make_releases_before_the_replacement_acquires():
    cfg = LinksConfig(topology="dynamic", terminals=3, reoptimise_interval_s=20.0,
                      acquisition_s=6.0)
    model, tabs = run_model(cfg, 60)
    released = 0
    for t in tabs:
        assert live_degree(t, model.n_sats).max() <= 3
        gone = np.nonzero(t.reason == REASSIGNED)[0]
        released += gone.shape[0]
        for i in gone:
            # The freed head is re-pointed at once: a new link at one end is acquiring.
            a, b = t.a[i], t.b[i]
            ends = ((t.a == a) | (t.b == a) | (t.a == b) | (t.b == b)) & (t.state == ACQUIRING)
            assert ends.any()
    assert released > 20


# --- configuration and the built-in scenario -----------------------------------------------


@pytest.mark.parametrize("table, message", [
    ({"topology": "dynamic", "handover": "make_before_break"},
     r"demo.toml: \[links\].handover = 'make_before_break' .* needs "
     r"\[links\].reoptimise_interval_s"),
    ({"topology": "dynamic", "handover": "make_before_break", "terminals": 1,
      "reoptimise_interval_s": 60.0}, r"needs terminals >= 2, found 1"),
    ({"topology": "plus_grid", "acquisition_sigma": 0.5},
     r"\[links\].acquisition_sigma is only used by topology = 'dynamic'"),
    ({"topology": "dynamic", "acquisition_sigma": -1.0},
     r"\[links\].acquisition_sigma must be >= 0.0, found -1.0"),
    ({"topology": "dynamic", "handover": "mbb"}, r"\[links\].handover = 'mbb' is not known"),
    ({"topology": "dynamic", "reoptimise_new_partner": True},
     r"reoptimise_new_partner = true .* needs \[links\].reoptimise_interval_s"),
])
def test_fleet_keys_are_validated(table, message):
    with pytest.raises(ScenarioError, match=message):
        parse_table(LinksConfig, table, "links", "demo.toml")


def test_builtin_fleet_scenario_uses_the_calibrated_model():
    from meshnet.links.model import link_tables
    from meshnet.scenario import load_scenario

    sc = load_scenario("starlink_fleet")
    links = sc.links
    assert links.topology == "dynamic" and links.n_terminals == 3
    assert links.reoptimise_interval_s == 450.0 and links.reoptimise_new_partner
    assert links.acquisition_s == 8.0 and links.acquisition_sigma == 0.5
    sc = sc.replace(ground=dataclasses.replace(sc.ground, stations="none"))
    grid = sc.grid(duration_s=240, step_s=2)
    f = fleet_figures(link_tables(sc, grid), 4408, 3, warmup_s=120.0)
    assert f["head_time_busy_pct"] > 90.0
    assert f["acquisitions"] > 0


def cross_plane_lives(tabs, const):
    """Live durations (steps) of cross-plane links first seen after step 0 and later ended."""
    first, lives = {}, []
    for k, t in enumerate(tabs):
        live = (t.state == UP) | (t.state == ACQUIRING)
        cross = (const.plane[t.a] != const.plane[t.b]) | (const.shell[t.a] != const.shell[t.b])
        now = set(zip(t.a[live & cross].tolist(), t.b[live & cross].tolist(), strict=True))
        for key in now - set(first):
            first[key] = k
        for key in [key for key in first if key not in now]:
            if first[key] > 0:
                lives.append(k - first[key])
            del first[key]
    return np.array(lives)


def test_rotation_moves_roaming_links_on_a_staggered_schedule():
    const = two_shells()[2]
    interval = 20.0
    out = {}
    for rotate in (False, True):
        cfg = LinksConfig(topology="dynamic", reoptimise_interval_s=interval,
                          reoptimise_new_partner=rotate, acquisition_s=2.0)
        model, tabs = run_model(cfg, 120)
        assert max(live_degree(t, model.n_sats).max() for t in tabs) <= 3
        lives = cross_plane_lives(tabs, const)
        out[rotate] = lives
        if rotate:
            # Reviews fall 0.5-1.5 intervals after acquisition: lives spread over that range
            # (a link whose ends find no other partner may stay longer; none end earlier
            # except by a geometric break).
            assert sum(int((t.reason == REASSIGNED).sum()) for t in tabs) > 50
            assert np.mean(lives <= 1.5 * interval + 1) > 0.9
            assert np.percentile(lives, 90) - np.percentile(lives, 10) >= 0.4 * interval
    # Without rotation most reviewed pairs win again and live on.
    assert out[True].size > 2 * out[False].size


def test_cli_links_prints_steady_state_fleet_figures(tmp_path, capsys):
    from meshnet.cli import main

    rc = main(["links", "starlink_fleet", "--duration", "40", "--step", "2", "--warmup", "20",
               "--out", str(tmp_path / "out"), "-q", "--set", 'ground.stations="none"'])
    out = capsys.readouterr().out
    assert rc == 0
    assert "fleet figures after a 20 s warm-up, over 0.01 h (10 steps of 2 s), 4,408 " \
           "satellites x 3 heads" in out
    assert "head-time up" in out and "link-time up" in out
    rc = main(["links", "starlink_550", "--duration", "4", "--warmup", "2", "--out",
               str(tmp_path / "o2"), "-q", "--set", "links.topology=static"])
    assert rc == 2
    assert "leave out --warmup" in capsys.readouterr().err
