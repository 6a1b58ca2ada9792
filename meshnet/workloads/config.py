"""The ``[traffic.jobs.trace]`` table (``kind = "trace"``); the model and layout tables live in
:mod:`.model` and :mod:`.layout`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ScenarioError

TRACE_FORMATS = ("aicb", "chakra")


@dataclass(frozen=True)
class TraceSpec:
    """``[traffic.jobs.trace]``: a workload trace to replay on the mesh (docs/workloads.md)."""

    format: str = option(choices=TRACE_FORMATS,
                         doc="aicb (SimAI/AICB workload text file) or chakra (Chakra ET in "
                             "JSON form: a folder of <name>.<rank>.json)")
    path: str = option(doc="the trace file (aicb) or folder (chakra), relative to the "
                           "scenario file's folder")
    time_unit_s: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="seconds per time unit of the trace; unset = 1e-9 for aicb (SimAI counts "
            "nanoseconds), 1e-6 for chakra (duration_micros)")

    def validate(self, name: str, where: str) -> None:
        if not self.path.strip():
            raise ScenarioError(f"{where}: [{name}].path is empty; give the trace's path")
        path = Path(self.path).expanduser()
        if not path.is_absolute() and where and Path(where).suffix == ".toml":
            path = Path(where).parent / path
        if not path.exists():
            raise ScenarioError(f"{where}: [{name}].path = '{self.path}': no such "
                                f"{'folder' if self.format == 'chakra' else 'file'} ({path})")
        object.__setattr__(self, "path", str(path))
