"""One test per documented rule that the rest of the suite left unguarded.

Written against mutation testing (``python tools/mutate.py``, docs/testing.md): each test
names the rule it states and checks it against a hand calculation or an independent
reference, in several flows or paths where one would hide the difference.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from meshnet.allocation import max_min_fair_multipath
from meshnet.engine import FluidEngine
from meshnet.graph import Snapshot
from meshnet.traffic.collectives import Phase

GBPS = 1e9


def _alloc(capacity_bps, fptr, pptr, pe, frac, weight, demand_bps):
    return max_min_fair_multipath(capacity_bps, fptr, pptr, pe, frac, weight=weight,
                                  demand_bps=demand_bps)


class _Job:
    def __init__(self, src, dst, nbytes, rounds=0, compute_s=0.0, overlap=0.0):
        self.name, self.compute_s, self.overlap, self.max_steps = "job", compute_s, overlap, 1
        self.nodes = np.unique(np.concatenate([src, dst])).astype(np.int32)
        self.size_bytes, self.bus_factor = float(np.sum(nbytes)), 1.0
        self._phase = Phase(np.asarray(src, np.int32), np.asarray(dst, np.int32),
                            np.asarray(nbytes, float), "p", rounds)

    def plan(self, delay_s):
        pass

    def step_phases(self):
        return [self._phase]


class _FixedRoutes:
    """Every pair on the line 0 - 1 - ... with the given reachability / black-hole flags."""

    def __init__(self, reachable, blackholed):
        self.reachable, self.blackholed = reachable, blackholed

    def route(self, snapshot, src, dst, *, t_ns, edge_utilisation=None, future=None):
        p = len(src)
        return SimpleNamespace(
            pair_path_indptr=np.arange(p + 1, dtype=np.int64),
            path_edge_indptr=np.arange(p + 1, dtype=np.int64),
            path_edges=np.zeros(p, np.int32), path_fraction=np.ones(p),
            path_delay_s=np.zeros(p), path_node_indptr=np.arange(0, 2 * p + 1, 2),
            path_nodes=np.tile([0, 1], p).astype(np.int32),
            pair_reachable=np.full(p, self.reachable), pair_blackholed=np.full(p, self.blackholed))


def _line(t_ns=0):
    return Snapshot.from_links(t_ns, np.array(["a", "b"], dtype=object), np.zeros(2, np.int8),
                               [0], [1], [300.0], [8 * GBPS])


@pytest.mark.parametrize("blackholed", [False, True])
def test_stalled_time_is_unreachable_or_blackholed_never_both(blackholed):
    """docs/design.md: time with no path is ``unreachable_s``; time on a stale path through a
    dead link (``periodic`` routing) is ``blackholed_s``."""
    eng = FluidEngine([_Job([0], [1], [1e9])], _FixedRoutes(False, blackholed), _alloc)
    eng.step(_line(), 2.0)
    fl = eng.flow_records(2.0)
    assert fl["blackholed_s"][0] == (2.0 if blackholed else 0.0)
    assert fl["unreachable_s"][0] == (0.0 if blackholed else 2.0)


# ----------------------------------------------------------------------------- routing


def test_widest_path_prefers_the_lighter_of_two_equally_wide_paths():
    """routing/shortest.py widest_paths: among equally wide candidates the smaller weight is
    kept. Hand example: 0-2-3 (weights 1 + 10) is found first, 0-1-3 (2 + 2) is as wide and
    lighter, so it must replace it."""
    from meshnet.routing import widest_paths

    # edges (u, v, weight), all 10 wide
    und = [(0, 1, 2.0), (0, 2, 1.0), (1, 3, 2.0), (2, 3, 10.0)]
    adj = {u: [] for u in range(4)}
    for u, v, w in und:
        adj[u].append((v, w))
        adj[v].append((u, w))
    indptr, indices, weights = [0], [], []
    for u in range(4):
        for v, w in sorted(adj[u]):
            indices.append(v)
            weights.append(w)
        indptr.append(len(indices))
    g = (np.array(indptr), np.array(indices, np.int32), np.array(weights))
    width, dist, pred = widest_paths(g, 0, capacity=np.full(len(indices), 10.0),
                                     return_predecessors=True, parallel=False)
    assert width[3] == 10.0
    assert dist[3] == 4.0
    assert pred[3] == 1


def _grid(n_rows, n_cols, length_km=1000.0, kinds=None):
    a, b = [], []
    for i in range(n_rows):
        for j in range(n_cols):
            u = n_cols * i + j
            if j < n_cols - 1:
                a.append(u), b.append(u + 1)
            if i < n_rows - 1:
                a.append(u), b.append(u + n_cols)
    n = n_rows * n_cols
    kind = np.zeros(n, np.int8) if kinds is None else np.asarray(kinds, np.int8)
    return Snapshot.from_links(0, np.array([str(i) for i in range(n)], dtype=object), kind,
                               a, b, np.full(len(a), length_km), np.full(len(a), 1e9))


def test_ecmp_fraction_is_the_product_of_per_hop_shares_with_three_next_hops():
    """ECMP: a path's fraction is the product of 1 / (number of next hops) at each node.
    Source 0 joined to 1, 2, 3, each joined to 4: three next hops at 0, so 1/3 each (a rule
    that halved at every branch would give 1/2 and sum above one)."""
    from meshnet.routing import make_policy
    from meshnet.routing.config import RoutingConfig

    a, b = [0, 0, 0, 1, 2, 3], [1, 2, 3, 4, 4, 4]
    snap = Snapshot.from_links(0, np.array([str(i) for i in range(5)], dtype=object),
                               np.zeros(5, np.int8), a, b, np.full(6, 1000.0), np.ones(6))
    r = make_policy(RoutingConfig(policy="ecmp"), 5).route(snap, np.array([0]), np.array([4]),
                                                           t_ns=0)
    assert r.pair_path_indptr[1] == 3
    np.testing.assert_allclose(r.path_fraction, [1 / 3] * 3, rtol=1e-12)


def test_ecmp_next_hops_never_enter_a_non_relay_node():
    """Stations do not relay: an equal-cost next hop through a non-relay node is not one."""
    from meshnet.routing import ecmp_next_hops

    # square 0-1-3, 0-2-3; node 2 does not relay
    indptr = np.array([0, 2, 4, 6, 8])
    indices = np.array([1, 2, 0, 3, 0, 3, 1, 2], np.int32)
    relay = np.array([True, True, False, True])
    e = ecmp_next_hops((indptr, indices, np.ones(8)), [3], relay_mask=relay, parallel=False)
    assert e.next_hops(0, 0).tolist() == [1]
    # without the mask both are next hops
    e = ecmp_next_hops((indptr, indices, np.ones(8)), [3], parallel=False)
    assert e.next_hops(0, 0).tolist() == [1, 2]


def test_ecmp_rtol_is_validated():
    from meshnet.errors import MeshnetError
    from meshnet.routing import ecmp_next_hops

    g = (np.array([0, 1, 2]), np.array([1, 0], np.int32), np.ones(2))
    for bad in (-1e-6, np.inf, np.nan):
        with pytest.raises(MeshnetError, match="rtol"):
            ecmp_next_hops(g, [0], rtol=bad)


def test_snapshot_delay_is_length_over_c_in_km_per_s():
    snap = _grid(1, 2, length_km=299_792.458)
    np.testing.assert_allclose(snap.delay_s, [1.0, 1.0], rtol=1e-15)


# ----------------------------------------------------------------------------- allocation


def test_path_fractions_must_sum_to_one_within_1e_6():
    from meshnet.errors import MeshnetError

    args = (np.array([10.0, 10.0]), [0, 2], [0, 1, 2], [0, 1])
    max_min_fair_multipath(*args, path_fraction=[0.5, 0.5 + 5e-7])  # within tolerance
    with pytest.raises(MeshnetError, match="sums to"):
        max_min_fair_multipath(*args, path_fraction=[0.5, 0.51])


def test_weighted_proportional_fairness_on_one_link_and_two_links():
    """Proportional fairness maximises sum w log x. One link of capacity c shared by weights
    1 and 3: x = w c / sum w (2.5 and 7.5). A line 0-1-2 with the long flow (weight 1) on both
    links and one short flow (weight 1) on each, capacities 1: x_long = 1/3, x_short = 2/3
    (Kelly's example); solved by hand from the first-order conditions."""
    from meshnet.allocation import proportional_fair

    r = proportional_fair(np.array([10.0]), [0, 1, 2], [0, 0], weight=[1.0, 3.0])
    np.testing.assert_allclose(r, [2.5, 7.5], rtol=1e-5)
    r = proportional_fair(np.array([1.0, 1.0]), [0, 2, 3, 4], [0, 1, 0, 1])
    np.testing.assert_allclose(r, [1 / 3, 2 / 3, 2 / 3], rtol=1e-5)
    # weights 3, 1, 1 on the same line: 3 / x0 = 1 / x1 + 1 / x2 with x1 = x2 = 1 - x0
    # gives x0 = 0.6, x1 = x2 = 0.4
    r = proportional_fair(np.array([1.0, 1.0]), [0, 2, 3, 4], [0, 1, 0, 1],
                          weight=[3.0, 1.0, 1.0])
    np.testing.assert_allclose(r, [0.6, 0.4, 0.4], rtol=1e-5)


# ----------------------------------------------------------------------------- links


def _circular(altitude_km, inc_deg, raan_deg, u_deg):
    """Earth-fixed position (km) and velocity (km/s) of a circular orbit at the instant the
    Earth-fixed and inertial axes coincide (v_ecef = v_inertial - omega x r)."""
    from meshnet.kernels._geometry import OMEGA_EARTH_RAD_S
    from meshnet.units import MU_EARTH_KM3_S2, R_EARTH_KM

    a = R_EARTH_KM + altitude_km
    i, o, u = np.radians([inc_deg, raan_deg, u_deg])
    node = np.array([np.cos(o), np.sin(o), 0.0])
    h = np.array([np.sin(o) * np.sin(i), -np.cos(o) * np.sin(i), np.cos(i)])
    along = np.cross(h, node)
    r = a * (np.cos(u) * node + np.sin(u) * along)
    v = np.sqrt(MU_EARTH_KM3_S2 / a) * (-np.sin(u) * node + np.cos(u) * along)
    v = v - np.cross([0.0, 0.0, OMEGA_EARTH_RAD_S], r)
    return r, v


def _reasons(states, limits, plane_key=None):
    from meshnet.links.feasibility import evaluate_links

    r = np.array([s[0] for s in states])
    v = np.array([s[1] for s in states])
    a = np.zeros(len(states) - 1, np.int64)
    b = np.arange(1, len(states), dtype=np.int64)
    pk = np.full(len(states), -1, np.int64) if plane_key is None else plane_key
    reason, length = evaluate_links(r, v, a, b, np.array([1.0, 0.0, 0.0]), limits, pk,
                                    parallel=False)
    return reason.tolist(), length


def test_seam_is_any_pair_with_orbit_normals_more_than_90_deg_apart():
    """docs/links.md: a counter-rotating pair (orbit normals more than 90 deg apart) is 'seam'
    unless cross_seam. Planes at 53 deg inclination 180 deg apart in RAAN have normals 106 deg
    apart (cos = -0.28); 170 deg apart, 104.6 deg; both are seam. A co-rotating neighbour plane
    (20 deg of RAAN) is not."""
    from meshnet.links.feasibility import FeasibilityLimits
    from meshnet.links.reasons import NONE, SEAM

    lim = FeasibilityLimits(polar_cutoff_deg=None, sun_exclusion_deg=0.0,
                            max_angular_rate_deg_s=100.0, range_cap_km=1e5)
    a = _circular(550.0, 53.0, 0.0, 30.0)
    # partners placed near a so that range and Earth blocking never decide
    near_180 = _circular(550.0, 53.0, 180.0, 150.0)  # same point of the sky, other direction
    near_170 = _circular(550.0, 53.0, 170.0, 150.0)
    corot = _circular(550.0, 53.0, 20.0, 25.0)
    reasons, _ = _reasons([a, near_180, near_170, corot], lim)
    assert reasons == [SEAM, SEAM, NONE]
    allowed, _ = _reasons([a, near_180, near_170, corot],
                          FeasibilityLimits(polar_cutoff_deg=None, sun_exclusion_deg=0.0,
                                            max_angular_rate_deg_s=100.0, range_cap_km=1e5,
                                            cross_seam=True))
    assert SEAM not in allowed


def test_inplane_neighbours_skip_satellites_still_raising_their_orbit():
    """dynamic: the nearest coplanar satellite ahead and behind, among those whose radii are
    within 25 km (a satellite still raising its orbit is skipped)."""
    from meshnet.kernels._geometry import OMEGA_EARTH_RAD_S
    from meshnet.kernels._links import inplane_neighbours

    states = [_circular(550.0, 53.0, 0.0, 0.0),
              _circular(350.0, 53.0, 0.0, 5.0),    # raising: 200 km lower, closest ahead
              _circular(550.0, 53.0, 0.0, 20.0),   # next one ahead at the same altitude
              _circular(560.0, 53.0, 0.0, -20.0)]  # behind, 10 km higher: still a neighbour
    r = np.array([s[0] for s in states])
    v = np.array([s[1] for s in states])
    pi = np.array([0, 0, 0], np.int64)
    pj = np.array([1, 2, 3], np.int64)
    ahead = np.full(4, -1, np.int64)
    behind = np.full(4, -1, np.int64)
    inplane_neighbours(r, v, pi, pj, 25.0, OMEGA_EARTH_RAD_S, ahead, behind)
    assert ahead[0] == 2 and behind[0] == 3


def test_predicted_lifetime_by_hand():
    """Seconds until the pair leaves its range limit under straight-line relative motion:
    1000 km apart, separating at 1 km/s along the line, range cap 1500 km -> 500 s; closing
    at 1 km/s -> it first shrinks, then grows out to 1500 km after 2500 s, capped by the
    horizon."""
    from meshnet.kernels._links import predicted_lifetime

    r = np.array([[7000.0, 0.0, 0.0], [7000.0, 1000.0, 0.0]])
    for vy, expected, horizon in ((1.0, 500.0, 1e4), (-1.0, 2500.0, 1e4), (-1.0, 600.0, 600.0)):
        v = np.array([[0.0, 0.0, 0.0], [0.0, vy, 0.0]])
        out = np.empty(1)
        predicted_lifetime(r, v, np.array([0]), np.array([1]), 6458.0, 1500.0, horizon, out)
        assert out[0] == pytest.approx(expected, rel=1e-12)


def test_link_budget_capacity_falls_with_the_square_of_range():
    from meshnet.links.capacity import capacity_bps
    from meshnet.links.reasons import ACQUIRING, DOWN, UP

    d = np.array([500.0, 1000.0, 2000.0, 3000.0, 3000.0, 3000.0])
    state = np.array([UP, UP, UP, UP, ACQUIRING, DOWN])
    rate = capacity_bps(d, state, "link_budget", 100e9, 1000.0)
    np.testing.assert_allclose(rate, [100e9, 100e9, 25e9, 100e9 / 9, 0.0, 0.0], rtol=1e-12)
    fixed = capacity_bps(d, state, "fixed", 100e9, 1000.0)
    np.testing.assert_array_equal(fixed, [100e9] * 4 + [0.0, 0.0])


# ----------------------------------------------------------------------------- writers


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_writer_leaves_nothing_when_aborted(tmp_path, fmt):
    """docs/design.md 'Outputs: whole or absent': a writer that fails leaves neither its file
    nor its temporary behind, and an existing file is untouched."""
    import pyarrow as pa

    from meshnet.io.datasets import AtomicParquetWriter, atomic_write
    from meshnet.io.links_dataset import LinkRowsWriter

    schema = pa.schema([("x", pa.float64())])
    # the Parquet writer used for flows/jobs
    with pytest.raises(RuntimeError), AtomicParquetWriter(tmp_path / "f.parquet", schema) as w:
        w.write({"x": [1.0, 2.0]})
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    # the links dataset writer
    w = LinkRowsWriter(tmp_path / f"links.{fmt}", fmt, schema, {}, 0, rows_per_group=1)
    w.buf.append(1, x=np.array([1.0]))  # a full row group: written to the temporary
    assert len(list(tmp_path.iterdir())) == 1
    w.abort()
    assert list(tmp_path.iterdir()) == []
    # single-file outputs: a failing write keeps the previous file whole
    prev = tmp_path / "pos.parquet"
    prev.write_text("previous")

    def failing(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(prev, failing)
    assert prev.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["pos.parquet"]


# ----------------------------------------------------------------------------- traffic, engine


def test_background_keeps_the_heaviest_pairs_and_offers_the_total():
    """[traffic.background]: gravity-model demands cut to the heaviest ``pairs`` and scaled
    so that they add up to ``total_offered_bps``."""
    from types import SimpleNamespace

    from meshnet.traffic.background import background_demands
    from meshnet.traffic.config import BackgroundConfig

    ground = SimpleNamespace(names=np.array(["A", "B", "C", "D"]), lat_deg=np.zeros(4),
                             lon_deg=np.array([0.0, 20.0, 40.0, 60.0]),
                             population=np.array([8e6, 4e6, 2e6, 1e6]))
    src, dst, bps = background_demands(BackgroundConfig(total_offered_bps=10e9, pairs=2),
                                       ground, np.random.default_rng(0), n_satellites=5)
    assert bps.sum() == pytest.approx(10e9, rel=1e-12)
    # the two heaviest ordered pairs join the two largest cities
    assert sorted(zip((src - 5).tolist(), (dst - 5).tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_ideal_step_uses_the_same_overlap_model():
    """docs/design.md: ideal step = max(compute_s, (1 - overlap) compute_s + ideal comm).
    1 s of compute fully overlapped with 0.5 s of ideal communication: the ideal step is 1 s,
    so the slowdown of a network as fast as the ideal mesh is 1."""
    from meshnet.traffic.collectives import ideal_comm_time_s

    snap = Snapshot.from_links(0, np.array(["a", "b"], dtype=object), np.zeros(2, np.int8),
                               [0], [1], [1e-9], [8 * GBPS])
    job = _Job([0], [1], [0.5e9], compute_s=1.0, overlap=1.0)

    class Line:
        def route(self, snapshot, src, dst, *, t_ns, edge_utilisation=None, future=None):
            return _FixedRoutes(True, False).route(snapshot, src, dst, t_ns=t_ns)

    eng = FluidEngine([job], Line(), _alloc, terminal_rate_bps=8 * GBPS,
                      ideal_comm_time=ideal_comm_time_s)
    eng.step(snap, 5.0)
    (rec,) = eng.job_records()
    assert rec["ideal_step_time_s"] == pytest.approx(1.0, rel=1e-9)
    assert rec["step_time_s"] == pytest.approx(1.0, rel=1e-9)


def test_cluster_accepts_the_shortest_proposals_first():
    """links/topology.py cluster: proposals are accepted shortest first while both ends have
    a free terminal. Four satellites on a line at 0, 10, 25 and 45 km with one terminal each:
    0-1 (10 km) then 2-3 (20 km); 1-2 (15 km) finds 1 taken."""
    from meshnet.links.feasibility import FeasibilityLimits
    from meshnet.links.topology import ClusterTopology

    r = np.array([[7000.0, x, 0.0] for x in (0.0, 10.0, 25.0, 45.0)])
    v = np.tile([0.0, 0.0, 7.5], (4, 1))
    cfg = SimpleNamespace(cluster_neighbours=3, n_terminals=1, acquisition_s=0.0,
                          warm_start=True)
    topo = ClusterTopology(cfg, SimpleNamespace(), FeasibilityLimits(), np.full(4, -1))
    a, b = topo.candidates(r, v)
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1), (2, 3)]


def test_predictive_delay_stays_within_the_stretch_of_the_least_delay():
    """[routing] predictive_max_stretch: the longest delay accepted, as a *multiple* of the
    least delay (a kept or longer-lived path never exceeds it)."""
    from test_routing_policies import _ground_pairs, moving_series

    from meshnet.routing import make_policy
    from meshnet.routing.config import RoutingConfig

    series = moving_series(n_steps=25)
    src, dst = _ground_pairs(series[0])
    stretch = 1.2
    pr = make_policy(RoutingConfig(policy="predictive", horizon_s=8.0,
                                   predictive_max_stretch=stretch), series[0].n_nodes)
    sd = make_policy(RoutingConfig(), series[0].n_nodes)
    longer = 0
    for i, snap in enumerate(series):
        r = pr.route(snap, src, dst, t_ns=snap.t_ns, future=series[i + 1:i + 9])
        best = sd.route(snap, src, dst, t_ns=snap.t_ns)
        for p in range(src.size):
            d = r.path_delay_s[r.pair_path_indptr[p]]
            d0 = best.path_delay_s[best.pair_path_indptr[p]]
            assert d <= stretch * d0 * (1 + 1e-12), (i, p, d / d0)
            longer += d > d0 * (1 + 1e-12)
    assert longer > 0  # the stretch is used, so the bound is really tested


def test_per_link_summary_rows_are_ordered_by_kind_then_a_then_b():
    """docs: links_summary per-link table ordered by (kind, a, b): ISLs before ground links,
    then by the lower and the higher node id."""
    from meshnet.io.links_dataset import LinkAccumulator
    from meshnet.links.reasons import DOWN, UP

    acc = LinkAccumulator(n_sats=4, n_ground=1, terminals=4, step_s=1.0)
    ISL, GSL = 0, 1
    for state in ([UP, UP, UP, UP], [UP, DOWN, UP, UP]):
        acc.add(SimpleNamespace(a=np.array([0, 0, 1, 2]), b=np.array([3, 4, 2, 4]),
                                kind=np.array([ISL, GSL, ISL, GSL], np.int8),
                                state=np.array(state, np.int8),
                                reason=np.zeros(4, np.int8)))
    t = acc.per_link(np.array(["s0", "s1", "s2", "s3", "G"], dtype=object))
    pairs = list(zip(t.column("a").to_pylist(), t.column("b").to_pylist(), strict=True))
    assert pairs == [(0, 3), (1, 2), (0, 4), (2, 4)]
    assert t.column("kind").to_pylist() == ["isl", "isl", "gsl", "gsl"]
    # 0-4 was up 1 of 2 s
    assert t.column("availability_pct").to_pylist() == [100.0, 100.0, 50.0, 100.0]


def test_zero_weight_flows_get_exactly_zero_and_take_nothing():
    """allocation: a flow of weight 0 gets rate 0 and loads nothing, alone on its link too."""
    from meshnet.allocation import max_min_fair

    # link 0 carries only the zero-weight flow 0; link 1 is shared by flows 1 (w 0) and 2
    rate = max_min_fair(np.array([10.0, 6.0]), [0, 1, 2, 3], [0, 1, 1], weight=[0.0, 0.0, 1.0])
    assert rate.tolist() == [0.0, 0.0, 6.0]


def test_default_path_fractions_split_a_flow_evenly():
    """max_min_fair_multipath: default fractions are an equal split, so flow 0 on two paths
    counts as weight 1/2 on each. Path 0 (edge 0, 12 wide) is shared with flow 1 (weight 1):
    1/3 and 2/3 of it, 4 and 8; path 1 (edge 1, 5 wide) is flow 0's alone: 5."""
    r = max_min_fair_multipath(np.array([12.0, 5.0]), [0, 2, 3], [0, 1, 2, 3], [0, 1, 0])
    np.testing.assert_allclose(r.path_rate_bps, [4.0, 5.0, 8.0], rtol=1e-12)
    np.testing.assert_allclose(r.flow_rate_bps, [9.0, 8.0], rtol=1e-12)


def test_sun_blinds_the_terminal_facing_it_unless_that_terminal_is_eclipsed():
    """docs/links.md: the Sun within sun_exclusion_deg behind b blinds a's terminal, unless
    a is in the Earth's shadow (and the other way round). Here a (night side, eclipsed)
    looks at b (day side) 15 deg from the Sun: no outage; the same pair moved to the day
    side: a sun outage, whichever end is listed first."""
    from meshnet.links.feasibility import FeasibilityLimits, evaluate_links
    from meshnet.links.reasons import NONE, SUN

    lim = FeasibilityLimits(polar_cutoff_deg=None, sun_exclusion_deg=20.0,
                            max_angular_rate_deg_s=100.0, range_cap_km=1e5)
    u = np.array([np.cos(np.radians(15.0)), 0.0, np.sin(np.radians(15.0))])
    sun = np.array([1.0, 0.0, 0.0])
    for a_pos, expected in (([-2000.0, 0.0, 6350.0], NONE), ([2000.0, 0.0, 6350.0], SUN)):
        r = np.array([a_pos, np.asarray(a_pos) + 3000.0 * u])
        v = np.tile([0.0, 7.5, 0.0], (2, 1))  # co-rotating, slow line-of-sight rotation
        for a, b in ((0, 1), (1, 0)):
            reason, _ = evaluate_links(r, v, np.array([a]), np.array([b]), sun, lim,
                                       np.full(2, -1), parallel=False)
            assert reason.tolist() == [expected], (a_pos, a, b)


def test_angular_rate_is_the_inertial_line_of_sight_rotation():
    """links: a link is down (angular_rate) when the line of sight turns faster than
    max_angular_rate_deg_s in the inertial frame: |dr x dv_inertial| / |dr|^2, computed here
    from inertial velocities for two satellites in neighbouring 53 deg planes."""
    from meshnet.kernels._geometry import OMEGA_EARTH_RAD_S
    from meshnet.links.feasibility import FeasibilityLimits, evaluate_links
    from meshnet.links.reasons import ANGULAR_RATE, NONE

    sa = _circular(550.0, 53.0, 0.0, 40.0)
    sb = _circular(550.0, 53.0, 15.0, 30.0)
    r = np.array([sa[0], sb[0]])
    v = np.array([sa[1], sb[1]])
    v_in = v + np.cross([0.0, 0.0, OMEGA_EARTH_RAD_S], r)
    dr, dv = r[1] - r[0], v_in[1] - v_in[0]
    rate_deg_s = np.degrees(np.linalg.norm(np.cross(dr, dv)) / dr.dot(dr))
    for factor, expected in ((1.001, NONE), (0.999, ANGULAR_RATE)):
        lim = FeasibilityLimits(polar_cutoff_deg=None, sun_exclusion_deg=0.0,
                                max_angular_rate_deg_s=rate_deg_s * factor, range_cap_km=1e5)
        reason, _ = evaluate_links(r, v, np.array([0]), np.array([1]), np.array([1.0, 0, 0]),
                                   lim, np.full(2, -1), parallel=False)
        assert reason.tolist() == [expected], factor


@pytest.mark.parametrize("parallel", [False, True])
def test_ground_link_needs_the_elevation_mask(parallel):
    """[ground] min_elevation_deg: a station links the satellites at or above the mask. With
    several shells a lower satellite just under the mask can be nearer than the distance
    bound of the highest shell, so the elevation itself must decide (no distance bound here).
    Satellites at 24.5, 25.5 and 60 deg for a 25 deg mask: the last two."""
    from meshnet.kernels import _links as K

    r_gs = np.array([[6378.137, 0.0, 0.0]])
    up = np.array([[1.0, 0.0, 0.0]])
    sats = []
    for e_deg, d_km in ((24.5, 800.0), (25.5, 1200.0), (60.0, 600.0)):
        e = np.radians(e_deg)
        sats.append(r_gs[0] + d_km * np.array([np.sin(e), np.cos(e), 0.0]))
    r = np.array(sats)
    sin_min = np.sin(np.radians(25.0))
    counts = np.zeros(1, np.int64)
    (K.gsl_count if parallel else K.gsl_count_serial)(r, r_gs, up, sin_min, np.inf, False,
                                                      counts)
    assert counts.tolist() == [2]
    sat = np.empty(2, np.int64)
    sin_el = np.empty(2)
    length = np.empty(2)
    (K.gsl_fill if parallel else K.gsl_fill_serial)(r, r_gs, up, sin_min, np.inf, False,
                                                    np.array([0, 2]), sat, sin_el, length)
    assert sat.tolist() == [1, 2]
    np.testing.assert_allclose(np.degrees(np.arcsin(sin_el)), [25.5, 60.0], atol=1e-9)
    np.testing.assert_allclose(length, [1200.0, 600.0], rtol=1e-12)


def test_link_that_breaks_is_down_at_once_and_acquires_again():
    """links/state.py: a link that becomes infeasible is DOWN at once; when it is feasible
    again it acquires for acquisition_s anew (UP from t0 + acquisition_s on, inclusive)."""
    from meshnet.links.reasons import ACQUIRING, DOWN, UP
    from meshnet.links.state import LinkStates

    s = LinkStates(2, acquisition_s=2.0, warm_start=True)
    sec = 1_000_000_000
    seq = [(0, [True, True], [UP, UP]),
           (1 * sec, [False, True], [DOWN, UP]),
           (2 * sec, [True, True], [ACQUIRING, UP]),
           (4 * sec - 1, [True, True], [ACQUIRING, UP]),
           (4 * sec, [True, False], [UP, DOWN]),
           (5 * sec, [True, True], [UP, ACQUIRING])]
    for t, feasible, want in seq:
        assert s.update(t, np.array(feasible)).tolist() == want, t


def test_an_interruption_stops_the_jobs_own_flows_and_no_other():
    """docs/faults.md: a node failure interrupts its job (the job's flows stop and its step is
    lost); other traffic is untouched. A 2-rank ring of 20 GB per rank on one 8 Gbps line
    (40 s of sending 0 -> 1 beside a 4 Gbps background flow, 20 s the other way): the job's
    flows are cut at t = 15 s, the background flow keeps its 4 Gbps for the whole 60 s."""
    from test_engine import LinePolicy, line_snapshot
    from test_goodput import _nodes

    from meshnet.traffic.collectives import make_job
    from meshnet.traffic.config import JobConfig, ResilienceConfig

    res = ResilienceConfig(recovery="restart", checkpoint_interval_s=1e6, checkpoint_bytes=1e9,
                           restart_s=5.0, spares=0)
    cfg = JobConfig(name="j", compute_s=1.0, overlap=1.0, model_params=1e10, steps=None,
                    resilience=res)
    job = make_job(cfg, _nodes([0, 1]), n_nodes=2)
    bg = (np.array([0]), np.array([1]), np.array([4 * GBPS]))
    eng = FluidEngine([job], LinePolicy(), _alloc, background=bg)
    eng.set_outages([1], [15.0], [1000.0])
    for k in range(6):
        eng.step(line_snapshot([8 * GBPS], t_ns=k * 10_000_000_000), 10.0)
    fl = eng.flow_records(60.0)
    is_bg = fl["job"] == "background"
    assert fl["mean_rate_gbps"][is_bg][0] == pytest.approx(4.0, rel=1e-9)
    job_flows = ~is_bg
    assert job_flows.any() and not fl["finished"][job_flows].any()
    assert len(eng.jobs[0].res.interruptions) == 1
