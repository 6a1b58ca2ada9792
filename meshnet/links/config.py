"""The ``[links]`` scenario table: which optical links exist and the terminal physics.

Defaults and their sources are in PHYSICS.md (shared with the project docs, see docs/links.md).

Examples
--------
>>> from meshnet.config import parse_table
>>> cfg = parse_table(LinksConfig, {"topology": "dynamic"}, "links", "demo.toml")
>>> cfg.n_terminals
3
>>> parse_table(LinksConfig, {"terminals": 0}, "links", "demo.toml")
Traceback (most recent call last):
...
meshnet.errors.ScenarioError: demo.toml: [links].terminals must be >= 1, found 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

from ..config import option
from ..errors import ScenarioError
from .capacity import BUDGET_PRESETS, CAPACITY_MODELS, LinkBudget


def _topology_names() -> list[str]:
    from .topology import TOPOLOGIES

    return TOPOLOGIES.choices()


#: Laser heads per satellite when ``terminals`` is not given.
DEFAULT_TERMINALS = {"plus_grid": 4, "dynamic": 3, "cluster": 4}


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """The optical link budget of ``capacity_model = "rate_ladder"``: a preset, and any of its
    values overridden (unset keys keep the preset's value; sources in docs/links.md)."""

    preset: str = option("starlink_100g", choices=lambda: list(BUDGET_PRESETS),
                         doc="parameter set: starlink_100g or suncatcher_dwdm")
    tx_power_w: float | None = option(None, min=0.0, min_inclusive=False,
                                      doc="optical transmit power, all wavelengths")
    wavelength_nm: float | None = option(None, min=0.0, min_inclusive=False,
                                         doc="carrier wavelength")
    tx_aperture_mm: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="transmit aperture diameter (sets the divergence when divergence_urad is unset)")
    rx_aperture_mm: float | None = option(None, min=0.0, min_inclusive=False,
                                          doc="receive aperture diameter")
    divergence_urad: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="1/e^2 half-angle beam divergence; unset: diffraction-limited from tx_aperture_mm")
    pointing_loss_db: float | None = option(None, min=0.0, doc="mean mispointing loss")
    optics_loss_db: float | None = option(None, min=0.0,
                                          doc="optics, coupling and other losses")
    sensitivity_dbm: float | None = option(
        None, doc="received power needed at sensitivity_ref_bps (scales with the rate)")
    sensitivity_ref_bps: float | None = option(None, min=0.0, min_inclusive=False,
                                               doc="rate of sensitivity_dbm")
    margin_db: float | None = option(None, min=0.0,
                                     doc="power a rung needs above its sensitivity")
    rates_bps: tuple[float, ...] | None = option(
        None, doc="rate ladder, strictly increasing, > 0 (e.g. [10e9, 25e9, 100e9])")

    def resolve(self) -> LinkBudget:
        """The preset with this table's values put over it."""
        base = BUDGET_PRESETS[self.preset]
        values = {k: getattr(self, k) for k in base.__dataclass_fields__
                  if getattr(self, k) is not None}
        return dataclasses.replace(base, **values)

    def validate(self, name: str, where: str) -> None:
        ladder = self.rates_bps
        if ladder is None:
            return
        if not ladder:
            raise ScenarioError(f"{where}: [{name}].rates_bps is empty; give at least one rate")
        if min(ladder) <= 0.0:
            raise ScenarioError(f"{where}: [{name}].rates_bps must be > 0, found "
                                f"{min(ladder):g}")
        if any(b <= a for a, b in zip(ladder, ladder[1:], strict=False)):
            raise ScenarioError(f"{where}: [{name}].rates_bps must be strictly increasing, "
                                f"found {list(ladder)}")


@dataclass(frozen=True)
class LinksConfig:
    """Optical inter-satellite links: topology policy, feasibility limits, capacity, state."""

    topology: str = option("plus_grid", choices=_topology_names,
                           doc="ISL topology policy: plus_grid, dynamic, cluster or static")
    terminals: int | None = option(
        None, min=1, doc="laser heads per satellite (default 4 for plus_grid and cluster, "
        "3 for dynamic; static lists are not capped)")
    cross_plane_shift: int = option(
        0, doc="plus_grid: slot offset of the cross-plane neighbour in the next plane")
    capacity_model: str = option(
        "fixed", choices=CAPACITY_MODELS,
        doc="fixed rate, rate falling with range squared (link_budget), or the highest rung "
        "of a rate ladder that the optical link budget closes (rate_ladder, [links.budget])")
    capacity_bps: float = option(100e9, min=0.0, min_inclusive=False,
                                 doc="terminal data rate (the cap of the link budget)")
    reference_range_km: float = option(
        3000.0, min=0.0, min_inclusive=False,
        doc="link_budget: range up to which the full rate is reached (assumed)")
    budget: BudgetConfig | None = option(
        None, doc="rate_ladder: the optical link budget ([links.budget]); unset: preset "
        "starlink_100g")
    max_range_km: float = option(5400.0, min=0.0, min_inclusive=False,
                                 doc="terminal range cap")
    grazing_altitude_km: float = option(
        80.0, min=0.0, doc="the line of sight must stay above this altitude")
    sun_exclusion_deg: float = option(
        5.0, min=0.0, max=90.0,
        doc="half-angle about the line of sight in which the Sun blinds a terminal (0: off)")
    acquisition_s: float = option(30.0, min=0.0,
                                  doc="pointing, acquisition and tracking time of a new link")
    polar_cutoff_deg: float | None = option(
        70.0, min=0.0, max=90.0,
        doc="cross-plane links break where either end is above this latitude (none: off)")
    max_angular_rate_deg_s: float = option(
        1.0, min=0.0, min_inclusive=False,
        doc="fastest line-of-sight rotation a terminal can track")
    cross_seam: bool = option(
        False, doc="allow links between counter-rotating satellites (Walker-star seam)")
    inter_shell_terminals: int = option(
        1, min=0, doc="extra laser heads per satellite that point only at satellites of "
        "other shells (plus_grid, cluster, static with two or more shells; 0: every shell "
        "is an island); dynamic links across shells with its own heads")
    static_file: str | None = option(
        None, doc="static: links file, one 'a b' pair of satellite ids per line (Hypatia "
        "isls.txt); default: the constellation's own static ISLs")
    cluster_neighbours: int = option(
        8, min=1, doc="cluster: nearest satellites considered as partners of each satellite")
    dynamic_candidates: int = option(
        16, min=1, doc="dynamic: nearest free satellites considered per free terminal")
    coplanar_tolerance_deg: float = option(
        1.0, min=0.0, max=90.0,
        doc="orbits whose normals differ by less than this count as one plane")
    reoptimise_interval_s: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="dynamic: cross-plane links older than this are re-matched against the best "
            "current partners (a roaming head re-points); unset = keep while feasible")
    reoptimise_new_partner: bool = option(
        False, doc="dynamic: at its review a cross-plane link always moves to a new partner "
        "(the same pair may not win again), and reviews are staggered uniformly over "
        "0.5-1.5 reoptimise_interval_s: roaming links are rotated on a schedule")
    acquisition_sigma: float = option(
        0.0, min=0.0, max=3.0,
        doc="dynamic: each new link's acquisition time is lognormal with median "
            "acquisition_s and this standard deviation of its natural log, drawn from "
            "[scenario].seed (0: every link takes exactly acquisition_s)")
    handover: str = option(
        "break_before_make", choices=("break_before_make", "make_before_break"),
        doc="dynamic: a re-pointed link is released before its replacement acquires "
            "(break_before_make), or keeps carrying until the replacement, acquired on a "
            "head kept free for hand-overs, is up (make_before_break)")
    warm_start: bool = option(
        True, doc="links feasible at the first step start up (the mesh already exists); "
        "false: every link starts acquiring")

    @property
    def n_terminals(self) -> int | None:
        """Laser heads per satellite after defaults (None: not capped, static lists)."""
        if self.terminals is not None:
            return self.terminals
        return DEFAULT_TERMINALS.get(self.topology)

    @cached_property
    def link_budget(self) -> LinkBudget:
        """The resolved link budget of ``rate_ladder`` (preset plus ``[links.budget]``)."""
        return (self.budget or BudgetConfig()).resolve()

    def validate(self, name: str = "links", where: str = "<scenario>") -> None:
        """Cross-field checks (called by :func:`meshnet.config.parse_table`)."""
        if self.budget is not None and self.capacity_model != "rate_ladder":
            raise ScenarioError(
                f"{where}: [{name}.budget] is only used by capacity_model = 'rate_ladder', "
                f"found capacity_model = '{self.capacity_model}'; set it or remove the table")
        from ..routing.plugins import check_plugin
        from .topology import TOPOLOGIES

        check_plugin(TOPOLOGIES, self, "topology", name, where)
        if self.reoptimise_interval_s is not None and self.topology != "dynamic":
            raise ScenarioError(
                f"{where}: [{name}].reoptimise_interval_s is only used by topology = "
                f"'dynamic', found topology = '{self.topology}'")
        if self.topology != "dynamic":
            for key, value, default in (("acquisition_sigma", self.acquisition_sigma, 0.0),
                                        ("handover", self.handover, "break_before_make")):
                if value != default:
                    raise ScenarioError(
                        f"{where}: [{name}].{key} is only used by topology = 'dynamic', "
                        f"found topology = '{self.topology}'; remove the key or change the "
                        "topology")
        if self.reoptimise_new_partner and self.reoptimise_interval_s is None:
            raise ScenarioError(
                f"{where}: [{name}].reoptimise_new_partner = true rotates links at their "
                "review, so it needs [links].reoptimise_interval_s (e.g. 480)")
        if self.handover == "make_before_break":
            if self.reoptimise_interval_s is None:
                raise ScenarioError(
                    f"{where}: [{name}].handover = 'make_before_break' hands over re-pointed "
                    "links, so it needs [links].reoptimise_interval_s (e.g. 120)")
            if self.n_terminals is not None and self.n_terminals < 2:
                raise ScenarioError(
                    f"{where}: [{name}].handover = 'make_before_break' keeps one head free "
                    f"for hand-overs, so it needs terminals >= 2, found {self.n_terminals}")
        if self.static_file is not None and self.topology != "static":
            raise ScenarioError(
                f"{where}: [{name}].static_file is only used by topology = 'static', "
                f"found topology = '{self.topology}'; remove the key or change the topology")
        if self.topology == "plus_grid" and self.n_terminals is not None \
                and self.n_terminals < 4:
            raise ScenarioError(
                f"{where}: [{name}].terminals = {self.n_terminals} is too few for plus_grid, "
                "which needs 4 laser heads; use topology = 'dynamic' for fewer")
