"""meshnet: fast emulation of laser-linked satellite networks carrying AI training traffic.

Importing meshnet compiles nothing; Numba kernels compile (or load from cache) on first use.
"""

from __future__ import annotations

import os as _os

# Parallel kernels run in short bursts between serial work; with OpenMP's default busy-wait
# the idle worker threads would steal the cores the serial code needs. Set before Numba loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from .errors import MeshnetError, NodeNameError, ScenarioError, TLEError  # noqa: E402
from .graph import Snapshot  # noqa: E402
from .timegrid import TimeGrid  # noqa: E402

__all__ = [
    "MeshnetError",
    "NodeNameError",
    "ScenarioError",
    "Snapshot",
    "TLEError",
    "TimeGrid",
    "__version__",
]
