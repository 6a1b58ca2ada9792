"""Scenario tables of the orbits subpackage: ``[constellation]`` (with ``[[constellation.shells]]``
and ``[constellation.cluster]``) and ``[ground]``.

Defaults follow PHYSICS.md. Relative paths (``tle_file``, ``hypatia_dir``, ``stations``) are
resolved against the scenario file's directory by the loaders (``base_dir`` argument).

Examples
--------
>>> from meshnet.config import parse_table
>>> shell = parse_table(ShellConfig, {"altitude_km": 550, "inclination_deg": 53,
...                                   "planes": 72, "sats_per_plane": 22}, "shell", "demo.toml")
>>> shell.planes * shell.sats_per_plane
1584
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ScenarioError


@dataclass(frozen=True, kw_only=True)
class ShellConfig:
    """One Walker shell: ``planes`` x ``sats_per_plane`` satellites on circular orbits."""

    name: str = option("", doc="shell label used in reports (default S<index>)")
    altitude_km: float | None = option(None, min=100.0, max=50000.0,
                                       doc="circular altitude above R_EARTH_KM (WGS72)")
    inclination_deg: float = option(min=0.0, max=180.0, doc="orbit inclination")
    planes: int = option(min=1, max=10000, doc="number of orbital planes P")
    sats_per_plane: int = option(min=1, max=10000, doc="satellites per plane S")
    phasing: int = option(0, min=0, doc="Walker phasing factor F (0 <= F < P)")
    pattern: str = option("delta", choices=("delta", "star"),
                          doc="delta: RAAN over 360 deg; star: RAAN over 180 deg")
    mean_motion_rev_per_day: float | None = option(
        None, min=0.5, max=17.0, doc="overrides altitude_km (Hypatia style, Kozai mean motion)")
    eccentricity: float = option(0.0, min=0.0, max=0.1,
                                 doc="mean eccentricity (Hypatia files use 1e-7)")
    arg_perigee_deg: float = option(0.0, min=-360.0, max=360.0, doc="argument of perigee")
    raan_offset_deg: float = option(0.0, min=-360.0, max=360.0, doc="RAAN of plane 0")
    odd_plane_half_slot_shift: bool = option(
        False, doc="shift odd planes by half a slot (Hypatia's phase_diff)")

    def validate(self, name: str, where: str) -> None:
        if self.altitude_km is None and self.mean_motion_rev_per_day is None:
            raise ScenarioError(f"{where}: [{name}] needs altitude_km or mean_motion_rev_per_day")
        if self.phasing >= max(self.planes, 1) and self.phasing != 0:
            raise ScenarioError(f"{where}: [{name}].phasing must be < planes ({self.planes}), "
                                f"found {self.phasing}")

    @property
    def n_sats(self) -> int:
        return self.planes * self.sats_per_plane


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """A Suncatcher-like formation: ``n_sats`` satellites within ``radius_km`` of a reference
    orbit, nearest neighbours between ``spacing_min_km`` and ``spacing_max_km`` apart."""

    name: str = option("C", doc="name prefix of the cluster's satellites (C-00, C-01, ...)")
    n_sats: int = option(81, min=1, max=100000, doc="satellites in the cluster")
    radius_km: float = option(1.0, min=0.0, min_inclusive=False,
                              doc="every satellite stays within this distance of the centre")
    spacing_min_km: float = option(0.1, min=0.0, min_inclusive=False,
                                   doc="lower bound of neighbour distance")
    spacing_max_km: float = option(0.2, min=0.0, min_inclusive=False,
                                   doc="upper bound of neighbour distance")
    altitude_km: float = option(650.0, min=150.0, max=5000.0, doc="reference orbit altitude")
    inclination_deg: float | None = option(None, min=0.0, max=180.0,
                                           doc="None: sun-synchronous for the altitude")
    raan_deg: float | None = option(None, min=-360.0, max=360.0,
                                    doc="reference RAAN; None: from ltan_hours")
    ltan_hours: float = option(18.0, min=0.0, max=24.0,
                               doc="local time of ascending node (18 = dawn-dusk)")
    arg_latitude_deg: float = option(0.0, min=-360.0, max=360.0,
                                     doc="reference argument of latitude at the epoch")

    def check(self, name: str, where: str) -> None:
        """Cross-field check, run by ConstellationConfig.validate (an optional table's own
        ``validate`` error would be reported by parse_table as a type mismatch)."""
        if self.spacing_min_km > self.spacing_max_km:
            raise ScenarioError(
                f"{where}: [{name}].spacing_min_km ({self.spacing_min_km}) must not exceed "
                f"spacing_max_km ({self.spacing_max_km})")


@dataclass(frozen=True, kw_only=True)
class ConstellationConfig:
    """Where the satellites come from: Walker shells, a TLE file, a Hypatia directory or a
    formation cluster (exactly one; shells and a cluster may be combined)."""

    shells: tuple[ShellConfig, ...] = option((), doc="Walker shells ([[constellation.shells]])")
    tle_file: str | None = option(None, doc="2- or 3-line TLE file (relative to the scenario)")
    hypatia_dir: str | None = option(None, doc="Hypatia satellite-network directory")
    cluster: ClusterConfig | None = option(None, doc="formation cluster")
    infer_planes: bool = option(True, doc="TLE source: infer shells/planes/slots from elements")
    max_isl_length_km: float | None = option(
        None, min=0.0, min_inclusive=False, doc="ISL length cap (Hypatia's max_isl_length_m)")

    def validate(self, name: str, where: str) -> None:
        sources = [k for k, present in (("shells", bool(self.shells)),
                                          ("tle_file", self.tle_file is not None),
                                          ("hypatia_dir", self.hypatia_dir is not None),
                                          ("cluster", self.cluster is not None)) if present]
        if not sources:
            raise ScenarioError(f"{where}: [{name}] needs one source: shells "
                                f"([[{name}.shells]]), tle_file, hypatia_dir or cluster")
        if len(sources) > 1 and set(sources) != {"shells", "cluster"}:
            raise ScenarioError(f"{where}: [{name}] has several sources ({', '.join(sources)}); "
                                "keep exactly one (shells may be combined with cluster)")
        if self.cluster is not None:
            self.cluster.check(f"{name}.cluster", where)


@dataclass(frozen=True, kw_only=True)
class GroundConfig:
    """Ground stations and their links' limits."""

    stations: str = option("top100", doc="'top100', 'none', a CSV file (name,lat_deg,lon_deg"
                                         "[,elevation_m][,population]) or a Hypatia "
                                         "ground_stations.txt")
    min_elevation_deg: float = option(25.0, min=0.0, max=90.0,
                                      doc="minimum elevation of a ground link")
    antennas: int = option(
        8, min=1, doc="ground terminals per station, each linked to one satellite; 8: one "
                      "Starlink gateway site talks to up to 8 Gen1 satellites at once (SpaceX "
                      "blanket gateway application to the FCC, 2023)")
    handover_margin_deg: float = option(
        10.0, min=0.0, doc="an antenna leaves its satellite for an unlinked one only if that "
                           "one is higher by more than this (assumed; hysteresis)")
    gsl_capacity_bps: float = option(20e9, min=0.0, min_inclusive=False,
                                     doc="capacity of one ground link")
    max_gsl_length_km: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="Hypatia rule: any satellite within this distance (no elevation test)")
    gsl_per_station: int | None = option(
        None, doc="renamed to 'antennas' (setting it is an error that says so)")

    def validate(self, name: str, where: str) -> None:
        if self.gsl_per_station is not None:
            raise ScenarioError(f"{where}: [{name}].gsl_per_station was renamed; write "
                                f"antennas = {self.gsl_per_station} instead")
