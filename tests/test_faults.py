"""Faults: the schedule (determinism, statistics), the mask the link model applies, the outputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from meshnet.config import parse_table
from meshnet.errors import ScenarioError
from meshnet.faults import FaultSchedule, FaultsConfig
from meshnet.links import ACQUIRING, DOWN, UP, link_model, model_tables
from meshnet.links.reasons import FAULT, GSL, ISL, MANOEUVRE, REASON_NAMES, STORM
from meshnet.scenario import parse_scenario
from meshnet.world import build_world

NS = 1_000_000_000

SMALL = """
[scenario]
name = "small_faults"
epoch = 2024-06-21T12:00:00Z
duration_s = 120.0
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


def _scenario(faults: str = "", topology: str = "plus_grid"):
    return parse_scenario(SMALL.replace("{topology}", topology) + faults)


def _tables(sc, world=None):
    world = world or build_world(sc)
    grid = sc.grid()
    model = link_model(sc, grid, world)
    return model, [tab for _t, tab in model_tables(model, world.constellation, grid)]


@pytest.fixture(scope="module")
def baseline():
    sc = _scenario()
    world = build_world(sc)
    return world, _tables(sc, world)[1]


def _touching(tab, s):
    return (tab.a == s) | (tab.b == s)


def _pairs(tab, mask):
    return {(int(a), int(b), int(k)): (int(st), int(r)) for a, b, k, st, r in zip(
        tab.a[mask], tab.b[mask], tab.kind[mask], tab.state[mask], tab.reason[mask],
        strict=True)}


# -- the schedule -----------------------------------------------------------------------------

def _const(n, shells=1):
    return SimpleNamespace(names=np.array([f"s{i}" for i in range(n)], dtype=object),
                           shell=np.arange(n) % shells, plane=np.arange(n) // 10)


def _random_cfg(**kw):
    base = dict(random=True, satellite_mtbf_days=20.0, satellite_mttr_s=3600.0,
                terminal_mtbf_days=5.0, station_mtbf_days=2.0, manoeuvres_per_day=3.0,
                storms_per_day=2.0, accelerator_upsets_per_device_day=0.0)
    base.update(kw)
    return parse_table(FaultsConfig, base, "faults", "test.toml")


def _event_set(s, t_end_s=None):
    ev = s.events
    rows = set()
    for i in range(len(s)):
        if t_end_s is not None and ev["start_s"][i] >= t_end_s:
            continue
        rows.add((ev["kind"][i], ev["target"][i], tuple(ev["node_ids"][i]),
                  tuple(ev["heads"][i]), round(ev["start_s"][i], 6), round(ev["end_s"][i], 6)))
    return rows


def test_same_seed_same_events_whatever_the_span():
    const = _const(300)
    ground = SimpleNamespace(names=np.array([f"g{i}" for i in range(20)], dtype=object))
    cfg = _random_cfg()
    day = FaultSchedule.build(cfg, const, ground, 86400 * NS, seed=7)
    again = FaultSchedule.build(cfg, const, ground, 86400 * NS, seed=7)
    two_days = FaultSchedule.build(cfg, const, ground, 2 * 86400 * NS, seed=7)
    other = FaultSchedule.build(cfg, const, ground, 86400 * NS, seed=8)
    assert len(day) > 100
    assert _event_set(day) == _event_set(again)
    # A longer run (or a window of one) sees the same events where they overlap.
    assert _event_set(two_days, t_end_s=86400) == _event_set(day)
    assert _event_set(other) != _event_set(day)


def test_same_faults_whatever_the_step():
    faults = """
[faults]
random = true
manoeuvres_per_day = 200.0
terminal_mtbf_days = 1.0
station_mtbf_days = 0.5
"""
    sc = _scenario(faults)
    world = build_world(sc)
    from meshnet.faults import schedule_for

    coarse = schedule_for(sc, world, sc.grid(step_s=10.0))
    fine = schedule_for(sc, world, sc.grid(step_s=1.0))
    assert len(coarse) > 10
    assert _event_set(coarse) == _event_set(fine)
    for t_s in (0, 30, 60, 110):
        a, b = coarse.at(t_s * NS), fine.at(t_s * NS)
        assert np.array_equal(a.sat_effect, b.sat_effect)
        assert np.array_equal(a.station_failed, b.station_failed)


def test_permanent_failures_match_the_exponential_law():
    # n satellites, MTBF 10 days, no repair: failures within 1 day ~ Binomial(n, 1 - e^-0.1).
    n = 20000
    cfg = _random_cfg(satellite_mtbf_days=10.0, satellite_mttr_s=None, terminal_mtbf_days=0.0,
                      station_mtbf_days=0.0, manoeuvres_per_day=0.0, storms_per_day=0.0)
    s = FaultSchedule.build(cfg, _const(n), None, 86400 * NS, seed=11)
    p = 1.0 - np.exp(-0.1)
    mean, sd = n * p, np.sqrt(n * p * (1 - p))
    count = s.counts_by_kind().get("satellite", 0)
    assert abs(count - mean) < 4 * sd, (count, mean, sd)  # 4 sigma: 1,903 +- 170 (9 %)
    # Start times are exponential truncated at 1 day: mean 1/l - T/(e^{lT} - 1).
    lam, T = 0.1 / 86400, 86400.0
    want = 1 / lam - T / np.expm1(lam * T)
    assert abs(np.mean(s.events["start_s"]) - want) < 4 * (T / np.sqrt(12 * count))
    assert np.all(np.isinf(s.events["end_s"]))
    # Each satellite fails at most once (no repair).
    ids = [i[0] for i in s.events["node_ids"]]
    assert len(ids) == len(set(ids))


def test_manoeuvre_count_matches_the_renewal_expectation():
    # Up ~ Exp(mean 8,640 s), then exactly 600 s of manoeuvre: renewal cycle mu = 9,240 s,
    # E N(T) ~ T/mu + (sigma^2 - mu^2)/(2 mu^2), Var ~ T sigma^2 / mu^3 per satellite.
    n, T, up, d = 500, 86400.0, 8640.0, 600.0
    cfg = _random_cfg(satellite_mtbf_days=0.0, terminal_mtbf_days=0.0, station_mtbf_days=0.0,
                      storms_per_day=0.0, manoeuvres_per_day=86400.0 / up,
                      manoeuvre_duration_s=d)
    s = FaultSchedule.build(cfg, _const(n), None, int(T * NS), seed=5)
    mu = up + d
    mean = n * (T / mu + (up**2 - mu**2) / (2 * mu**2))
    sd = np.sqrt(n * T * up**2 / mu**3)
    count = s.counts_by_kind()["manoeuvre"]
    assert abs(count - mean) < 4 * sd, (count, mean, sd)  # 4,643 +- 256
    assert np.allclose(s.events["end_s"] - s.events["start_s"], d)


def test_storm_hits_the_fraction_of_its_shell():
    cfg = parse_table(FaultsConfig, {"events": [
        {"kind": "storm", "shell": 1, "fraction": 0.25, "start_s": 5, "duration_s": 10}]},
        "faults", "t.toml")
    const = _const(400, shells=2)
    s = FaultSchedule.build(cfg, const, None, 60 * NS, seed=1)
    ids = np.array(s.events["node_ids"][0])
    assert ids.shape[0] == 50 and np.all(const.shell[ids] == 1)
    assert np.array_equal(np.nonzero(s.lasers_down(5 * NS))[0], ids)
    assert not s.lasers_down(15 * NS).any() and not s.satellites_down(10 * NS).any()


# -- the link model applies the mask ----------------------------------------------------------

def _gsl_satellite(tables, k):
    """A satellite with a ground link up at step k (so the failure releases it)."""
    t = tables[k]
    return int(t.a[(t.kind == GSL) & (t.state == UP)][0])


def test_scheduled_satellite_failure_then_reacquisition(baseline):
    world, base = baseline
    s = _gsl_satellite(base, 9)  # t = 18 s
    t1, t2, acq = 20.0, 60.0, 6.0
    model, tabs = _tables(_scenario(f"""
[[faults.events]]
kind = "satellite"
satellite = {s}
start_s = {t1}
end_s = {t2}
"""), world)
    assert model.faults is not None and len(model.faults) == 1
    saw_release = False
    for tb, tf in zip(base, tabs, strict=True):
        t_s = tf.t_ns / NS
        other_b = ~_touching(tb, s) & (tb.kind == ISL)
        other_f = ~_touching(tf, s) & (tf.kind == ISL)
        # ISLs of other satellites are untouched (a station's freed antenna may well pick
        # another satellite, so other ground links can change).
        assert _pairs(tb, other_b) == _pairs(tf, other_f)
        mine = _touching(tf, s)
        isl = mine & (tf.kind == ISL)
        gsl = mine & (tf.kind == GSL)
        snap = tf.to_snapshot(model.node_names, model.node_kind)
        if t1 <= t_s < t2:
            assert isl.sum() == 4
            assert np.all(tf.state[isl] == DOWN) and np.all(tf.reason[isl] == FAULT)
            assert not np.any(tf.state[gsl] == UP)
            assert np.all(tf.reason[gsl] == FAULT)
            saw_release |= bool(gsl.any())
            assert snap.indptr[s + 1] == snap.indptr[s]  # routing sees no edge of s
        else:
            assert not np.any(np.isin(tf.reason[mine], (FAULT, MANOEUVRE, STORM)))
            b_isl = _pairs(tb, _touching(tb, s) & (tb.kind == ISL))
            f_isl = _pairs(tf, isl)
            if t_s < t1 or t_s >= t2 + acq:
                assert f_isl == b_isl
            else:  # back from the fault: every link acquires for acquisition_s
                assert all(st == (ACQUIRING if b_isl[k][0] == UP else b_isl[k][0])
                           for k, (st, _r) in f_isl.items())
    assert saw_release  # the ground link held at t1 - step was released as a fault


def test_manoeuvre_takes_lasers_down_and_keeps_ground_links(baseline):
    world, base = baseline
    s = _gsl_satellite(base, 5)
    _model, tabs = _tables(_scenario(f"""
[[faults.events]]
kind = "manoeuvre"
satellite = "{world.constellation.names[s]}"
start_s = 10.0
duration_s = 20.0
"""), world)
    for tb, tf in zip(base, tabs, strict=True):
        t_s = tf.t_ns / NS
        isl = _touching(tf, s) & (tf.kind == ISL)
        if 10 <= t_s < 30:
            assert np.all(tf.state[isl] == DOWN) and np.all(tf.reason[isl] == MANOEUVRE)
        # Ground links (radio) are unaffected by a manoeuvre.
        assert (_pairs(tb, _touching(tb, s) & (tb.kind == GSL))
                == _pairs(tf, _touching(tf, s) & (tf.kind == GSL)))


def _haversine_km(lat1, lon1, lat2, lon2, r_km=6371.0):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl, dp = np.radians(lon2 - lon1), p2 - p1
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r_km * np.arcsin(np.sqrt(h))


def test_region_event_hits_exactly_the_satellites_inside(baseline):
    world, _base = baseline
    sc = _scenario("""
[[faults.events]]
kind = "region"
lat_deg = 20.0
lon_deg = 10.0
radius_km = 3000.0
effect = "lasers"
start_s = 0.0
end_s = 60.0
""")
    model, tabs = _tables(sc, world)
    from meshnet.orbits.propagate import propagate

    grid = sc.grid()
    r_all = propagate(world.constellation, grid).r_km
    hits = 0
    for k, tf in enumerate(tabs):
        r = r_all[k]
        # Hand check: geocentric sub-satellite point, great-circle distance (haversine).
        lat = np.degrees(np.arcsin(r[:, 2] / np.linalg.norm(r, axis=1)))
        lon = np.degrees(np.arctan2(r[:, 1], r[:, 0]))
        inside = set(np.nonzero(_haversine_km(lat, lon, 20.0, 10.0) <= 3000.0)[0].tolist())
        down = model.faults.lasers_down(tf.t_ns, r)
        if tf.t_ns < 60 * NS:
            assert set(np.nonzero(down)[0].tolist()) == inside
            hits += len(inside)
            isl = tf.kind == ISL
            hit = isl & (np.isin(tf.a, list(inside)) | np.isin(tf.b, list(inside)))
            assert np.all(tf.reason[hit] == FAULT) and np.all(tf.state[hit] == DOWN)
            assert not np.any(tf.reason[isl & ~hit] == FAULT)
        else:
            assert not down.any()
    assert hits > 0


def test_failed_head_of_a_fixed_topology_takes_its_link_down(baseline):
    world, base = baseline
    s, head = 30, 2
    _model, tabs = _tables(_scenario(f"""
[[faults.events]]
kind = "terminal"
satellite = {s}
head = {head}
start_s = 0.0
end_s = 40.0
"""), world)
    isl0 = _touching(base[0], s) & (base[0].kind == ISL)
    partners = np.sort(np.where(base[0].a[isl0] == s, base[0].b[isl0], base[0].a[isl0]))
    lost = int(partners[head])  # head k carries the k-th partner in ascending id
    for tf in tabs:
        row = ((tf.a == min(s, lost)) & (tf.b == max(s, lost)) & (tf.kind == ISL))
        others = _touching(tf, s) & (tf.kind == ISL) & ~row
        assert not np.any(tf.reason[others] == FAULT)
        if tf.t_ns < 40 * NS:
            assert tf.reason[row].tolist() == [FAULT]
        else:
            assert tf.reason[row].tolist() == [0]


def test_failed_heads_reduce_dynamic_terminals():
    sc = _scenario("""
[[faults.events]]
kind = "terminal"
fraction = 0.5
start_s = 20.0
end_s = 60.0
""", topology="dynamic")
    model, tabs = _tables(sc)
    lost_up = 0
    for tf in tabs:
        m = model.faults.at(tf.t_ns)
        usable = 3 - m.heads_lost(model.n_sats, 0, 3)
        live = (tf.kind == ISL) & (tf.state != DOWN)
        deg = np.bincount(tf.a[live], minlength=model.n_sats) + np.bincount(
            tf.b[live], minlength=model.n_sats)
        assert np.all(deg <= usable)
        lost_up += int(np.sum((tf.kind == ISL) & (tf.reason == FAULT)))
    assert lost_up > 0  # links released for failed heads at t = 20 s


def test_failed_ground_station_has_no_ground_links(baseline):
    world, base = baseline
    st = int(base[4].b[(base[4].kind == GSL) & (base[4].state == UP)][0]) - 144
    name = world.ground.names[st]
    _model, tabs = _tables(_scenario(f"""
[[faults.events]]
kind = "ground_station"
station = "{name}"
start_s = 10.0
end_s = 50.0
"""), world)
    released = 0
    for tf in tabs:
        at = (tf.kind == GSL) & (tf.b == 144 + st)
        if 10 * NS <= tf.t_ns < 50 * NS:
            assert not np.any(tf.state[at] == UP)
            released += int(np.sum(tf.reason[at] == FAULT))
    assert released >= 1
    assert np.any((tabs[-1].b == 144 + st) & (tabs[-1].state == UP))


# -- outputs ----------------------------------------------------------------------------------

def test_faults_parquet_rows_equal_the_schedule(tmp_path):
    from meshnet.io.links_dataset import write_links_dataset

    sc = _scenario("""
[faults]
random = true
manoeuvres_per_day = 300.0
station_mtbf_days = 1.0

[[faults.events]]
kind = "plane"
plane = "0/3"
start_s = 4.0
end_s = 30.0
""")
    summary = write_links_dataset(sc, sc.grid(), tmp_path, progress=False)
    df = pq.read_table(tmp_path / "faults.parquet").to_pandas()
    world = build_world(sc)
    model = link_model(sc, sc.grid(), world)
    ev = model.faults.events
    assert len(df) == len(model.faults) > 2
    for col in ("kind", "cause", "effect", "target", "start_s", "end_s"):
        assert df[col].tolist() == list(ev[col]), col
    assert [list(x) for x in df["node_ids"]] == ev["node_ids"]
    plane_row = df[df["kind"] == "plane"].iloc[0]
    assert list(plane_row["node_ids"]) == list(range(36, 48))  # plane 3: ids 36..47
    f = summary.mesh["faults"]
    assert f["events"] == len(df)
    assert f["events_by_kind"]["plane"] == 1
    # 12 satellites x 4 heads x 26 s, plus the manoeuvres (4 heads each).
    man = df[df["kind"] == "manoeuvre"]
    want = (12 * 4 * 26 + 4 * np.sum(np.minimum(man["end_s"], 120) - man["start_s"])) / 3600
    assert f["head_hours_lost"] == pytest.approx(want, rel=1e-9)
    assert f["link_s_down_by_fault_reason"]["fault"] > 0
    assert "fault events" in summary.text()


def test_run_writes_faults_and_summary(tmp_path):
    from meshnet.runner import run_scenario

    sc = _scenario("""
[[faults.events]]
kind = "satellite"
satellite = 5
start_s = 0.0
end_s = 20.0
""")
    res = run_scenario(sc, sc.grid(duration_s=30), tmp_path, plots=False, progress=False)
    df = pq.read_table(tmp_path / "faults.parquet").to_pandas()
    assert df["node_ids"].tolist()[0].tolist() == [5]
    f = res.summary["faults"]
    assert f["events_by_kind"] == {"satellite": 1}
    # 4 ISLs of satellite 5 down for 10 steps of 2 s (its ground links come on top).
    assert f["link_s_down_by_fault_reason"]["fault"] >= 4 * 20.0
    assert "fault events" in res.report()


def test_reason_names_in_sync():
    assert REASON_NAMES[FAULT] == "fault" and REASON_NAMES[MANOEUVRE] == "manoeuvre"
    assert REASON_NAMES[STORM] == "storm"


@pytest.mark.parametrize("event, match", [
    ('{kind = "satelite", satellite = 1, start_s = 0, end_s = 1}', r"\[faults.events\[0\]\]"
     r"\.kind = 'satelite' is not known; did you mean 'satellite'"),
    ('{kind = "satellite", start_s = 0, end_s = 1}', r"\[faults.events\[0\]\]\.satellite is "
     "required"),
    ('{kind = "satellite", satellite = 1, start_s = 5, end_s = 1}', r"end_s must be > start_s"),
    ('{kind = "satellite", satellite = 1, start_s = 5}', r"exactly one of end_s and duration"),
    ('{kind = "plane", plane = "3", start_s = 0, end_s = 1}', r"expected 'shell/plane'"),
    ('{kind = "storm", station = "x", start_s = 0, end_s = 1}', r"\.station is not used by "
     "kind = 'storm'"),
    ('{kind = "satellite", satellite = 1, start_s = 0, end_s = 1, colour = 2}',
     r"unknown key \[faults.events\[0\]\]\.colour"),
])
def test_bad_events_give_one_line_errors(event, match):
    with pytest.raises(ScenarioError, match=match) as exc:
        _scenario(f"[faults]\nevents = [{event}]\n")
    assert "\n" not in str(exc.value) and "<scenario>" in str(exc.value)


def test_unknown_target_names_the_key():
    sc = _scenario("""
[[faults.events]]
kind = "ground_station"
station = "Tokio"
start_s = 0.0
end_s = 1.0
""")
    with pytest.raises(ScenarioError, match=r"\[faults.events\[0\]\]\.station = 'Tokio' is not "
                       r"a ground station; did you mean 'Tokyo'") as exc:
        link_model(sc, sc.grid(), build_world(sc))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("event, match", [
    ('kind = "terminal"\nsatellite = 3\nhead = 4', r"\[faults.events\[0\]\]\.head = 4, but "
     r"satellites have 4 laser heads \(0..3\)"),
    ('kind = "storm"\nshell = 2', r"\[faults.events\[0\]\]\.shell = 2 has no satellites"),
    ('kind = "satellite"\nsatellite = 144', r"\[faults.events\[0\]\]\.satellite = 144 is "
     r"outside 0..143"),
])
def test_targets_checked_against_the_world(event, match):
    sc = _scenario(f"[[faults.events]]\n{event}\nstart_s = 0.0\nend_s = 1.0\n")
    with pytest.raises(ScenarioError, match=match) as exc:
        link_model(sc, sc.grid(), build_world(sc))
    assert "\n" not in str(exc.value)


def test_cli_bad_fault_key_exits_2(tmp_path, capsys):
    from meshnet.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(SMALL.replace("{topology}", "plus_grid")
                    + "[faults]\nsatellite_mtbf_day = 3\n", encoding="utf-8")
    code = main(["links", str(path), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "unknown key [faults].satellite_mtbf_day; did you mean 'satellite_mtbf_days'" in err


def test_windows_reproduce_the_single_process_faults(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from meshnet.distributed import windowed_link_tables
    from meshnet.io.links_dataset import write_links_dataset

    sc = _scenario("""
[faults]
random = true
manoeuvres_per_day = 400.0
terminal_mtbf_days = 0.5
station_mtbf_days = 0.2
station_mttr_s = 30.0

[[faults.events]]
kind = "satellite"
satellite = 20
start_s = 30.0
end_s = 70.0
""")  # plus_grid: windows are exact after the warm-up (dynamic matches only statistically)
    grid = sc.grid()
    write_links_dataset(sc, grid, tmp_path / "one", progress=False)
    with ThreadPoolExecutor(2) as ex:
        write_links_dataset(sc, grid, tmp_path / "split", progress=False,
                            tables=windowed_link_tables(sc, grid, ex, 4, chunk_steps=8))
    for name in ("links.parquet", "faults.parquet"):
        a = pq.read_table(tmp_path / "one" / name).to_pandas()
        b = pq.read_table(tmp_path / "split" / name).to_pandas()
        cols = ["t_s", "a", "b", "kind", "state", "reason"] if name == "links.parquet" else [
            "kind", "target", "start_s", "end_s"]
        for col in cols:
            assert (a[col].astype(str) == b[col].astype(str)).all(), (name, col)
    reasons = pq.read_table(tmp_path / "one" / "links.parquet").to_pandas()["reason"]
    assert {"fault", "manoeuvre"} <= set(reasons.astype(str))


TWO_SHELLS = """
[scenario]
name = "two_shells"
epoch = 2026-02-23T00:00:00Z
duration_s = 60
step_s = 2
seed = 1

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[[constellation.shells]]
altitude_km = 600.0
inclination_deg = 70.0
planes = 10
sats_per_plane = 10
phasing = 1

[ground]
stations = "none"

[links]
topology = "plus_grid"
acquisition_s = 10
"""


def test_inter_shell_head_fails_its_link_only():
    # plus_grid heads 0..3, then the inter-shell head 4: failing head 4 releases the
    # satellite's inter-shell link (fault) and leaves its four +Grid links alone.
    sc0 = parse_scenario(TWO_SHELLS)
    world = build_world(sc0)
    _m, base = _tables(sc0, world)
    t0 = base[0]
    cross = (t0.kind == ISL) & (t0.state == UP) & ((t0.a < 144) != (t0.b < 144))
    s = int(t0.a[cross][0])
    sc = parse_scenario(TWO_SHELLS + f"""
[[faults.events]]
kind = "terminal"
satellite = {s}
head = 4
start_s = 10.0
end_s = 30.0
""")
    model, tabs = _tables(sc, world)
    for tf in tabs:
        mine = _touching(tf, s) & (tf.kind == ISL)
        inter = mine & ((tf.a < 144) != (tf.b < 144))
        live_inter = inter & (tf.state != DOWN)
        assert not np.any(tf.reason[mine & ~inter] == FAULT)
        if 10 * NS <= tf.t_ns < 30 * NS:
            assert not live_inter.any()
        if tf.t_ns == 10 * NS:
            assert np.any(inter & (tf.reason == FAULT))
    # Once the head is back, the inter-shell layer counts it as free again (whether it finds
    # a partner depends on who else is free).
    assert model.isl.layer.head_loss[s] == 0


def test_failed_satellite_in_dynamic_frees_and_blocks_its_heads():
    s = 40
    sc = _scenario(f"""
[[faults.events]]
kind = "satellite"
satellite = {s}
start_s = 20.0
end_s = 60.0
""", topology="dynamic")
    _model, tabs = _tables(sc)
    broke = 0
    for tf in tabs:
        isl = _touching(tf, s) & (tf.kind == ISL)
        if 20 * NS <= tf.t_ns < 60 * NS:
            assert not np.any(tf.state[isl] != DOWN)  # no link assigned while failed
            broke += int(np.sum(tf.reason[isl] == FAULT))
        elif tf.t_ns >= 60 * NS + 6 * NS:
            assert np.any(tf.state[isl] == UP)  # re-linked after acquiring
    assert broke == 3  # its three links broke once, as faults, at t = 20 s
