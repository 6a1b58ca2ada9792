"""Policies from outside meshnet: files, modules, entry points, checked answers, errors."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from research_scenario import write_small

from meshnet.cli import main
from meshnet.errors import ScenarioError
from meshnet.graph import Snapshot
from meshnet.routing import make_policy
from meshnet.routing.config import RoutingConfig
from meshnet.routing.protocol import PolicyError
from meshnet.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

POLICY = '''
import numpy as np
from scipy.sparse.csgraph import shortest_path

class MinHopMine:
    """Least-hop paths by scipy, written outside meshnet; records what it was given."""
    seen = []

    def __init__(self, tag="none", mode="ok"):
        self.tag, self.mode = tag, mode

    def route(self, req):
        MinHopMine.seen.append((self.tag, req.step, req.t_s, req.edge_utilisation is None,
                                len(req.future), dict(req.params)))
        snap = req.snapshot
        g = snap.to_scipy("delay_s").astype(bool).astype(float)
        out = []
        for s, d in zip(req.src.tolist(), req.dst.tolist()):
            # no transit through non-relay nodes: drop their out-edges except the source's
            h = g.copy().tolil()
            for u in np.flatnonzero(~req.relay).tolist():
                if u != s:
                    h.rows[u] = []
                    h.data[u] = []
            _, pred = shortest_path(h.tocsr(), indices=s, return_predecessors=True,
                                    unweighted=True)
            if pred[d] < 0:
                out.append(None)
                continue
            path = [d]
            while path[-1] != s:
                path.append(int(pred[path[-1]]))
            path = path[::-1]
            if self.mode == "raise" and req.step == 2:
                raise ZeroDivisionError("boom")
            if self.mode == "down" and req.step == 1:
                path = [s, d]
            if self.mode == "shares" and req.step == 1:
                out.append([(path, 0.5), (path, 0.2)])
                continue
            out.append(path)
        return out
'''


def _line_snapshot():
    names = np.array(["s0", "s1", "s2", "g0"], dtype=object)
    kind = np.array([0, 0, 0, 1], np.int8)
    return Snapshot.from_links(0, names, kind, [0, 1, 2], [1, 2, 3], [1000.0, 1000.0, 800.0],
                               [1e9, 1e9, 1e9])


@pytest.fixture()
def policy_file(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "pol.py").write_text(POLICY)
    return d / "pol.py"


def _run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_file_policy_runs_from_a_scenario_with_params(tmp_path, policy_file, capsys):
    scen = write_small(tmp_path, routing='policy = "mine/pol.py:MinHopMine"',
                       extra='\n[routing.params]\ntag = "hello"\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots"], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["routing"] == f"{policy_file.resolve()}:MinHopMine"
    assert summary["policy_errors"] == 0
    assert summary["jobs"][0]["steps_done"] >= 1
    assert summary["background_carried_gbps"] > 0
    mod = [m for n, m in sys.modules.items() if n.startswith("meshnet_plugin_pol_")]
    seen = mod[-1].MinHopMine.seen
    assert [s[1] for s in seen] == list(range(len(seen)))  # step index
    assert seen[0][0] == "hello" and seen[0][5] == {"tag": "hello"}
    assert seen[0][3] and not seen[1][3]  # no utilisation at the first step, then some
    assert seen[1][2] == pytest.approx(2.0)  # t_s of the second step
    assert all(s[4] > 0 for s in seen[:-1])  # user policies get the known future


def test_same_paths_as_builtin_min_hop(policy_file):
    snap = _line_snapshot()
    cfg = RoutingConfig(policy=f"{policy_file}:MinHopMine")
    mine = make_policy(cfg, 4)
    ref = make_policy(RoutingConfig(policy="min_hop"), 4)
    src, dst = np.array([0, 3, 1]), np.array([3, 0, 2])
    a, b = mine.route(snap, src, dst), ref.route(snap, src, dst)
    np.testing.assert_array_equal(a.path_nodes, b.path_nodes)
    np.testing.assert_array_equal(a.path_edges, b.path_edges)
    np.testing.assert_allclose(a.path_delay_s, b.path_delay_s)


@pytest.mark.parametrize("mode, step, text", [
    ("raise", 2, "route() raised ZeroDivisionError: boom"),
    ("down", 1, "which is down at this step"),
    ("shares", 1, "shares sum to 0.7, not 1"),
])
def test_policy_errors_stop_the_run_in_one_line(tmp_path, policy_file, capsys, mode, step,
                                                 text):
    scen = write_small(tmp_path, routing='policy = "mine/pol.py:MinHopMine"',
                       extra=f'\n[routing.params]\nmode = "{mode}"\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots"], capsys)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"at step {step} (t = {2 * step:g} s)" in line and text in line
    if mode != "raise":
        assert ", pair " in line and " -> " in line
    assert not out.exists()  # nothing half written
    assert not list(tmp_path.glob(".out*"))


def test_fallback_keeps_the_run_and_counts(tmp_path, policy_file, capsys):
    scen = write_small(tmp_path, routing='policy = "mine/pol.py:MinHopMine"\n'
                                         'on_error = "fallback"',
                       extra='\n[routing.params]\nmode = "raise"\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots"], capsys)
    assert code == 0, err
    assert "warning" in err and "raised ZeroDivisionError" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy_errors"] == 1
    assert "step 2" in summary["policy_first_error"]


@pytest.mark.parametrize("answer, text", [
    (lambda s, d: [[s, 1, 2]], "ends at node 2 's2', not at the destination"),
    (lambda s, d: [[1, 2, 3]], "starts at node 1"),
    (lambda s, d: [[s, 1, 0, 1, 2, d]], "twice (a loop)"),
    (lambda s, d: [[(np.array([s, 1, 2, 3]), 1.5)]], "shares sum to 1.5"),
    (lambda s, d: [[(np.array([s, 1, 2, 3]), -1.0), ([s, 1, 2, 3], 2.0)]], "finite number"),
    (lambda s, d: [[s, 1, 2, 3], None], "returned 2 entries for 1 pairs"),
    (lambda s, d: 42, "returned int"),
    (lambda s, d: [[s, 9]], "node id 9 is not in [0, 4)"),
])
def test_invalid_answers_are_named_with_step_and_pair(answer, text):
    class P:
        def route(self, req):
            return answer(int(req.src[0]), int(req.dst[0]))

    from meshnet.routing.protocol import ExternalPolicy

    pol = ExternalPolicy(P(), "P", n_nodes=4)
    with pytest.raises(PolicyError) as exc:
        pol.route(_line_snapshot(), [0], [3])
    assert "routing policy 'P' at step 0 (t = 0 s)" in str(exc.value)
    assert text in str(exc.value)


def test_relay_through_ground_is_refused():
    names = np.array(["s0", "g", "s1"], dtype=object)
    snap = Snapshot.from_links(0, names, np.array([0, 1, 0], np.int8), [0, 1], [1, 2],
                               [500.0, 500.0], [1e9, 1e9])

    class ViaGround:
        def route(self, req):
            return [[0, 1, 2]]

    from meshnet.routing.protocol import ExternalPolicy

    with pytest.raises(PolicyError, match="may not relay"):
        ExternalPolicy(ViaGround(), "V", n_nodes=3).route(snap, [0], [2])


def test_bad_specs_fail_at_load_in_one_line(tmp_path, policy_file):
    for spec, text in [("mine/nope.py:X", "no such Python file"),
                       ("mine/pol.py:Nope", "has no attribute 'Nope'"),
                       ("no_such_pkg_xyz.mod:X", "no module named 'no_such_pkg_xyz'"),
                       ("shortest_delya", "did you mean 'shortest_delay'")]:
        scen = write_small(tmp_path, routing=f'policy = "{spec}"')
        with pytest.raises(ScenarioError) as exc:
            load_scenario(scen)
        msg = str(exc.value)
        assert text in msg and "[routing].policy" in msg and "\n" not in msg, msg
    (tmp_path / "mine" / "broken.py").write_text("import math\nmath.sqrt(-1)\n")
    scen = write_small(tmp_path, routing='policy = "mine/broken.py:X"')
    with pytest.raises(ScenarioError, match="importing .* failed: ValueError: math domain"):
        load_scenario(scen)
    scen = write_small(tmp_path, routing='policy = "mine/pol.py:MinHopMine"\nparams = 3')
    with pytest.raises(ScenarioError, match=r"\[routing\].params expected a table"):
        load_scenario(scen)


def test_bad_params_name_the_table(tmp_path, policy_file):
    cfg = RoutingConfig(policy=f"{policy_file}:MinHopMine", params={"nope": 1})
    with pytest.raises(PolicyError, match=r"MinHopMine\(\*\*\[routing.params\]\) failed"):
        make_policy(cfg, 4)


def _fake_dist(tmp_path, group, name, target, source):
    """A tiny installed distribution (dist-info with entry_points.txt) on a new sys.path."""
    site = tmp_path / "site"
    pkg = site / "research_pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(source)
    info = site / "research_pkg-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: research-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")
    return site


def test_installed_entry_point_policy(tmp_path, monkeypatch):
    site = _fake_dist(tmp_path, "meshnet.routing", "hop_by_scipy", "research_pkg:Policy",
                      textwrap.dedent(POLICY).replace("class MinHopMine", "class Policy")
                      .replace("MinHopMine.seen", "Policy.seen"))
    monkeypatch.syspath_prepend(str(site))
    scen = write_small(tmp_path, routing='policy = "hop_by_scipy"')
    sc = load_scenario(scen)
    assert sc.routing.policy == "hop_by_scipy"
    pol = make_policy(sc.routing, 4)
    routes = pol.route(_line_snapshot(), [0], [3])
    assert routes.nodes_of(0).tolist() == [0, 1, 2, 3]
    bad = write_small(tmp_path, routing='policy = "hop_by_scipyy"')
    with pytest.raises(ScenarioError, match="'hop_by_scipyy' is not known"):
        load_scenario(bad)
    from meshnet.routing import ROUTING_POLICIES

    with pytest.raises(ScenarioError, match="installed: hop_by_scipy"):
        ROUTING_POLICIES.get("hop_by_scipyy")


def test_api_registration():
    from meshnet.routing import ROUTING_POLICIES

    class Straight:
        def route(self, req):
            return [[int(s), 1, 2, int(d)] for s, d in zip(req.src, req.dst, strict=True)]

    ROUTING_POLICIES.register("api_straight")(Straight)
    try:
        pol = make_policy(RoutingConfig(policy="api_straight"), 4)
        assert pol.route(_line_snapshot(), [0], [3]).nodes_of(0).tolist() == [0, 1, 2, 3]
    finally:  # the registry is process-wide: leave it as found (docs list its names)
        ROUTING_POLICIES._items.pop("api_straight")
    assert "api_straight" not in ROUTING_POLICIES.names()


def test_builtin_policies_unchanged():
    from meshnet.routing.policies import ROUTING_POLICIES, RoutingPolicy

    for name in ROUTING_POLICIES.names():
        if name.startswith("api_"):
            continue
        pol = make_policy(RoutingConfig(policy=name), 4)
        assert isinstance(pol, RoutingPolicy), name


def test_example_policies_run(tmp_path, capsys):
    for spec, params in [("contact_plan.py:ContactPlan", "min_contact_s = 20.0"),
                         ("least_loaded.py:LeastLoaded", "k = 3\nsplit = true")]:
        scen = write_small(tmp_path, routing=f'policy = "{EXAMPLES / spec}"\nhorizon_s = 10',
                           extra=f"\n[routing.params]\n{params}\n")
        out = tmp_path / ("out_" + spec.split(".")[0])
        code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots"], capsys)
        assert code == 0, err
        s = json.loads((out / "summary.json").read_text())
        assert s["policy_errors"] == 0 and s["background_carried_gbps"] > 0


# ---------------------------------------------------------------- allocation and topology

ALLOC = '''
import numpy as np

def equal_share(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
                weight, demand_bps, reachable):
    """Every path gets the same rate: the tightest edge's capacity over its path count."""
    n_paths = len(path_edge_indptr) - 1
    counts = np.diff(path_edge_indptr)
    per_edge = np.bincount(path_edges, minlength=len(capacity_bps))
    share = np.where(per_edge > 0, capacity_bps / np.maximum(per_edge, 1), np.inf)
    rate = np.array([share[path_edges[path_edge_indptr[j]:path_edge_indptr[j + 1]]].min()
                     if counts[j] else 0.0 for j in range(n_paths)])
    if demand_bps is not None:
        flow_of = np.repeat(np.arange(len(flow_path_indptr) - 1), np.diff(flow_path_indptr))
        per_path = np.asarray(demand_bps)[flow_of] / np.diff(flow_path_indptr)[flow_of]
        rate = np.minimum(rate, per_path)
    flow = np.add.reduceat(np.append(rate, 0.0), flow_path_indptr[:-1]) * (
        np.diff(flow_path_indptr) > 0)
    return rate, flow

def greedy(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, *rest):
    """Wrong on purpose: every path at full capacity."""
    n_paths = len(path_edge_indptr) - 1
    rate = np.full(n_paths, float(np.max(capacity_bps)))
    flow = np.add.reduceat(np.append(rate, 0.0), flow_path_indptr[:-1]) * (
        np.diff(flow_path_indptr) > 0)
    return rate, flow
'''


def test_allocation_plugin_runs_and_is_checked(tmp_path, capsys):
    (tmp_path / "alloc.py").write_text(ALLOC)
    scen = write_small(tmp_path, extra='\n[allocation]\nmethod = "alloc.py:equal_share"\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots"], capsys)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["allocation"].endswith("alloc.py:equal_share")
    assert s["jobs"][0]["steps_done"] >= 1
    scen = write_small(tmp_path, extra='\n[allocation]\nmethod = "alloc.py:greedy"\n')
    code, _, err = _run(["run", scen, "--out", tmp_path / "o2", "-q", "--no-plots"], capsys)
    assert code == 2 and "allocation method" in err and "beyond its capacity" in err
    assert not (tmp_path / "o2").exists()


def test_allocation_plugin_matches_reference_on_a_tiny_case(tmp_path):
    (tmp_path / "alloc.py").write_text(ALLOC)
    from meshnet.allocation import allocate_multipath
    from meshnet.routing.plugins import absolute_spec

    spec = absolute_spec("alloc.py:equal_share", tmp_path)
    r = allocate_multipath(spec, np.array([10e9, 4e9]), np.array([0, 1, 2]),
                           np.array([0, 2, 3]), np.array([0, 1, 0], np.int32))
    # path 0 = edges 0, 1; path 1 = edge 0. Edge 0 is shared: 5 Gbps each, but path 0 also
    # crosses edge 1 (4 Gbps alone): 4 Gbps.
    np.testing.assert_allclose(r.flow_rate_bps, [4e9, 5e9])


TOPO = '''
from meshnet.links.topology import TOPOLOGIES

PlusGrid = TOPOLOGIES.get("plus_grid")

class RingsOnly(PlusGrid):
    """Only the intra-plane links of the +Grid (no cross-plane lasers)."""

    def candidates(self, r_km, v_km_s):
        a, b = super().candidates(r_km, v_km_s)
        key = self.plane_key
        same = key[a] == key[b]
        return a[same], b[same]
'''


def test_topology_plugin(tmp_path, capsys):
    (tmp_path / "topo.py").write_text(TOPO)
    scen = write_small(tmp_path).read_text().replace(
        'topology = "plus_grid"', 'topology = "topo.py:RingsOnly"\nterminals = 4')
    (tmp_path / "small.toml").write_text(scen)
    out = tmp_path / "out"
    code, _, err = _run(["run", tmp_path / "small.toml", "--out", out, "-q", "--no-plots"],
                        capsys)
    assert code == 0, err
    import pyarrow.parquet as pq

    links = pq.read_table(out / "links.parquet").to_pandas()
    isl = links[links["kind"] == "isl"]
    # 12 planes x 12 satellites in rings: 144 links per step, all within a plane
    assert isl.groupby("t_s").size().max() == 144


def test_a_policy_cannot_change_the_graph_in_place():
    class Vandal:
        def route(self, req):
            req.snapshot.indptr[1] = 0
            return [None] * req.n_pairs

    from meshnet.routing.protocol import ExternalPolicy

    snap = _line_snapshot()
    before = snap.indptr.copy()
    with pytest.raises(PolicyError, match="route\\(\\) raised ValueError: .*read-only"):
        ExternalPolicy(Vandal(), "Vandal", n_nodes=4).route(snap, [0], [3])
    np.testing.assert_array_equal(snap.indptr, before)


def test_contact_plan_example_avoids_broken_paths(tmp_path, capsys):
    """The example does what its docstring says: with the known future it moves pairs off
    links before they drop, so no path breaks under traffic (shortest_delay's do)."""
    spec = EXAMPLES / "contact_plan.py:ContactPlan"
    scen = write_small(tmp_path, routing="horizon_s = 30",
                       extra=f'\n[compare]\nrouting = ["shortest_delay", "{spec}"]\n')
    out = tmp_path / "out"
    code, _, err = _run(["run", scen, "--out", out, "-q", "--no-plots", "--duration", "300"],
                        capsys)
    assert code == 0, err
    both = json.loads((out / "comparison.json").read_text())
    assert both["routing-shortest_delay"]["reroutes"] > 0
    assert both["routing-contact_plan.py-ContactPlan"]["reroutes"] == 0
