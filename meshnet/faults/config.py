"""The ``[faults]`` scenario table: scheduled fault events and random fault processes.

Every default and its source is listed in docs/faults.md. All random draws come from a
:class:`numpy.random.Generator` seeded with ``[scenario].seed`` (one stream per process).

Examples
--------
>>> from meshnet.config import parse_table
>>> cfg = parse_table(FaultsConfig, {"events": [{"kind": "satellite", "satellite": 3,
...     "start_s": 10, "end_s": 20}]}, "faults", "demo.toml")
>>> cfg.events[0].end_time_s
20.0
>>> try:
...     parse_table(FaultsConfig, {"events": [{"kind": "plane", "start_s": 0,
...                 "duration_s": 5}]}, "faults", "demo.toml")
... except ScenarioError as exc:
...     print(str(exc).split(" (e.g.")[0])
demo.toml: [faults.events[0]].plane is required for kind = 'plane'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ScenarioError

#: Event kinds of ``[[faults.events]]`` (``accelerator``: a restart of one satellite's
#: accelerators, no link goes down; training jobs on it are interrupted).
EVENT_KINDS = ("satellite", "terminal", "plane", "ground_station", "region", "storm",
               "manoeuvre", "accelerator")

#: What a satellite-level event does: no links at all, or its laser terminals down.
EFFECTS = ("failed", "lasers")

#: ~3 % of early Gen1 satellites failed over a ~5-year design life (McDowell 2020, PHYSICS.md):
#: 5 y / -ln(0.97) = 164 years = 60,000 days.
DEFAULT_SATELLITE_MTBF_DAYS = 60_000.0
#: 16 collision-avoidance manoeuvres per satellite per six months (SpaceX FCC report, 2025).
DEFAULT_MANOEUVRES_PER_DAY = 0.0876  # = 16 / 182.6
#: Llama 3 405B: 419 unexpected interruptions in 54 days on 16,384 H100s (arXiv 2407.21783),
#: one per ~50,700 GPU-hours: a ground baseline (in-orbit upset rates of GPUs/TPUs: not found).
DEFAULT_ACCELERATOR_UPSETS_PER_DEVICE_DAY = 24.0 * 419.0 / (54.0 * 24.0 * 16_384.0)


@dataclass(frozen=True)
class FaultEventConfig:
    """``[[faults.events]]``: one scheduled fault from ``start_s`` to ``end_s``."""

    kind: str = option(choices=EVENT_KINDS, doc="satellite, terminal, plane, ground_station, "
                       "region, storm, manoeuvre or accelerator")
    start_s: float = option(min=0.0, doc="start, seconds after the scenario epoch")
    end_s: float | None = option(None, min=0.0, doc="end (exclusive); or give duration_s")
    duration_s: float | None = option(None, min=0.0, min_inclusive=False,
                                      doc="length; or give end_s")
    satellite: str | int | None = option(
        None, doc="satellite, terminal, manoeuvre: the satellite's name or id")
    head: int | None = option(None, min=0, doc="terminal: laser head index of the satellite")
    fraction: float | None = option(
        None, min=0.0, max=1.0,
        doc="terminal: fraction of all heads (of shell, if given) failed at random; storm: "
            "fraction of the shell's satellites hit (default 0.2)")
    plane: str | None = option(None, doc="plane: 'shell/plane', e.g. '0/12'")
    shell: int | None = option(None, min=0, doc="storm, terminal fraction: shell index "
                               "(default: every satellite)")
    station: str | None = option(None, doc="ground_station: the station's name")
    lat_deg: float | None = option(None, min=-90.0, max=90.0, doc="region: centre latitude")
    lon_deg: float | None = option(None, min=-180.0, max=360.0,
                                   doc="region: centre longitude")
    radius_km: float | None = option(None, min=0.0, min_inclusive=False,
                                     doc="region: radius on the ground around the centre")
    effect: str | None = option(
        None, choices=EFFECTS,
        doc="satellite-level kinds: 'failed' (no links) or 'lasers' (ISLs down, ground links "
            "kept); default failed, lasers for storm and manoeuvre")

    @property
    def end_time_s(self) -> float:
        return self.end_s if self.end_s is not None else self.start_s + self.duration_s

    @property
    def resolved_effect(self) -> str:
        if self.effect is not None:
            return self.effect
        return "lasers" if self.kind in ("storm", "manoeuvre") else "failed"

    def validate(self, name: str, where: str) -> None:
        def need(key, example):
            if getattr(self, key) is None:
                raise ScenarioError(f"{where}: [{name}].{key} is required for kind = "
                                    f"'{self.kind}' (e.g. {example})")

        if (self.end_s is None) == (self.duration_s is None):
            raise ScenarioError(f"{where}: [{name}] give exactly one of end_s and duration_s")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ScenarioError(f"{where}: [{name}].end_s must be > start_s = "
                                f"{self.start_s:g}, found {self.end_s:g}")
        k = self.kind
        if k in ("satellite", "manoeuvre", "accelerator"):
            need("satellite", "satellite = 12 or satellite = \"STARLINK-1007\"")
        elif k == "terminal":
            if self.fraction is None:
                need("satellite", "satellite = 12 with head = 0, or fraction = 0.1")
                need("head", "head = 0")
            elif self.satellite is not None or self.head is not None:
                raise ScenarioError(f"{where}: [{name}] a terminal event takes either "
                                    "satellite and head, or fraction (with shell), not both")
        elif k == "plane":
            need("plane", "plane = \"0/12\", shell/plane")
            parse_plane(self.plane, name, where)
        elif k == "ground_station":
            need("station", "station = \"Tokyo\"")
        elif k == "region":
            for key, ex in (("lat_deg", "lat_deg = -30"), ("lon_deg", "lon_deg = -45"),
                            ("radius_km", "radius_km = 2000")):
                need(key, ex)
        if k == "manoeuvre" and self.effect == "failed":
            raise ScenarioError(f"{where}: [{name}].effect: a manoeuvre takes the lasers "
                                "down, not the satellite; remove effect or use kind = "
                                "'satellite'")
        allowed = {"satellite": ("satellite", "effect"), "manoeuvre": ("satellite",),
                   "accelerator": ("satellite",),
                   "terminal": ("satellite", "head", "fraction", "shell"),
                   "plane": ("plane", "effect"), "ground_station": ("station",),
                   "region": ("lat_deg", "lon_deg", "radius_km", "effect"),
                   "storm": ("shell", "fraction", "effect")}[k]
        for key in ("satellite", "head", "fraction", "plane", "shell", "station", "lat_deg",
                    "lon_deg", "radius_km", "effect"):
            if getattr(self, key) is not None and key not in allowed:
                if key == "effect" and k == "manoeuvre":
                    continue
                raise ScenarioError(f"{where}: [{name}].{key} is not used by kind = "
                                    f"'{k}'; remove it (keys of {k}: {', '.join(allowed)})")


def parse_plane(text: str, name: str = "faults", where: str = "<scenario>") -> tuple[int, int]:
    """``"0/12"`` -> ``(0, 12)`` (shell, plane)."""
    parts = str(text).split("/")
    try:
        shell, plane = (int(p) for p in parts)
    except ValueError:
        raise ScenarioError(f"{where}: [{name}].plane = {text!r}: expected 'shell/plane', "
                            "e.g. '0/12'") from None
    if shell < 0 or plane < 0:
        raise ScenarioError(f"{where}: [{name}].plane = {text!r}: indices must be >= 0")
    return shell, plane


@dataclass(frozen=True)
class FaultsConfig:
    """Fault events and processes. ``random = false`` (default): only ``[[faults.events]]``."""

    events: tuple[FaultEventConfig, ...] = option((), doc="scheduled events "
                                                   "([[faults.events]])")
    random: bool = option(False, doc="draw the random processes below (each off when its "
                          "rate is 0)")
    satellite_mtbf_days: float = option(
        DEFAULT_SATELLITE_MTBF_DAYS, min=0.0,
        doc="mean time between satellite failures, per satellite (0: off); from ~3 % of "
            "Gen1 failed over a 5-year life")
    satellite_mttr_s: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="mean time to repair a failed satellite (exponential; unset: permanent loss)")
    terminal_mtbf_days: float = option(
        3650.0, min=0.0, doc="mean time between failures of one laser head (assumed; 0: off)")
    terminal_mttr_s: float | None = option(
        3600.0, min=0.0, min_inclusive=False,
        doc="mean time to recover a failed head (assumed; unset: permanent)")
    station_mtbf_days: float = option(
        30.0, min=0.0, doc="mean time between outages of one ground station (assumed; 0: off)")
    station_mttr_s: float = option(
        4 * 3600.0, min=0.0, min_inclusive=False,
        doc="mean length of a ground-station outage (assumed)")
    manoeuvres_per_day: float = option(
        DEFAULT_MANOEUVRES_PER_DAY, min=0.0,
        doc="collision-avoidance manoeuvres per satellite per day (16 per six months, SpaceX "
            "FCC report 2025; 0: off)")
    manoeuvre_duration_s: float = option(
        600.0, min=0.0, min_inclusive=False,
        doc="lasers down while a satellite manoeuvres (assumed)")
    storms_per_day: float = option(
        0.0, min=0.0, doc="random solar storms per day (0: off; NOAA: ~60 G4-storm days per "
        "11-year cycle = 0.015/day)")
    storm_fraction: float = option(0.2, min=0.0, max=1.0,
                                   doc="fraction of the satellites a random storm hits")
    storm_duration_s: float = option(3 * 3600.0, min=0.0, min_inclusive=False,
                                     doc="length of a random storm")
    storm_effect: str = option("lasers", choices=EFFECTS,
                               doc="a random storm takes lasers down or fails satellites")
    storm_shell: int | None = option(None, min=0,
                                     doc="shell random storms hit (unset: all)")

    accelerator_upsets_per_device_day: float = option(
        DEFAULT_ACCELERATOR_UPSETS_PER_DEVICE_DAY, min=0.0,
        doc="radiation upsets that restart an accelerator, per device per day (0: off); "
            "default the Llama 3 ground rate, one per ~50,700 GPU-hours (in-orbit rates not "
            "found)")
    accelerator_restart_s: float = option(
        600.0, min=0.0, min_inclusive=False,
        doc="time a restarted accelerator's node is unavailable for compute (assumed)")

    @property
    def active(self) -> bool:
        return bool(self.events) or self.random
