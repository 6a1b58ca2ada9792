"""Traffic: compute nodes, training jobs as coflow generators, background demands.

Importing this package compiles nothing; the ring-ordering kernel compiles on first use.
"""

from __future__ import annotations

from .background import background_demands
from .collectives import (
    JOB_KINDS,
    Job,
    Phase,
    algbw_bytes_per_s,
    bus_factor,
    busbw_bytes_per_s,
    ideal_comm_time_s,
    make_job,
    ring_order,
    step_time_s,
)
from .compute import ComputeModel, compute_time_s, flops_per_step, moe_active_params
from .config import BackgroundConfig, ComputeConfig, JobConfig, TrafficConfig
from .placement import ComputeNodes, place_compute

__all__ = [
    "JOB_KINDS",
    "BackgroundConfig",
    "ComputeConfig",
    "ComputeModel",
    "ComputeNodes",
    "Job",
    "JobConfig",
    "Phase",
    "TrafficConfig",
    "algbw_bytes_per_s",
    "background_demands",
    "bus_factor",
    "busbw_bytes_per_s",
    "compute_time_s",
    "flops_per_step",
    "ideal_comm_time_s",
    "make_job",
    "moe_active_params",
    "place_compute",
    "ring_order",
    "step_time_s",
]

# registers the "model" and "trace" job kinds (meshnet.workloads; docs/workloads.md)
from ..workloads import job as _workload_jobs  # noqa: E402,F401
