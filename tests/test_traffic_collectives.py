"""Training jobs as coflows: byte counts against theory, ring ordering against brute force."""

from __future__ import annotations

import math

import naive_traffic as naive
import numpy as np
import pytest

from meshnet.errors import NodeNameError, ScenarioError
from meshnet.traffic import (
    JobConfig,
    Phase,
    bus_factor,
    busbw_bytes_per_s,
    ideal_comm_time_s,
    make_job,
    ring_order,
    step_time_s,
)
from meshnet.traffic import _kernels as kernels
from meshnet.traffic.collectives import _tour_cost, path_order, tour_delay_s
from meshnet.traffic.placement import ComputeNodes

S = 7e9 * 2.0  # 7B parameters, bf16 gradients


def nodes_grid(n_planes, per_plane, offset=100, n_satellites=10_000):
    """Compute nodes on a (plane, slot) grid, node ids starting at ``offset``."""
    k = n_planes * per_plane
    return ComputeNodes(
        node_ids=np.arange(offset, offset + k, dtype=np.int32),
        names=np.array([f"P{p}S{s}" for p in range(n_planes) for s in range(per_plane)],
                       dtype=object),
        accelerators=np.ones(k, np.int32), tflops=np.full(k, 989.0),
        shell=np.zeros(k, np.int32),
        plane=np.repeat(np.arange(n_planes), per_plane).astype(np.int32),
        slot=np.tile(np.arange(per_plane), n_planes).astype(np.int32),
        n_satellites=n_satellites)


def nodes_flat(n, offset=0):
    """Compute nodes without orbital labels (TLE catalogue or ground)."""
    return ComputeNodes(
        node_ids=np.arange(offset, offset + n, dtype=np.int32),
        names=np.array([f"n{i}" for i in range(n)], dtype=object),
        accelerators=np.ones(n, np.int32), tflops=np.ones(n),
        shell=np.full(n, -1, np.int32), plane=np.full(n, -1, np.int32),
        slot=np.full(n, -1, np.int32), n_satellites=offset + n)


def line_delay(x):
    x = np.asarray(x, dtype=float)
    return np.abs(x[:, None] - x[None, :])


def allreduce(algorithm, nodes, **kw):
    cfg = JobConfig(name="dp", kind="allreduce", algorithm=algorithm, model_params=7e9, **kw)
    return make_job(cfg, nodes, n_nodes=20_000)


# --------------------------------------------------------------------------- all-reduce volumes


@pytest.mark.parametrize("n", [2, 3, 5, 8, 64])
def test_ring_sends_2_n_minus_1_over_n_per_rank(n):
    job = allreduce("ring", nodes_flat(n))
    (phase,) = job.step_phases()
    sent = naive.bytes_sent_per_node([phase])
    recv = naive.bytes_received_per_node([phase])
    want = 2 * (n - 1) / n * S
    assert sorted(sent) == list(range(n)) and sorted(recv) == list(range(n))
    assert all(v == pytest.approx(want, rel=1e-12) for v in sent.values())
    assert all(v == pytest.approx(want, rel=1e-12) for v in recv.values())
    assert phase.latency_rounds == 2 * (n - 1)
    # one cycle through every rank: follow successors from rank 0
    succ = dict(zip(phase.src.tolist(), phase.dst.tolist(), strict=True))
    seen, cur = [], 0
    for _ in range(n):
        seen.append(cur)
        cur = succ[cur]
    assert cur == 0 and sorted(seen) == list(range(n))


@pytest.mark.parametrize("planes,per_plane", [(4, 4), (6, 3), (3, 8), (1, 5), (5, 1)])
def test_hierarchical_equal_planes_moves_ring_volume(planes, per_plane):
    job = allreduce("hierarchical", nodes_grid(planes, per_plane))
    phases = job.step_phases()
    n = planes * per_plane
    sent = naive.bytes_sent_per_node(phases)
    for v in sent.values():
        assert v == pytest.approx(2 * (n - 1) / n * S, rel=1e-12)
    assert len(sent) == n
    by_label = {p.label: p for p in phases}
    if per_plane > 1:
        rs = naive.bytes_sent_per_node([by_label["intra_reduce_scatter"]])
        assert all(v == pytest.approx((per_plane - 1) / per_plane * S) for v in rs.values())
        assert by_label["intra_reduce_scatter"].latency_rounds == per_plane - 1
        # intra phases stay inside a plane
        plane_of = dict(zip(job.nodes.tolist(), job.compute_nodes.plane.tolist(), strict=True))
        ph = by_label["intra_all_gather"]
        assert all(plane_of[s] == plane_of[d] for s, d in zip(ph.src, ph.dst, strict=True))
    if planes > 1:
        inter = by_label["inter_allreduce"]
        assert inter.latency_rounds == 2 * (planes - 1)
        per = naive.bytes_sent_per_node([inter])
        want = 2 * (planes - 1) / planes * S / per_plane
        assert all(v == pytest.approx(want) for v in per.values())
        slot_of = dict(zip(job.nodes.tolist(), job.compute_nodes.slot.tolist(), strict=True))
        assert all(slot_of[s] == slot_of[d] for s, d in zip(inter.src, inter.dst, strict=True))
    labels = [p.label for p in phases]
    assert labels == [x for x in ("intra_reduce_scatter", "inter_allreduce",
                                  "intra_all_gather") if x in by_label]


def test_hierarchical_unequal_groups_use_leaders():
    # 7 ranks in groups of 3, 3, 1
    job = allreduce("hierarchical", nodes_flat(7), group_size=3)
    phases = job.step_phases()
    labels = [p.label for p in phases]
    assert labels == ["intra_reduce_scatter", "gather_to_leader", "inter_allreduce",
                      "scatter_from_leader", "intra_all_gather"]
    sent = naive.bytes_sent_per_node(phases)
    order = job.order.tolist()
    groups = [order[0:3], order[3:6], order[6:7]]
    leaders = {g[0] for g in groups}
    for g in groups:
        size = len(g)
        for r in g:
            want = 2 * (size - 1) / size * S  # reduce-scatter + all-gather in the group
            if r in leaders:
                want += 2 * (3 - 1) / 3 * S + (size - 1) * S / size  # leader ring + scatter
            else:
                want += S / size  # its shard to the leader
            assert sent[r] == pytest.approx(want, rel=1e-12), (g, r)


def test_hierarchical_unequal_planes():
    nodes = nodes_grid(3, 4).subset(np.arange(10))  # planes of 4, 4 and 2
    job = allreduce("hierarchical", nodes)
    phases = job.step_phases()
    assert "gather_to_leader" in [p.label for p in phases]
    sent = naive.bytes_sent_per_node(phases)
    leaders = set(phases[2].src.tolist())
    assert leaders == {100, 104, 108}  # lowest slot of each plane
    for node, v in sent.items():
        g = 2 if node >= 108 else 4
        want = 2 * (g - 1) / g * S + (2 * 2 / 3 * S + (g - 1) * S / g if node in leaders
                                      else S / g)
        assert v == pytest.approx(want)


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_halving_doubling_power_of_two(n):
    job = allreduce("halving_doubling", nodes_flat(n))
    phases = job.step_phases()
    m = int(math.log2(n))
    assert [p.label for p in phases] == [f"rs_{k}" for k in range(m)] + [
        f"ag_{k}" for k in reversed(range(m))]
    rs = naive.bytes_sent_per_node(phases[:m])
    ag = naive.bytes_sent_per_node(phases[m:])
    for r in range(n):
        assert rs[r] == pytest.approx((n - 1) / n * S, rel=1e-12)
        assert ag[r] == pytest.approx((n - 1) / n * S, rel=1e-12)
    for p in phases:
        # pairwise exchanges: every flow has its reverse with the same bytes, one partner each
        pairs = set(zip(p.src.tolist(), p.dst.tolist(), strict=True))
        assert all((d, s) in pairs for s, d in pairs)
        assert len(set(p.src.tolist())) == n and p.latency_rounds == 1
    # reduce-scatter halves, all-gather doubles
    assert [float(p.bytes[0]) for p in phases[:m]] == [S / 2 ** (k + 1) for k in range(m)]


@pytest.mark.parametrize("n", [3, 5, 6, 7, 12])
def test_halving_doubling_non_power_of_two_folds(n):
    job = allreduce("halving_doubling", nodes_flat(n))
    phases = job.step_phases()
    p = 1 << int(math.floor(math.log2(n)))
    r = n - p
    assert phases[0].label == "fold" and phases[-1].label == "unfold"
    assert phases[0].n_flows == r and np.all(phases[0].bytes == S)
    middle = phases[1:-1]
    sent = naive.bytes_sent_per_node(middle)
    assert len(sent) == p
    assert all(v == pytest.approx(2 * (p - 1) / p * S) for v in sent.values())
    # folded ranks hand their gradient to a partner that takes part, and get the result back
    folded = set(phases[0].src.tolist())
    assert not folded & set(sent)
    assert set(phases[-1].dst.tolist()) == folded
    total = sum(ph.total_bytes for ph in phases)
    assert total == pytest.approx(p * 2 * (p - 1) / p * S + 2 * r * S)


def test_halving_doubling_big_exchanges_between_neighbours():
    x = np.array([5.0, 1.0, 7.0, 3.0, 0.0, 2.0, 6.0, 4.0])  # ranks scattered on a line
    job = allreduce("halving_doubling", nodes_flat(8))
    job.plan(line_delay(x))
    first = job.step_phases()[0]  # S/2 exchanged: must be with the line neighbour
    for s, d in zip(first.src.tolist(), first.dst.tolist(), strict=True):
        assert abs(x[s] - x[d]) == 1.0


# --------------------------------------------------------------------------- ring ordering


def test_ring_order_line_is_optimal():
    rng = np.random.default_rng(3)
    x = rng.permutation(12).astype(float) * 1e-3
    order = ring_order(line_delay(x))
    assert sorted(order.tolist()) == list(range(12))
    assert tour_delay_s(line_delay(x), order) == pytest.approx(2 * (x.max() - x.min()))


def test_ring_order_circle_is_optimal():
    rng = np.random.default_rng(4)
    n = 24
    angle = rng.permutation(n) * 2 * np.pi / n
    xy = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    d = np.linalg.norm(xy[:, None] - xy[None, :], axis=2) * 1e-2
    order = ring_order(d)
    polygon = n * 2 * math.sin(math.pi / n) * 1e-2
    assert tour_delay_s(d, order) == pytest.approx(polygon, rel=1e-12)
    # neighbours in the ring are neighbours on the circle
    steps = np.diff(np.round(angle[order] / (2 * np.pi / n)).astype(int)) % n
    assert set(steps.tolist()) <= {1, n - 1}


@pytest.mark.parametrize("seed", range(6))
def test_ring_order_beats_random_and_is_near_optimal(seed):
    rng = np.random.default_rng(seed)
    n = 8
    pts = rng.uniform(0, 1, (n, 2))
    d = np.linalg.norm(pts[:, None] - pts[None, :], axis=2)
    order = ring_order(d)
    chosen = tour_delay_s(d, order)
    best = naive.optimal_tour_length(d.tolist())
    assert chosen >= best - 1e-12
    assert chosen <= 1.10 * best  # 2-opt on 8 points: within 10 % (usually exact)
    randoms = [tour_delay_s(d, rng.permutation(n)) for _ in range(50)]
    assert chosen <= min(randoms) + 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_tour_kernels_match_naive(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 30))
    d = rng.uniform(0, 1, (n, n))
    d[rng.random((n, n)) < 0.1] = np.inf
    cost = _tour_cost(d)
    start = int(rng.integers(n))
    nn = kernels.nearest_neighbour_tour(cost, start)
    assert nn.tolist() == naive.nearest_neighbour_tour(cost.tolist(), start)
    fast = nn.copy()
    kernels.two_opt(cost, fast, 10 * n, 1e-12)
    assert fast.tolist() == naive.two_opt(cost.tolist(), nn.tolist(), 10 * n, 1e-12)


def test_ring_order_avoids_unreachable_pairs():
    # two clusters joined by two links: the ring must cross only at those
    n = 8
    d = np.full((n, n), np.inf)
    for group in (range(4), range(4, 8)):
        for i in group:
            for j in group:
                d[i, j] = abs(i - j) * 1e-3
    d[3, 4] = d[4, 3] = d[0, 7] = d[7, 0] = 5e-3
    order = ring_order(d)
    assert np.isfinite(tour_delay_s(d, order))
    everything_unreachable = np.full((5, 5), np.inf)
    assert sorted(ring_order(everything_unreachable).tolist()) == list(range(5))


def test_ring_order_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        ring_order(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ring_order(np.full((3, 3), np.nan))


def test_plan_makes_ring_follow_short_paths():
    x = np.array([9.0, 0.0, 4.0, 1.0, 7.0, 3.0, 8.0, 2.0, 6.0, 5.0])
    job = allreduce("ring", nodes_flat(10, offset=50))
    job.plan(line_delay(x) * 1e-3)
    (phase,) = job.step_phases()
    hops = np.abs(x[phase.src - 50] - x[phase.dst - 50])
    assert sorted(hops.tolist()) == [1.0] * 9 + [9.0]
    assert tour_delay_s(line_delay(x), job.order) <= tour_delay_s(line_delay(x), np.arange(10))
    with pytest.raises(ValueError, match="expected"):
        job.plan(np.zeros((3, 3)))


def test_path_order_is_shortest_open_path():
    x = np.array([0.0, 1.0, 2.0, 10.0, 11.0])
    order = path_order(line_delay(x))
    assert tour_delay_s(line_delay(x), order, closed=False) == pytest.approx(11.0)
    x = np.random.default_rng(5).permutation(16).astype(float)
    order = path_order(line_delay(x))
    assert tour_delay_s(line_delay(x), order, closed=False) == pytest.approx(15.0)
    assert sorted(order.tolist()) == list(range(16))


def test_default_order_snakes_through_planes():
    job = allreduce("ring", nodes_grid(3, 3))
    names = job.compute_nodes.names[job.order].tolist()
    assert names == ["P0S0", "P0S1", "P0S2", "P1S2", "P1S1", "P1S0", "P2S0", "P2S1", "P2S2"]


def test_plan_is_deterministic():
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 1, (40, 2))
    d = np.linalg.norm(pts[:, None] - pts[None, :], axis=2)
    a, b = allreduce("ring", nodes_flat(40)), allreduce("ring", nodes_flat(40))
    a.plan(d)
    b.plan(d)
    assert a.order.tolist() == b.order.tolist()
    pa, pb = a.step_phases()[0], b.step_phases()[0]
    assert np.array_equal(pa.src, pb.src) and np.array_equal(pa.dst, pb.dst)


# --------------------------------------------------------------------------- pipeline and MoE


def test_pipeline_bytes_by_hand():
    cfg = JobConfig(name="pp", kind="pipeline", activation_bytes=1e6, micro_batches=8)
    job = make_job(cfg, nodes_flat(4, offset=10), n_nodes=20)
    fwd, bwd = job.step_phases()
    assert (fwd.label, bwd.label) == ("forward", "backward")
    assert list(zip(fwd.src.tolist(), fwd.dst.tolist(), strict=True)) == [
        (10, 11), (11, 12), (12, 13)]
    assert list(zip(bwd.src.tolist(), bwd.dst.tolist(), strict=True)) == [
        (11, 10), (12, 11), (13, 12)]
    assert fwd.bytes.tolist() == [8e6] * 3 and bwd.bytes.tolist() == [8e6] * 3
    assert fwd.latency_rounds == bwd.latency_rounds == 8 + 4 - 1
    assert job.size_bytes == 16e6 and job.bus_factor == 1.0


def test_pipeline_replicas():
    cfg = JobConfig(name="pp", kind="pipeline", stages=3, activation_bytes=2e6, micro_batches=4)
    job = make_job(cfg, nodes_flat(6), n_nodes=6)
    fwd, _ = job.step_phases()
    assert list(zip(fwd.src.tolist(), fwd.dst.tolist(), strict=True)) == [
        (0, 1), (1, 2), (3, 4), (4, 5)]
    assert fwd.latency_rounds == 4 + 3 - 1
    bad = JobConfig(name="pp", kind="pipeline", stages=4)
    with pytest.raises(ScenarioError, match="stages = 4 must divide"):
        make_job(bad, nodes_flat(6), n_nodes=6)


def test_moe_bytes_by_hand():
    cfg = JobConfig(name="moe", kind="moe_alltoall", tokens_per_step=1000, top_k=2,
                    hidden_size=8, bytes_per_element=2.0, experts_per_node=2)
    job = make_job(cfg, nodes_flat(4), n_nodes=4)
    phases = job.step_phases()
    assert [p.label for p in phases] == ["dispatch", "combine", "combine_grad", "dispatch_grad"]
    per_pair = 1000 * 2 * 8 * 2 / 4  # 8000 bytes
    for p in phases:
        assert p.n_flows == 12 and np.all(p.bytes == per_pair) and p.latency_rounds == 1
        assert not np.any(p.src == p.dst)
    sent = naive.bytes_sent_per_node(phases[:1])
    assert all(v == 3 * per_pair for v in sent.values())  # T k H B (n-1)/n
    d, c = phases[0], phases[1]
    assert np.array_equal(d.src, c.dst) and np.array_equal(d.dst, c.src)
    assert job.size_bytes == 4 * 1000 * 2 * 8 * 2 and job.bus_factor == 0.75


def test_moe_layers_and_forward_only():
    cfg = JobConfig(name="moe", kind="moe_alltoall", tokens_per_step=10, top_k=1,
                    hidden_size=4, bytes_per_element=1.0, moe_layers=3, backward=False)
    job = make_job(cfg, nodes_flat(2), n_nodes=2)
    phases = job.step_phases()
    assert [p.label for p in phases] == ["dispatch", "combine"]
    assert phases[0].bytes.tolist() == [10 * 4 / 2 * 3] * 2 and phases[0].latency_rounds == 3


def test_moe_top_k_larger_than_experts_is_an_error():
    cfg = JobConfig(name="moe", kind="moe_alltoall", top_k=5, experts_per_node=2)
    with pytest.raises(ScenarioError, match="top_k = 5 exceeds"):
        make_job(cfg, nodes_flat(2), n_nodes=2)


# --------------------------------------------------------------------------- make_job, metrics


def test_job_node_subset_and_errors():
    nodes = nodes_flat(6)
    job = make_job(JobConfig(name="sub", nodes=("n4", "n1", "n2")), nodes, n_nodes=6)
    assert job.nodes.tolist() == [4, 1, 2]
    with pytest.raises(NodeNameError, match=r"'sub'.*unknown compute node 'n9'"):
        make_job(JobConfig(name="sub", nodes=("n1", "n9")), nodes, n_nodes=6)
    with pytest.raises(ScenarioError, match="at least 2"):
        make_job(JobConfig(name="solo"), nodes_flat(1), n_nodes=1)
    with pytest.raises(ScenarioError, match="unknown traffic job kind 'alreduce'"):
        make_job(JobConfig(name="x", kind="alreduce"), nodes, n_nodes=6)


def test_job_attributes():
    cfg = JobConfig(name="dp", compute_s=1.5, overlap=0.25, steps=10, start_s=3.0, weight=2.0)
    job = make_job(cfg, nodes_flat(4), n_nodes=4)
    assert (job.name, job.compute_s, job.overlap, job.max_steps) == ("dp", 1.5, 0.25, 10)
    assert (job.start_s, job.weight, job.kind) == (3.0, 2.0, "allreduce")
    assert job.nodes.dtype == np.int32
    assert job.size_bytes == S and job.bus_factor == 1.5
    assert job.step_time_s(0.5) == pytest.approx(max(1.5, 0.75 * 1.5 + 0.5))


def test_ideal_comm_time_of_ring():
    n, rate = 8, 100e9
    job = allreduce("ring", nodes_flat(n))
    t = ideal_comm_time_s(job.step_phases(), rate)
    assert t == pytest.approx(2 * (n - 1) / n * S * 8 / rate)
    # PHYSICS.md: 70B bf16 over 64 ranks at 100 Gbps: about 22 s
    big = make_job(JobConfig(name="big", model_params=70e9), nodes_flat(64), n_nodes=64)
    assert ideal_comm_time_s(big.step_phases(), 100e9) == pytest.approx(22.05, abs=0.01)
    with_latency = ideal_comm_time_s(job.step_phases(), rate, latency_s=0.01)
    assert with_latency == pytest.approx(t + 2 * (n - 1) * 0.01)


def test_ideal_comm_time_node_cap():
    p = Phase(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([1e9, 1e9, 1e9]), "x", 0)
    assert ideal_comm_time_s([p], 8e9) == pytest.approx(1.0)
    assert ideal_comm_time_s([p], 8e9, node_rate_bps=8e9) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="rate_bps"):
        ideal_comm_time_s([p], 0.0)


def test_bus_bandwidth_definitions():
    assert bus_factor("allreduce", 8) == pytest.approx(1.75)
    assert bus_factor("alltoall", 8) == pytest.approx(0.875)
    assert bus_factor("allgather", 1) == 0.0
    assert busbw_bytes_per_s(1e9, 0.5, "allreduce", 2) == pytest.approx(2e9)
    with pytest.raises(ValueError, match="unknown collective"):
        bus_factor("allreduse", 4)


def test_step_time_model():
    assert step_time_s(2.0, 1.0, 0.0) == 3.0
    assert step_time_s(2.0, 1.0, 1.0) == 2.0
    assert step_time_s(2.0, 3.0, 1.0) == 3.0
    assert step_time_s(2.0, 1.0, 0.5) == 2.0


def test_phase_validates_shapes():
    with pytest.raises(ValueError, match="same length"):
        Phase(np.array([0]), np.array([1, 2]), np.array([1.0]), "x", 1)
    p = Phase([0, 1], [1, 0], [1, 2], "x", 1)
    assert p.src.dtype == np.int32 and p.bytes.dtype == np.float64 and p.total_bytes == 3.0
