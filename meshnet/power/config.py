"""The ``[power]`` scenario table: solar arrays, battery, loads and the policy for running short.

Every default is listed with its source in ``docs/power.md``; "assumed" marks the figures no
public source gives (a Starlink satellite's bus power and a laser head's draw are not published).

Examples
--------
>>> from meshnet.config import parse_table
>>> cfg = parse_table(PowerConfig, {"enabled": True, "capacity_wh": 8000}, "power", "demo.toml")
>>> cfg.capacity_wh, cfg.solar_peak_w
(8000.0, 28581.0)
>>> parse_table(PowerConfig, {"min_soc": 1.5}, "power", "demo.toml")
Traceback (most recent call last):
...
meshnet.errors.ScenarioError: demo.toml: [power].min_soc must be <= 1.0, found 1.5
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ScenarioError

#: Total solar irradiance at 1 au (W/m^2; Kopp and Lean, GRL 2011).
SOLAR_CONSTANT_W_M2 = 1361.0

#: Policies for a battery at its minimum state of charge.
POLICIES = ("throttle", "pause", "shed_lasers")


@dataclass(frozen=True)
class PowerConfig:
    """The ``[power]`` table (off unless ``enabled = true``)."""

    enabled: bool = option(False, doc="model sunlight, batteries and power-limited compute")
    capacity_wh: float = option(
        10_000.0, min=0.0, min_inclusive=False,
        doc="battery capacity per satellite (assumed: not published for compute satellites)")
    array_area_m2: float = option(
        105.0, min=0.0,
        doc="solar array area (Starlink V2 mini, 2 x 52.5 m^2, press reading FCC filings)")
    array_efficiency: float = option(
        0.20, min=0.0, max=1.0,
        doc="array-level efficiency, Sun-tracking (assumed: ~30 % cells less packing/heat)")
    solar_w: float | None = option(
        None, min=0.0, doc="array output in full Sun (W); overrides area x efficiency x 1361")
    accelerator_w: float = option(
        700.0, min=0.0, doc="draw per accelerator at full rate (H100 TDP, arXiv 2407.21783)")
    laser_w: float = option(
        50.0, min=0.0, doc="draw per active laser head (assumed: not found in public sources)")
    bus_w: float = option(
        1000.0, min=0.0, doc="bus, radios and thermal control (assumed: not published)")
    initial_soc: float = option(1.0, min=0.0, max=1.0, doc="state of charge at t = 0")
    min_soc: float = option(
        0.7, min=0.0, max=1.0,
        doc="lowest state of charge the policy allows (30 % design depth of discharge, "
            "Saft VES180 / ESA ARTES)")
    policy: str = option("throttle", choices=POLICIES,
                         doc="at min_soc: throttle or pause the accelerators, or shed_lasers "
                             "(laser heads off first, then throttle)")
    resume_soc: float = option(
        0.8, min=0.0, max=1.0,
        doc="policies 'pause' / 'shed_lasers': accelerators restart / laser heads come back "
            "on at this charge (assumed)")

    @property
    def solar_peak_w(self) -> float:
        """Array output in full Sun (W)."""
        if self.solar_w is not None:
            return float(self.solar_w)
        return float(self.array_area_m2 * self.array_efficiency * SOLAR_CONSTANT_W_M2)

    def validate(self, name: str = "power", where: str = "<scenario>") -> None:
        """Cross-field checks (called by :func:`meshnet.config.parse_table`)."""
        if self.policy in ("pause", "shed_lasers") and self.resume_soc <= self.min_soc:
            raise ScenarioError(
                f"{where}: [{name}].resume_soc ({self.resume_soc:g}) must be above min_soc "
                f"({self.min_soc:g}) for policy '{self.policy}'; raise resume_soc")
