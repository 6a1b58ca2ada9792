"""Power and eclipse: sunlight per satellite, batteries and the policy for running short.

The package hands the engine one compute-rate factor per node per step (1 = full speed, 0 =
paused), as the link model hands it a snapshot; the engine knows nothing of batteries.
See ``docs/power.md``.
"""

from .battery import PowerModel, active_heads, battery_step
from .config import POLICIES, SOLAR_CONSTANT_W_M2, PowerConfig
from .sunlight import R_SUN_KM, beta_eclipse_fraction, lit_fraction, sun_position_ecef_km

__all__ = ["POLICIES", "R_SUN_KM", "SOLAR_CONSTANT_W_M2", "PowerConfig", "PowerModel",
           "active_heads", "battery_step", "beta_eclipse_fraction", "lit_fraction",
           "sun_position_ecef_km"]
