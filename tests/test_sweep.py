"""``meshnet sweep``: plan expansion, schema errors, resume, failures, and the same table
serially and on a Dask LocalCluster."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from meshnet.cli import main
from meshnet.sweep import expand, load_sweep, parse_sweep, run_sweep
from meshnet.sweep.config import apply_keys, value_at
from meshnet.sweep.plan import scenario_hash
from meshnet.sweep.results import flatten_summary

SMALL = """
[scenario]
name = "small"
epoch = 2026-02-23T00:00:00Z
duration_s = 10
step_s = 2
seed = 5

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[ground]
stations = "st.csv"
min_elevation_deg = 10.0
antennas = 2

[links]
topology = "plus_grid"
capacity_bps = 100e9
acquisition_s = 10

[traffic.compute]
placement = "random"
count = 6

[[traffic.jobs]]
name = "job"
kind = "allreduce"
model_params = 1e9
compute_s = 1.0

[traffic.background]
total_offered_bps = 30e9
pairs = 6
"""

STATIONS = "name,lat_deg,lon_deg,population\nA,40,-74,20e6\nB,51.5,0,14e6\nC,35.7,139.7,37e6\n"

SWEEP = """
[sweep]
scenario = "small.toml"
seeds = [1, 2]
epochs = [2026-02-23T00:00:00Z, 2026-02-23T03:00:00Z]

[grid]
routing.policy = ["shortest_delay", "min_hop"]
"""

WALL = ("wall_s",)


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "st.csv").write_text(STATIONS)
    (tmp_path / "small.toml").write_text(SMALL)
    (tmp_path / "sw.toml").write_text(SWEEP)
    return tmp_path


def _table(out):
    t = pq.read_table(out / "sweep.parquet")
    return t.drop([c for c in t.column_names if c in WALL])


def _count_runs(monkeypatch, fail_at=None):
    """Count calls of the runner's run_scenario (and raise Ctrl-C at call ``fail_at``)."""
    import meshnet.runner as runner

    real = runner.run_scenario
    calls = []

    def counted(scenario, grid, out_dir, **kw):
        calls.append(str(out_dir))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return real(scenario, grid, out_dir, **kw)

    monkeypatch.setattr(runner, "run_scenario", counted)
    return calls


# --- plan -------------------------------------------------------------------------------------

def test_plan_is_grid_times_seeds_times_epochs(folder):
    text = SWEEP.replace('routing.policy = ["shortest_delay", "min_hop"]',
                         'routing.policy = ["shortest_delay", "min_hop", "ecmp"]\n'
                         'links.acquisition_s = [5, 20]')
    runs = expand(parse_sweep(text, source=folder / "sw.toml"))
    assert len(runs) == 3 * 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert len({r.run_hash for r in runs}) == len(runs)
    seen = set()
    for r in runs:
        sc = r.scenario
        assert sc.run.seed == r.seed and sc.run.epoch == r.epoch
        assert sc.routing.policy == r.overrides["routing.policy"]
        assert sc.links.acquisition_s == r.overrides["links.acquisition_s"]
        seen.add((sc.routing.policy, sc.links.acquisition_s, r.seed, r.epoch.hour))
    assert len(seen) == len(runs)  # every combination exactly once


def test_nested_tables_and_numbered_array_entries(folder):
    text = SWEEP + """
[set]
traffic.compute.count = 8

[[variants]]
label = "big-model"
traffic.jobs.0.model_params = 2e9

[[variants]]
traffic.jobs.0.model_params = 5e8
"""
    runs = expand(parse_sweep(text, source=folder / "sw.toml"))
    assert len(runs) == 2 * 2 * 2 * 2
    assert {r.scenario.traffic.compute.count for r in runs} == {8}
    params = {r.variant.split("+")[0]: r.scenario.traffic.jobs[0].model_params for r in runs}
    assert params == {"big-model": 2e9, "model_params=5e08": 5e8}
    r = runs[0]
    assert r.overrides["traffic.jobs.0.model_params"] == 2e9
    assert value_at(r.scenario, "traffic.compute.count") == 8
    # apply_keys re-validates: the same value as --set gives the same scenario
    from meshnet.scenario import apply_overrides, load_scenario

    base = load_scenario(folder / "small.toml")
    mine = apply_keys(base, [("links.acquisition_s", 3)], "x")
    assert scenario_hash(mine) == scenario_hash(apply_overrides(base, ["links.acquisition_s=3"]))
    assert scenario_hash(mine) != scenario_hash(base)
    assert "# sweep: links.acquisition_s = 3" in mine.text


def test_compare_table_of_the_base_scenario_is_an_axis(folder):
    (folder / "small.toml").write_text(SMALL + '\n[compare]\nrouting = ["ecmp", "min_hop"]\n'
                                       'allocation = ["proportional"]\n')
    text = SWEEP.replace('[grid]\nrouting.policy = ["shortest_delay", "min_hop"]', "")
    runs = expand(parse_sweep(text, source=folder / "sw.toml"))
    assert len(runs) == 3 * 2 * 2
    by_variant = {r.variant: r for r in runs}
    assert set(by_variant) == {"routing-ecmp", "routing-min_hop", "allocation-proportional"}
    assert by_variant["routing-ecmp"].scenario.routing.policy == "ecmp"
    assert by_variant["allocation-proportional"].scenario.allocation.method == "proportional"
    assert by_variant["allocation-proportional"].overrides["routing.policy"] == "shortest_delay"
    assert all(r.scenario.compare.routing == () for r in runs)  # each run is one scenario


def test_builtin_sweep_compares_every_routing_policy():
    from meshnet.routing.policies import ROUTING_POLICIES

    cfg = load_sweep("routing_policies")
    runs = expand(cfg)
    assert len(cfg.seeds) >= 3 and len(cfg.epochs) >= 2
    assert {r.scenario.routing.policy for r in runs} == set(ROUTING_POLICIES.names())
    assert len(runs) == len(ROUTING_POLICIES.names()) * len(cfg.seeds) * len(cfg.epochs)


@pytest.mark.parametrize("grid, words", [
    ('routing.polcy = ["ecmp"]', ["[routing].polcy", "policy"]),
    ('routing.policy = ["ecmp", "nope"]', ["[routing].policy", "'nope'"]),
    ('routng.policy = ["ecmp"]', ["routng.policy", "routing"]),
    ('routing.policy = "ecmp"', ["[grid].routing.policy", "list"]),
    ('links.acquisition_s = [-5]', ["[links].acquisition_s", ">="]),
    ('traffic.jobs.3.compute_s = [1.0]', ["traffic.jobs.3.compute_s", "0..0"]),
    ('scenario.seed = [1, 2]', ["scenario.seed", "seeds"]),
    ('policy = ["ecmp"]', ["policy", "TABLE.KEY"]),
])
def test_bad_key_or_value_is_one_line_naming_file_and_key(folder, capsys, grid, words):
    (folder / "bad.toml").write_text(f'[sweep]\nscenario = "small.toml"\n[grid]\n{grid}\n')
    code = main(["sweep", str(folder / "bad.toml"), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.toml" in err
    for w in words:
        assert w in err


@pytest.mark.parametrize("text, words", [
    ('[sweep]\nscenario = "small.toml"\nseed = [1]\n', ["[sweep].seed", "seeds"]),
    ('[sweep]\nseeds = [1]\n', ["[sweep].scenario"]),
    ('[sweep]\nscenario = "nope.toml"\n', ["[sweep].scenario", "nope.toml"]),
    ('[sweep]\nscenario = "small.toml"\nepochs = ["yesterday"]\n', ["[sweep].epochs"]),
    ('[sweep]\nscenario = "small.toml"\nepochs = [2200-01-01T00:00:00Z]\n', ["2200", "epochs"]),
    ('[sweep]\nscenario = "small.toml"\n[grd]\n', ["[grd]", "[grid]"]),
    ('[sweep]\nscenario = "small.toml"\n[set]\nlinks.acquisition_s = 1\n'
     '[grid]\nlinks.acquisition_s = [2]\n', ["links.acquisition_s", "[set]"]),
    ('[sweep]\nscenario = "small.toml"\n[grid]\nrouting.policy = ["ecmp", "ecmp"]\n',
     ["same scenario"]),
])
def test_bad_sweep_table_is_one_line(folder, capsys, text, words):
    (folder / "bad.toml").write_text(text)
    code = main(["sweep", str(folder / "bad.toml"), "--dry-run"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "bad.toml" in err, err
    for w in words:
        assert w in err, err
    assert not (folder / "runs").exists()


# --- running ----------------------------------------------------------------------------------

def test_serial_and_dask_clusters_give_the_same_table(folder):
    from distributed import LocalCluster

    cfg = load_sweep(folder / "sw.toml")
    a = run_sweep(cfg, folder / "serial", mode="serial", progress=False)
    # A scheduler given by address (as --dask does), its two workers separate processes.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        b = run_sweep(cfg, folder / "remote", mode=cluster.scheduler_address, progress=False)
    # The command's own LocalCluster (one thread here, to start quickly: Numba's workqueue
    # layer must not be entered by two threads at once).
    c = run_sweep(cfg, folder / "local", mode="local", workers=1, processes=False,
                  progress=False)
    assert a.failed == [] and b.failed == [] and c.failed == [] and b.ran == c.ran == 8
    ta = _table(folder / "serial")
    assert ta.num_rows == 8 and set(ta.column("status").to_pylist()) == {"ok"}
    assert ta.equals(_table(folder / "remote"))
    assert ta.equals(_table(folder / "local"))
    # The seed and epoch reach the runs: results differ between them within a variant.
    rows = ta.to_pylist()
    steps = {(r["seed"], r["epoch"]): r["jobs.job.mean_step_s"] for r in rows
             if r["routing.policy"] == "shortest_delay"}
    assert len(set(steps.values())) == 4
    # Every figure of every run's summary.json is in its row.
    for row in rows:
        run_dir = folder / "serial" / "runs" / row["run_id"]
        assert (run_dir / "done.json").is_file() and (run_dir / "links.parquet").is_file()
        flat = flatten_summary(json.loads((run_dir / "summary.json").read_text()))
        for key, value in flat.items():
            assert row[key] == pytest.approx(value, nan_ok=True) if isinstance(
                value, float) else row[key] == value, key
    assert (folder / "serial" / "comparison.png").stat().st_size > 1000
    assert (folder / "serial" / "plots" / "jobs.job.mean_step_s.png").is_file()


def test_interrupted_sweep_resumes_and_matches_an_uninterrupted_one(folder, monkeypatch):
    cfg = load_sweep(folder / "sw.toml")
    calls = _count_runs(monkeypatch, fail_at=4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, folder / "out", mode="serial", progress=False)
    runs_dir = folder / "out" / "runs"
    done = sorted(p.parent.name for p in runs_dir.glob("*/done.json"))
    assert len(done) == 3
    assert not any(p.name.startswith(".") for p in runs_dir.iterdir())  # no half-written run
    # A run whose marker is missing (killed before done.json) is incomplete too.
    (runs_dir / done[0] / "done.json").unlink()
    calls.clear()
    monkeypatch.undo()
    calls = _count_runs(monkeypatch)
    res = run_sweep(cfg, folder / "out", mode="serial", progress=False)
    assert res.reused == 2 and res.ran == 6 and len(calls) == 6
    assert not any(done[1] in c or done[2] in c for c in calls)
    fresh = run_sweep(cfg, folder / "fresh", mode="serial", progress=False)
    assert fresh.ran == 8
    assert _table(folder / "out").equals(_table(folder / "fresh"))
    # Everything complete: a rerun runs nothing and rewrites the same table.
    calls.clear()
    again = run_sweep(cfg, folder / "out", mode="serial", progress=False)
    assert again.ran == 0 and calls == []
    assert _table(folder / "out").equals(_table(folder / "fresh"))


def test_sweep_killed_by_sigkill_resumes(folder):
    """A real kill (no cleanup code runs): the rerun keeps what completed, redoes the rest."""
    import subprocess
    import sys
    import time

    out = folder / "out"
    proc = subprocess.Popen([sys.executable, "-m", "meshnet", "sweep", str(folder / "sw.toml"),
                             "--serial", "--out", str(out), "-q"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while len(list(out.glob("runs/*/done.json"))) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    done = {p.parent.name for p in out.glob("runs/*/done.json")}
    assert 2 <= len(done) < 8 and not (out / "sweep.parquet").exists()
    res = run_sweep(load_sweep(folder / "sw.toml"), out, mode="serial", progress=False)
    assert res.reused == len(done) and res.ran == 8 - len(done) and res.failed == []
    assert not [p.name for p in (out / "runs").iterdir() if p.name.startswith(".")]
    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 8


def test_failing_run_is_recorded_and_redone_next_time(folder, capsys, monkeypatch):
    text = SWEEP.replace('routing.policy = ["shortest_delay", "min_hop"]',
                         'ground.stations = ["st.csv", "missing.csv"]')
    (folder / "sw.toml").write_text(text)
    out = folder / "out"
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q"])
    stdout, _ = capsys.readouterr()
    assert code == 1 and "4 ok, 4 failed" in stdout
    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    bad = [r for r in rows if r["ground.stations"] == "missing.csv"]
    good = [r for r in rows if r["ground.stations"] == "st.csv"]
    assert all(r["status"] == "failed" and "missing.csv" in r["error"] for r in bad)
    assert all(r["jobs.job.mean_step_s"] is None for r in bad)
    assert all(r["status"] == "ok" and r["error"] is None and r["jobs.job.mean_step_s"] > 0
               for r in good)
    for r in bad:
        assert json.loads((out / "runs" / r["run_id"] / "error.json").read_text())["error"]
    # The missing file appears: only the failed runs run again.
    (folder / "missing.csv").write_text(STATIONS)
    calls = _count_runs(monkeypatch)
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q"])
    assert code == 0 and len(calls) == 4
    assert all("missing.csv" in c for c in calls)
    rows = pq.read_table(out / "sweep.parquet").to_pylist()
    assert all(r["status"] == "ok" for r in rows)
    assert not list((out / "runs").glob("*/error.json"))


def test_a_different_sweep_is_refused_unless_forced(folder, capsys, monkeypatch):
    one = SWEEP.replace("seeds = [1, 2]", "seeds = [1]").replace(
        "epochs = [2026-02-23T00:00:00Z, 2026-02-23T03:00:00Z]", "")
    (folder / "sw.toml").write_text(one)
    out = folder / "out"
    assert main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    (folder / "sw.toml").write_text(one.replace('"min_hop"]', '"ecmp"]'))
    before = (out / "sweep.parquet").read_bytes()
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q"])
    _, err = capsys.readouterr()
    assert code == 2 and "--force" in err and err.count("\n") == 1
    assert (out / "sweep.parquet").read_bytes() == before
    calls = _count_runs(monkeypatch)
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q",
                 "--force"])
    assert code == 0 and len(calls) == 1 and "ecmp" in calls[0]  # shortest_delay reused
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert [n.split("+")[0] for n in names] == ["policy=ecmp", "policy=shortest_delay"]
    # A folder that is not a sweep's is never taken over.
    (folder / "other").mkdir()
    (folder / "other" / "notes.txt").write_text("mine")
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out",
                 str(folder / "other"), "-q", "--force"])
    _, err = capsys.readouterr()
    assert code == 2 and "not from a meshnet sweep" in err


def test_metric_named_like_a_set_key_is_prefixed():
    from meshnet.sweep.plan import RunSpec
    from meshnet.sweep.results import build_rows

    run = RunSpec(run_id="r", variant="v", overrides={"power.policy": "shed_lasers"}, seed=1,
                  epoch=None, scenario=None, run_hash="h")
    rec = {"status": "ok", "error": None, "wall_s": 1.0,
           "summary": {"power": {"policy": "from-summary", "max_depth_of_discharge": 0.2}}}
    (row,) = build_rows([run], {"r": rec})
    assert row["power.policy"] == "shed_lasers"
    assert row["summary.power.policy"] == "from-summary"
    assert row["power.max_depth_of_discharge"] == 0.2


def test_metrics_to_plot_can_be_chosen(folder, capsys):
    one = SWEEP.replace("seeds = [1, 2]", "seeds = [1]\ndatasets = false")
    (folder / "sw.toml").write_text(one)
    out = folder / "out"
    code = main(["sweep", str(folder / "sw.toml"), "--serial", "--out", str(out), "-q",
                 "--metric", "jobs.*.p95_step_s", "--metric", "no_such_metric"])
    stdout, _ = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["jobs.job.p95_step_s.png"]
    assert "p95_step_s" in stdout and "'no_such_metric' matches no numeric column" in stdout
    # datasets = false: each run keeps its summary, not its Parquet files
    for run_dir in (out / "runs").iterdir():
        assert (run_dir / "summary.json").is_file() and not list(run_dir.glob("*.parquet"))


def test_usage_mistakes_are_one_line(folder, capsys, monkeypatch):
    sw = str(folder / "sw.toml")
    assert main(["sweep", sw, "--serial", "--workers", "2"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse: the two options exclude each other
        main(["sweep", sw, "--serial", "--dask", "tcp://127.0.0.1:8786"])
    assert exc.value.code == 2
    assert main(["sweep", str(folder / "nope.toml")]) == 2
    capsys.readouterr()
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # Dask not installed
    assert main(["sweep", sw, "--out", str(folder / "out")]) == 2
    _, err = capsys.readouterr()
    assert "meshnet[dask]" in err and "--serial" in err and err.count("\n") == 1
    assert not (folder / "out").exists()


def test_dry_run_lists_runs_and_writes_nothing(folder, capsys):
    code = main(["sweep", str(folder / "sw.toml"), "--dry-run", "--out",
                 str(folder / "out")])
    out, _ = capsys.readouterr()
    assert code == 0 and "8 runs" in out
    assert "policy=min_hop+seed=2+epoch=20260223T030000Z" in out
    assert not (folder / "out").exists()
