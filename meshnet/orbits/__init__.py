"""Satellites and where they are: constellations (Walker shells, TLE catalogues, Hypatia
directories, formation clusters), ground stations, and fast SGP4 propagation to the
Earth-fixed frame.

Importing this package compiles nothing; the Numba kernels compile (or load from the cache)
on the first large propagation.

Examples
--------
>>> from datetime import datetime, UTC
>>> from meshnet.orbits import ShellConfig, TimeGrid, walker_constellation
>>> from meshnet.orbits.propagate import propagate
>>> epoch = datetime(2025, 1, 1, tzinfo=UTC)
>>> c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=4,
...                                       sats_per_plane=6)], epoch)
>>> propagate(c, TimeGrid.from_duration(epoch, 60, 1)).r_km.shape
(60, 24, 3)
"""

from __future__ import annotations

from ..timegrid import TimeGrid
from .config import ClusterConfig, ConstellationConfig, GroundConfig, ShellConfig
from .constellation import Constellation, ShellInfo, load_constellation
from .ground import GroundStations, load_ground

# The function ``propagate`` is not re-exported here: it would shadow the submodule
# ``meshnet.orbits.propagate`` (import it from there).
from .propagate import Orbits, ecef_to_geodetic, sun_direction_ecef
from .walker import walker_constellation

__all__ = [
    "ClusterConfig",
    "Constellation",
    "ConstellationConfig",
    "GroundConfig",
    "GroundStations",
    "Orbits",
    "ShellConfig",
    "ShellInfo",
    "TimeGrid",
    "ecef_to_geodetic",
    "load_constellation",
    "load_ground",
    "sun_direction_ecef",
    "walker_constellation",
]
