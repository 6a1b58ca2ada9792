"""Faults: scheduled events and random processes in, a per-step mask out (docs/faults.md).

The link model applies the mask (:mod:`meshnet.links.model`); it knows nothing of how it was
drawn.
"""

from .config import EVENT_KINDS, FaultEventConfig, FaultsConfig
from .schedule import (
    ACCELERATOR,
    FAILED,
    KIND_NAMES,
    LASERS,
    MANOEUVRE,
    NO_EFFECT,
    REGION,
    STORM,
    FaultSchedule,
    StepFaults,
    schedule_for,
)

__all__ = ["ACCELERATOR", "EVENT_KINDS", "FAILED", "KIND_NAMES", "LASERS", "MANOEUVRE",
           "NO_EFFECT", "REGION", "STORM", "FaultEventConfig", "FaultSchedule", "FaultsConfig",
           "StepFaults", "schedule_for"]
