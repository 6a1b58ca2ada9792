"""Compute placement, background demands and the [traffic] tables."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest

from meshnet.config import parse_table
from meshnet.errors import NodeNameError, ScenarioError
from meshnet.traffic import (
    BackgroundConfig,
    ComputeConfig,
    TrafficConfig,
    background_demands,
    place_compute,
)
from meshnet.traffic.background import great_circle_km
from meshnet.units import R_EARTH_KM


def walker_like(shells=((4, 6), (3, 5))):
    """A constellation stand-in: shell-major, plane-major ids, names S<shell>-P<pp>-<ss>."""
    names, sh, pl, sl = [], [], [], []
    for s, (planes, per) in enumerate(shells):
        for p in range(planes):
            for k in range(per):
                names.append(f"S{s}-P{p:02d}-{k:02d}")
                sh.append(s)
                pl.append(p)
                sl.append(k)
    return SimpleNamespace(names=np.array(names, dtype=object), shell=np.array(sh, np.int32),
                           plane=np.array(pl, np.int32), slot=np.array(sl, np.int32))


def tle_like(n=10):
    return SimpleNamespace(names=np.array([f"STARLINK-{i}" for i in range(n)], dtype=object),
                           shell=np.full(n, -1, np.int32), plane=np.full(n, -1, np.int32),
                           slot=np.full(n, -1, np.int32))


def cities():
    return SimpleNamespace(
        names=np.array(["Tokyo", "Delhi", "Shanghai", "Sao Paulo", "Mexico City", "Cairo"],
                       dtype=object),
        lat_deg=np.array([35.69, 28.61, 31.23, -23.55, 19.43, 30.04]),
        lon_deg=np.array([139.69, 77.21, 121.47, -46.63, -99.13, 31.24]),
        population=np.array([37.4e6, 31.0e6, 27.1e6, 22.0e6, 21.8e6, 20.9e6]))


def place(cons=None, ground=None, seed=0, **kw):
    return place_compute(ComputeConfig(**kw), cons if cons is not None else walker_like(),
                         ground if ground is not None else cities(),
                         np.random.default_rng(seed))


# --------------------------------------------------------------------------- placement


def test_every_kth_per_plane_and_shell():
    nodes = place(placement="every_kth", every_k=3)
    cons = walker_like()
    assert np.all(nodes.slot % 3 == 0)
    # shell 0: 4 planes x slots {0, 3}; shell 1: 3 planes x slots {0, 3}
    assert len(nodes) == 4 * 2 + 3 * 2
    assert nodes.names.tolist() == cons.names[nodes.node_ids].tolist()
    one = place(placement="every_kth", every_k=2, offset=1, shell=1)
    assert np.all(one.shell == 1) and np.all(one.slot % 2 == 1) and len(one) == 3 * 2
    assert one.node_ids.dtype == np.int32 and np.all(np.diff(one.node_ids) > 0)


def test_shell_and_block_placement():
    nodes = place(placement="shell", shell=1)
    assert len(nodes) == 15 and np.all(nodes.shell == 1) and nodes.node_ids[0] == 24
    block = place(placement="block", shell=0, plane_start=3, plane_count=2, slot_start=5,
                  slot_count=3)
    pairs = set(zip(block.plane.tolist(), block.slot.tolist(), strict=True))
    assert pairs == {(p, s) for p in (3, 0) for s in (5, 0, 1)}  # wraps around
    with pytest.raises(ScenarioError, match="does not fit"):
        place(placement="block", shell=0, plane_count=5)
    with pytest.raises(ScenarioError, match=r"shell = 7 selects no satellite"):
        place(placement="shell", shell=7)


def test_random_placement_is_seeded():
    a = place(placement="random", count=10, seed=42)
    b = place(placement="random", count=10, seed=42)
    c = place(placement="random", count=10, seed=43)
    assert a.node_ids.tolist() == b.node_ids.tolist()
    assert a.node_ids.tolist() != c.node_ids.tolist()
    assert len(set(a.node_ids.tolist())) == 10 and np.all(np.diff(a.node_ids) > 0)
    only = place(placement="random", count=5, shell=1, seed=1)
    assert np.all(only.shell == 1)
    with pytest.raises(ScenarioError, match="count = 100 exceeds the 39"):
        place(placement="random", count=100)
    tle = place(tle_like(), placement="random", count=4)
    assert len(tle) == 4 and np.all(tle.plane == -1)


def test_names_and_ground_placement():
    nodes = place(placement="names", names=("S1-P02-04", "Cairo", "S0-P00-01"),
                  accelerators_per_node=8, accelerator_tflops=100.0)
    n_sats = 39
    assert nodes.node_ids.tolist() == [24 + 2 * 5 + 4, n_sats + 5, 1]
    assert nodes.names.tolist() == ["S1-P02-04", "Cairo", "S0-P00-01"]
    assert nodes.is_ground.tolist() == [False, True, False]
    assert nodes.plane.tolist() == [2, -1, 0]
    assert nodes.accelerators.tolist() == [8, 8, 8] and nodes.tflops.tolist() == [800.0] * 3
    dc = place(placement="ground", ground_sites=("Delhi", "Tokyo"))
    assert dc.node_ids.tolist() == [n_sats + 1, n_sats + 0] and np.all(dc.is_ground)


def test_unknown_or_ambiguous_names():
    with pytest.raises(NodeNameError, match=r"unknown compute node in \[traffic.compute\]"
                       r"\.names 'S0-P00-1'; did you mean 'S0-P00-01'\?"):
        place(placement="names", names=("S0-P00-1",))
    with pytest.raises(NodeNameError, match="ground_sites 'Tokio'; did you mean 'Tokyo'"):
        place(placement="ground", ground_sites=("Tokio",))
    with pytest.raises(NodeNameError, match="ground_sites 'S0-P00-00'"):
        place(placement="ground", ground_sites=("S0-P00-00",))  # a satellite is no site
    twin = walker_like()
    twin.names[3] = "S0-P00-00"
    with pytest.raises(NodeNameError, match="matches 2 nodes"):
        place(twin, placement="names", names=("S0-P00-00",))


def test_placement_needing_planes_on_tle_catalogue():
    with pytest.raises(ScenarioError, match="needs orbital plane and slot numbers"):
        place(tle_like(), placement="every_kth", every_k=2)
    assert len(place(tle_like(), placement="names", names=("STARLINK-3",))) == 1


def test_subset_keeps_metadata():
    nodes = place(placement="every_kth", every_k=3)
    sub = nodes.subset([3, 0])
    assert sub.node_ids.tolist() == nodes.node_ids[[3, 0]].tolist()
    assert sub.n_satellites == nodes.n_satellites
    assert nodes.index_of(["S0-P01-03"]).tolist() == [3]


def test_placement_on_real_walker_shell():
    walker = pytest.importorskip("meshnet.orbits.walker")
    from meshnet.orbits.config import ShellConfig

    shell = ShellConfig(altitude_km=550, inclination_deg=53, planes=72, sats_per_plane=22)
    cons = walker.walker_constellation([shell], datetime(2026, 1, 1, tzinfo=UTC))
    nodes = place_compute(ComputeConfig(placement="block", shell=0), cons, None,
                          np.random.default_rng(0))
    assert len(nodes) == 64 and set(nodes.plane.tolist()) == set(range(8))
    kth = place_compute(ComputeConfig(placement="every_kth", every_k=22), cons, None,
                        np.random.default_rng(0))
    assert len(kth) == 72 and np.all(kth.slot == 0)


# --------------------------------------------------------------------------- background


def demands(cfg=None, seed=0, ground=None, **kw):
    cfg = cfg or BackgroundConfig(**kw)
    return background_demands(cfg, ground if ground is not None else cities(),
                              np.random.default_rng(seed), n_satellites=100)


def test_gravity_model_plain_product():
    src, dst, bps = demands(total_offered_bps=1e12)
    g = cities()
    assert src.dtype == np.int32 and dst.dtype == np.int32 and bps.dtype == np.float64
    assert bps.sum() == pytest.approx(1e12)
    assert len(src) == 6 * 5 and np.all(src != dst) and src.min() >= 100
    pop = g.population
    w = pop[src - 100] * pop[dst - 100]
    assert np.allclose(bps, w / w.sum() * 1e12, rtol=1e-12)


def test_gravity_model_distance_exponent_and_min_distance():
    g = cities()
    src, dst, bps = demands(total_offered_bps=1e9, distance_exponent=2.0,
                            min_distance_km=3000.0)
    d = great_circle_km(g.lat_deg, g.lon_deg)
    i, j = src - 100, dst - 100
    assert np.all(d[i, j] >= 3000.0)
    # Shanghai-Tokyo (~1,770 km) and Delhi-Shanghai? only the former is under 3,000 km
    names = g.names
    pairs = set(zip(names[i].tolist(), names[j].tolist(), strict=True))
    assert ("Tokyo", "Shanghai") not in pairs and ("Tokyo", "Delhi") in pairs
    w = g.population[i] * g.population[j] / d[i, j] ** 2
    assert np.allclose(bps, w / w.sum() * 1e9, rtol=1e-12)


def test_great_circle_reference_values():
    d = great_circle_km(np.array([0.0, 0.0, 90.0]), np.array([0.0, 90.0, 0.0]))
    quarter = np.pi / 2 * R_EARTH_KM
    assert np.allclose(d, [[0, quarter, quarter], [quarter, 0, quarter], [quarter, quarter, 0]])


def test_background_top_n_stations_pairs():
    src, _, _ = demands(top_n=3)
    assert set((src - 100).tolist()) == {0, 1, 2}
    src, dst, _ = demands(stations=("Cairo", "Tokyo"))
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [(100, 105), (105, 100)]
    src, dst, bps = demands(pairs=4, total_offered_bps=8.0)
    assert len(src) == 4 and bps.sum() == pytest.approx(8.0)
    # the heaviest ordered pairs are Tokyo<->Delhi and Tokyo<->Shanghai
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == {
        (100, 101), (101, 100), (100, 102), (102, 100)}
    with pytest.raises(NodeNameError, match="'Tokio'; did you mean 'Tokyo'"):
        demands(stations=("Tokio", "Cairo"))


def test_background_seeded_noise():
    a = demands(noise_sigma=0.5, seed=1)
    b = demands(noise_sigma=0.5, seed=1)
    c = demands(noise_sigma=0.5, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.allclose(a[2], c[2])
    assert a[2].sum() == pytest.approx(c[2].sum())


def test_background_disabled_or_degenerate():
    for kw in ({"enabled": False}, {"total_offered_bps": 0.0}, {"min_distance_km": 1e5}):
        src, dst, bps = demands(**kw)
        assert src.size == dst.size == bps.size == 0 and src.dtype == np.int32
    g = cities()
    g.population = np.full(6, np.nan)
    _, _, bps = demands(ground=g)
    assert np.allclose(bps, bps[0])  # no population known: every pair weighs the same
    g.population = np.array([1e6, np.nan, 1e6, 1e6, np.nan, 1e6])
    src, _, _ = demands(ground=g)
    assert set((src - 100).tolist()) == {0, 2, 3, 5}


# --------------------------------------------------------------------------- tables


def parse(table):
    return parse_table(TrafficConfig, table, "traffic", "s.toml")


def test_traffic_table_defaults_and_full():
    cfg = parse({})
    assert cfg.jobs == () and cfg.compute.placement == "every_kth" and cfg.background.enabled
    cfg = parse({
        "compute": {"placement": "block", "shell": 0, "plane_count": 8, "slot_count": 8},
        "jobs": [{"name": "dp", "kind": "allreduce", "algorithm": "hierarchical",
                  "model_params": 7e9, "compute_s": 2, "overlap": 0.5, "steps": 10},
                 {"name": "moe", "kind": "moe_alltoall", "top_k": 2, "compute_s": 1}],
        "background": {"total_offered_bps": 5e11, "top_n": 50, "distance_exponent": 1},
    })
    assert cfg.jobs[0].compute_s == 2.0 and cfg.jobs[0].steps == 10
    assert cfg.background.distance_exponent == 1.0 and cfg.compute.plane_count == 8


@pytest.mark.parametrize("table,match", [
    ({"compute": {"placment": "random"}}, r"unknown key .*compute\]\.placment; did you "
                                          r"mean 'placement'"),
    ({"compute": {"placement": "randm"}}, r"compute\].placement = 'randm' is not "
                                          r"known; did you mean 'random'"),
    ({"compute": {"placement": "names"}}, r"compute\].names is empty"),
    ({"compute": {"placement": "ground"}}, r"compute\].ground_sites is empty"),
    ({"compute": {"placement": "shell"}}, r"compute\].shell must be set"),
    ({"compute": {"every_k": 4, "offset": 4}}, r"compute\].offset = 4 must be <"),
    ({"compute": {"every_k": 0}}, r"compute\].every_k must be >= 1"),
    ({"compute": {"names": ["a", "a"], "placement": "names"}}, r"lists 'a' twice"),
    ({"jobs": [{"kind": "allreduce"}]}, r"missing key .*jobs\[0\]\]?\.name"),
    ({"jobs": [{"name": "a", "kind": "alltoall"}]}, r"kind = 'alltoall' is not known"),
    ({"jobs": [{"name": "a", "algorithm": "tree"}]}, r"algorithm = 'tree' is not known"),
    ({"jobs": [{"name": "a", "overlap": 1.5}]}, r"overlap must be <= 1.0, found 1.5"),
    ({"jobs": [{"name": "a", "steps": 0}]}, r"steps must be >= 1"),
    ({"jobs": [{"name": "a", "model_params": -1}]}, r"model_params must be > 0"),
    ({"jobs": [{"name": "a", "group_size": 4}]}, r"group_size only applies to algorithm = "
                                                 r"'hierarchical'"),
    ({"jobs": [{"name": "a", "kind": "pipeline", "nodes": ["x", "y", "z"], "stages": 2}]},
     r"stages = 2 must divide the number of nodes \(3\)"),
    ({"jobs": [{"name": "a", "kind": "moe_alltoall", "nodes": ["x", "y"], "top_k": 3}]},
     r"top_k = 3 exceeds the 2 experts"),
    ({"jobs": [{"name": "a", "nodes": ["x"]}]}, r"nodes has one node"),
    ({"jobs": [{"name": "a", "compute_s": 1}, {"name": "a", "compute_s": 1}]},
     r"\[traffic\].jobs\[1\].name = 'a' is used by another job"),
    ({"background": {"total_offered_bps": -1}}, r"total_offered_bps must be >= 0"),
    ({"background": {"stations": ["Tokyo"]}}, r"stations needs at least 2"),
])
def test_bad_tables_name_the_key(table, match):
    with pytest.raises(ScenarioError, match=r"^s\.toml: .*" + match):
        parse(table)
