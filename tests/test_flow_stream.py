"""flows.parquet streamed during the run (meshnet/io/flows_writer.py, engine.release_flows).

The streamed file must be the file the old end-of-run write gave (every flow, same columns,
same order), and the engine must hold only the flows still in use, however long the run.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshnet import runner
from meshnet.engine import FluidEngine
from meshnet.io import flows_writer


def _scenario():
    """The default scenario (a ring all-reduce job and 400 background flows) with
    checkpoints every 10 s and an accelerator fault at 40 s on one of the job's nodes: its
    flows are cancelled, it rolls back and restarts."""
    from meshnet.faults import FaultEventConfig
    from meshnet.scenario import load_scenario

    sc = load_scenario("starlink_550_training")
    job = sc.traffic.jobs[0]
    job = dataclasses.replace(job, resilience=dataclasses.replace(
        job.resilience, recovery="restart", checkpoint_interval_s=10.0, restart_s=5.0))
    traffic = dataclasses.replace(sc.traffic, jobs=(job,))
    ev = FaultEventConfig(kind="accelerator", satellite=0, start_s=40.0, end_s=45.0)
    faults = dataclasses.replace(sc.faults, events=(ev,), random=False)
    return dataclasses.replace(sc, traffic=traffic, faults=faults)


def _old_close(self, head, tail):
    """The end-of-run write before streaming: one table of every flow (runner._write_table)."""
    cols = {k: np.concatenate([head[k], tail[k]]) for k in head}
    self.buf.close()
    assert self.rows == 0, "the reference run must not stream"
    runner._write_table(self.path, cols, self.meta)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    sc = _scenario()
    grid = sc.grid(duration_s=90)
    mp = pytest.MonkeyPatch()
    out = {}
    try:
        # Reference: nothing released, flows.parquet written at the end as before.
        mp.setattr(runner, "RELEASE_EVERY_STEPS", 10**9)
        mp.setattr(flows_writer.FlowRowWriter, "close", _old_close)
        ref = tmp_path_factory.mktemp("ref")
        runner.run_scenario(sc, grid, ref, plots=False, progress=False)
        mp.undo()
        # Streaming: released every step, tiny row groups.
        held = []
        release = FluidEngine.release_flows

        def spy(self, *a, **k):
            got = release(self, *a, **k)
            held.append((self.flows.n_total, self.flows.n, self.flows.capacity, self.n_fixed))
            return got

        mp.setattr(runner, "RELEASE_EVERY_STEPS", 1)
        mp.setattr(flows_writer, "FLOW_ROWS_PER_GROUP", 16)
        mp.setattr(FluidEngine, "release_flows", spy)
        new = tmp_path_factory.mktemp("new")
        runner.run_scenario(sc, grid, new, plots=False, progress=False)
        out = {"ref": ref, "new": new, "held": np.array(held)}
    finally:
        mp.undo()
    return out


def _table(path):
    return pq.read_table(path)


def test_streamed_flows_equal_the_end_of_run_table(runs):
    a = _table(runs["ref"] / "flows.parquet")
    b = _table(runs["new"] / "flows.parquet")
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    assert a.num_rows == b.num_rows > 100
    for name in a.column_names:
        x = a.column(name).to_numpy(zero_copy_only=False)
        y = b.column(name).to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)  # NaN == NaN here
        else:
            assert x.tolist() == y.tolist(), name
    # The run covered what streaming must get right: background flows (held, written
    # first), cancelled flows (never finished, released), checkpoint flows, several groups.
    job = np.asarray(b.column("job").to_pylist(), object)
    fin = b.column("finished").to_numpy()
    assert (job == "background").any() and not fin[job == "background"].all()
    assert (~fin[job != "background"]).any()  # the fault cancelled some job flows
    assert (b.column("phase").to_numpy() == -2).any()  # checkpoint flows
    assert np.array_equal(b.column("flow").to_numpy(), np.arange(b.num_rows))
    assert pq.ParquetFile(runs["new"] / "flows.parquet").num_row_groups > 5
    assert not list(runs["new"].glob(".flows*"))  # the part file is gone


def test_summary_counts_released_flows(runs):
    sa = json.loads((runs["ref"] / "summary.json").read_text())
    sb = json.loads((runs["new"] / "summary.json").read_text())
    for key in ("flows", "path_changes", "reroutes"):
        assert sa[key] == sb[key], key
    for key in ("unreachable_s", "blackholed_s", "background_carried_gbps"):
        assert sb[key] == pytest.approx(sa[key], rel=1e-12, abs=1e-12), key
    assert sb["flows"] == pq.ParquetFile(runs["new"] / "flows.parquet").metadata.num_rows
    assert sa["jobs"][0]["resilience"]["interruptions"] >= 1


def test_engine_holds_only_flows_in_use(runs):
    held = runs["held"]
    n_total, n_held, capacity, n_fixed = held.T
    # Flows keep coming (about 1,400 job flows over the run) while the rows held stay the
    # 400 background flows plus the phase in flight: 64 ranks, 64 flows a ring phase or
    # checkpoint (at most two such sets across a phase boundary).
    assert n_total[-1] > n_fixed[-1] + 1000
    late = slice(len(held) // 4, None)
    assert (n_held[late] - n_fixed[late]).max() <= 2 * 64, n_held.max()
    assert capacity[late].max() <= 4 * max(1024, int(n_held.max()))


def test_release_keeps_order_and_what_jobs_still_read():
    eng = FluidEngine([], policy=None, allocate=None,
                      background=(np.array([0]), np.array([1]), np.array([1e9])))
    fl = eng.flows
    ids = fl.add_many([1, 2, 3, 4], [2, 3, 4, 5], -1, 0, 0, 10.0, np.inf, 1.0, 1.0)
    fl.end_s[ids[[0, 2]]] = 2.0  # flows 1 and 3 finished; 2 and 4 still active
    eng._active = np.concatenate([eng._active, ids[[1, 3]]])
    got = eng.release_flows(5.0)
    assert got["flow"].tolist() == [1]  # flow 3 waits for flow 2 (order is kept)
    assert fl.view("id").tolist() == [0, 2, 3, 4]
    assert fl.view("src")[eng._active].tolist() == [0, 2, 4]  # rows moved with their ids
    eng._active = eng._active[:1]  # flows 2 and 4 end (cancelled: end_s stays NaN)
    got = eng.release_flows(5.0)
    assert got["flow"].tolist() == [2, 3, 4] and fl.n == 1
    assert np.isnan(got["end_s"][0]) and got["mean_rate_gbps"][0] == 0.0
    assert eng.flow_totals(5.0)["flows"] == 5
    assert eng.release_flows(5.0) is None  # the background flow is never released


def test_flow_schema_is_what_the_whole_table_gave(runs):
    a = pa.table({k: v for k, v in zip(
        flows_writer.FLOW_SCHEMA.names,
        [np.zeros(1, np.int64), np.array(["j"], object), *[np.zeros(1, np.int32)] * 4,
         *[np.zeros(1)] * 4, np.ones(1, bool), np.zeros(1), *[np.zeros(1, np.int32)] * 2,
         *[np.zeros(1)] * 2], strict=True)})
    assert a.schema == flows_writer.FLOW_SCHEMA
