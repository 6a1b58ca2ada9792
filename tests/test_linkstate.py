"""Link-state convergence on small meshes, against times worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from research_scenario import write_small

from meshnet.cli import main
from meshnet.graph import Snapshot
from meshnet.routing import make_policy
from meshnet.routing.config import LinkStateConfig, RoutingConfig
from meshnet.routing.linkstate import BLACK_HOLE, DELIVERED, LOOP
from meshnet.units import C_KM_S

ONE_MS_KM = C_KM_S * 1e-3  # a link 1 ms long
NAMES = np.array([f"s{i}" for i in range(5)], dtype=object)
RING = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]


def _snap(t_s, links):
    a, b = zip(*links, strict=True)
    return Snapshot.from_links(int(round(t_s * 1e9)), NAMES, np.zeros(5, np.int8), a, b,
                               [ONE_MS_KM] * len(a), [1e9] * len(a))


def _policy(name="shortest_delay", **timers):
    cfg = RoutingConfig(policy=name, linkstate=LinkStateConfig(enabled=True, **timers))
    return make_policy(cfg, 5)


@pytest.mark.parametrize("timers", [{}, {"detect_s": 0.1, "per_hop_s": 0.01,
                                         "spf_delay_s": 0.05}])
def test_install_times_by_hand(timers):
    """Ring 0-1-2-3-4-0 of 1 ms links; link 1-2 fails at t = 1 s. The update floods from 1 and
    2 over the remaining line 2-3-4-0-1: nodes 1, 2 at 0 hops, 0 and 3 at one hop, 4 at two;
    each hop costs 1 ms of propagation plus per_hop_s."""
    ls = _policy(**timers)
    cfg = LinkStateConfig(**timers)
    ls.route(_snap(0.9, RING), [0], [2])
    ls.route(_snap(1.0, [x for x in RING if x != (1, 2)]), [0], [2])
    hop = 1e-3 + cfg.per_hop_s
    base = 1.0 + cfg.detect_s + cfg.spf_delay_s
    expected = [base + hop, base, base, base + hop, base + 2 * hop]
    np.testing.assert_allclose(ls.install_times_s(0), expected, atol=1e-12)
    assert ls.events[0]["converged_s"] == pytest.approx(cfg.detect_s + 2 * hop
                                                        + cfg.spf_delay_s)
    assert ls.events[0]["a"] == 1 and ls.events[0]["b"] == 2 and not ls.events[0]["up"]


def _status(routes):
    if routes.pair_reachable[0]:
        return DELIVERED
    return BLACK_HOLE if routes.pair_blackholed[0] else -1


def test_black_hole_then_micro_loop_then_converged():
    """Pair 0 -> 2 goes 0-1-2 before the failure. Defaults: 1 and 2 install at 1.35 s,
    0 and 3 at 1.356 s, 4 at 1.362 s.

    - before 1.35 s node 1 still forwards into the dead link: black hole;
    - in [1.35, 1.356) node 1 sends back to 0, which still sends to 1: a loop;
    - from 1.356 s: 0-4-3-2 (node 4 being stale does not matter: its old and new next hop
      towards 2 are both 3)."""
    ls = _policy()
    down = [x for x in RING if x != (1, 2)]
    assert _status(ls.route(_snap(0.9, RING), [0], [2])) == DELIVERED
    seq = []
    for t in (1.0, 1.2, 1.349, 1.352, 1.355, 1.357, 1.5):
        r = ls.route(_snap(t, down), [0], [2])
        seq.append((t, _status(r), ls.looped_pair_steps, ls.blackholed_pair_steps))
    assert [s[1] for s in seq] == [BLACK_HOLE] * 5 + [DELIVERED] * 2
    assert [s[2] for s in seq] == [0, 0, 0, 1, 2, 2, 2]  # the loop steps
    assert [s[3] for s in seq] == [1, 2, 3, 3, 3, 3, 3]  # the black-hole steps
    r = ls.route(_snap(1.6, down), [0], [2])
    assert r.nodes_of(0).tolist() == [0, 4, 3, 2]
    assert LOOP == 3


def test_new_link_used_only_once_known():
    """A chord 0-2 appears at t = 2 s: node 0 uses it only after hearing (2.35 s at 0, an
    end of the new link)."""
    ls = _policy()
    ls.route(_snap(1.9, RING), [0], [2])
    chord = RING + [(0, 2)]
    assert ls.route(_snap(2.0, chord), [0], [2]).nodes_of(0).tolist() == [0, 1, 2]
    assert ls.route(_snap(2.3, chord), [0], [2]).nodes_of(0).tolist() == [0, 1, 2]
    assert ls.route(_snap(2.36, chord), [0], [2]).nodes_of(0).tolist() == [0, 2]


def test_source_routed_policies_black_hole_until_the_source_knows():
    """k_shortest source-routes on the source's view: node 0 learns at 1.356 s."""
    ls = _policy("k_shortest")
    down = [x for x in RING if x != (1, 2)]
    ls.route(_snap(0.9, RING), [0], [2])
    ls.route(_snap(1.0, down), [0], [2])  # the change is seen at this step
    r = ls.route(_snap(1.352, down), [0], [2])
    assert r.pair_blackholed[0] and not r.pair_reachable[0]
    r = ls.route(_snap(1.357, down), [0], [2])
    assert r.pair_reachable[0]
    assert [r.nodes_of(j).tolist() for j in range(r.n_paths)] == [[0, 4, 3, 2]]
    assert ls.blackholed_pair_steps == 2 and ls.looped_pair_steps == 0


def test_without_linkstate_routes_are_instant():
    pol = make_policy(RoutingConfig(policy="shortest_delay"), 5)
    down = [x for x in RING if x != (1, 2)]
    pol.route(_snap(0.9, RING), [0], [2])
    assert pol.route(_snap(1.0, down), [0], [2]).nodes_of(0).tolist() == [0, 4, 3, 2]


def test_run_counts_linkstate_losses(tmp_path, capsys):
    scen = write_small(tmp_path, routing="[routing.linkstate]\nenabled = true")
    out = tmp_path / "out"
    code = main(["run", str(scen), "--out", str(out), "-q", "--no-plots", "--step", "1",
                 "--duration", "120"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "link-state             " in printed.out and "link changes" in printed.out
    s = json.loads((out / "summary.json").read_text())
    ls = s["linkstate"]
    assert ls["link_events"] > 0
    assert 0.35 <= ls["max_convergence_s"] < 1.0  # detection + SPF + flooding over the mesh
    # with 1 s steps every ground-link handover black-holes its pairs for one step
    assert ls["blackholed_pair_steps"] > 0 and ls["looped_pair_steps"] >= 0
    assert s["blackholed_s"] > 0.0


def test_views_beyond_max_views_share_the_most_stale():
    """With one view allowed, every node routes on the most stale view: node 1 keeps
    forwarding into the dead link (a black hole) where it would otherwise loop."""
    ls = _policy(max_views=1)
    down = [x for x in RING if x != (1, 2)]
    ls.route(_snap(0.9, RING), [0], [2])
    ls.route(_snap(1.0, down), [0], [2])
    r = ls.route(_snap(1.352, down), [0], [2])
    assert r.pair_blackholed[0] and ls.looped_pair_steps == 0
    assert ls.route(_snap(1.4, down), [0], [2]).nodes_of(0).tolist() == [0, 4, 3, 2]
