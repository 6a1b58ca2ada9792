"""The fluid engine on small meshes worked by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from meshnet.allocation import max_min_fair_multipath
from meshnet.engine import FluidEngine, _map_edge_values, _ranges
from meshnet.graph import Snapshot
from meshnet.traffic.collectives import Phase

GBPS = 1e9


def line_snapshot(capacities_bps, t_ns=0, length_km=300.0):
    """Nodes 0 - 1 - ... - n on a line; link i joins i and i + 1."""
    n = len(capacities_bps) + 1
    a = np.arange(n - 1)
    return Snapshot.from_links(
        t_ns=t_ns, node_names=np.array([f"n{i}" for i in range(n)], dtype=object),
        node_kind=np.zeros(n, np.int8), a=a, b=a + 1,
        length_km=np.full(n - 1, length_km), capacity_bps=np.asarray(capacities_bps, float))


class LinePolicy:
    """Shortest path on a line graph, written out by hand (the only path there is)."""

    def route(self, snapshot, src, dst, *, t_ns, edge_utilisation=None, future=None):
        pair_path, path_edge, edges, nodes_ptr, nodes, delay = [0], [0], [], [0], [], []
        for s, d in zip(src.tolist(), dst.tolist(), strict=True):
            step = 1 if d > s else -1
            hops = list(range(s, d + step, step))
            for u, v in zip(hops[:-1], hops[1:], strict=True):
                row = snapshot.indices[snapshot.indptr[u]:snapshot.indptr[u + 1]]
                edges.append(int(snapshot.indptr[u] + np.flatnonzero(row == v)[0]))
            path_edge.append(len(edges))
            pair_path.append(pair_path[-1] + 1)
            nodes.extend(hops)
            nodes_ptr.append(len(nodes))
            delay.append(float(snapshot.delay_s[edges[path_edge[-2]:]].sum()))
        p = len(src)
        return SimpleNamespace(
            pair_path_indptr=np.array(pair_path, np.int64),
            path_edge_indptr=np.array(path_edge, np.int64),
            path_edges=np.array(edges, np.int32),
            path_fraction=np.ones(p), path_delay_s=np.array(delay),
            path_node_indptr=np.array(nodes_ptr, np.int64), path_nodes=np.array(nodes, np.int32),
            pair_reachable=np.ones(p, bool), pair_blackholed=np.zeros(p, bool))


def alloc(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, fraction, weight,
          demand_bps):
    return max_min_fair_multipath(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
                                  fraction, weight=weight, demand_bps=demand_bps)


class OnePhaseJob:
    """A job whose every training step is one coflow (given flows) and no compute."""

    def __init__(self, src, dst, nbytes, compute_s=0.0, overlap=0.0, rounds=0, steps=1):
        self.name = "job"
        self.nodes = np.unique(np.concatenate([src, dst])).astype(np.int32)
        self.compute_s, self.overlap, self.max_steps = compute_s, overlap, steps
        self.size_bytes, self.bus_factor = float(np.sum(nbytes)), 1.0
        self._phase = Phase(np.asarray(src, np.int32), np.asarray(dst, np.int32),
                            np.asarray(nbytes, float), "p", rounds)

    def plan(self, delay_s):
        pass

    def step_phases(self):
        return [self._phase]


def test_three_node_example_worked_by_hand():
    # Links 0-1 at 10 Gbps and 1-2 at 4 Gbps; flows A 0->2, B 0->1, C 1->2 of 1 GB each.
    # Max-min: A and C share 1->2 (2 Gbps each), B takes the rest of 0->1 (8 Gbps).
    # B ends at 1 s; A and C stay bottlenecked on 1->2 and end at 8 Gb / 2 Gbps = 4 s.
    snap = line_snapshot([10 * GBPS, 4 * GBPS])
    job = OnePhaseJob([0, 0, 1], [2, 1, 2], [1e9, 1e9, 1e9])
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(snap, 10.0)
    fl = eng.flow_records(10.0)
    np.testing.assert_allclose(fl["end_s"], [4.0, 1.0, 4.0], rtol=1e-12)
    (rec,) = eng.job_records()
    # The coflow ends with its slowest flow.
    assert rec["comm_time_s"] == pytest.approx(4.0, rel=1e-12)
    assert rec["step_time_s"] == pytest.approx(4.0, rel=1e-12)


def test_rates_recomputed_inside_a_step_not_at_step_boundaries():
    # Same example, stepped at 0.3 s: the answer must not depend on the step size.
    job = OnePhaseJob([0, 0, 1], [2, 1, 2], [1e9, 1e9, 1e9])
    eng = FluidEngine([job], LinePolicy(), alloc)
    for k in range(20):
        eng.step(line_snapshot([10 * GBPS, 4 * GBPS], t_ns=k * 300_000_000), 0.3)
    np.testing.assert_allclose(eng.flow_records(6.0)["end_s"], [4.0, 1.0, 4.0], rtol=1e-9)


def test_phase_pays_latency_rounds_of_path_delay():
    snap = line_snapshot([8 * GBPS], length_km=2997.92458)  # 10 ms one way
    job = OnePhaseJob([0], [1], [1e9], rounds=3)  # 1 s of bytes + 3 x 10 ms
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(snap, 5.0)
    (rec,) = eng.job_records()
    assert rec["comm_time_s"] == pytest.approx(1.03, rel=1e-9)


def test_overlap_hides_communication_behind_compute():
    snap = line_snapshot([8 * GBPS])
    # 1 s of communication, 2 s of compute; with full overlap the step is 2 s, with none 3 s.
    for overlap, expected in ((1.0, 2.0), (0.0, 3.0), (0.5, 2.0)):
        job = OnePhaseJob([0], [1], [1e9], compute_s=2.0, overlap=overlap)
        eng = FluidEngine([job], LinePolicy(), alloc)
        eng.step(snap, 10.0)
        assert eng.job_records()[0]["step_time_s"] == pytest.approx(expected, rel=1e-9)


def test_steps_repeat_and_background_shares_links():
    snap = line_snapshot([8 * GBPS])
    job = OnePhaseJob([0], [1], [1e9], steps=3)
    bg = (np.array([0]), np.array([1]), np.array([4 * GBPS]))
    eng = FluidEngine([job], LinePolicy(), alloc, background=bg)
    eng.step(snap, 10.0)
    recs = eng.job_records()
    assert [r["step"] for r in recs] == [0, 1, 2]
    # Equal weights: the job flow and the background flow get 4 Gbps each -> 2 s per step.
    for r in recs:
        assert r["step_time_s"] == pytest.approx(2.0, rel=1e-9)
    fl = eng.flow_records(10.0)
    bg_rate = fl["mean_rate_gbps"][fl["job"] == "background"]
    # 6 s at 4 Gbps, then alone: capped at its 4 Gbps demand for the remaining 4 s.
    assert bg_rate[0] == pytest.approx(4.0, rel=1e-9)


def test_unreachable_flow_waits_and_counts_lost_time():
    job = OnePhaseJob([0], [2], [1e9])
    eng = FluidEngine([job], LinePolicy(), alloc)
    # Step 0: link 1-2 missing -> no path; model it by a zero-capacity link.
    eng.step(line_snapshot([8 * GBPS, 0.0], t_ns=0), 1.0)
    eng.step(line_snapshot([8 * GBPS, 8 * GBPS], t_ns=1_000_000_000), 5.0)
    fl = eng.flow_records(6.0)
    assert fl["end_s"][0] == pytest.approx(2.0, rel=1e-9)
    assert fl["unreachable_s"][0] == pytest.approx(1.0, rel=1e-9)


def test_ranges_and_edge_mapping():
    np.testing.assert_array_equal(_ranges(np.array([5, 0]), np.array([2, 3])), [5, 6, 0, 1, 2])
    old = line_snapshot([1.0, 1.0])
    new = line_snapshot([1.0])
    vals = np.arange(old.n_edges, dtype=float)
    # Edges 0->1 and 1->0 survive with their values.
    np.testing.assert_array_equal(_map_edge_values(old, new, vals), [0.0, 1.0])


def test_path_changes_and_reroutes_are_counted():
    from meshnet.routing import make_policy
    from meshnet.routing.config import RoutingConfig

    names = np.array(["s0", "s1", "s2", "s3"], dtype=object)
    kind = np.zeros(4, np.int8)

    def snap(k, links):
        a, b, length = zip(*links, strict=True)
        return Snapshot.from_links(k * 1_000_000_000, names, kind, a, b, length,
                                   np.full(len(a), 8 * GBPS))

    direct = [(0, 1, 300.0), (1, 3, 300.0), (0, 2, 400.0), (2, 3, 400.0)]
    only_long = [(0, 2, 400.0), (2, 3, 400.0), (0, 1, 300.0)]
    job = OnePhaseJob([0], [3], [10e9])  # 10 s of bytes at 8 Gbps
    eng = FluidEngine([job], make_policy(RoutingConfig(), 4), alloc)
    eng.step(snap(0, direct), 1.0)  # path 0-1-3
    eng.step(snap(1, only_long), 1.0)  # link 1-3 broke: forced re-route to 0-2-3
    eng.step(snap(2, direct), 1.0)  # back to 0-1-3 by choice: a change, not a re-route
    fl = eng.flow_records(3.0)
    assert fl["path_changes"][0] == 2
    assert fl["reroutes"][0] == 1


def test_flows_ending_within_clock_resolution_do_not_stall():
    # 1 byte left at t ~ 1e6 s: its finish time is below the float resolution of the clock.
    snap = line_snapshot([8 * GBPS], t_ns=10**15)
    job = OnePhaseJob([0], [1], [1.0])
    eng = FluidEngine([job], LinePolicy(), alloc)
    eng.step(snap, 1.0)
    assert eng.job_records()[0]["step"] == 0


def test_injection_cap_limits_a_nodes_total_send_rate():
    # Node 0 sends 1 GB to node 1 and 1 GB to node 2 over 10 Gbps links; its interface
    # caps the sum at 4 Gbps: 2 Gbps each, both done at 8 Gb / 2 Gbps = 4 s.
    snap = line_snapshot([10 * GBPS, 10 * GBPS])
    job = OnePhaseJob([0, 0], [1, 2], [1e9, 1e9])
    eng = FluidEngine([job], LinePolicy(), alloc, injection_bps={0: 4 * GBPS})
    eng.step(snap, 10.0)
    np.testing.assert_allclose(eng.flow_records(10.0)["end_s"], [4.0, 4.0], rtol=1e-12)
    # Receiving side: node 2 capped at 5 Gbps for flows from 0 and 1.
    job = OnePhaseJob([0, 1], [2, 2], [1e9, 1e9])
    eng = FluidEngine([job], LinePolicy(), alloc, injection_bps={2: 5 * GBPS})
    eng.step(snap, 10.0)
    np.testing.assert_allclose(eng.flow_records(10.0)["end_s"], [3.2, 3.2], rtol=1e-12)


def test_background_weight_shares_links_by_weight():
    # One 12 Gbps link: a job flow (weight 1) and an elastic-enough background flow
    # (weight 3, demand 100 Gbps) share it 3 to 9.
    snap = line_snapshot([12 * GBPS])
    job = OnePhaseJob([0], [1], [3e9])  # 3 GB: still running after 1 s at 3 Gbps
    bg = (np.array([0]), np.array([1]), np.array([100 * GBPS]))
    eng = FluidEngine([job], LinePolicy(), alloc, background=bg, background_weight=3.0)
    eng.step(snap, 1.0)
    fl = eng.flow_records(1.0)
    rates = dict(zip(fl["job"], fl["mean_rate_gbps"], strict=True))
    assert rates["job"] == pytest.approx(3.0, rel=1e-9)
    assert rates["background"] == pytest.approx(9.0, rel=1e-9)


def test_pair_delays_take_the_slowest_path_and_zero_for_unreachable():
    eng = FluidEngine([], LinePolicy(), alloc)
    eng._routes = SimpleNamespace(pair_path_indptr=np.array([0, 2, 2, 3, 3]),
                                  path_delay_s=np.array([0.1, 0.3, 0.2]),
                                  pair_reachable=np.array([True, False, True, False]))
    eng._n_nodes = 10
    eng._pair_key = np.array([1, 2, 3, 4])  # pairs (0, 1) ... (0, 4)
    got = eng._pair_delays(np.zeros(5, np.int32), np.array([1, 2, 3, 4, 5]))
    np.testing.assert_allclose(got, [0.3, 0.0, 0.2, 0.0, 0.0])
