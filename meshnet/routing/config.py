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

from ..config import option
from ..errors import ScenarioError


def _policy_names() -> list[str]:
    from .policies import ROUTING_POLICIES

    return ROUTING_POLICIES.names()


@dataclass(frozen=True)
class RoutingConfig:
    """How traffic finds its way through the mesh (see :mod:`meshnet.routing.policies`)."""

    policy: str = option(
        "shortest_delay", choices=_policy_names,
        doc="shortest_delay, min_hop, k_shortest, edge_disjoint, ecmp, widest, load_aware, "
            "periodic or predictive")
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

    def validate(self, name: str, where: str) -> None:
        if self.policy == "predictive" and self.horizon_s <= 0.0:
            raise ScenarioError(
                f"{where}: [{name}].horizon_s must be > 0 for policy = 'predictive'")
