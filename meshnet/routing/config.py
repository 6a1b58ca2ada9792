"""The ``[routing]`` scenario table.

Examples
--------
>>> from meshnet.config import parse_table
>>> cfg = parse_table(RoutingConfig, {"policy": "k_shortest", "k": 4}, "routing", "demo.toml")
>>> cfg.policy, cfg.k, cfg.ground_relay
('k_shortest', 4, False)
>>> parse_table(RoutingConfig, {"policy": "widest_path"}, "routing", "x.toml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
meshnet.errors.ScenarioError: x.toml: [routing].policy = 'widest_path' is not known; did you ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import option
from ..errors import ScenarioError


def _policy_names() -> list[str]:
    from .policies import ROUTING_POLICIES

    return ROUTING_POLICIES.choices()


@dataclass(frozen=True)
class LinkStateConfig:
    """``[routing.linkstate]``: routes computed like a link-state protocol (OSPF, IS-IS).

    A link change is detected by its two ends after ``detect_s``, flooded hop by hop over the
    links up at that moment (each hop adds its propagation delay and ``per_hop_s`` of
    processing), and every node recomputes its table ``spf_delay_s`` after the news reaches
    it. Traffic follows each node's own, possibly stale, table; looped and black-holed traffic
    is counted. Defaults and their sources: docs/routing_research.md.
    """

    enabled: bool = option(False, doc="route on each node's own, lagging view of the mesh")
    detect_s: float = option(
        0.15, min=0.0,
        doc="link failure detection at each end (BFD, RFC 5880: 3 x 50 ms)")
    per_hop_s: float = option(
        0.005, min=0.0,
        doc="flooding: receive, check and forward one update at one hop (a few ms, "
            "Francois et al. 2005)")
    spf_delay_s: float = option(
        0.2, min=0.0,
        doc="delay from an update's arrival to the new table (Junos spf-options delay "
            "default 200 ms)")
    max_views: int = option(
        64, min=1, max=4096,
        doc="most distinct node views computed per step; nodes beyond share the most "
            "stale view kept")


@dataclass(frozen=True)
class OptimumConfig:
    """``[routing.optimum]``: the best the mesh could do, by linear programming (HiGHS).

    Every ``every_s`` seconds the run solves, for the traffic its policy carried, the minimum
    maximum link utilisation (equivalently the maximum concurrent flow) and the maximum total
    throughput under the offered demands, over ``k_paths`` least-delay candidate paths per
    pair grown by column generation until the optimality gap is below ``gap``. See
    :mod:`meshnet.routing.optimum`.
    """

    enabled: bool = option(False, doc="solve the optimum alongside the run")
    every_s: float = option(10.0, min=0.0, min_inclusive=False,
                            doc="seconds between optimum solves")
    k_paths: int = option(3, min=1, max=32, doc="initial candidate paths per pair")
    column_generation: bool = option(
        True, doc="add improving paths (shortest path under the LP's link prices) until the "
                  "gap is met; false: the k candidate paths only (gap reported)")
    gap: float = option(1e-3, min=0.0, max=1.0,
                        doc="relative optimality gap at which column generation stops")
    max_rounds: int = option(30, min=1, max=1000, doc="most column-generation rounds")


@dataclass(frozen=True)
class RoutingConfig:
    """How traffic finds its way through the mesh (see :mod:`meshnet.routing.policies`)."""

    policy: str = option(
        "shortest_delay", choices=_policy_names,
        doc="shortest_delay, min_hop, k_shortest, edge_disjoint, ecmp, widest, load_aware, "
            "periodic or predictive; or your own: package.module:Name, path/to/file.py:Name "
            "or an installed entry point (docs/routing_research.md)")
    params: Any = option(
        default_factory=dict,
        doc="[routing.params]: keyword arguments for a policy of your own")
    on_error: str = option(
        "stop", choices=("stop", "fallback"),
        doc="a policy of your own raising or answering invalid paths: stop the run with one "
            "line, or route that step by shortest_delay and count it")
    ground_relay: bool = option(
        False, doc="ground stations may relay transit traffic (Hypatia: false)")
    k: int = option(3, min=1, max=64, doc="k_shortest / edge_disjoint: paths per pair")
    split: str = option(
        "equal", choices=("equal", "inverse_delay"),
        doc="k_shortest / edge_disjoint: share of traffic per path")
    ecmp_tolerance: float = option(
        1e-9, min=0.0, max=1.0,
        doc="ecmp: relative delay tolerance for two paths to count as equal")
    ecmp_max_paths: int = option(16, min=1, max=1024,
                                 doc="ecmp: most equal-cost paths kept per pair")
    load_alpha: float = option(
        1.0, min=0.0,
        doc="load_aware: link weight = delay_s * (1 + load_alpha * utilisation)")
    interval_s: float = option(
        10.0, min=0.0, min_inclusive=False,
        doc="periodic: seconds between recomputations of the forwarding tables")
    horizon_s: float = option(
        60.0, min=0.0, doc="predictive: seconds of known future topology used")
    predictive_max_stretch: float = option(
        1.5, min=1.0,
        doc="predictive: longest delay, as a multiple of the least delay, accepted for a "
            "longer-lived or kept path")

    linkstate: LinkStateConfig = option(default_factory=LinkStateConfig,
                                        doc="link-state convergence (see below)")
    optimum: OptimumConfig = option(default_factory=OptimumConfig,
                                    doc="LP optimum reference (see below)")

    def validate(self, name: str, where: str) -> None:
        from .plugins import check_plugin
        from .policies import ROUTING_POLICIES

        if not isinstance(self.params, dict):
            raise ScenarioError(f"{where}: [{name}].params expected a table such as "
                                "[routing.params], found " + type(self.params).__name__)
        check_plugin(ROUTING_POLICIES, self, "policy", name, where)
        if self.policy == "predictive" and self.horizon_s <= 0.0:
            raise ScenarioError(
                f"{where}: [{name}].horizon_s must be > 0 for policy = 'predictive'")
