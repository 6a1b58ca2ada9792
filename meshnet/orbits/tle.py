"""TLE files and plane inference for real catalogues.

Reading
-------
:func:`read_tle` accepts 2-line and 3-line files (a name line before each pair, optionally with
the ``0 `` prefix of the 3LE format), verifies both checksums and the catalogue number of each
pair, and reports any corrupt line as ``FILE:LINE: what is wrong (how to fix it)``.

Plane inference
---------------
A catalogue has no plane or slot labels, so :func:`infer_planes` derives them from the elements:

1. satellites with eccentricity above ``max_eccentricity`` are set aside (orbit raising or
   deorbiting burns leave them elliptical);
2. shells are dense clusters in (inclination, mean motion), found by density-based clustering
   (DBSCAN with neighbourhood ``inclination_tol_deg`` x ``mean_motion_tol_rev_per_day``):
   operational satellites of a shell share both to a few 0.001 rev/day, while raising and
   deorbiting satellites are spread thinly over a continuum of mean motions;
3. within a shell, every right ascension of the ascending node is carried to a common
   reference epoch with SGP4's secular J2 nodal regression rate (``Satrec.nodedot``), and the
   circularly sorted values are split into planes at gaps wider than ``plane_gap_deg``; a
   group more than twice as wide in RAAN as the shell's median plane is split again at its
   widest internal gap (two planes closer than the threshold);
4. each plane is ordered by argument of latitude at the reference epoch (SGP4 state).

Satellites that fit nowhere get shell/plane/slot -1 and are listed, with the reason, in
:attr:`PlaneInference.unassigned` - never silently dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sgp4.api import Satrec, SatrecArray

from ..errors import TLEError, quote_excerpt
from .constellation import Constellation, ShellInfo

_TAU = 2.0 * math.pi
_JD_UNIX_EPOCH = 2440587.5


@dataclass(frozen=True)
class TLERecord:
    """One element set as read: its name, both lines and where line 1 was found."""

    name: str
    line1: str
    line2: str
    lineno: int


def tle_checksum(line: str) -> int:
    """Modulo-10 checksum of the first 68 characters (digits count, '-' counts 1).

    Examples
    --------
    >>> tle_checksum("1 44714U 19074B   26053.95338319  .00001514  00000+0  61711-4 0  999")
    8
    """
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


def _check_line(line: str, which: str, where: str, lineno: int) -> None:
    if len(line) < 69:
        raise TLEError(f"{where}:{lineno}: TLE line {which} truncated: {len(line)} characters, "
                       "expected 69 (re-download the file or restore the missing columns)")
    if len(line) > 69:
        raise TLEError(f"{where}:{lineno}: TLE line {which} too long: {len(line)} characters, "
                       "expected 69 (remove the extra characters)")
    if not line[68].isdigit():
        raise TLEError(f"{where}:{lineno}: TLE line {which} has no checksum digit in column 69 "
                       f"(found {quote_excerpt(line[68])})")
    expected = tle_checksum(line)
    if int(line[68]) != expected:
        raise TLEError(f"{where}:{lineno}: bad checksum on TLE line {which}: column 69 says "
                       f"{line[68]}, the line sums to {expected} (the line is corrupt; "
                       "re-download it)")


def parse_tle_lines(lines: list[str], where: str = "<tle>", first_lineno: int = 1
                    ) -> list[TLERecord]:
    """Group text lines into :class:`TLERecord` s, checking every line.

    ``lines`` are the file's lines (without newlines); ``first_lineno`` is the line number of
    ``lines[0]`` in the file, for messages.
    """
    records: list[TLERecord] = []
    name: str | None = None
    name_lineno = 0
    pending1: tuple[str, int] | None = None
    for offset, raw in enumerate(lines):
        lineno = first_lineno + offset
        line = raw.rstrip("\r\n").rstrip()
        if not line.strip():
            continue
        if line.startswith("1 ") and len(line) > 2 and line[2:7].strip().isalnum():
            if pending1 is not None:
                raise TLEError(f"{where}:{pending1[1]}: TLE line 1 is not followed by a line 2 "
                               f"(found another line 1 on line {lineno})")
            _check_line(line, "1", where, lineno)
            pending1 = (line, lineno)
            continue
        if line.startswith("2 ") and len(line) > 2 and line[2:7].strip().isalnum():
            if pending1 is None:
                raise TLEError(f"{where}:{lineno}: TLE line 2 without a line 1 before it "
                               "(a line 1 is missing or corrupt)")
            _check_line(line, "2", where, lineno)
            line1, lineno1 = pending1
            if line1[2:7] != line[2:7]:
                raise TLEError(f"{where}:{lineno}: catalogue number "
                               f"{quote_excerpt(line[2:7].strip())} on line 2 differs from "
                               f"{quote_excerpt(line1[2:7].strip())} on line {lineno1} "
                               "(lines from different satellites)")
            if name is not None and name_lineno != lineno1 - 1:
                name = None  # a stale name line that belonged to nothing
            label = name if name else f"SAT-{line1[2:7].strip()}"
            records.append(TLERecord(label, line1, line, lineno1))
            pending1 = None
            name = None
            continue
        if pending1 is not None:
            raise TLEError(f"{where}:{lineno}: expected TLE line 2 after line {pending1[1]}, "
                           f"found {quote_excerpt(line, 30)} (line 2 is missing or does not "
                           "start with '2 ')")
        if line[:1] in "12" and line[1:2] in ("", " "):
            raise TLEError(f"{where}:{lineno}: malformed TLE line {line[0]} "
                           f"{quote_excerpt(line, 30)} "
                           "(columns 3-7 must hold the catalogue number)")
        if name is not None and name_lineno == lineno - 1:
            raise TLEError(f"{where}:{lineno}: two name lines in a row "
                           f"({quote_excerpt(name, 30)}, {quote_excerpt(line.strip(), 30)}); "
                           "a TLE line 1 is missing or corrupt")
        text = line.strip()
        name = text[2:].strip() if text.startswith("0 ") else text
        name_lineno = lineno
    if pending1 is not None:
        raise TLEError(f"{where}:{pending1[1]}: TLE line 1 at the end of the file has no line 2 "
                       "(the file is truncated)")
    return records


def read_tle(path: Path | str) -> list[TLERecord]:
    """Read a 2-line or 3-line TLE file.

    Raises
    ------
    TLEError
        ``FILE:LINE: ...`` for a bad checksum, a truncated or misplaced line, an unreadable file.
    """
    path = Path(path)
    _check_file(path, "TLE file")
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise TLEError(f"{path}: cannot read TLE file ({exc.strerror}); check the path "
                       "(relative paths start at the scenario file's folder)") from exc
    records = parse_tle_lines(text.splitlines(), str(path))
    if not records:
        raise TLEError(f"{path}: no TLEs found (expected 2-line or 3-line element sets)")
    return records


def _check_file(path: Path, what: str) -> None:
    """Stat before open (a FIFO must not block), refuse binary data: one-line TLEError."""
    from ..config import check_input_file
    from ..errors import MeshnetError

    try:
        check_input_file(path, what, missing_ok=True)
    except MeshnetError as exc:
        raise TLEError(str(exc)) from None


#: Alias of :func:`read_tle`.
read_tle_file = read_tle


def records_to_satrecs(records: list[TLERecord], where: str = "<tle>") -> list[Satrec]:
    """SGP4 element sets (WGS72) of ``records``; a line SGP4 rejects is reported by number."""
    sats = []
    for rec in records:
        try:
            sat = Satrec.twoline2rv(rec.line1, rec.line2)
        except (ValueError, IndexError) as exc:
            raise TLEError(f"{where}:{rec.lineno}: SGP4 cannot parse the element set of "
                           f"'{rec.name}' ({exc})") from None
        sats.append(sat)
    return sats


def _unique_names(names: list[str]) -> np.ndarray:
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return np.array(out, dtype=object)


# ----------------------------------------------------------------------------- plane inference

@dataclass(frozen=True)
class InferredShell:
    """Per-shell summary of :func:`infer_planes`."""

    info: ShellInfo
    mean_motion_rev_per_day: float
    n_sats: int
    plane_sizes: tuple[int, ...]
    plane_raan_deg: tuple[float, ...]


@dataclass(frozen=True)
class PlaneInference:
    """Result of :func:`infer_planes`.

    ``shell``, ``plane`` and ``slot`` are int32 (N,) labels (-1 = fits no plane);
    ``unassigned`` maps satellite index -> reason for every -1.
    """

    names: np.ndarray
    shell: np.ndarray
    plane: np.ndarray
    slot: np.ndarray
    shells: tuple[InferredShell, ...]
    unassigned: dict[int, str] = field(default_factory=dict)
    reference_jd: float = 0.0
    inclination_deg: np.ndarray | None = None
    mean_motion_rev_per_day: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.shell.shape[0])


def _dbscan(points: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Labels of DBSCAN clusters (-1 = noise) for scaled points (Euclidean, radius ``eps``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = points.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    tree = cKDTree(points)
    pairs = tree.query_pairs(eps, output_type="ndarray")
    degree = np.bincount(pairs.ravel(), minlength=n) + 1  # itself included
    core = degree >= min_samples
    both = core[pairs[:, 0]] & core[pairs[:, 1]]
    cp = pairs[both]
    adj = coo_matrix((np.ones(len(cp)), (cp[:, 0], cp[:, 1])), shape=(n, n))
    _, comp = connected_components(adj, directed=False)
    labels[core] = comp[core]
    # Border points join the cluster of one of their core neighbours.
    for a, b in pairs[core[pairs[:, 0]] != core[pairs[:, 1]]]:
        c, x = (a, b) if core[a] else (b, a)
        if labels[x] < 0:
            labels[x] = labels[c]
    # Renumber 0..K-1 by decreasing size for stable output.
    uniq, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = uniq[np.argsort(-counts, kind="stable")]
    remap = {int(old): new for new, old in enumerate(order)}
    return np.array([remap.get(int(v), -1) for v in labels], dtype=np.int64)


def _circular_groups(angles_deg: np.ndarray, gap_deg: float) -> list[np.ndarray]:
    """Split angles into groups at circular gaps wider than ``gap_deg``; index arrays."""
    if angles_deg.size == 0:
        return []
    order = np.argsort(angles_deg, kind="stable")
    a = angles_deg[order]
    gaps = np.diff(np.concatenate([a, [a[0] + 360.0]]))
    cuts = np.flatnonzero(gaps > gap_deg)
    if cuts.size == 0:
        return [order]
    # Start after the last cut so no group wraps over the array end.
    start = (cuts[-1] + 1) % a.size
    rolled = np.roll(order, -start)
    rolled_cuts = (cuts - start) % a.size
    bounds = np.sort(rolled_cuts) + 1
    return [g for g in np.split(rolled, bounds[:-1]) if g.size]


def _width_deg(a: np.ndarray) -> float:
    """RAAN extent of a group that does not wrap (groups from _circular_groups)."""
    d = (a - a[0] + 180.0) % 360.0 - 180.0
    return float(d.max() - d.min()) if a.size else 0.0


def _split_wide(groups: list[np.ndarray], raan: np.ndarray, min_size: int,
                min_gap_deg: float = 0.2) -> list[np.ndarray]:
    """Split groups much wider in RAAN than the shell's typical plane at their widest internal
    gap (two neighbouring planes closer than the gap threshold). The typical width is taken
    once, from the first split; both parts must keep ``min_size`` satellites."""
    widths = np.array([_width_deg(raan[g]) for g in groups])
    if widths.size < 3:
        return groups
    limit = 2.0 * float(np.median(widths)) + 1e-9
    for _ in range(4):
        out, changed = [], False
        for g in groups:
            if g.size >= 2 * min_size and _width_deg(raan[g]) > limit:
                d = (raan[g] - raan[g][0] + 180.0) % 360.0 - 180.0
                order = np.argsort(d, kind="stable")
                gaps = np.diff(d[order])
                gaps[:min_size - 1] = 0.0  # keep min_size on each side
                if min_size > 1:
                    gaps[len(gaps) - min_size + 1:] = 0.0
                cut = int(np.argmax(gaps))
                if gaps[cut] >= min_gap_deg:
                    out += [g[order[:cut + 1]], g[order[cut + 1:]]]
                    changed = True
                    continue
            out.append(g)
        groups = out
        if not changed:
            break
    return groups


def _circular_mean_deg(a: np.ndarray) -> float:
    r = np.radians(a)
    return float(np.degrees(np.arctan2(np.sin(r).mean(), np.cos(r).mean())) % 360.0)


def infer_planes(satrecs, names=None, *, reference_jd: float | None = None,
                 max_eccentricity: float = 0.002, inclination_tol_deg: float = 0.05,
                 mean_motion_tol_rev_per_day: float = 0.005, min_density: int = 12,
                 min_shell_sats: int = 50, max_mean_motion_offset_rev_per_day: float = 0.02,
                 plane_gap_deg: float = 1.0, min_plane_sats: int = 3) -> PlaneInference:
    """Group catalogue satellites into shells and planes and order each plane.

    Parameters
    ----------
    satrecs : sequence of sgp4.api.Satrec or of TLERecord
        The catalogue (records from :func:`read_tle` also bring their names).
    names : sequence of str, optional
        Names for the report.
    reference_jd : float, optional
        Common epoch (UTC Julian date) for RAAN and argument of latitude; default the latest
        element epoch.
    max_eccentricity : float
        Above this, a satellite is taken to be raising or lowering its orbit.
    inclination_tol_deg, mean_motion_tol_rev_per_day : float
        Neighbourhood of the shell clustering (one unit in each scaled axis).
    min_density : int
        Neighbours (including itself) a satellite needs to seed a shell.
    min_shell_sats : int
        Clusters smaller than this are reported as groups (often a launch batch still raising).
    max_mean_motion_offset_rev_per_day : float
        Members further than this from their shell's median mean motion are set aside.
    plane_gap_deg : float
        RAAN gap that separates two planes.
    min_plane_sats : int
        Planes with fewer satellites are reported, not kept.

    Returns
    -------
    PlaneInference
    """
    sats = list(satrecs)
    if sats and isinstance(sats[0], TLERecord):  # records straight from read_tle
        names = [r.name for r in sats] if names is None else names
        sats = records_to_satrecs(sats)
    n = len(sats)
    names = _unique_names(list(names) if names is not None else [f"SAT-{s.satnum}" for s in sats])
    inc = np.degrees(np.array([s.inclo for s in sats], dtype=np.float64))
    mm = np.array([s.no_kozai for s in sats], dtype=np.float64) * 1440.0 / _TAU
    ecc = np.array([s.ecco for s in sats], dtype=np.float64)
    epoch = np.array([s.jdsatepoch + s.jdsatepochF for s in sats], dtype=np.float64)
    shell = np.full(n, -1, dtype=np.int32)
    plane = np.full(n, -1, dtype=np.int32)
    slot = np.full(n, -1, dtype=np.int32)
    unassigned: dict[int, str] = {}
    if n == 0:
        return PlaneInference(names, shell, plane, slot, (), unassigned, 0.0, inc, mm)
    ref = float(epoch.max() if reference_jd is None else reference_jd)

    # RAAN at the reference epoch by SGP4's secular nodal regression (J2, J4) ...
    nodedot = np.array([s.nodedot for s in sats], dtype=np.float64)  # rad/min
    raan0 = np.array([s.nodeo for s in sats], dtype=np.float64)
    raan_ref = np.degrees(raan0 + nodedot * (ref - epoch) * 1440.0) % 360.0
    # ... and argument of latitude from the SGP4 state at the reference epoch (includes drag).
    whole = math.floor(ref - 0.5) + 0.5
    err, r, v = SatrecArray(sats).sgp4(np.array([whole]), np.array([ref - whole]))
    r, v = r[:, 0, :], v[:, 0, :]
    h = np.cross(r, v)
    node = np.stack([-h[:, 1], h[:, 0], np.zeros(n)], axis=1)
    node_norm = np.linalg.norm(node, axis=1)
    hn = np.linalg.norm(h, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_u = np.einsum("ij,ij->i", node, r) / (node_norm * np.linalg.norm(r, axis=1))
        sin_u = np.einsum("ij,ij->i", np.cross(node, r), h) / (
            node_norm * np.linalg.norm(r, axis=1) * hn)
    u_ref = np.degrees(np.arctan2(sin_u, cos_u)) % 360.0

    candidates = np.ones(n, dtype=bool)
    for k in np.flatnonzero(err[:, 0] != 0):
        unassigned[int(k)] = f"SGP4 error {int(err[k, 0])} at the reference epoch"
        candidates[k] = False
    for k in np.flatnonzero(candidates & (ecc > max_eccentricity)):
        unassigned[int(k)] = (f"eccentric (e = {ecc[k]:.4f} > {max_eccentricity}): "
                              "raising or deorbiting")
        candidates[k] = False

    idx = np.flatnonzero(candidates)
    pts = np.stack([inc[idx] / inclination_tol_deg, mm[idx] / mean_motion_tol_rev_per_day], 1)
    labels = _dbscan(pts, 1.0, min_density)
    for k in idx[labels < 0]:
        unassigned[int(k)] = (f"no shell at i = {inc[k]:.2f} deg, n = {mm[k]:.3f} rev/day: "
                              "raising or deorbiting")

    from .walker import altitude_from_mean_motion

    shells: list[InferredShell] = []
    for lab in range(labels.max() + 1 if labels.size else 0):
        members = idx[labels == lab]
        med_n = float(np.median(mm[members]))
        far = np.abs(mm[members] - med_n) > max_mean_motion_offset_rev_per_day
        for k in members[far]:
            unassigned[int(k)] = (f"mean motion {mm[k]:.3f} rev/day is {mm[k] - med_n:+.3f} from "
                                  f"its shell's {med_n:.3f}: raising or deorbiting")
        members = members[~far]
        med_i = float(np.median(inc[members])) if members.size else 0.0
        if members.size < min_shell_sats:
            for k in members:
                unassigned[int(k)] = (f"small group of {members.size} at i = {med_i:.2f} deg, "
                                      f"n = {med_n:.3f} rev/day (< {min_shell_sats} for a shell; "
                                      "a launch batch still raising?)")
            continue
        groups = [members[g] for g in _circular_groups(raan_ref[members], plane_gap_deg)]
        groups = _split_wide(groups, raan_ref, min_plane_sats)
        kept = []
        for g_ids in groups:
            if g_ids.size < min_plane_sats:
                for k in g_ids:
                    unassigned[int(k)] = (f"plane of {g_ids.size} at RAAN "
                                          f"{raan_ref[k]:.1f} deg is too small "
                                          f"(< {min_plane_sats}); drifting between planes?")
                continue
            kept.append(g_ids)
        if not kept:
            continue
        s_index = len(shells)
        plane_raans = [_circular_mean_deg(raan_ref[g]) for g in kept]
        order = np.argsort(plane_raans, kind="stable")
        sizes, raans = [], []
        for p_index, gi in enumerate(order):
            g_ids = kept[gi]
            in_plane = g_ids[np.argsort(u_ref[g_ids], kind="stable")]
            shell[in_plane] = s_index
            plane[in_plane] = p_index
            slot[in_plane] = np.arange(in_plane.size)
            sizes.append(int(in_plane.size))
            raans.append(float(plane_raans[gi]))
        assigned = np.concatenate(kept)
        alt = altitude_from_mean_motion(med_n)
        info = ShellInfo(name=f"i{med_i:.1f}-{alt:.0f}km", altitude_km=float(alt),
                         inclination_deg=med_i, n_planes=len(kept),
                         sats_per_plane=int(round(float(np.median(sizes)))), pattern="inferred")
        shells.append(InferredShell(info, med_n, int(assigned.size), tuple(sizes),
                                    tuple(raans)))
    # Renumber shells by inclination then altitude for a readable report.
    order = sorted(range(len(shells)), key=lambda s: (round(shells[s].info.inclination_deg, 1),
                                                      shells[s].info.altitude_km))
    remap = np.full(len(shells) + 1, -1, dtype=np.int32)
    remap[np.array(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
    shell = np.where(shell >= 0, remap[shell], -1).astype(np.int32)
    shells = [shells[s] for s in order]
    return PlaneInference(names, shell, plane, slot, tuple(shells),
                          dict(sorted(unassigned.items())), ref, inc, mm)


def plane_report(result: PlaneInference, max_examples: int = 5) -> str:
    """A printable per-shell summary of :func:`infer_planes`.

    Lists every shell (inclination, altitude, mean motion, planes, satellites per plane,
    RAAN spacing) and every reason satellites were left out, with counts and examples.
    """
    ref = datetime.fromtimestamp((result.reference_jd - _JD_UNIX_EPOCH) * 86400.0, tz=UTC)
    n_assigned = int((result.shell >= 0).sum())
    lines = [f"{result.n} satellites: {n_assigned} in {len(result.shells)} shells, "
             f"{len(result.unassigned)} fit no plane (RAAN at {ref:%Y-%m-%d %H:%M} UTC)",
             f"{'shell':<14} {'incl deg':>8} {'alt km':>7} {'n rev/d':>8} {'sats':>5} "
             f"{'planes':>6} {'per plane min/med/max':>22} {'dRAAN deg':>9}"]
    for s, sh in enumerate(result.shells):
        sizes = np.array(sh.plane_sizes)
        raans = np.sort(np.array(sh.plane_raan_deg))
        spacing = (float(np.median(np.diff(np.concatenate([raans, [raans[0] + 360.0]]))))
                   if raans.size > 1 else float("nan"))
        lines.append(
            f"{s:>2} {sh.info.name:<11} {sh.info.inclination_deg:8.2f} "
            f"{sh.info.altitude_km:7.1f} {sh.mean_motion_rev_per_day:8.3f} {sh.n_sats:5d} "
            f"{sh.info.n_planes:6d} {f'{sizes.min()}/{np.median(sizes):g}/{sizes.max()}':>22} "
            f"{spacing:9.2f}")
    if result.unassigned:
        lines.append("not in any plane (reported, kept with shell/plane/slot = -1):")
        kinds: dict[str, list[int]] = {}
        for k, reason in result.unassigned.items():
            kinds.setdefault(reason.split(" ")[0] if not reason.startswith("small group")
                             else "small group", []).append(k)
        labels = {"eccentric": "eccentric orbit (raising or deorbiting)",
                  "no": "no dense shell at its inclination and mean motion",
                  "mean": "mean motion far from its shell's",
                  "small group": "small group (launch batch?)",
                  "plane": "too few satellites in its plane",
                  "SGP4": "SGP4 failure"}
        for kind, ids in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
            ex = ", ".join(f"{result.names[k]} (i {result.inclination_deg[k]:.2f}, n "
                           f"{result.mean_motion_rev_per_day[k]:.3f})" for k in ids[:max_examples])
            lines.append(f"  {len(ids):5d}  {labels.get(kind, kind)}: {ex}"
                         + (", ..." if len(ids) > max_examples else ""))
    return "\n".join(lines)


def tle_constellation(path: Path | str, *, label_planes: bool = True) -> Constellation:
    """Satellites of a TLE file in file order, labelled by :func:`infer_planes` if asked."""
    records = read_tle(path)
    sats = records_to_satrecs(records, str(path))
    names = _unique_names([r.name for r in records])
    n = len(sats)
    if not label_planes:
        minus = np.full(n, -1, dtype=np.int32)
        return Constellation(names=names, satrecs=tuple(sats), shell=minus, plane=minus,
                             slot=minus, source="tle")
    res = infer_planes(sats, names)
    return Constellation(names=names, satrecs=tuple(sats), shell=res.shell, plane=res.plane,
                         slot=res.slot, shells=tuple(s.info for s in res.shells),
                         unassigned=np.array(sorted(res.unassigned), dtype=np.int32),
                         source="tle")

