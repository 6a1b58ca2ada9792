"""Inter-shell laser links: several shells as one network (meshnet/links/intershell.py)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_links import (  # noqa: E402
    naive_intershell_candidates,
    naive_intershell_matching,
)

from meshnet.errors import ScenarioError  # noqa: E402
from meshnet.kernels._links import greedy_matching  # noqa: E402
from meshnet.links import DOWN, ISL, UP, evaluate_links  # noqa: E402
from meshnet.links.dynamic import DynamicTopology  # noqa: E402
from meshnet.links.intershell import (  # noqa: E402
    InterShellLinks,
    WithInterShell,
    balanced_order,
    inter_shell_mask,
    intershell_candidates,
    shell_labels,
    station_reachability,
)
from meshnet.links.model import link_model, model_tables  # noqa: E402
from meshnet.links.topology import PlusGrid  # noqa: E402
from meshnet.orbits.propagate import propagate, sun_direction_ecef  # noqa: E402
from meshnet.scenario import load_scenario, parse_scenario  # noqa: E402
from meshnet.world import build_world  # noqa: E402

S = 1_000_000_000

THREE_SHELLS = """
[scenario]
name = "three_shells"
epoch = 2026-02-23T00:00:00Z
duration_s = 120
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

[[constellation.shells]]
altitude_km = 700.0
inclination_deg = 97.6
planes = 6
sats_per_plane = 12
phasing = 1

[ground]
stations = "none"

[links]
topology = "plus_grid"
acquisition_s = 10
{extra}
"""


def scenario(extra=""):
    return parse_scenario(THREE_SHELLS.replace("{extra}", extra))


def run(sc, duration_s=None, step_s=None):
    """The model and its (t_ns, table) list over the scenario's grid."""
    world = build_world(sc)
    grid = sc.grid(duration_s=duration_s, step_s=step_s)
    model = link_model(sc, grid, world)
    return model, world, grid, list(model_tables(model, world.constellation, grid))


@pytest.fixture(scope="module")
def three_shell_run():
    return run(scenario())


def test_starlink_gen1_every_station_pair_reachable():
    """The issue's check: on the five-shell scenario every pair of the 100 stations has a
    path at every step (with the islands of the shells alone, most do not)."""
    sc = load_scenario("starlink_gen1")
    world = build_world(sc)
    grid = sc.grid(duration_s=90, step_s=30)
    # One antenna per station, so that a station reaches one shell only and the inter-shell
    # lasers alone must join the shells (with the default 8 antennas spread over the shells
    # in view, stations would bridge them too, and the test would not isolate the lasers).
    one = replace(sc.ground, antennas=1)
    for heads, check in ((1, lambda f: f == 1.0), (0, lambda f: f < 0.5)):
        s = replace(sc, links=replace(sc.links, inter_shell_terminals=heads), ground=one)
        model = link_model(s, grid, world)
        for _, table in model_tables(model, world.constellation, grid):
            gsl = table.kind != ISL
            # Every station sees a satellite (else the pair would be unreachable for a
            # physical reason, not for want of inter-shell links).
            assert np.unique(table.b[gsl]).shape[0] == model.n_ground
            reach = station_reachability(table.to_snapshot(model.node_names,
                                                           model.node_kind), model.n_sats)
            frac = reach[np.triu_indices(model.n_ground, 1)].mean()
            assert check(frac), (heads, frac)


def test_station_reachability_matches_scipy_on_the_whole_graph():
    """Stations as non-relays: the satellite-component rule agrees with connected components
    of the full graph when stations have a single ground link (they cannot relay then)."""
    from scipy.sparse.csgraph import connected_components

    sc = load_scenario("starlink_gen1")
    world = build_world(sc)
    grid = sc.grid(duration_s=1, step_s=1)
    s = replace(sc, links=replace(sc.links, inter_shell_terminals=0),
                ground=replace(sc.ground, antennas=1))
    model = link_model(s, grid, world)
    (_, table), = model_tables(model, world.constellation, grid)
    snap = table.to_snapshot(model.node_names, model.node_kind)
    reach = station_reachability(snap, model.n_sats)
    _, comp = connected_components(snap.to_scipy("length_km"), directed=False)
    g = comp[model.n_sats:]
    assert (reach == (g[:, None] == g[None, :])).all()
    assert 0 < reach.mean() < 1


def test_inter_shell_links_join_shells_respect_heads_and_physics(three_shell_run):
    model, world, grid, tables = three_shell_run
    assert isinstance(model.isl, WithInterShell)
    assert model.n_terminals == 4 + 1
    shell = shell_labels(world.constellation, model.n_sats)
    orb = propagate(world.constellation, grid)
    sun = np.asarray(sun_direction_ecef(grid))
    base_pairs = None
    n_x = []
    for k, (_, table) in enumerate(tables):
        isl = table.kind == ISL
        x = isl & inter_shell_mask(table.a, table.b, shell)
        # The fixed topology's own rows are all intra-shell and unchanged in number.
        pairs = set(zip(table.a[isl & ~x].tolist(), table.b[isl & ~x].tolist(), strict=True))
        base_pairs = pairs if base_pairs is None else base_pairs
        assert pairs == base_pairs
        assert (shell[table.a[x]] != shell[table.b[x]]).all()
        held = x & (table.state != DOWN)
        deg = np.bincount(table.a[held], minlength=model.n_sats) + np.bincount(
            table.b[held], minlength=model.n_sats)
        assert deg.max() <= 1
        n_x.append(int((x & (table.state == UP)).sum()))
        reason, length = evaluate_links(orb.r_km[k], orb.v_km_s[k], table.a[x], table.b[x],
                                        sun[k], model.limits, model.plane_key)
        st = table.state[x]
        assert (reason[st != DOWN] == 0).all()
        assert (reason[st == DOWN] != 0).all()
        assert (reason[st == DOWN] == table.reason[x][st == DOWN]).all()
        np.testing.assert_allclose(length, table.length_km[x], atol=1e-9)
        # No pair is listed twice.
        keys = table.a.astype(np.int64) * (1 << 32) + table.b
        assert np.unique(keys[isl]).shape[0] == int(isl.sum())
    assert min(n_x) > 20


def test_links_are_kept_while_feasible_and_new_ones_acquire(three_shell_run):
    model, world, grid, tables = three_shell_run
    shell = shell_labels(world.constellation, model.n_sats)
    acq_ns = int(10 * S)
    since = {}
    seen_new = 0
    for k, (t_ns, table) in enumerate(tables):
        x = (table.kind == ISL) & inter_shell_mask(table.a, table.b, shell)
        rows = {(int(a), int(b)): (int(s), int(r)) for a, b, s, r in zip(
            table.a[x], table.b[x], table.state[x], table.reason[x], strict=True)}
        if k:
            for pair in since:
                # A link held at the last step is listed now: kept, or DOWN with a reason.
                assert pair in rows, pair
        for pair in [p for p in since if rows[p][0] == DOWN]:
            del since[pair]
        for pair, (st, _) in rows.items():
            if st == DOWN:
                continue
            if pair not in since:
                since[pair] = t_ns if k else t_ns - acq_ns
                seen_new += k > 0
            assert st == (UP if t_ns - since[pair] >= acq_ns else 1), (pair, t_ns)
    assert seen_new > 0


def test_candidate_search_matches_all_pairs_twin():
    rng = np.random.default_rng(4)
    n = 300
    r = rng.normal(size=(n, 3))
    r *= (6928.0 + rng.uniform(0, 300, n))[:, None] / np.linalg.norm(r, axis=1)[:, None]
    shell = rng.integers(-1, 4, n)
    for k in (1, 3, 8):
        free = np.sort(rng.choice(n, 180, replace=False))
        a, b = intershell_candidates(r, free, shell, k, 3000.0)
        wa, wb = naive_intershell_candidates(r, free, shell, k, 3000.0)
        assert a.tolist() == wa and b.tolist() == wb
        assert (shell[a] != shell[b]).all() and (shell[a] >= 0).all()


def test_matching_matches_naive_twin():
    rng = np.random.default_rng(7)
    n, n_shells = 60, 4
    shell = rng.integers(0, n_shells, n)
    links = [(0, 1), (2, 3), (4, 5), (6, 7)]
    links = [(a, b) for a, b in links if shell[a] != shell[b]]
    ca, cb = [], []
    while len(ca) < 400:
        i, j = sorted(rng.integers(8, n, 2).tolist())
        if shell[i] != shell[j]:
            ca.append(i)
            cb.append(j)
    key = np.unique(np.array(ca, np.int64) * 1000 + cb)
    ca, cb = (key // 1000).astype(np.int32), (key % 1000).astype(np.int32)
    life = rng.choice([60.0, 600.0, 3600.0], ca.shape[0])
    length = rng.uniform(100, 5000, ca.shape[0])
    for heads in (1, 2):
        degree = np.zeros(n, np.int64)
        for a, b in links:
            degree[a] += 1
            degree[b] += 1
        pid = np.minimum(shell[ca], shell[cb]) * n_shells + np.maximum(shell[ca], shell[cb])
        la = np.array([a for a, _ in links])
        lb = np.array([b for _, b in links])
        held = np.minimum(shell[la], shell[lb]) * n_shells + np.maximum(shell[la], shell[lb])
        order = balanced_order(ca, cb, life, length, pid,
                               np.bincount(held, minlength=n_shells * n_shells))
        accept = np.zeros(ca.shape[0], bool)
        greedy_matching(ca, cb, order, degree, heads, accept)
        want = naive_intershell_matching(ca.tolist(), cb.tolist(), life.tolist(),
                                         length.tolist(), shell.tolist(), links, heads)
        assert accept.tolist() == want


def test_balanced_order_serves_the_emptiest_shell_pair_first():
    # Pair 0 already holds 3 links and offers the longest-lived candidates; pair 1 holds none.
    a = np.array([0, 1, 2, 3])
    b = np.array([10, 11, 12, 13])
    life = np.array([3600.0, 3600.0, 60.0, 60.0])
    length = np.array([10.0, 20.0, 500.0, 400.0])
    pid = np.array([0, 0, 1, 1])
    order = balanced_order(a, b, life, length, pid, np.array([3, 0]))
    assert order.tolist() == [3, 2, 0, 1]
    order = balanced_order(a, b, life, length, pid, np.array([0, 0]))
    assert order.tolist() == [0, 3, 1, 2]   # rounds: best of each pair, then the next


def test_zero_heads_reproduces_the_islands(three_shell_run):
    _, _, _, tables = three_shell_run
    model, world, grid, islands = run(scenario("inter_shell_terminals = 0"))
    assert isinstance(model.isl, PlusGrid) and model.n_terminals == 4
    shell = shell_labels(world.constellation, model.n_sats)
    # The bare +Grid, stepped by hand, gives the same rows.
    bare = PlusGrid(model.cfg, world.constellation, model.limits, model.plane_key)
    orb = propagate(world.constellation, grid)
    sun = np.asarray(sun_direction_ecef(grid))
    for k, ((_, table), (_, full)) in enumerate(zip(islands, tables, strict=True)):
        rows = bare.step(int(grid.t_ns[k]), orb.r_km[k], orb.v_km_s[k], sun[k])
        isl = table.kind == ISL
        assert not inter_shell_mask(table.a, table.b, shell).any()
        for col in ("a", "b", "state", "reason"):
            assert (getattr(table, col)[isl] == getattr(rows, col)).all(), col
        # With the layer, the same intra-shell rows plus inter-shell ones.
        fi = (full.kind == ISL) & ~inter_shell_mask(full.a, full.b, shell)
        assert (full.a[fi] == rows.a).all() and (full.state[fi] == rows.state).all()


def test_layer_applies_to_fixed_topologies_of_several_shells_only():
    sc = scenario()
    world = build_world(sc)
    grid = sc.grid(duration_s=2, step_s=1)
    dyn = replace(sc, links=replace(sc.links, topology="dynamic"))
    assert isinstance(link_model(dyn, grid, world).isl, DynamicTopology)
    one = parse_scenario(THREE_SHELLS.split("[[constellation.shells]]\naltitude_km = 600.0")[0]
                         + '[ground]\nstations = "none"\n')
    assert isinstance(link_model(one, grid, build_world(one)).isl, PlusGrid)
    clu = replace(sc, links=replace(sc.links, topology="cluster"))
    assert isinstance(link_model(clu, grid, world).isl, WithInterShell)


def test_static_list_across_shells_is_not_proposed_twice(tmp_path):
    """A fixed list that already joins two shells keeps its rows; the layer skips the pair."""
    sc = scenario()
    world = build_world(sc)
    grid = sc.grid(duration_s=4, step_s=2)
    orb = propagate(world.constellation, grid[:1])
    shell = shell_labels(world.constellation, world.n_sats)
    r = orb.r_km[0]
    # Every satellite of shell 1 with its nearest satellite of shell 0.
    s0, s1 = np.nonzero(shell == 0)[0], np.nonzero(shell == 1)[0]
    near = s0[np.argmin(np.linalg.norm(r[s1, None] - r[None, s0], axis=2), axis=1)]
    path = tmp_path / "isls.txt"
    path.write_text("".join(f"{a} {b}\n" for a, b in zip(near, s1, strict=True)))
    st = replace(sc, links=replace(sc.links, topology="static", static_file=str(path)))
    model = link_model(st, grid, world)
    assert model.n_terminals is None
    for _, table in model_tables(model, world.constellation, grid):
        isl = table.kind == ISL
        keys = table.a[isl].astype(np.int64) * (1 << 32) + table.b[isl]
        assert np.unique(keys).shape[0] == keys.shape[0]
        listed = set(zip(np.minimum(near, s1).tolist(), np.maximum(near, s1).tolist(),
                         strict=True))
        x = isl & inter_shell_mask(table.a, table.b, shell)
        extra = set(zip(table.a[x].tolist(), table.b[x].tolist(), strict=True)) - listed
        assert extra and len(listed) + len(extra) == int(x.sum())


def test_bad_value_names_the_key():
    with pytest.raises(ScenarioError, match=r"\[links\]\.inter_shell_terminals must be >= 0"):
        scenario("inter_shell_terminals = -1")


def test_two_heads_per_satellite_are_capped():
    model, world, _, tables = run(scenario("inter_shell_terminals = 2"), duration_s=20)
    assert model.n_terminals == 6
    shell = shell_labels(world.constellation, model.n_sats)
    top = 0
    for _, table in tables:
        x = (table.kind == ISL) & inter_shell_mask(table.a, table.b, shell)
        held = x & (table.state != DOWN)
        deg = np.bincount(table.a[held], minlength=model.n_sats) + np.bincount(
            table.b[held], minlength=model.n_sats)
        assert deg.max() <= 2
        top = max(top, deg.max())
    assert top == 2


def test_state_must_advance():
    sc = scenario()
    world = build_world(sc)
    grid = sc.grid(duration_s=2, step_s=1)
    model = link_model(sc, grid, world)
    layer = model.isl.layer
    assert isinstance(layer, InterShellLinks)
    orb = propagate(world.constellation, grid)
    sun = np.asarray(sun_direction_ecef(grid))
    layer.step(0, orb.r_km[0], orb.v_km_s[0], sun[0])
    with pytest.raises(Exception, match="advance in time"):
        layer.step(0, orb.r_km[0], orb.v_km_s[0], sun[0])


def test_time_windows_match_intra_shell_rows_exactly_and_inter_shell_statistically():
    from meshnet.distributed import windowed_link_tables

    sc = scenario()
    grid = sc.grid()
    model, world, _, single = run(sc)
    shell = shell_labels(world.constellation, model.n_sats)
    with ThreadPoolExecutor(2) as ex:
        split = list(windowed_link_tables(sc, grid, ex, 3, chunk_steps=8))
    for (t1, a), (t2, b) in zip(single, split, strict=True):
        assert t1 == t2
        xa = (a.kind == ISL) & inter_shell_mask(a.a, a.b, shell)
        xb = (b.kind == ISL) & inter_shell_mask(b.a, b.b, shell)
        for col in ("a", "b", "state", "reason"):
            assert (getattr(a, col)[~xa] == getattr(b, col)[~xb]).all()
        ua, ub = int((xa & (a.state == UP)).sum()), int((xb & (b.state == UP)).sum())
        assert abs(ua - ub) <= 0.15 * ua


def _kdtree_candidates(r, free, shell, k, range_km):
    """Reference: one scipy k-d tree per shell, queried with the free satellites of the
    other shells (the search the grid kernel replaced)."""
    from scipy.spatial import cKDTree

    free = free[shell[free] >= 0]
    pairs = set()
    for s in np.unique(shell[free]):
        tids = free[shell[free] == s]
        ids = free[shell[free] != s]
        kk = min(k, tids.shape[0])
        _, idx = cKDTree(r[tids]).query(r[ids], k=kk, distance_upper_bound=range_km)
        idx = np.asarray(idx).reshape(ids.shape[0], kk)
        for row, i in zip(idx, ids, strict=True):
            for j in tids[row[row < tids.shape[0]]]:
                pairs.add((min(int(i), int(j)), max(int(i), int(j))))
    out = sorted(pairs)
    return [p[0] for p in out], [p[1] for p in out]


@pytest.mark.parametrize("range_km", [800.0, 2500.0, 5400.0, np.inf])
def test_candidate_search_matches_kdtrees_on_clustered_shells(range_km):
    """Clusters (as the satellites left free near the poles), shells with fewer than k free
    satellites, and an unbounded range: the grid search finds the k-d trees' pairs."""
    rng = np.random.default_rng(7)
    n = 900
    centre = rng.normal(size=(6, 3))
    r = centre[rng.integers(0, 6, n)] + 0.15 * rng.normal(size=(n, 3))
    r *= (6878.0 + rng.uniform(0, 150, n))[:, None] / np.linalg.norm(r, axis=1)[:, None]
    # Shells 0-2 crowded, 3-6 with 1 to 4 satellites, some without a shell.
    shell = rng.integers(0, 3, n)
    shell[rng.choice(n, 10, replace=False)] = [3, 4, 4, 5, 5, 5, 6, 6, 6, 6]
    shell[rng.choice(np.nonzero(shell < 3)[0], 20, replace=False)] = -1
    free = np.sort(rng.choice(n, 700, replace=False))
    for k in (1, 4, 8):
        a, b = intershell_candidates(r, free, shell, k, range_km)
        wa, wb = _kdtree_candidates(r, free, shell, k, range_km)
        assert a.tolist() == wa and b.tolist() == wb
        assert a.dtype == np.int32 and (a < b).all()
