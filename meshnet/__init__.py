"""meshnet: fast emulation of laser-linked satellite networks carrying AI training traffic.

The curated public API. Importing meshnet compiles nothing and imports little: the names below
load their modules on first use; Numba kernels compile (or load from cache) on first call.

Examples
--------
>>> import meshnet
>>> sc = meshnet.load_scenario("starlink_550")
>>> world = meshnet.build_world(sc)
>>> orbits = meshnet.propagate(world.constellation, sc.grid(duration_s=3, step_s=1))
>>> orbits.r_km.shape
(3, 1584, 3)
"""

from __future__ import annotations

import importlib
import os as _os

# Parallel kernels run in short bursts between serial work; with OpenMP's default busy-wait
# the idle worker threads would steal the cores the serial code needs. Set before Numba loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from .errors import MeshnetError, NodeNameError, ScenarioError, TLEError  # noqa: E402
from .graph import Snapshot  # noqa: E402
from .timegrid import TimeGrid  # noqa: E402

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    "Scenario": "meshnet.scenario",
    "load_scenario": "meshnet.scenario",
    "builtin_scenarios": "meshnet.scenario",
    "World": "meshnet.world",
    "build_world": "meshnet.world",
    "Constellation": "meshnet.orbits.constellation",
    "GroundStations": "meshnet.orbits.ground",
    "propagate": "meshnet.orbits.propagate",
    "sun_direction_ecef": "meshnet.orbits.propagate",
    "LinkModel": "meshnet.links",
    "LinkTable": "meshnet.links",
    "make_policy": "meshnet.routing",
    "shortest_path_lengths": "meshnet.routing",
    "next_hop_table": "meshnet.routing",
    "k_shortest_paths": "meshnet.routing",
    "max_min_fair": "meshnet.allocation",
    "max_min_fair_multipath": "meshnet.allocation",
    "FluidEngine": "meshnet.engine",
    "run": "meshnet.runner",
    "run_scenario": "meshnet.runner",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'meshnet' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "MeshnetError",
    "NodeNameError",
    "ScenarioError",
    "Snapshot",
    "TLEError",
    "TimeGrid",
    "__version__",
    *sorted(_LAZY),
]
