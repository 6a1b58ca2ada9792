"""The physical objects a scenario describes: satellites and ground stations, with node ids.

Node ids are int32: satellites ``0..N-1`` in constellation order, then ground stations
``N..N+G-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import GROUND, SATELLITE


@dataclass(frozen=True)
class World:
    """Satellites and ground stations of a scenario, loaded once per run."""

    constellation: object
    ground: object
    hypatia: object | None = None

    @property
    def n_sats(self) -> int:
        return int(self.constellation.n)

    @property
    def n_ground(self) -> int:
        return len(self.ground.names)

    @property
    def n_nodes(self) -> int:
        return self.n_sats + self.n_ground

    @property
    def node_names(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.constellation.names, dtype=object),
                               np.asarray(self.ground.names, dtype=object)])

    @property
    def node_kind(self) -> np.ndarray:
        kind = np.full(self.n_nodes, SATELLITE, dtype=np.int8)
        kind[self.n_sats:] = GROUND
        return kind


def build_world(scenario) -> World:
    """Load the constellation and ground stations a scenario names.

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> w = build_world(load_scenario("starlink_550"))
    >>> w.n_sats, w.n_ground
    (1584, 100)
    """
    from .orbits.constellation import load_constellation
    from .orbits.ground import load_ground

    cfg = scenario.constellation
    if getattr(cfg, "hypatia_dir", None):
        from .orbits.hypatia import load_hypatia_dir

        net = load_hypatia_dir(scenario.base_dir / cfg.hypatia_dir)
        return World(constellation=net.constellation, ground=net.ground, hypatia=net)
    constellation = load_constellation(cfg, scenario.run.epoch, scenario.base_dir)
    ground = load_ground(scenario.ground, scenario.base_dir)
    return World(constellation=constellation, ground=ground)
