"""Training that survives: interruptions, checkpoints, recovery policies and goodput.

Hand cases on a line mesh (tests/test_engine.py's helpers): a 2-rank ring on nodes 0 and 1
(node 2 a spare), links of 8 Gbps per direction, ``compute_s = 10`` s with the all-reduce
fully overlapped (a few MB: the step is exactly 10 s), checkpoints of 2 GB (1 GB per rank to
its neighbour: 1 s).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_engine import LinePolicy, alloc, line_snapshot

from meshnet.config import parse_table
from meshnet.engine import FluidEngine
from meshnet.errors import ScenarioError
from meshnet.faults import FaultSchedule, FaultsConfig
from meshnet.faults.checkpoint import (
    daly_goodput,
    daly_interval_s,
    daly_wall_time_s,
    young_interval_s,
)
from meshnet.faults.config import DEFAULT_ACCELERATOR_UPSETS_PER_DEVICE_DAY
from meshnet.traffic.collectives import make_job
from meshnet.traffic.config import JobConfig, ResilienceConfig
from meshnet.traffic.placement import ComputeNodes

GBPS = 1e9


def _nodes(ids, n_satellites=10):
    k = len(ids)
    return ComputeNodes(node_ids=np.array(ids, np.int32),
                        names=np.array([f"n{i}" for i in ids], dtype=object),
                        accelerators=np.ones(k, np.int32), tflops=np.ones(k),
                        shell=np.zeros(k, np.int32), plane=np.full(k, -1, np.int32),
                        slot=np.full(k, -1, np.int32), n_satellites=n_satellites,
                        injection_bps=None)


def _job(recovery, ranks=(0, 1), interval_s=30.0, ckpt_bytes=2e9, restart_s=5.0, spares=0,
         compute_s=10.0, steps=None):
    res = ResilienceConfig(recovery=recovery, checkpoint_interval_s=interval_s,
                           checkpoint_bytes=ckpt_bytes, restart_s=restart_s, spares=spares)
    cfg = JobConfig(name="j", compute_s=compute_s, overlap=1.0, model_params=1e6,
                    steps=steps, resilience=res)
    return make_job(cfg, _nodes(list(ranks)), n_nodes=3)


def _run(job, outages, t_end_s, dt_s=10.0, spare_nodes=(), n_links=2):
    eng = FluidEngine([job], LinePolicy(), alloc, spare_nodes=list(spare_nodes))
    eng.set_outages(*outages)
    for k in range(int(round(t_end_s / dt_s))):
        eng.step(line_snapshot([8 * GBPS] * n_links, t_ns=int(round(k * dt_s * 1e9))), dt_s)
    return eng, eng.jobs[0].res


# -- (a) one scheduled failure worked by hand -------------------------------------------------

def test_restart_loses_the_work_since_the_checkpoint_and_waits_for_the_node():
    # Steps 0-10, 10-20, 20-30; checkpoint 30-31 (1 GB at 8 Gbps); steps to 61; checkpoint
    # 61-62; step 62-72. Node 1 restarts at t_f = 75 s for 20 s, restart_s R = 5 s:
    # lost = 75 - 62 = 13 s (one step rolled back), recovery = (95 - 75) + R = 25 s.
    eng, res = _run(_job("restart"), ([1], [75.0], [95.0]), 200.0)
    (it,) = res.interruptions
    assert it["t_s"] == pytest.approx(75.0, abs=1e-9)
    assert it["lost_s"] == pytest.approx(13.0, abs=1e-6)
    assert it["steps_rolled_back"] == 1
    assert it["recovery_s"] == pytest.approx(25.0, abs=1e-9)
    starts = [r["start_s"] for r in eng.job_records()]
    assert 100.0 in starts and 72.0 not in starts  # resumed at 100 s from step 6
    # After the resume: 3 steps, checkpoint, 3 steps, checkpoint, 3 steps by 192 s -> 6 + 9.
    assert res.work == pytest.approx(15.0)
    assert [round(e - s, 6) for s, e in res.checkpoints] == [1.0] * 5


def test_checkpoints_are_real_flows_on_the_links():
    eng, res = _run(_job("restart"), ([], [], []), 70.0)
    fl = eng.flow_records(70.0)
    ck = fl["phase"] == -2
    assert ck.sum() == 4  # two checkpoints, one flow per rank
    np.testing.assert_allclose(fl["bytes"][ck], 1e9)
    np.testing.assert_allclose(fl["end_s"][ck] - fl["start_s"][ck], 1.0, rtol=1e-9)


def test_ground_checkpoints_go_to_the_nearest_station():
    # Line 0 - 1 - 2 - 3 with nodes 2 and 3 ground stations: both ranks' nearest station is
    # 2; the two 1 GB shards share the 1 -> 2 link at 8 Gbps (4 Gbps each): 2 s, not 1 s.
    from meshnet.graph import Snapshot

    def snap(k):
        a = np.arange(3)
        return Snapshot.from_links(
            t_ns=k * 10**10, node_names=np.array([f"n{i}" for i in range(4)], dtype=object),
            node_kind=np.array([0, 0, 1, 1], np.int8), a=a, b=a + 1,
            length_km=np.full(3, 300.0), capacity_bps=np.full(3, 8 * GBPS))

    res = ResilienceConfig(recovery="restart", checkpoint_interval_s=30.0,
                           checkpoint_bytes=2e9, restart_s=5.0, checkpoint_to="ground")
    cfg = JobConfig(name="j", compute_s=10.0, overlap=1.0, model_params=1e6, resilience=res)
    job = make_job(cfg, _nodes([0, 1]), n_nodes=4)
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.set_outages([], [], [])
    for k in range(8):
        rec = eng.step(snap(k), 10.0)
        # the record lists the pairs routed last (a checkpoint re-routes inside the step)
        assert rec.pair_src.shape[0] == np.asarray(rec.routes.pair_reachable).shape[0]
    fl = eng.flow_records(80.0)
    ck = fl["phase"] == -2
    assert set(fl["dst"][ck].tolist()) == {2}
    state = eng.jobs[0].res
    assert [(round(a, 6), round(b, 6)) for a, b in state.checkpoints] == [(30.0, 32.0),
                                                                          (62.0, 64.0)]


def test_no_checkpoint_rolls_back_to_the_start():
    _eng, res = _run(_job("restart", interval_s=None), ([0], [75.0], [80.0]), 100.0)
    (it,) = res.interruptions
    assert it["steps_rolled_back"] == 7 and it["lost_s"] == pytest.approx(75.0)


def test_recovery_none_ignores_outages():
    _eng, res = _run(_job("none"), ([1], [75.0], [95.0]), 100.0)
    assert res is None


# -- (d) spare and elastic by hand -------------------------------------------------------------

def test_spare_takes_over_after_restart_s():
    # Same failure; spare node 2 takes rank 1 at once: recovery = R = 5 s, still 13 s lost.
    eng, res = _run(_job("spare", spares=1), ([1], [75.0], [95.0]), 200.0, spare_nodes=[2])
    (it,) = res.interruptions
    assert it["recovery_s"] == pytest.approx(5.0, abs=1e-9)
    assert it["lost_s"] == pytest.approx(13.0, abs=1e-6)
    assert sorted(eng.jobs[0].job.nodes.tolist()) == [0, 2]
    assert res.spares == [1]  # the failed node is the next spare
    # 6 committed steps, then from 80 s: 3, ckpt 110-111, 3, ckpt 141-142, 3, ckpt 172-173,
    # 2 by 193 s.
    assert res.work == pytest.approx(17.0)


def test_spare_not_up_falls_back_to_waiting():
    outages = ([2, 1], [0.0, 75.0], [300.0, 95.0])  # the spare itself is down
    _eng, res = _run(_job("spare", spares=1), outages, 200.0, spare_nodes=[2])
    assert res.interruptions[0]["recovery_s"] == pytest.approx(25.0, abs=1e-9)


def test_spares_held_back_from_the_job_when_no_node_is_free():
    job = _job("spare", ranks=(0, 1, 2), spares=1)
    eng = FluidEngine([job], LinePolicy(), alloc)
    assert job.nodes.tolist() == [0, 1] and eng.jobs[0].res.spares == [2]


def test_elastic_goes_on_with_fewer_ranks_and_smaller_ring_bytes():
    # 3 ranks, no checkpoints; node 2 restarts at 75 s. Only the current step (70-75) is lost;
    # from 80 s the ring has 2 ranks, each step worth 2/3 of a full one.
    job = _job("elastic", ranks=(0, 1, 2), interval_s=None)
    eng, res = _run(job, ([2], [75.0], [95.0]), 200.0)
    (it,) = res.interruptions
    assert it["steps_rolled_back"] == 0
    assert it["lost_s"] == pytest.approx(5.0, abs=1e-9)
    assert it["recovery_s"] == pytest.approx(5.0, abs=1e-9)
    recs = eng.job_records()
    before = [r for r in recs if r["end_s"] <= 75.0]
    after = [r for r in recs if r["start_s"] >= 80.0]
    assert len(before) == 7 and len(after) == 12
    s = 1e6 * 2.0  # gradient bytes
    # ring all-reduce: each rank sends 2 (n - 1) / n x S per step
    assert before[0]["bytes_per_rank"] == pytest.approx(2 * 2 / 3 * s)
    assert after[0]["bytes_per_rank"] == pytest.approx(2 * 1 / 2 * s)
    assert {r["ranks"] for r in after} == {2}
    assert res.work == pytest.approx(7 + 12 * 2 / 3)


def test_failure_during_recovery_restarts_it():
    # Node 1 down 75-95; node 0 goes down at 90 until 110: ready at 110, resume at 115.
    _eng, res = _run(_job("restart"), ([1, 0], [75.0, 90.0], [95.0, 110.0]), 200.0)
    first, second = res.interruptions
    assert first["resume_s"] == second["resume_s"] == pytest.approx(115.0)
    assert second["steps_rolled_back"] == 0 and second["lost_s"] == 0.0


# -- (b) goodput against Daly's model ----------------------------------------------------------

def _daly_run(seed, t_end_s):
    """A 2-rank job under the accelerator process: per-node MTBF 400 s (job MTBF 200 s),
    steps of 1 s, checkpoints every 20 s of work taking 2 s, node back after 1 s, R = 5 s."""
    per_day = 86400.0 / 400.0
    cfg = parse_table(FaultsConfig, {
        "random": True, "satellite_mtbf_days": 0.0, "terminal_mtbf_days": 0.0,
        "station_mtbf_days": 0.0, "manoeuvres_per_day": 0.0,
        "accelerator_upsets_per_device_day": per_day, "accelerator_restart_s": 1.0},
        "faults", "test.toml")
    const = SimpleNamespace(names=np.array(["n0", "n1"], dtype=object))
    sched = FaultSchedule.build(cfg, const, None, int(t_end_s * 1e9), seed=seed)
    job = _job("restart", interval_s=20.0, ckpt_bytes=4e9, restart_s=5.0, compute_s=1.0)
    eng, res = _run(job, sched.node_outages(), t_end_s, dt_s=500.0, n_links=1)
    return res.work * 1.0, t_end_s, len(res.interruptions)


def test_goodput_matches_daly_for_random_restarts():
    # Daly (2006): useful fraction T_s / T_w with tau = 20 s of work, delta = 2 s,
    # M = 200 s and a downtime of R = 1 s (node) + 5 s (restart). Two seeds of 10,000 s
    # (~100 failures): runs scatter by about 0.6 % (seeds 1-6: 0.831-0.849 against 0.835);
    # tolerance 2 % of wall time.
    work = wall = n = 0.0
    for seed in (1, 2):
        w, t, k = _daly_run(seed, 10_000.0)
        work, wall, n = work + w, wall + t, n + k
    assert n > 70
    want = daly_goodput(interval_s=20.0, delta_s=2.0, mtbf_s=200.0, restart_s=6.0)
    assert work / wall == pytest.approx(want, abs=0.02)
    # and clearly below the fault-free share with checkpoints alone (20 / 22)
    assert work / wall < 20.0 / 22.0 - 0.03


def test_young_and_daly_formulas():
    assert young_interval_s(2.0, 200.0) == pytest.approx(math.sqrt(800.0))
    # Daly's interval maximises his goodput (checked on a grid, not from the formula).
    taus = np.linspace(5.0, 80.0, 3001)
    g = [daly_goodput(t, 2.0, 200.0, 6.0) for t in taus]
    assert taus[int(np.argmax(g))] == pytest.approx(daly_interval_s(2.0, 200.0), abs=0.5)
    # No failures in the limit: wall time is the work plus the checkpoints.
    assert daly_wall_time_s(100.0, 10.0, 1.0, 1e12, 0.0) == pytest.approx(110.0, rel=1e-6)


# -- (c) determinism ---------------------------------------------------------------------------

def test_accelerator_process_is_seeded_and_independent_of_the_span():
    a = _daly_run(7, 2_000.0)
    b = _daly_run(7, 2_000.0)
    assert a == b
    cfg = parse_table(FaultsConfig, {"random": True, "accelerator_upsets_per_device_day": 50.0},
                      "faults", "t.toml")
    const = SimpleNamespace(names=np.array([f"s{i}" for i in range(20)], dtype=object))
    s1 = FaultSchedule.build(cfg, const, None, 86_400 * 10**9, seed=4)
    s2 = FaultSchedule.build(cfg, const, None, 2 * 86_400 * 10**9, seed=4)
    s3 = FaultSchedule.build(cfg, const, None, 86_400 * 10**9, seed=5)

    def acc(s, t_end):
        k = s.events["kind"] == "accelerator"
        return [(tuple(n), round(t, 6)) for n, t in zip(
            np.array(s.events["node_ids"], dtype=object)[k], s.events["start_s"][k],
            strict=True) if t < t_end]

    assert acc(s1, 86_400) == acc(s2, 86_400) and acc(s1, 86_400) != acc(s3, 86_400)
    # rate: 20 devices x 50 / day, restarts of 600 s -> ~1000 events a day (Poisson)
    assert abs(len(acc(s1, 86_400)) - 1000 * (1 - 50 * 600 / 86_400)) < 4 * math.sqrt(1000)
    assert s1.accelerators_down(int(s1.events["start_s"][0] * 1e9)).sum() >= 1
    assert not s1.satellites_down(int(s1.events["start_s"][0] * 1e9)).any()


def test_default_upset_rate_is_the_llama3_baseline():
    # 419 unexpected interruptions in 54 days on 16,384 GPUs: one per ~50,700 GPU-hours.
    assert 24.0 / DEFAULT_ACCELERATOR_UPSETS_PER_DEVICE_DAY == pytest.approx(50_700, rel=0.01)


# -- end to end --------------------------------------------------------------------------------

def test_radiation_scenario_end_to_end(tmp_path):
    import pyarrow.parquet as pq

    from meshnet.runner import run_scenario
    from meshnet.scenario import load_scenario

    sc = _with_event(load_scenario("suncatcher_81_radiation"))
    res = run_scenario(sc, sc.grid(duration_s=600), tmp_path, plots=False, progress=False)
    job = res.summary["jobs"][0]
    r = job["resilience"]
    assert r["interruptions"] == 1 and r["recovery"] == "spare"
    assert r["mean_recovery_s"] == pytest.approx(300.0, abs=1e-6)  # restart_s, spare up
    assert job["nodes"] == 79 and 0 < job["goodput"] < 1
    faults = pq.read_table(tmp_path / "faults.parquet").to_pandas()
    assert faults["kind"].tolist() == ["accelerator"]
    assert "goodput" in res.report()
    assert "ranks" in pq.read_table(tmp_path / "jobs.parquet").column_names


def test_orbit_mfu_counts_the_losses(tmp_path):
    import dataclasses

    from meshnet.runner import run_scenario
    from meshnet.scenario import load_scenario

    sc = _with_event(load_scenario("suncatcher_81_radiation"))
    job = dataclasses.replace(sc.traffic.jobs[0], compute_s=None, tokens_per_step=2e5)
    sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, jobs=(job,)))
    res = run_scenario(sc, sc.grid(duration_s=600), tmp_path, plots=False, progress=False)
    j = res.summary["jobs"][0]
    # model FLOPs of the kept steps over 600 s at peak: mfu x kept compute time / run time
    assert j["orbit_mfu"] == pytest.approx(
        j["mfu"] * j["useful_steps"] * j["compute_s"] / 600.0, rel=1e-9)
    assert 0 < j["orbit_mfu"] < j["achieved_mfu"] <= j["mfu"]


def test_ground_checkpoints_need_stations(tmp_path):
    import dataclasses

    from meshnet.runner import run_scenario
    from meshnet.scenario import load_scenario

    sc = load_scenario("suncatcher_81_radiation")
    job = sc.traffic.jobs[0]
    job = dataclasses.replace(job, resilience=dataclasses.replace(job.resilience,
                                                                  checkpoint_to="ground"))
    sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, jobs=(job,)))
    with pytest.raises(ScenarioError, match=r"checkpoint_to = 'ground' .* no stations") as e:
        run_scenario(sc, sc.grid(duration_s=20), tmp_path, plots=False, progress=False)
    assert "\n" not in str(e.value)


def _with_event(sc):
    import dataclasses

    from meshnet.faults import FaultEventConfig

    ev = FaultEventConfig(kind="accelerator", satellite=10, start_s=100.0, end_s=700.0)
    # the scheduled restart only: no random draws in a 600 s test
    return dataclasses.replace(sc, faults=dataclasses.replace(sc.faults, events=(ev,),
                                                              random=False))


# -- config errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("table, match", [
    ({"recovery": "spare"}, r"recovery = 'spare' needs spares >= 1"),
    ({"recovery": "restart", "spares": 2}, r"spares only applies to recovery = 'spare'"),
    ({"checkpoint_to": "gruond"}, r"checkpoint_to = 'gruond' is not known"),
    ({"recovery": "rollback"}, r"recovery = 'rollback' is not known"),
    ({"checkpoint_interval_s": 0}, r"checkpoint_interval_s"),
    ({"restrat_s": 1}, r"unknown key .*restrat_s.*restart_s"),
])
def test_bad_resilience_keys_give_one_line_errors(table, match):
    with pytest.raises(ScenarioError, match=match) as exc:
        parse_table(JobConfig, {"name": "j", "compute_s": 1.0, "resilience": table},
                    "traffic.jobs[0]", "demo.toml")
    assert "\n" not in str(exc.value) and "demo.toml" in str(exc.value)


def test_elastic_needs_an_allreduce_job():
    with pytest.raises(ScenarioError, match=r"a pipeline job cannot shrink"):
        parse_table(JobConfig, {"name": "j", "kind": "pipeline", "compute_s": 1.0,
                                "resilience": {"recovery": "elastic"}},
                    "traffic.jobs[0]", "demo.toml")


def test_accelerator_event_needs_a_satellite():
    with pytest.raises(ScenarioError, match=r"satellite is required for kind = 'accelerator'"):
        parse_table(FaultsConfig, {"events": [{"kind": "accelerator", "start_s": 0,
                                               "end_s": 5}]}, "faults", "demo.toml")
