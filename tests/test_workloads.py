"""Training workloads: NCCL byte conventions, FLOPs, a hand-written 1F1B schedule, traces in
(AICB, Chakra) and out (Perfetto, ASTRA-sim), and one-line errors for bad keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from meshnet.errors import MeshnetError, ScenarioError
from meshnet.scenario import parse_scenario
from meshnet.traffic.collectives import bus_factor as old_bus_factor
from meshnet.workloads import aicb, chakra
from meshnet.workloads.layout import Layout, LayoutSpec
from meshnet.workloads.model import ModelSpec
from meshnet.workloads.nccl import Collective, alpha_beta_time_s, bus_factor, bytes_per_rank
from meshnet.workloads.perfetto import TRACE_SCHEMA
from meshnet.workloads.schedule import build_step, one_f_one_b
from meshnet.workloads.simulate import StepModel

DATA = Path(__file__).parent / "data"

# nccl-tests, doc/PERFORMANCE.md: busbw = algbw x factor, written out by hand
NCCL_TESTS = {
    "AllReduce": lambda n: 2 * (n - 1) / n,
    "ReduceScatter": lambda n: (n - 1) / n,
    "AllGather": lambda n: (n - 1) / n,
    "AllToAll": lambda n: (n - 1) / n,
    "Broadcast": lambda n: 1.0,
    "Reduce": lambda n: 1.0,
    "SendRecv": lambda n: 1.0,
}


def _sent(c: Collective) -> np.ndarray:
    src, _, nbytes = c.flows()
    out = np.zeros(int(c.ranks.max()) + 1)
    np.add.at(out, src, nbytes)
    return out[c.ranks]


@pytest.mark.parametrize("n", [2, 3, 4, 6, 8, 16])
@pytest.mark.parametrize("op", ["AllReduce", "ReduceScatter", "AllGather", "AllToAll"])
def test_bytes_per_rank_match_nccl_tests(op, n):
    size = 3.0e9
    ranks = np.arange(10, 10 + n)
    assert bytes_per_rank(op, n, size) == pytest.approx(NCCL_TESTS[op](n) * size, rel=1e-15)
    # the ring (and the all-to-all) move exactly that from every rank
    np.testing.assert_allclose(_sent(Collective(op, ranks, size)), NCCL_TESTS[op](n) * size,
                               rtol=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_allreduce_algorithms_bytes(n):
    size = 1.0e9
    want = 2 * (n - 1) / n * size
    ranks = np.arange(n)
    np.testing.assert_allclose(_sent(Collective("AllReduce", ranks, size, "halving_doubling")),
                               want, rtol=1e-12)
    g = 2 if n > 2 else 1
    np.testing.assert_allclose(
        _sent(Collective("AllReduce", ranks, size, "hierarchical", group_size=g)), want,
        rtol=1e-12)
    tree = _sent(Collective("AllReduce", ranks, size, "tree"))
    assert tree.mean() == pytest.approx(want, rel=1e-12)  # 2 (n-1) edges x S/2 each way
    assert tree.max() <= 2 * size + 1e-6
    assert Collective("AllReduce", ranks, size, "tree").rounds() == 2 * math.ceil(math.log2(n))


def test_rooted_and_p2p_bytes():
    s = 5e8
    for op in ("Broadcast", "Reduce"):
        c = Collective(op, np.arange(5), s, root=2)
        sent = _sent(c)
        assert sent.max() == s and sent.sum() == 4 * s  # a pipelined chain: n-1 links of S
        assert bytes_per_rank(op, 5, s) == s
    src, dst, nb = Collective(op, np.arange(5), s, root=2).flows()
    assert 2 in dst  # Reduce ends at the root
    c = Collective("SendRecv", [3, 7], s, pairs=[[3, 7]])
    assert [x.tolist() for x in c.flows()] == [[3], [7], [s]]


def test_bus_factors_agree_with_the_older_names():
    for old, new in [("allreduce", "AllReduce"), ("reduce_scatter", "ReduceScatter"),
                     ("allgather", "AllGather"), ("alltoall", "AllToAll"),
                     ("broadcast", "Broadcast"), ("sendrecv", "SendRecv")]:
        for n in (2, 5, 64):
            assert bus_factor(new, n) == old_bus_factor(old, n) == NCCL_TESTS[new](n)


def test_alpha_beta_ring_by_hand():
    c = Collective("AllReduce", np.arange(8), 8e9)
    # 2 (n-1) rounds of alpha + 2 (n-1)/n S / B
    assert alpha_beta_time_s(c, 2e9, 1e-3) == pytest.approx(14e-3 + 1.75 * 8e9 / 2e9)
    rs = Collective("ReduceScatter", np.arange(8), 8e9)
    assert alpha_beta_time_s(rs, 2e9, 1e-3) == pytest.approx(7e-3 + 7 / 8 * 8e9 / 2e9)


# ---------------------------------------------------------------------------- FLOPs


def test_flops_match_narayanan_closed_form():
    # multi-head attention, 4h non-gated MLP: Narayanan et al. 2021 eq. (3 passes):
    # 72 B s l h^2 (1 + s / 6h + V / 12 l h)
    b, s, n_l, h, v = 16, 2048, 24, 2048, 51200
    m = ModelSpec(n_layers=n_l, hidden_size=h, heads=16, gated_mlp=False, vocab_size=v,
                  sequence_length=s, global_batch=b)
    hand = 72 * b * s * n_l * h**2 * (1 + s / (6 * h) + v / (12 * n_l * h))
    assert m.training_flops_per_step() == pytest.approx(hand, rel=1e-12)
    # recomputation: 96 B s l h^2 (1 + s / 6h + V / 16 l h)
    r = ModelSpec(n_layers=n_l, hidden_size=h, heads=16, gated_mlp=False, vocab_size=v,
                  sequence_length=s, global_batch=b, recompute=True)
    hand_r = 96 * b * s * n_l * h**2 * (1 + s / (6 * h) + v / (16 * n_l * h))
    assert r.training_flops_per_step() == pytest.approx(hand_r, rel=1e-12)


def _tiny():
    # 2 layers (one per stage), h = 64, MHA, 4h MLP without gate, V = 100, s = 16
    return ModelSpec(n_layers=2, hidden_size=64, heads=4, gated_mlp=False, vocab_size=100,
                     sequence_length=16, global_batch=8)


def test_compute_time_by_hand():
    m = _tiny()
    spec = LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2, mfu=0.5)
    ops, lay, costs = build_step(m, spec, accelerators_per_node=2, accelerator_tflops=100.0)
    # micro-batch = 8 / (2 x 2) = 2 sequences = 32 tokens; per layer and token forward:
    # 24 h^2 + 4 s h = 24 * 4096 + 4 * 16 * 64 = 102400 FLOPs; last stage + 2 h V = 12800
    rate = 100e12 * 0.5
    f0 = 102400 * 32 / 2 / rate
    f1 = (102400 + 12800) * 32 / 2 / rate
    comp = {(o.ranks, o.name): o.duration_s for o in ops.ops if o.is_compute}
    assert comp[((0, 1), "forward mb0")] == pytest.approx(f0, rel=1e-12)
    assert comp[((0, 1), "backward mb0")] == pytest.approx(2 * f0, rel=1e-12)
    assert comp[((4, 5), "forward mb1")] == pytest.approx(f1, rel=1e-12)
    total = sum(d for (r, _), d in comp.items() if r == (0, 1))
    assert total == pytest.approx(2 * 3 * f0, rel=1e-12)


# ---------------------------------------------------------------------------- schedule


def test_one_f_one_b_order():
    assert one_f_one_b(0, 4, 6) == [("F", 0), ("F", 1), ("F", 2), ("F", 3), ("B", 0),
                                    ("F", 4), ("B", 1), ("F", 5), ("B", 2), ("B", 3),
                                    ("B", 4), ("B", 5)]
    assert one_f_one_b(3, 4, 2) == [("F", 0), ("B", 0), ("F", 1), ("B", 1)]
    assert one_f_one_b(1, 2, 2, "gpipe") == [("F", 0), ("F", 1), ("B", 0), ("B", 1)]


def test_small_layout_schedule_written_by_hand():
    """TP2 x PP2 x DP2, 2 micro-batches, 2 accelerators per node (TP inside a node)."""
    m = _tiny()
    spec = LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2)
    ops, lay, _ = build_step(m, spec, accelerators_per_node=2, accelerator_tflops=100.0)
    # Megatron order tp-dp-pp: rank = tp + 2 dp + 4 pp
    assert lay.groups("tp") == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert lay.groups("dp") == [(0, 2), (1, 3), (4, 6), (5, 7)]
    assert lay.groups("pp") == [(0, 4), (1, 5), (2, 6), (3, 7)]
    act = 2 * 16 * 64 * 2  # b s h x bf16 = 4096 bytes
    # stage params per rank: attention 4 h^2 + MLP 8 h^2 + embedding (or output) V h, / tp
    grad = (12 * 64 * 64 + 100 * 64) / 2 * 2
    want = []
    for cell, peer in [((0, 1), (4, 5)), ((2, 3), (6, 7))]:
        for _mb in (0, 1):
            want.append(("tp", "AllReduce", (cell,), act, 2))  # 2 per layer x 1 layer, F
            want.append(("pp", "SendRecv", ((cell[0], peer[0]), (cell[1], peer[1])),
                         act / 2, 1))
            want.append(("tp", "AllReduce", (peer,), act, 2))  # stage 1 F
            want.append(("tp", "AllReduce", (peer,), act, 2))  # stage 1 B
            want.append(("pp", "SendRecv", ((peer[0], cell[0]), (peer[1], cell[1])),
                         act / 2, 1))
            want.append(("tp", "AllReduce", (cell,), act, 2))  # stage 0 B
    want.append(("dp", "AllReduce", ((0, 2), (1, 3)), grad, 1))
    want.append(("dp", "AllReduce", ((4, 6), (5, 7)), grad, 1))

    def key(o):
        comms = tuple(tuple(int(x) for x in (c.pairs[0] if c.pairs is not None else c.ranks))
                      for c in o.colls)
        return (o.dim, o.op, comms, o.size_bytes, o.count)

    got = sorted(key(o) for o in ops.ops if o.colls)
    assert got == sorted(want)
    # program order of the compute stream (1F1B with pp = 2, M = 2)
    seq = {}
    for o in ops.ops:
        if o.stream == "compute":
            seq.setdefault(o.ranks, []).append(o.name.split(" x")[0])
    assert seq[(0, 1)] == ["forward mb0", "TP AllReduce", "forward mb1", "TP AllReduce",
                           "backward mb0", "TP AllReduce", "backward mb1", "TP AllReduce"]
    assert seq[(4, 5)] == ["forward mb0", "TP AllReduce", "backward mb0", "TP AllReduce",
                           "forward mb1", "TP AllReduce", "backward mb1", "TP AllReduce"]
    # dependencies: stage 1 forward mb0 waits for stage 0's activations of mb0
    by_name = {(o.ranks, o.name): o for o in ops.ops}
    send = by_name[((0, 1), "PP send activations mb0 -> stage 1")]
    assert send.id in by_name[((4, 5), "forward mb0")].deps
    dp = [o for o in ops.ops if o.dim == "dp" and o.ranks == (0, 1, 2, 3)][0]
    assert set(dp.deps) >= {by_name[((0, 1), "backward mb1")].id,
                            by_name[((2, 3), "backward mb1")].id}


def test_replay_gives_the_1f1b_time_by_hand():
    m = _tiny()
    spec = LayoutSpec(tp=2, pp=2, dp=2, micro_batches=4)
    ops, _, _ = build_step(m, spec, accelerators_per_node=2, accelerator_tflops=100.0)
    sm = StepModel(ops.ops, np.arange(8) // 2, 7.2e12, 0.0)
    dur = np.where(sm.is_comm, 0.0, 0.0)
    for o in ops.ops:  # forward 1 s, backward 2 s on every stage, free communication
        if o.is_compute:
            dur[o.id] = 1.0 if o.name.startswith("forward") else 2.0
    t = sm.replay(dur)
    # (M + P - 1) (F + B) = (4 + 1) x 3 (Narayanan et al. 2021, Sec. 2.2)
    assert t.step_s == pytest.approx(15.0)
    assert t.breakdown["compute"] == pytest.approx(12.0)
    assert t.breakdown["bubble"] == pytest.approx(3.0)
    # a pipeline send of 1 s on every micro-batch shows up as exposed pp time
    pp = np.array([o.dim == "pp" for o in ops.ops])
    t2 = sm.replay(np.where(pp, 1.0, dur))
    assert t2.step_s > 15.0 and t2.breakdown["pp"] > 0
    assert sum(t2.breakdown.values()) == pytest.approx(t2.step_s)


def test_node_pair_costs_follow_bytes_over_rate():
    m = _tiny()
    spec = LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2)
    ops, _, _ = build_step(m, spec, accelerators_per_node=2, accelerator_tflops=100.0)
    sm = StepModel(ops.ops, np.array([10, 10, 11, 11, 12, 12, 13, 13]), 8e9, 0.0)
    rate = np.full(sm.pair_key.shape[0], 1e6)  # 1 MB/s between nodes
    dur = sm.durations(rate, np.full(rate.shape, 0.01))
    dp = [o for o in ops.ops if o.dim == "dp"][0]
    # ring over 2 replicas on 2 nodes; the 2 TP ranks' rings share the node pair:
    # 2 x (2 (2-1)/2 x grad) bytes on the pair, 2 rounds of 10 ms
    grad = dp.size_bytes
    assert dur[dp.id] == pytest.approx(2 * 0.01 + 2 * grad / 1e6)
    tp = [o for o in ops.ops if o.dim == "tp"][0]  # inside a node at 1 GB/s, latency 0
    # ring of 2: 2 (2-1)/2 x 4096 bytes per call, 2 calls (one layer, 2 per layer)
    assert dur[tp.id] == pytest.approx(2 * 4096 / 1e9)
    assert sm.dim_bytes() == {"dp": pytest.approx(2 * 2 * 2 * grad),
                              "pp": pytest.approx(2 * 2 * 2 * 2 * 2048)}


# ---------------------------------------------------------------------------- end to end

SMALL = """
[scenario]
name = "small_workload"
epoch = 2026-02-23T00:00:00Z
duration_s = 40
step_s = 4
seed = 3

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 1

[ground]
stations = "none"

[links]
topology = "plus_grid"
capacity_bps = 100e9
acquisition_s = 0.0

[traffic.compute]
placement = "block"
shell = 0
plane_count = 2
slot_count = 2
accelerators_per_node = {acc}

[traffic.background]
enabled = false

[[traffic.jobs]]
name = "w"
steps = 2
{job}
"""

MODEL_JOB = """kind = "model"
[traffic.jobs.model]
n_layers = 8
hidden_size = 2048
heads = 16
vocab_size = 32000
sequence_length = 2048
global_batch = 64
[traffic.jobs.layout]
tp = 2
pp = 2
dp = 2
micro_batches = 4
"""


def _run(tmp_path, job, acc=2):
    from meshnet.runner import run_scenario

    sc = parse_scenario(SMALL.replace("{acc}", str(acc)).replace("{job}", job))
    return run_scenario(sc, sc.grid(), tmp_path, plots=False, progress=False)


def test_model_job_end_to_end_and_perfetto_trace(tmp_path):
    res = _run(tmp_path, MODEL_JOB)
    job = res.summary["jobs"][0]
    assert job["steps_done"] == 2
    w = job["workload"]
    bd = w["breakdown_s"]
    assert sum(bd.values()) == pytest.approx(w["mean_step_s"], rel=1e-9)
    assert job["mean_step_s"] == pytest.approx(w["mean_step_s"], rel=1e-6)
    assert "workload (w)" in res.report()
    trace = json.loads((tmp_path / "trace.json").read_text())
    jsonschema.validate(trace, TRACE_SCHEMA)
    ev = trace["traceEvents"]
    threads = {e["args"]["name"] for e in ev if e["name"] == "thread_name"}
    nodes = {}
    for t in threads:
        if " compute (node " in t:
            nodes[int(t.split()[1])] = int(t.split("node ")[1].rstrip(")"))
    assert sorted(nodes) == list(range(8))  # a thread per rank
    assert nodes[0] == nodes[1] != nodes[2] == nodes[3]  # TP pairs share a satellite
    cats = {e.get("cat") for e in ev if e["ph"] == "X"}
    assert {"compute", "tp", "pp", "dp", "wait", "step"} <= cats
    steps = [e for e in ev if e.get("cat") == "step"]
    assert len(steps) == 2
    # every X event of a rank's compute stream lies inside the traced step
    s0 = steps[0]
    comp = [e for e in ev if e.get("cat") == "compute"]
    assert min(e["ts"] for e in comp) >= s0["ts"] - 1e-3
    assert max(e["ts"] + e["dur"] for e in comp) <= s0["ts"] + s0["dur"] + 1e-3
    yml = sorted((tmp_path / "astrasim").glob("*.yml"))
    assert yml and "npus_count: [ 2, 2, 2 ]" in yml[0].read_text()


def test_aicb_trace_end_to_end(tmp_path):
    ops, world, shape = aicb.read_ops(DATA / "aicb_tp2_dp4.txt")
    assert world == 8 and shape.startswith("TP2 x DP4")
    comp = sum(o.duration_s for o in ops.ops if o.is_compute and o.ranks == (0, 1))
    # forward 2+5+8 ms, input and weight gradients 2+5+8 and 1+5+8 ms, updates 3 x 0.1 ms
    assert comp == pytest.approx(0.015 + 0.015 + 0.014 + 0.0003)
    wg = [o for o in ops.ops if o.stream == "dp"]
    assert [o.size_bytes for o in wg] == [134217728.0, 67108864.0]
    assert all(len(o.colls) == 2 and o.colls[0].n == 4 for o in wg)  # DP groups of 4
    res = _run(tmp_path, f'kind = "trace"\n[traffic.jobs.trace]\nformat = "aicb"\n'
                         f'path = "{DATA / "aicb_tp2_dp4.txt"}"\n')
    w = res.summary["jobs"][0]["workload"]
    assert res.summary["jobs"][0]["steps_done"] == 2
    assert w["breakdown_s"]["compute"] == pytest.approx(comp)
    assert w["mesh_bytes_per_step"]["dp"] > 0
    jsonschema.validate(json.loads((tmp_path / "trace.json").read_text()), TRACE_SCHEMA)


def test_chakra_trace_end_to_end(tmp_path):
    ops, world, _ = chakra.read_ops(DATA / "chakra_dp4")
    assert world == 4
    coll = [o for o in ops.ops if o.op == "AllReduce"]
    assert len(coll) == 1 and coll[0].ranks == (0, 1, 2, 3)
    assert coll[0].size_bytes == 67108864.0
    p2p = [o for o in ops.ops if o.op == "SendRecv"]
    assert len(p2p) == 1 and np.asarray(p2p[0].colls[0].pairs).tolist() == [[0, 1]]
    bwd1 = [o for o in ops.ops if o.name == "backward" and o.ranks == (1,)][0]
    assert p2p[0].id in bwd1.deps
    res = _run(tmp_path, f'kind = "trace"\n[traffic.jobs.trace]\nformat = "chakra"\n'
                         f'path = "{DATA / "chakra_dp4"}"\n', acc=1)
    job = res.summary["jobs"][0]
    assert job["steps_done"] == 2
    # compute 1 + 2 ms, the all-reduce of 64 MiB over the mesh, then 0.1 ms
    step = job["workload"]["mean_step_s"]
    assert step > 0.0031
    ring_bytes = 2 * 3 / 4 * 67108864
    assert step < 0.0031 + 50 * ring_bytes / 12.5e9  # well under 50 x the ideal ring time
    # the ring's neighbours are one +Grid hop apart, each on its own 100 Gbps link: the mesh
    # gave the data-parallel dimension exactly the link rate
    yml = (tmp_path / "astrasim" / "w_w0.yml").read_text()
    assert "bandwidth: [ 12.5" in yml and "npus_count: [ 4" in yml


# ---------------------------------------------------------------------------- bad keys


@pytest.mark.parametrize("job, msg", [
    (MODEL_JOB.replace("n_layers = 8", "n_layer = 8"),
     "unknown key [traffic.jobs[0].model].n_layer; did you mean 'n_layers'?"),
    (MODEL_JOB.split("[traffic.jobs.layout]")[0], "needs a [traffic.jobs[0].layout] table"),
    (MODEL_JOB.replace("dp = 2", "dp = 2\nep = 3"), "ep = 3 must divide dp = 2"),
    (MODEL_JOB.replace("micro_batches = 4", "micro_batches = 5"), "must be a multiple of dp"),
    (MODEL_JOB.replace('kind = "model"', 'kind = "model"\ncompute_s = 2.0'),
     "compute_s does not apply to kind = 'model'"),
    (MODEL_JOB.replace('"model"', '"allreduce"'), "only applies to kind = 'model'"),
    ('kind = "trace"\n[traffic.jobs.trace]\nformat = "aicb"\npath = "/nonexistent/w.txt"\n',
     "no such file"),
    (MODEL_JOB.replace('tp = 2', 'tp = 2\norder = "tp-pp"'), "must order tp, dp and pp"),
])
def test_bad_workload_keys_one_line(job, msg):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(SMALL.replace("{acc}", "2").replace("{job}", job))
    text = str(exc.value)
    assert msg in text and "\n" not in text


def test_layout_too_big_for_the_nodes():
    from meshnet.runner import build_traffic
    from meshnet.world import build_world

    sc = parse_scenario(SMALL.replace("{acc}", "1").replace("{job}", MODEL_JOB))
    with pytest.raises(ScenarioError, match="needs 8 accelerators = 8 nodes of 1"):
        build_traffic(sc, build_world(sc))


def test_bad_trace_files_one_line(tmp_path):
    bad = tmp_path / "w.txt"
    bad.write_text("HYBRID_TRANSFORMER model_parallel_NPU_group: 2 all_gpus: 4\n1\n"
                   "l0 -1 10 ALLREDUCE 8 10 NONE 0 10 BOGUS 8 1\n")
    with pytest.raises(MeshnetError, match=r"w.txt:3: unknown collective 'BOGUS'"):
        aicb.read_ops(bad)
    bad.write_text("HYBRID_TRANSFORMER model_parallel_NPU_group: 2 pp: 2 all_gpus: 4\n0\n")
    with pytest.raises(MeshnetError, match="pipeline-parallel AICB files are not read"):
        aicb.read_ops(bad)
    d = tmp_path / "ck"
    d.mkdir()
    (d / "et.0.json").write_text(json.dumps({"nodes": [
        {"id": 1, "type": "COMM_COLL_NODE", "attr": [{"name": "comm_type", "int64_val": 0},
                                                     {"name": "comm_size", "int64_val": 8}]},
    ]}))
    (d / "et.1.json").write_text(json.dumps({"nodes": []}))
    # rank 1 never joins the world all-reduce... it is not in the group, so it completes alone
    ops, world, _ = chakra.read_ops(d)
    assert world == 2 and ops.ops[0].ranks == (0,)
    (d / "et.1.json").write_text("{not json")
    with pytest.raises(MeshnetError, match="not a readable Chakra JSON trace"):
        chakra.read_ops(d)


def test_layout_groups_with_experts():
    lay = Layout(tp=1, pp=1, dp=8, ep=4)
    assert lay.groups("ep") == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert lay.groups("edp") == [(0, 4), (1, 5), (2, 6), (3, 7)]


def _chakra_job():
    from meshnet.traffic.collectives import make_job
    from meshnet.traffic.config import JobConfig
    from meshnet.traffic.placement import ComputeNodes
    from meshnet.workloads.config import TraceSpec

    k = 4
    nodes = ComputeNodes(node_ids=np.arange(k, dtype=np.int32),
                         names=np.array([f"n{i}" for i in range(k)], dtype=object),
                         accelerators=np.ones(k, np.int32), tflops=np.full(k, 989.0),
                         shell=np.full(k, -1, np.int32), plane=np.full(k, -1, np.int32),
                         slot=np.full(k, -1, np.int32), n_satellites=k)
    cfg = JobConfig(name="c", kind="trace",
                    trace=TraceSpec(format="chakra", path=str(DATA / "chakra_dp4")))
    return make_job(cfg, nodes, n_nodes=k)


def test_step_from_measured_flows_by_hand():
    job = _chakra_job()
    (phase,) = job.step_phases()
    ar = 2 * 3 / 4 * 67108864  # ring bytes per rank
    pairs = dict(zip(zip(phase.src.tolist(), phase.dst.tolist(), strict=True),
                     phase.bytes.tolist(), strict=True))
    assert pairs == {(0, 1): ar + 1048576, (1, 2): ar, (2, 3): ar, (3, 0): ar}
    rate, delay = 12.5e9, 0.01  # every pair at 100 Gbps, 10 ms away
    t = phase.bytes / rate
    step = job.step_from_flows(phase.src, phase.dst, phase.bytes, np.zeros(4), t,
                               np.full(4, delay))
    # rank 1: forward 1 ms, the 1 MiB receive (10 ms + 1 MiB at 12.5 GB/s), backward 2 ms;
    # then the ring all-reduce (6 rounds of 10 ms + 2 x 3/4 x 64 MiB at 12.5 GB/s), then 0.1 ms
    recv_end = 0.001 + delay + 1048576 / rate
    hand = recv_end + 0.002 + 6 * delay + ar / rate + 0.0001
    assert step == pytest.approx(hand, rel=1e-12)
    assert job.breakdowns[-1]["step_s"] == step
    # half the rate on every pair: the transfers (not the rounds, not the compute) double
    step2 = job.step_from_flows(phase.src, phase.dst, phase.bytes, np.zeros(4), 2 * t,
                                np.full(4, delay))
    assert step2 - step == pytest.approx((ar + 1048576) / rate, rel=1e-9)


FAULT = """
[traffic.jobs.resilience]
recovery = "restart"
restart_s = 1.0

[faults]
[[faults.events]]
kind = "accelerator"
satellite = 0
start_s = 0.8
end_s = 2.0
"""


def test_failures_in_the_perfetto_trace(tmp_path):
    from meshnet.runner import run_scenario

    job = MODEL_JOB.replace("kind = \"model\"", "kind = \"model\"") + FAULT
    text = SMALL.replace("{acc}", "2").replace("{job}", job).replace("steps = 2", "steps = 3")
    sc = parse_scenario(text)
    res = run_scenario(sc, sc.grid(), tmp_path, plots=False, progress=False)
    assert res.summary["jobs"][0]["steps_done"] >= 3
    trace = json.loads((tmp_path / "trace.json").read_text())
    jsonschema.validate(trace, TRACE_SCHEMA)
    ev = trace["traceEvents"]
    hit = [e for e in ev if e.get("cat") == "failure" and e["ph"] == "i"]
    assert len(hit) == 1 and hit[0]["ts"] == pytest.approx(0.8e6)
    rec = [e for e in ev if e.get("name") == "recovery"]
    assert rec and rec[0]["dur"] == pytest.approx(2.2e6)  # node back at 2 s, + 1 s restart


def test_sequence_parallel_moves_the_same_bytes():
    m = _tiny()
    a = build_step(m, LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2), 2, 100.0)[0]
    b = build_step(m, LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2, sequence_parallel=True),
                   2, 100.0)[0]
    tp_a = [o for o in a.ops if o.dim == "tp"]
    tp_b = [o for o in b.ops if o.dim == "tp"]
    assert [c.op for c in tp_b[0].colls] == ["AllGather", "ReduceScatter"]
    # all-reduce = reduce-scatter + all-gather: 2 (n-1)/n S either way
    assert sum(o.flows()[2].sum() for o in tp_a) == pytest.approx(
        sum(o.flows()[2].sum() for o in tp_b))


def test_moe_schedule_expert_groups():
    m = ModelSpec(n_layers=2, hidden_size=64, heads=4, vocab_size=100, sequence_length=16,
                  global_batch=16, experts=4, top_k=2, gated_mlp=False)
    ops, lay, costs = build_step(m, LayoutSpec(tp=1, pp=1, dp=4, ep=2, micro_batches=2), 1,
                                 100.0)
    ep = [o for o in ops.ops if o.dim == "ep"]
    # one forward and one backward all-to-all op per micro-batch and EP group (2 groups)
    assert len(ep) == 2 * 2 * 2
    assert {c.ranks.tolist().__str__() for o in ep for c in o.colls} == {"[0, 1]", "[2, 3]"}
    # each rank routes b s tokens x top_k x h x 2 bytes; 2 calls per MoE layer x 2 layers
    b = 16 // (4 * 2)
    assert ep[0].size_bytes == b * 16 * 2 * 64 * 2 and ep[0].count == 4
    # expert weights reduce over the expert-data-parallel group (dp / ep = 2: ranks 0, 2)
    edp = [o for o in ops.ops if o.dim == "edp"]
    assert edp and {tuple(c.ranks.tolist()) for c in edp[0].colls} == {(0, 2), (1, 3)}
    dense, expert = costs.params_per_rank(0)
    assert expert == 2 * (4 / 2) * 2 * 64 * 256  # 2 layers x 2 local experts x 2 h f


def test_gradient_buckets_overlap_the_last_backward():
    m = _tiny()
    spec = LayoutSpec(tp=2, pp=2, dp=2, micro_batches=2, bucket_params=5000)
    ops, _, _ = build_step(m, spec, accelerators_per_node=2, accelerator_tflops=100.0)
    chunks = [o for o in ops.ops if o.ranks == (0, 1) and "backward mb1 chunk" in o.name]
    dp = [o for o in ops.ops if o.dim == "dp" and 0 in o.ranks]
    # 27776 parameters per rank in buckets of 5000: 6 buckets, 6 chunks of the last backward
    assert len(chunks) == len(dp) == 6
    sm = StepModel(ops.ops, np.arange(8) // 2, 7.2e12, 0.0)
    dur = np.where(sm.is_comm, 0.0, sm.compute_s)
    for o in dp:
        dur[o.id] = 1e-3
    t = sm.replay(dur)
    # bucket k starts when chunk k ends, before the backward is over
    assert t.start_s[dp[0].id] == pytest.approx(max(t.end_s[chunks[0].id],
                                                    t.end_s[[o for o in ops.ops if o.ranks ==
                                                             (2, 3) and o.name ==
                                                             chunks[0].name][0].id]))
    assert t.start_s[dp[0].id] < t.end_s[chunks[-1].id]


def test_bad_trace_file_through_the_cli(tmp_path, capsys):
    from meshnet.cli import main

    bad = tmp_path / "w.txt"
    bad.write_text("HYBRID_TRANSFORMER model_parallel_NPU_group: 2 all_gpus: 8\nthree\n")
    toml = tmp_path / "s.toml"
    toml.write_text(SMALL.replace("{acc}", "2").replace(
        "{job}", 'kind = "trace"\n[traffic.jobs.trace]\nformat = "aicb"\npath = "w.txt"\n'))
    out = tmp_path / "out"
    code = main(["run", str(toml), "--out", str(out), "--no-plots", "-q"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1
    assert "w.txt:2: expected the number of layers" in err[0]
    assert not out.exists()
