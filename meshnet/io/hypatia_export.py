"""Write forwarding state in Hypatia's file format, so Hypatia's ns-3 simulator runs on it.

Layout (as snkas/hypatia's satgenpy writes it for ``algorithm_free_one_only_over_isls``)::

    <out_dir>/dynamic_state_<step_ms>ms_for_<duration_s>s/
        fstate_<t_ns>.txt            cur,dst,next_hop,cur_if,next_if
        gsl_if_bandwidth_<t_ns>.txt  node,if,bandwidth

``fstate`` holds every (node, destination station) entry at the first step, then only the
entries that changed; rows go satellites first (node-major, destinations inner), then station
pairs (source-major, skipping a station to itself); ``-1,-1,-1`` marks no route. Interfaces are
numbered the Hypatia way (see :mod:`meshnet.routing.hypatia`). ``gsl_if_bandwidth`` lists
``node,gsl_if,aggregate_max_bandwidth`` (``%f``) for every node at ``t = 0`` and is empty at
later steps, as satgenpy leaves it.

The folder is written under a temporary name and renamed into place when complete: a killed
export never leaves a folder that looks finished.

Examples
--------
>>> from meshnet.orbits.hypatia import load_hypatia_dir  # doctest: +SKIP
>>> net = load_hypatia_dir("../shared/data/hypatia_kuiper_630")  # doctest: +SKIP
>>> export_hypatia_state(net, orbits, grid, "out")  # doctest: +SKIP
PosixPath('out/dynamic_state_100ms_for_200s')
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeshnetError
from ..routing.hypatia import (
    ForwardingState,
    HypatiaTopology,
    hypatia_forwarding_state,
    hypatia_topology,
)
from ..units import NS_PER_S
from .datasets import AtomicOutput, output_folder, remove_leftovers, temp_name


def _number(x: float) -> str:
    """``100`` for 100.0, ``0.5`` for 0.5: Hypatia names folders with integers."""
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:g}"


def state_dir_name(step_ns: int, duration_ns: int) -> str:
    """``dynamic_state_<step_ms>ms_for_<duration_s>s``.

    Examples
    --------
    >>> state_dir_name(100_000_000, 200_000_000_000)
    'dynamic_state_100ms_for_200s'
    """
    return (f"dynamic_state_{_number(step_ns / 1e6)}ms_for_"
            f"{_number(duration_ns / NS_PER_S)}s")


def _lines(cur, dst, a, b, c) -> str:
    return "".join(f"{u},{d},{x},{y},{z}\n" for u, d, x, y, z in zip(
        cur.tolist(), dst.tolist(), a.tolist(), b.tolist(), c.tolist(), strict=True))


class HypatiaStateWriter(AtomicOutput):
    """Streams forwarding states into a Hypatia ``dynamic_state_*`` folder.

    Parameters
    ----------
    topology : HypatiaTopology
        The network's static part (interface numbers, node counts, GSL bandwidths).
    out_dir : path
        Parent folder; created if missing.
    step_ns, duration_ns : int
        Name the folder (``dynamic_state_<step_ms>ms_for_<duration_s>s``).

    Use as a context manager: the folder appears under its final name only when the block
    ends without an exception.
    """

    def __init__(self, topology: HypatiaTopology, out_dir, step_ns: int, duration_ns: int):
        if step_ns <= 0 or duration_ns <= 0:
            raise MeshnetError("step and duration must be > 0 for a Hypatia export")
        self.topology = topology
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / state_dir_name(step_ns, duration_ns)
        self._tmp = temp_name(self.path)
        remove_leftovers(self.path)
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir()
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        n_s, n_g = topology.n_sats, topology.n_ground
        n = n_s + n_g
        # Row-major order of (cur, dst) as satgenpy writes it, without a station to itself.
        cur = np.repeat(np.arange(n), n_g)
        dst_g = np.tile(np.arange(n_g), n)
        keep = ~((cur >= n_s) & (cur - n_s == dst_g))
        self._cur = cur[keep]
        self._dst = dst_g[keep] + n_s
        self._flat = (dst_g[keep] * n + cur[keep])  # index into (n_ground, n_nodes).ravel()
        self.n_steps = 0
        self.n_lines = 0

    def add(self, state: ForwardingState) -> int:
        """Write ``fstate_<t_ns>.txt`` and ``gsl_if_bandwidth_<t_ns>.txt``; returns the number of
        forwarding entries written."""
        t_ns = int(state.t_ns)
        nh = state.next_hop.ravel()[self._flat]
        ci = state.cur_if.ravel()[self._flat]
        ni = state.next_if.ravel()[self._flat]
        if self._prev is None:
            sel = slice(None)
        else:
            pn, pc, pi = self._prev
            sel = np.flatnonzero((nh != pn) | (ci != pc) | (ni != pi))
        text = _lines(self._cur[sel], self._dst[sel], nh[sel], ci[sel], ni[sel])
        (self._tmp / f"fstate_{t_ns}.txt").write_text(text, encoding="ascii")
        self._prev = (nh, ci, ni)
        topo = self.topology
        if t_ns == 0:
            bw = topo.gsl_bandwidth
            n_s = topo.n_sats
            rows = [f"{u},{int(topo.n_isls[u])},{bw[u]:f}\n" for u in range(n_s)]
            rows += [f"{u},0,{bw[u]:f}\n" for u in range(n_s, topo.n_nodes)]
            bw_text = "".join(rows)
        else:
            bw_text = ""
        (self._tmp / f"gsl_if_bandwidth_{t_ns}.txt").write_text(bw_text, encoding="ascii")
        n_written = int(self._cur.shape[0] if isinstance(sel, slice) else sel.shape[0])
        self.n_steps += 1
        self.n_lines += n_written
        return n_written

    def close(self) -> Path:
        """Rename the finished folder into place (replacing an older export) and return it."""
        old = None
        if self.path.exists():
            old = self.out_dir / f".{self.path.name}.{os.getpid()}.old"
            os.replace(self.path, old)
        os.replace(self._tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def _uniform_step_ns(t_ns: np.ndarray) -> int:
    if t_ns.shape[0] < 2:
        raise MeshnetError("a Hypatia export needs at least two time steps (to know the step)")
    steps = np.diff(t_ns)
    if steps.min() != steps.max() or steps[0] <= 0:
        raise MeshnetError("a Hypatia export needs a uniform time grid")
    return int(steps[0])


def export_hypatia_state(network, positions, grid, out_dir, *, duration_s: float | None = None,
                         topology: HypatiaTopology | None = None, progress=None) -> Path:
    """Write Hypatia's ``dynamic_state`` folder for ``network`` over ``grid``.

    Parameters
    ----------
    network : meshnet.orbits.hypatia.HypatiaNetwork
        The imported Hypatia directory.
    positions : Orbits or numpy.ndarray
        Satellite positions ``(T, n_sats, 3)`` km (Earth-fixed) at the times of ``grid``
        (an :class:`~meshnet.orbits.propagate.Orbits` works too).
    grid : TimeGrid
        Uniform times; ``grid.t_ns`` (offsets from the epoch) name the files.
    out_dir : path
        Parent folder of ``dynamic_state_<step_ms>ms_for_<duration_s>s``.
    duration_s : float, optional
        For the folder name; default ``T x step``.
    topology : HypatiaTopology, optional
        Reuse a precomputed :func:`~meshnet.routing.hypatia.hypatia_topology`.
    progress : callable, optional
        Called as ``progress(k, T)`` after each step.

    Returns
    -------
    pathlib.Path
        The finished folder.
    """
    r_km = getattr(positions, "r_km", positions)
    r_km = np.asarray(r_km, dtype=np.float64)
    t_ns = np.asarray(grid.t_ns, dtype=np.int64)
    if r_km.ndim != 3 or r_km.shape[0] != t_ns.shape[0]:
        raise MeshnetError(f"positions must be (T, n_sats, 3) with T = {t_ns.shape[0]} (the "
                           f"grid's steps), got {r_km.shape}")
    step_ns = _uniform_step_ns(t_ns)
    duration_ns = (int(round(duration_s * NS_PER_S)) if duration_s is not None
                   else step_ns * t_ns.shape[0])
    topo = topology or hypatia_topology(network)
    with HypatiaStateWriter(topo, out_dir, step_ns, duration_ns) as writer:
        for k in range(t_ns.shape[0]):
            writer.add(hypatia_forwarding_state(topo, r_km[k], int(t_ns[k])))
            if progress is not None:
                progress(k + 1, t_ns.shape[0])
    return writer.path


# --- A meshnet scenario as a complete Hypatia satellite-network directory -----------------------

#: What a Hypatia directory cannot say about a meshnet scenario (printed by the command).
HYPATIA_LIMITS_NOTE = (
    "note: Hypatia's ISLs are always up: meshnet's terminal physics (Sun exclusion, acquisition "
    "time, polar cutoff, angular-rate limit, range and Earth blocking, capacity model) is not "
    "expressed in the directory. Hypatia's ground rule is a distance: a station may use any "
    "satellite within max_gsl_length_m (no elevation mask, no antenna count, no hand-over "
    "hysteresis), stations never relay, and the forwarding state is shortest by length "
    "whatever [routing].policy says.")


@dataclass(frozen=True)
class ScenarioExport:
    """What :func:`export_scenario_hypatia` wrote (and what it could not express).

    Attributes
    ----------
    path : pathlib.Path
        The satellite-network directory.
    n_sats, n_ground, n_isls, n_steps : int
    n_orbits, n_sats_per_orbit : int
        ``tles.txt`` header.
    max_gsl_length_m, max_isl_length_m : float
        As written to ``description.txt``.
    gsl_rule : str
        How ``max_gsl_length_m`` was derived.
    isl_rule : str
        How ``max_isl_length_m`` was derived.
    isls_down : int
        ISLs that meshnet's link model had DOWN at one step or more (Hypatia keeps them up).
    down_reasons : dict
        Reason name -> ISL-steps DOWN under meshnet's model.
    longest_isl_m : float
        Longest exported ISL over the exported steps (under meshnet's positions).
    isl_capacity_bps, gsl_capacity_bps : float
        For ns-3's ``isl_data_rate_megabit_per_s`` / ``gsl_data_rate_megabit_per_s``.
    state_dir : pathlib.Path
        The ``dynamic_state_*`` folder inside ``path``.
    n_redated : int
        Catalogue satellites whose elements were re-dated to the scenario epoch.
    n_failed : int
        Satellites SGP4 could not propagate at the epoch (written with their own elements).
    max_position_error_km, p999_position_error_km : float
        Largest (and 99.9th percentile over satellites of the largest) distance between a
        satellite propagated from the written ``tles.txt`` and the scenario's own, over the
        exported steps.
    worst_satellite : str
        The satellite of ``max_position_error_km``.
    """

    path: Path
    n_sats: int
    n_ground: int
    n_isls: int
    n_steps: int
    n_orbits: int
    n_sats_per_orbit: int
    max_gsl_length_m: float
    max_isl_length_m: float
    gsl_rule: str
    isl_rule: str
    isls_down: int
    down_reasons: dict
    longest_isl_m: float
    isl_capacity_bps: float
    gsl_capacity_bps: float
    state_dir: Path
    n_redated: int = 0
    n_failed: int = 0
    max_position_error_km: float = 0.0
    p999_position_error_km: float = 0.0
    worst_satellite: str = ""

    def report(self) -> str:
        """The command's summary, notes included."""
        lines = [
            f"wrote {self.path}: {self.n_sats} satellites ({self.n_orbits} x "
            f"{self.n_sats_per_orbit}), {self.n_isls} ISLs, {self.n_ground} ground stations, "
            f"{self.n_steps} steps in {self.state_dir.name}",
            f"max_gsl_length_m = {self.max_gsl_length_m:.1f} ({self.gsl_rule})",
            f"max_isl_length_m = {self.max_isl_length_m:.1f} ({self.isl_rule})",
            f"satellites from tles.txt are within {self.max_position_error_km * 1000.0:.1f} m "
            f"of the scenario's over the exported steps (99.9 % within "
            f"{self.p999_position_error_km * 1000.0:.1f} m, worst {self.worst_satellite}; TLE "
            "fields round angles to 1e-4 deg"
            + (f"; {self.n_redated} catalogue element sets re-dated to the scenario epoch, "
               "which restarts SGP4's drag terms)" if self.n_redated else ")"),
            HYPATIA_LIMITS_NOTE,
        ]
        if self.n_failed:
            lines.append(f"note: {self.n_failed} satellites fail SGP4 at the epoch (decayed); "
                         "written with their own elements, meshnet reports them as invalid")
        if self.isls_down:
            why = ", ".join(f"{k} {v}" for k, v in sorted(self.down_reasons.items(),
                                                           key=lambda kv: -kv[1]))
            lines.append(f"note: under meshnet's link model {self.isls_down} of {self.n_isls} "
                         f"ISLs were down at one step or more (ISL-steps: {why}); Hypatia "
                         "keeps them up")
        if self.longest_isl_m > self.max_isl_length_m:
            lines.append(f"note: the longest ISL reaches {self.longest_isl_m:.0f} m, beyond "
                         "max_isl_length_m; satgenpy would refuse to regenerate this state")
        lines.append(f"ns-3 (config_ns3.properties): isl_data_rate_megabit_per_s="
                     f"{self.isl_capacity_bps / 1e6:g}, gsl_data_rate_megabit_per_s="
                     f"{self.gsl_capacity_bps / 1e6:g}, satellite_network_routes_dir="
                     f"{self.path.name}/{self.state_dir.name}")
        return "\n".join(lines)


def slant_range_km(altitude_km: float, min_elevation_deg: float,
                   radius_km: float | None = None) -> float:
    """Distance from a ground point to a satellite at ``altitude_km`` seen at the elevation mask.

    Spherical Earth of radius ``radius_km`` (default ``R_EARTH_KM``):
    ``d = sqrt((R + h)^2 - (R cos e)^2) - R sin e``.

    Examples
    --------
    >>> round(slant_range_km(550.0, 90.0), 6)
    550.0
    >>> round(slant_range_km(550.0, 25.0), 1)
    1123.4
    """
    from ..units import R_EARTH_KM

    r = float(R_EARTH_KM if radius_km is None else radius_km)
    e = np.radians(float(min_elevation_deg))
    return float(np.sqrt((r + altitude_km) ** 2 - (r * np.cos(e)) ** 2) - r * np.sin(e))


def grazing_isl_length_km(altitude_km: float, grazing_altitude_km: float) -> float:
    """Longest ISL between two satellites at ``altitude_km`` whose line of sight stays above
    ``grazing_altitude_km``: ``2 sqrt((R + h)^2 - (R + h_graze)^2)`` (Hypatia's rule, 80 km).

    Examples
    --------
    >>> round(grazing_isl_length_km(630.0, 80.0), 3)
    5442.958
    """
    from ..units import R_EARTH_KM

    a, g = R_EARTH_KM + altitude_km, R_EARTH_KM + grazing_altitude_km
    return float(2.0 * np.sqrt(max(a * a - g * g, 0.0)))


def _tle_checksum(text: str) -> int:
    return sum(int(c) if c.isdigit() else c == "-" for c in text) % 10


def _tle_lines(satrec) -> tuple[str, str]:
    """TLE lines of ``satrec``; a blank international designator becomes satgenpy's
    ``00000ABC`` (the field is not used by SGP4)."""
    from sgp4.exporter import export_tle

    line1, line2 = export_tle(satrec)
    if not line1[9:17].strip():
        body = line1[:9] + "00000ABC" + line1[17:68]
        line1 = body + str(_tle_checksum(body))
    return line1, line2


def _at_epoch(satrec, jd0: float):
    """``satrec`` as an element set with epoch ``jd0`` (Julian date, UTC).

    ns-3 starts each satellite's clock at its own TLE epoch and satgenpy wants one epoch for
    all, so a catalogue satellite is re-initialised from the mean elements SGP4 holds for it at
    ``jd0`` (after its secular and drag updates), with the Kozai mean motion solved so that
    SGP4's own conversion gives back that mean motion. The position at ``jd0`` is unchanged;
    later the two differ because the new set restarts SGP4's drag polynomial (measured on the
    shared Starlink catalogue: median 0.3 m / max 0.13 km after 10 minutes, median 10 m / max
    77 km after 6 hours). Returns ``(satrec, ok)``; ``ok`` is false where SGP4 fails at ``jd0``
    (a decayed satellite keeps its elements, re-dated).
    """
    from sgp4.api import WGS72, Satrec

    if abs((satrec.jdsatepoch - jd0) + satrec.jdsatepochF) * 86400.0 <= 1e-3:
        return satrec, True
    err, _, _ = satrec.sgp4(jd0, 0.0)
    ok = err == 0
    if ok:
        ecc, argp, inc, mean_anom, node = satrec.em, satrec.om, satrec.im, satrec.mm, satrec.Om
        target = satrec.nm
    else:
        ecc, argp, inc, mean_anom, node = (satrec.ecco, satrec.argpo, satrec.inclo, satrec.mo,
                                           satrec.nodeo)
        target = None
    new = Satrec()
    n_kozai = satrec.nm if ok else satrec.no_kozai
    for _ in range(8):
        new.sgp4init(WGS72, "i", satrec.satnum, jd0 - 2433281.5, satrec.bstar, 0.0, 0.0,
                     ecc % 1.0, argp % (2 * np.pi), inc, mean_anom % (2 * np.pi), n_kozai,
                     node % (2 * np.pi))
        if target is None:
            break
        new.sgp4_tsince(0.0)
        if abs(new.nm - target) <= 1e-15 * target:
            break
        n_kozai *= target / new.nm
    return new, ok


def _shell_header(constellation) -> tuple[int, int]:
    """``n_orbits n_sats_per_orbit``: the shell's planes x slots when satellite id = plane x
    slots + slot, else ``1 N`` (the header only has to multiply to N)."""
    n = int(constellation.n)
    shells = tuple(getattr(constellation, "shells", ()) or ())
    shell = np.asarray(constellation.shell)
    if len(shells) == 1 and n and (shell == 0).all():
        p, s = int(shells[0].n_planes), int(shells[0].sats_per_plane)
        ids = np.asarray(constellation.plane, np.int64) * s + np.asarray(constellation.slot)
        if p * s == n and np.array_equal(ids, np.arange(n)):
            return p, s
    return 1, n


def _check_exportable(scenario, world) -> None:
    from ..links.topology import TOPOLOGIES, FixedTopology

    where = scenario.source or "<scenario>"
    name = scenario.links.topology
    if not issubclass(TOPOLOGIES.get(name), FixedTopology):
        raise MeshnetError(
            f"{where}: [links].topology = '{name}' re-assigns laser links as satellites move, "
            "and Hypatia's isls.txt is one ISL list that ns-3 keeps up for the whole run, so "
            "this cannot be exported; use --set links.topology=plus_grid (or static, cluster) "
            "for a Hypatia export, or meshnet's own datasets (meshnet run / meshnet links)")
    if world.n_ground == 0:
        raise MeshnetError(f"{where}: [ground] has no stations; Hypatia's forwarding state is "
                           "towards ground stations, so set [ground].stations")


def _prefix(name: str) -> str:
    """A satellite-name prefix without blanks (satgenpy reads the id as the second word)."""
    text = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip("_")
    return text or "meshnet"


def _max_altitude_km(constellation, r0_km: np.ndarray) -> float:
    from ..units import R_EARTH_KM

    alts = [float(s.altitude_km) for s in (getattr(constellation, "shells", ()) or ())
            if getattr(s, "altitude_km", 0.0) and s.pattern != "cluster"]
    if alts and not (np.asarray(constellation.shell) < 0).any():
        return max(alts)
    r = np.linalg.norm(r0_km, axis=1)
    return float(np.nanmax(r) - R_EARTH_KM)


def _replaceable(out: Path) -> bool:
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    return (out / "tles.txt").exists() or not any(out.iterdir())


def export_scenario_hypatia(scenario, grid, out_dir, *, progress: bool = False,
                            world=None) -> ScenarioExport:
    """Write a meshnet scenario with a fixed ISL topology as a Hypatia satellite-network folder.

    The folder holds ``tles.txt``, ``isls.txt``, ``ground_stations.txt`` (extended, with ECEF
    metres), ``gsl_interfaces_info.txt``, ``description.txt`` and the
    ``dynamic_state_<step>ms_for_<duration>s`` forwarding state that Hypatia's semantics give
    for that folder (computed from the written TLEs, so reading the folder back with meshnet
    reproduces it exactly). See ``docs/design.md`` ("Exporting to Hypatia").

    Parameters
    ----------
    scenario : Scenario
        ``[links].topology`` must be a fixed one (plus_grid, static, cluster). Satellites
        whose element epoch is not the scenario epoch (a TLE catalogue) are re-dated to it
        (see :func:`_at_epoch`): Hypatia needs one epoch, ns-3's time zero.
    grid : TimeGrid
        Uniform grid from the epoch (``fstate_<t_ns>.txt`` are named by its offsets).
    out_dir : path
        The satellite-network folder to write; replaced if it is an earlier export (holds
        ``tles.txt``) or empty, refused otherwise.
    progress : bool
        tqdm progress bars on stderr.
    world : World, optional
        Already built satellites and stations.

    Raises
    ------
    MeshnetError
        A dynamic topology, no ground station, or an ``out_dir`` that is some other folder.
    """
    from ..links.model import link_model, model_tables
    from ..links.reasons import ISL, REASON_NAMES, UP
    from ..orbits.hypatia import load_hypatia_dir
    from ..orbits.propagate import propagate
    from ..world import build_world

    out = Path(out_dir)
    if not _replaceable(out):
        raise MeshnetError(f"--out {out}: exists and is not an earlier Hypatia export (no "
                           "tles.txt); name a new or empty folder")
    world = world if world is not None else build_world(scenario)
    _check_exportable(scenario, world)
    t_ns = np.asarray(grid.t_ns, np.int64)
    step_ns = _uniform_step_ns(t_ns)
    if t_ns[0] != 0:
        raise MeshnetError("a Hypatia export starts at the scenario epoch (ns-3's time zero)")
    const, ground = world.constellation, world.ground
    n_sats = int(const.n)

    # meshnet's own link model over the exported steps: the fixed ISL candidate list, and how
    # often meshnet's physics would have taken each ISL down (Hypatia cannot say so).
    model = link_model(scenario, grid, world)
    isl_a = isl_b = None
    ever_down = None
    reasons: dict[str, int] = {}
    longest_km = 0.0
    for _t, table in model_tables(model, const, grid, progress):
        isl = table.kind == ISL
        if isl_a is None:
            isl_a, isl_b = table.a[isl].copy(), table.b[isl].copy()
            ever_down = np.zeros(isl_a.shape[0], bool)
        down = table.state[isl] != UP
        ever_down |= down
        for code, count in zip(*np.unique(table.reason[isl][down], return_counts=True),
                               strict=True):
            # Not UP with no reason: still acquiring.
            key = ("acquiring" if int(code) == 0 else REASON_NAMES[int(code)]
                   if int(code) < len(REASON_NAMES) else str(code))
            reasons[key] = reasons.get(key, 0) + int(count)
        lengths = table.length_km[isl]
        if lengths.size and np.isfinite(lengths).any():
            longest_km = max(longest_km, float(np.nanmax(lengths)))
    r0 = propagate(const, grid[0:1]).r_km[0]

    # Length limits: the scenario's own (Hypatia-style) values, else from its mask and ranges.
    from ..units import R_EARTH_KM

    h_km = _max_altitude_km(const, r0)
    if getattr(scenario.ground, "max_gsl_length_km", None):
        gsl_km = float(scenario.ground.max_gsl_length_km)
        gsl_rule = "the scenario's [ground].max_gsl_length_km"
    elif getattr(const, "max_gsl_length_km", None):
        gsl_km = float(const.max_gsl_length_km)
        gsl_rule = "the constellation's max_gsl_length_km"
    else:
        eps = float(scenario.ground.min_elevation_deg)
        gsl_km = slant_range_km(h_km, eps)
        gsl_rule = (f"slant range at the {eps:g} deg elevation mask to {h_km:.1f} km altitude, "
                    f"spherical Earth R = {R_EARTH_KM} km")
    limits = model.limits
    own_isl_km = getattr(scenario.constellation, "max_isl_length_km", None)
    if own_isl_km:
        isl_km = float(own_isl_km)
        isl_rule = "the scenario's [constellation].max_isl_length_km"
    else:
        graze_km = grazing_isl_length_km(h_km, limits.grazing_altitude_km)
        isl_km = min(float(limits.range_cap_km), graze_km)
        isl_rule = (f"min(range cap {limits.range_cap_km:g} km, line of sight above "
                    f"{limits.grazing_altitude_km:g} km at {h_km:.1f} km altitude = "
                    f"{graze_km:.1f} km)")

    n_orbits, n_per = _shell_header(const)
    prefix = _prefix(scenario.name if hasattr(scenario, "name") else scenario.run.name)
    from ..orbits.walker import sgp4_epoch_days

    jd0 = sgp4_epoch_days(scenario.run.epoch) + 2433281.5
    n_redated = n_failed = 0
    dev_km = np.zeros(n_sats)  # per satellite, over the steps
    with output_folder(out, ("tles.txt",)) as tmp:
        tle = [f"{n_orbits} {n_per}\n"]
        for k, sat in enumerate(const.satrecs):
            dated, ok = _at_epoch(sat, jd0)
            n_redated += dated is not sat
            n_failed += not ok
            line1, line2 = _tle_lines(dated)
            tle.append(f"{prefix} {k}\n{line1}\n{line2}\n")
        (tmp / "tles.txt").write_text("".join(tle), encoding="ascii")
        (tmp / "isls.txt").write_text(
            "".join(f"{a} {b}\n" for a, b in zip(isl_a.tolist(), isl_b.tolist(), strict=True)),
            encoding="ascii")
        r_m = np.asarray(ground.r_km, np.float64) * 1000.0
        rows = []
        for g in range(world.n_ground):
            name = str(ground.names[g]).replace(",", " ").strip()
            rows.append(f"{g},{name},{ground.lat_deg[g]:f},{ground.lon_deg[g]:f},"
                        f"{ground.elevation_m[g]:f},{r_m[g, 0]:f},{r_m[g, 1]:f},{r_m[g, 2]:f}\n")
        (tmp / "ground_stations.txt").write_text("".join(rows), encoding="utf-8")
        # One GSL interface per node taking the whole GSL rate (bandwidth fraction 1), as
        # satgenpy's algorithm_free_one_only_over_isls requires.
        (tmp / "gsl_interfaces_info.txt").write_text(
            "".join(f"{u},1,{1.0:f}\n" for u in range(n_sats + world.n_ground)),
            encoding="ascii")
        (tmp / "description.txt").write_text(
            f"max_gsl_length_m={gsl_km * 1000.0:.10f}\nmax_isl_length_m={isl_km * 1000.0:.10f}\n",
            encoding="ascii")

        # The forwarding state of the folder as written (positions from its own TLEs).
        net = load_hypatia_dir(tmp)
        topo = hypatia_topology(net)
        duration_ns = step_ns * t_ns.shape[0]
        with HypatiaStateWriter(topo, tmp, step_ns, duration_ns) as writer:
            for c0 in range(0, t_ns.shape[0], 200):
                sub = grid[c0:c0 + 200]
                r_km = propagate(net.constellation, sub).r_km
                # How far the folder's satellites are from the scenario's (TLE rounding and
                # re-dated catalogue elements).
                dev = np.linalg.norm(r_km - propagate(const, sub).r_km, axis=2)
                dev_km = np.fmax(dev_km, np.nanmax(np.where(np.isfinite(dev), dev, np.nan),
                                                   axis=0, initial=0.0))
                for i in range(len(sub)):
                    writer.add(hypatia_forwarding_state(topo, r_km[i], int(sub.t_ns[i])))
        state_dir = out / writer.path.name
    return ScenarioExport(
        path=out, n_sats=n_sats, n_ground=world.n_ground, n_isls=int(isl_a.shape[0]),
        n_steps=int(t_ns.shape[0]), n_orbits=n_orbits, n_sats_per_orbit=n_per,
        max_gsl_length_m=gsl_km * 1000.0, max_isl_length_m=isl_km * 1000.0, gsl_rule=gsl_rule,
        isl_rule=isl_rule, isls_down=int(ever_down.sum()), down_reasons=reasons,
        longest_isl_m=longest_km * 1000.0, isl_capacity_bps=float(scenario.links.capacity_bps),
        gsl_capacity_bps=float(getattr(scenario.ground, "gsl_capacity_bps", 0.0) or 0.0),
        state_dir=state_dir, n_redated=n_redated, n_failed=n_failed,
        max_position_error_km=float(dev_km.max(initial=0.0)),
        p999_position_error_km=float(np.percentile(dev_km, 99.9)) if n_sats else 0.0,
        worst_satellite=str(const.names[int(np.argmax(dev_km))]) if n_sats else "")


def run_export_hypatia(scenario, grid, out_dir, progress: bool = True) -> str:
    """``meshnet export-hypatia``: a Hypatia directory gets its forwarding state written under
    ``out_dir``; any other scenario with a fixed ISL topology becomes the satellite-network
    folder ``out_dir``. Returns the command's summary."""
    from ..world import build_world

    world = build_world(scenario)
    if world.hypatia is None:
        return export_scenario_hypatia(scenario, grid, out_dir, progress=progress,
                                       world=world).report()
    from ..orbits.propagate import propagate

    n = len(grid)
    r_km = np.empty((n, world.n_sats, 3))
    for c0 in range(0, n, 200):
        sub = grid[c0:c0 + 200]
        r_km[c0:c0 + len(sub)] = propagate(world.constellation, sub).r_km
    bar = None
    if progress and n > 1:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="steps", dynamic_ncols=True, leave=False)
    try:
        folder = export_hypatia_state(world.hypatia, r_km, grid, out_dir,
                                      duration_s=n * grid.step_ns / NS_PER_S,
                                      progress=(lambda k, t: bar.update(1)) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    n_files = sum(1 for _ in Path(folder).iterdir())
    return f"wrote {n_files} files for {n} steps to {folder}"
