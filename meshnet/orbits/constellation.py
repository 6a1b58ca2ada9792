"""The satellites of a run: names, SGP4 element sets and (shell, plane, slot) labels.

Node ids: satellites are ``0 .. N-1`` in the order of :class:`Constellation` (ground stations
follow them in the graph). Every source (Walker shells, TLE file, Hypatia directory, formation
cluster) ends up as SGP4 ``Satrec`` objects so that all satellites propagate through one path,
:func:`meshnet.orbits.propagate.propagate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import ScenarioError
from .config import ConstellationConfig


@dataclass(frozen=True)
class ShellInfo:
    """Summary of one shell (Walker, inferred from a TLE catalogue, or a cluster).

    ``pattern`` is ``"delta"``, ``"star"``, ``"inferred"`` (TLE catalogue) or ``"cluster"``.
    ``altitude_km`` is the mean altitude above ``R_EARTH_KM`` implied by the mean motion.
    """

    name: str
    altitude_km: float
    inclination_deg: float
    n_planes: int
    sats_per_plane: int
    pattern: str
    phasing: int = 0


@dataclass(frozen=True)
class Constellation:
    """Satellites of one run.

    Parameters
    ----------
    names : numpy.ndarray
        object array (N,) of unique names.
    satrecs : tuple of sgp4.api.Satrec
        SGP4 element sets, one per satellite, in node-id order.
    shell, plane, slot : numpy.ndarray
        int32 (N,) labels; -1 where unknown (a TLE satellite that fits no plane).
    shells : tuple of ShellInfo
        One entry per shell index used in ``shell``.
    static_isls : numpy.ndarray or None
        (L, 2) int32 undirected ISLs given by the source (Hypatia ``isls.txt``).
    max_isl_length_km, max_gsl_length_km : float or None
        Length caps given by the source (Hypatia ``description.txt``).
    cluster_pairs : numpy.ndarray or None
        (K, 2) int32 neighbour pairs of a formation cluster (lattice neighbours).
    cluster_spacing_km : tuple of float or None
        (min, max) configured neighbour distance of the cluster.
    cluster_radius_km : float or None
        Configured cluster radius.
    unassigned : numpy.ndarray
        int32 ids of satellites that fit no plane (TLE plane inference), reported not dropped.
    source : str
        ``"walker"``, ``"tle"``, ``"hypatia"``, ``"cluster"`` or ``"mixed"``.
    """

    names: np.ndarray
    satrecs: tuple
    shell: np.ndarray
    plane: np.ndarray
    slot: np.ndarray
    shells: tuple[ShellInfo, ...] = ()
    static_isls: np.ndarray | None = None
    max_isl_length_km: float | None = None
    max_gsl_length_km: float | None = None
    cluster_pairs: np.ndarray | None = None
    cluster_spacing_km: tuple[float, float] | None = None
    cluster_radius_km: float | None = None
    unassigned: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    source: str = "walker"

    def __post_init__(self):
        n = len(self.satrecs)
        names = np.asarray(self.names, dtype=object)
        object.__setattr__(self, "names", names)
        for key in ("shell", "plane", "slot"):
            arr = np.ascontiguousarray(getattr(self, key), dtype=np.int32)
            object.__setattr__(self, key, arr)
            if arr.shape != (n,):
                raise ValueError(f"Constellation.{key} has shape {arr.shape}, expected ({n},)")
        if names.shape != (n,):
            raise ValueError(f"Constellation.names has shape {names.shape}, expected ({n},)")
        for key in ("static_isls", "cluster_pairs"):
            arr = getattr(self, key)
            if arr is not None:
                arr = np.ascontiguousarray(arr, dtype=np.int32).reshape(-1, 2)
                object.__setattr__(self, key, arr)
        object.__setattr__(self, "unassigned",
                           np.ascontiguousarray(self.unassigned, dtype=np.int32).ravel())

    @property
    def n(self) -> int:
        """Number of satellites."""
        return len(self.satrecs)

    def __len__(self) -> int:
        return self.n

    def index_of(self, name: str) -> int:
        """Node id of the satellite called ``name``."""
        hits = np.flatnonzero(self.names == name)
        if hits.size != 1:
            from ..errors import NodeNameError
            raise NodeNameError(f"no satellite named '{name}'" if hits.size == 0
                                else f"satellite name '{name}' is not unique")
        return int(hits[0])

    @staticmethod
    def concat(*parts: Constellation) -> Constellation:
        """Join constellations; ids, shell indices and pair lists of later parts are shifted."""
        if len(parts) == 1:
            return parts[0]
        names, satrecs, shell, plane, slot, shells = [], [], [], [], [], []
        isls, pairs, unassigned = [], [], []
        offset = 0
        spacing = radius = max_isl = max_gsl = None
        for p in parts:
            names.append(p.names)
            satrecs.extend(p.satrecs)
            shell.append(np.where(p.shell >= 0, p.shell + len(shells), -1))
            plane.append(p.plane)
            slot.append(p.slot)
            shells.extend(p.shells)
            if p.static_isls is not None:
                isls.append(p.static_isls + offset)
            if p.cluster_pairs is not None:
                pairs.append(p.cluster_pairs + offset)
                spacing, radius = p.cluster_spacing_km, p.cluster_radius_km
            unassigned.append(p.unassigned + offset)
            max_isl = p.max_isl_length_km if max_isl is None else max_isl
            max_gsl = p.max_gsl_length_km if max_gsl is None else max_gsl
            offset += p.n
        all_names = np.concatenate(names)
        if len(set(all_names.tolist())) != len(all_names):
            raise ScenarioError("satellite names are not unique after joining constellations; "
                                "give the shells or the cluster distinct names")
        sources = {p.source for p in parts}
        return Constellation(
            names=all_names, satrecs=tuple(satrecs), shell=np.concatenate(shell),
            plane=np.concatenate(plane), slot=np.concatenate(slot), shells=tuple(shells),
            static_isls=np.concatenate(isls) if isls else None,
            max_isl_length_km=max_isl, max_gsl_length_km=max_gsl,
            cluster_pairs=np.concatenate(pairs) if pairs else None,
            cluster_spacing_km=spacing, cluster_radius_km=radius,
            unassigned=np.concatenate(unassigned),
            source=sources.pop() if len(sources) == 1 else "mixed")


def resolve_path(text: str, base_dir: Path | str | None) -> Path:
    """``text`` as a path; relative paths are taken from ``base_dir`` (the scenario's folder)."""
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def load_constellation(cfg: ConstellationConfig, epoch: datetime,
                       base_dir: Path | str | None = None) -> Constellation:
    """Build the satellites described by a ``[constellation]`` table.

    Parameters
    ----------
    cfg : ConstellationConfig
        The validated table.
    epoch : datetime
        Scenario epoch (UTC); Walker shells and clusters get it as their element epoch.
    base_dir : Path
        Folder of the scenario file; relative ``tle_file`` / ``hypatia_dir`` start there.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from meshnet.orbits.config import ConstellationConfig, ShellConfig
    >>> shell = ShellConfig(altitude_km=550, inclination_deg=53, planes=2, sats_per_plane=3)
    >>> epoch = datetime(2025, 1, 1, tzinfo=UTC)
    >>> c = load_constellation(ConstellationConfig(shells=(shell,)), epoch)
    >>> c.n, c.names[4]
    (6, 'S0-P01-01')
    """
    parts: list[Constellation] = []
    if cfg.shells:
        from .walker import walker_constellation
        parts.append(walker_constellation(cfg.shells, epoch))
    if cfg.cluster is not None:
        from .cluster import cluster_constellation
        parts.append(cluster_constellation(cfg.cluster, epoch))
    if cfg.tle_file is not None:
        from .tle import tle_constellation
        path = resolve_path(cfg.tle_file, base_dir)
        parts.append(tle_constellation(path, label_planes=cfg.infer_planes))
    if cfg.hypatia_dir is not None:
        from .hypatia import load_hypatia_dir
        parts.append(load_hypatia_dir(resolve_path(cfg.hypatia_dir, base_dir)).constellation)
    if not parts:
        raise ScenarioError("[constellation] needs one source: shells, tle_file, hypatia_dir "
                            "or cluster")
    result = Constellation.concat(*parts)
    if cfg.max_isl_length_km is not None:
        from dataclasses import replace
        result = replace(result, max_isl_length_km=cfg.max_isl_length_km)
    return result
