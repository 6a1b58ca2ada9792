"""ISL topology policies, registered by name and chosen by ``[links].topology``.

Every policy is a class built as ``Policy(cfg, constellation, limits, plane_key, base_dir)``
with a ``step(t_ns, r_km, v_km_s, sun_dir) -> IslRows`` method; it owns its link state.

``plus_grid``
    Two in-plane neighbours (next and previous slot) and two cross-plane neighbours from the
    constellation's shell/plane/slot labels. Regular Walker shells (every slot of every plane
    filled): the same slot plus ``cross_plane_shift`` in the next and previous plane; the link
    from the last plane back to plane 0 of a Walker-delta shell also adds the phasing F, so it
    joins the satellite at the same orbital phase. In a Walker-star shell the seam between the
    last and the first plane (counter-rotating) gets no links unless ``cross_seam = true``.
    Irregular shells (planes inferred from a TLE catalogue, unequal plane sizes or empty
    slots): each satellite is paired with the nearest-phase satellite (argument of latitude
    at the first step) of the next plane, one to one, greedily by smallest phase difference
    (:func:`nearest_phase_pairs`).
``dynamic``
    Every satellite has ``terminals`` laser heads; links are assigned step by step (see
    :class:`~meshnet.links.dynamic.DynamicTopology`). Needs no plane labels and links across
    shells.
``cluster``
    For formations: the constellation's own lattice neighbours (``cluster_pairs``) where it has
    them, otherwise at the first step every satellite proposes its ``cluster_neighbours``
    nearest satellites within range; the shortest proposals are accepted while both ends have
    a free terminal. Fixed afterwards.
``static``
    A given list of links: ``static_file`` (``a b`` per line, Hypatia ``isls.txt``) or the
    constellation's ``static_isls``. Not limited by ``terminals``.

Fixed topologies report every candidate link at every step (DOWN rows with their reason);
``dynamic`` reports its assigned links plus the links that broke at this step. On a
constellation of several shells the fixed topologies get ``inter_shell_terminals`` extra heads
that link across shells (:mod:`meshnet.links.intershell`), reported like ``dynamic``'s links.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeshnetError, ScenarioError, quote_excerpt
from ..routing.plugins import PluginRegistry
from .feasibility import FeasibilityLimits, evaluate_links
from .state import LinkStates

#: Built-in topologies; also ``module:Name``, ``file.py:Name`` and ``meshnet.topology`` entry
#: points (a class with the constructor and ``step`` of :class:`FixedTopology`).
TOPOLOGIES = PluginRegistry("ISL topology")



@dataclass(frozen=True)
class IslRows:
    """ISL rows of one step, sorted by (a, b) with a < b."""

    a: np.ndarray
    b: np.ndarray
    state: np.ndarray
    reason: np.ndarray
    length_km: np.ndarray


def _canonical(a, b):
    """Links as (min, max) pairs, duplicates and self-links removed, sorted by (a, b)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = np.unique(lo[keep] * (1 << 32) + hi[keep])
    return (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32)


def _valid_rows(r, v):
    """Rows of ``r`` and ``v`` (``(N, 3)``) that are finite throughout."""
    # Column by column: ten times faster than isfinite(...).all(axis=1) on 41k rows.
    ok = np.isfinite(r[:, 0])
    for x in (r, v):
        for j in range(x.shape[1]):
            ok &= np.isfinite(x[:, j])
    return ok


def break_faulted(fault_reason, a, b, since, length, others, broken):
    """Apply ``[faults]`` to re-checked assigned links (``dynamic``, inter-shell layer).

    A fault reason takes precedence over a geometric one on the links that broke anyway, and a
    kept link with a failed end (or beyond its end's working heads) breaks now like an
    infeasible one. ``others`` are further per-link columns filtered like ``a``; ``broken`` is
    the ``(a, b, reason, length_km)`` rows of :func:`recheck_assigned`.
    """
    br_a, br_b, br_reason, br_len = broken
    fb = fault_reason(br_a, br_b, None)
    br_reason = np.where(fb != 0, fb, br_reason).astype(np.int8)
    f = fault_reason(a, b, since)
    hit = f != 0
    if hit.any():
        br_a, br_b = np.concatenate([br_a, a[hit]]), np.concatenate([br_b, b[hit]])
        br_reason = np.concatenate([br_reason, f[hit]]).astype(np.int8)
        br_len = np.concatenate([br_len, length[hit]])
        a, b, since, length = a[~hit], b[~hit], since[~hit], length[~hit]
        others = tuple(c[~hit] for c in others)
    return a, b, since, length, others, (br_a, br_b, br_reason, br_len)


def recheck_assigned(t_ns: int, t_last_ns: int | None, a, b, r_km, v_km_s, sun_dir,
                     limits: FeasibilityLimits, plane_key):
    """Re-check the assigned links of a stateful topology (``dynamic``, inter-shell layer).

    Returns ``(keep, length_km, broken)``: which links stay feasible, every link's length,
    and the ``(a, b, reason, length_km)`` rows of the links that broke at ``t_ns``.
    """
    if t_last_ns is not None and t_ns <= t_last_ns:
        raise MeshnetError(f"link states must advance in time: {t_ns} ns after "
                           f"{t_last_ns} ns")
    reason, length = evaluate_links(r_km, v_km_s, a, b, sun_dir, limits, plane_key)
    keep = reason == 0
    return keep, length, (a[~keep], b[~keep], reason[~keep], length[~keep])


class FixedTopology:
    """Base class: a candidate list fixed after the first step, evaluated at every step."""

    def __init__(self, cfg, constellation, limits: FeasibilityLimits, plane_key,
                 base_dir=None):
        self.cfg = cfg
        self.constellation = constellation
        self.limits = limits
        self.plane_key = np.asarray(plane_key, dtype=np.int64)
        self.n = int(self.plane_key.shape[0])
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.a: np.ndarray | None = None
        self.b: np.ndarray | None = None
        self.states: LinkStates | None = None
        #: Set by the link model when faults are active: ``hook(a, b, None)`` gives each
        #: link's fault reason (0: none); see links/fault_mask.py.
        self.fault_reason = None

    def candidates(self, r_km, v_km_s) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        if self.a is None:
            self.a, self.b = _canonical(*self.candidates(r_km, v_km_s))
            self.states = LinkStates(self.a.shape[0], self.cfg.acquisition_s,
                                     self.cfg.warm_start)
        reason, length = evaluate_links(r_km, v_km_s, self.a, self.b, sun_dir, self.limits,
                                        self.plane_key)
        if self.fault_reason is not None:
            # A fault reason precedes geometry; the state machine releases the link, and it
            # acquires again when the fault ends.
            f = self.fault_reason(self.a, self.b, None)
            reason = np.where(f != 0, f, reason).astype(np.int8)
        state = self.states.update(t_ns, reason == 0)
        return IslRows(self.a, self.b, state, reason, length)


@TOPOLOGIES.register("plus_grid")
class PlusGrid(FixedTopology):
    """+Grid from shell/plane/slot labels (see the module docs)."""

    def candidates(self, r_km, v_km_s):
        c = self.constellation
        shell = np.asarray(getattr(c, "shell", np.full(self.n, -1)), dtype=np.int64)
        plane = np.asarray(getattr(c, "plane", np.full(self.n, -1)), dtype=np.int64)
        slot = np.asarray(getattr(c, "slot", np.full(self.n, -1)), dtype=np.int64)
        labelled = (shell >= 0) & (plane >= 0) & (slot >= 0)
        if not labelled.any():
            raise ScenarioError(
                "[links].topology = 'plus_grid' needs the satellites' plane and slot labels, "
                "and this constellation has none; use topology = 'dynamic'")
        shells = tuple(getattr(c, "shells", ()) or ())
        shift = int(self.cfg.cross_plane_shift)
        out_a, out_b = [], []
        u_deg = None
        for s in np.unique(shell[labelled]):
            info = shells[s] if s < len(shells) else None
            ids = np.nonzero(labelled & (shell == s))[0]
            n_planes = max(int(plane[ids].max()) + 1, int(getattr(info, "n_planes", 0) or 0))
            n_slots = max(int(slot[ids].max()) + 1,
                          int(getattr(info, "sats_per_plane", 0) or 0))
            pattern = str(getattr(info, "pattern", "delta")).lower()
            star = pattern == "star"
            table = np.full((n_planes, n_slots), -1, dtype=np.int64)
            table[plane[ids], slot[ids]] = ids
            # In-plane ring over the satellites present, in slot order.
            for p in range(n_planes):
                row = table[p][table[p] >= 0]
                if row.shape[0] >= 2:
                    out_a.append(row)
                    out_b.append(np.roll(row, -1))
            if pattern == "inferred" or (table < 0).any():
                # Irregular planes: slot k of one plane is not slot k of the next.
                if u_deg is None:
                    u_deg = argument_of_latitude_deg(r_km, v_km_s)
                rows = [table[p][table[p] >= 0] for p in range(n_planes)]
                rows = [row for row in rows if row.shape[0]]
                wrap = len(rows) > 2 and not (star and not self.cfg.cross_seam)
                for p in range(len(rows) if wrap else len(rows) - 1):
                    src, dst = rows[p], rows[(p + 1) % len(rows)]
                    pa, pb = nearest_phase_pairs(src, dst, u_deg, shift * 360.0 / dst.shape[0])
                    out_a.append(pa)
                    out_b.append(pb)
                continue
            # Cross-plane: plane p slot k -- plane p+1 slot k+shift. Slot k of plane p sits at
            # u = k 360/S + p F 360/(P S); going round all P planes adds F slots, so the wrap
            # from the last plane to plane 0 of a delta shell adds the phasing F.
            phasing = int(getattr(info, "phasing", 0) or 0)
            for p in range(n_planes):
                q = p + 1
                extra = 0
                if q == n_planes:
                    if star and not self.cfg.cross_seam:
                        continue  # the counter-rotating seam of a Walker-star shell
                    q = 0
                    extra = 0 if star else phasing
                if q == p:
                    continue
                k = np.arange(n_slots)
                src = table[p, k]
                dst = table[q, (k + shift + extra) % n_slots]
                ok = (src >= 0) & (dst >= 0)
                out_a.append(src[ok])
                out_b.append(dst[ok])
        if not out_a:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(out_a), np.concatenate(out_b)


def argument_of_latitude_deg(r_km, v_km_s) -> np.ndarray:
    """Argument of latitude ``u`` (deg, [0, 360)) of each satellite from its state.

    ``r_km``, ``v_km_s`` are Earth-fixed; the velocity is made inertial (``v + omega x r``), the
    orbit normal is ``h = r x v_inertial``, the ascending node ``n = z x h`` and ``u`` the angle
    from ``n`` to ``r`` in the orbit plane. A rotation about the Earth's axis changes neither,
    so Earth-fixed axes give the inertial ``u``. NaN where a state is missing.
    """
    from ..kernels._geometry import OMEGA_EARTH_RAD_S

    r = np.asarray(r_km, dtype=np.float64)
    v = np.asarray(v_km_s, dtype=np.float64)
    v_in = v + np.cross(np.array([0.0, 0.0, OMEGA_EARTH_RAD_S]), r)
    h = np.cross(r, v_in)
    h /= np.linalg.norm(h, axis=1)[:, None]
    node = np.stack([-h[:, 1], h[:, 0], np.zeros(h.shape[0])], axis=1)  # z x h
    node /= np.linalg.norm(node, axis=1)[:, None]
    along = np.cross(h, node)  # in the orbit plane, 90 deg ahead of the node
    u = np.degrees(np.arctan2(np.einsum("ij,ij->i", r, along), np.einsum("ij,ij->i", r, node)))
    return np.mod(u, 360.0)


def nearest_phase_pairs(src, dst, u_deg, offset_deg: float = 0.0):
    """Pair satellites of two planes one to one by nearest phase.

    Every (src, dst) pair is ranked by ``|u_dst - u_src - offset|`` wrapped to [0, 180] deg
    (ties by ids) and accepted greedily while neither end is paired yet, so each satellite
    gets at most one partner; satellites without a state (NaN phase) get none.

    Parameters
    ----------
    src, dst : numpy.ndarray
        Satellite ids of the two planes.
    u_deg : numpy.ndarray
        Argument of latitude of every satellite (:func:`argument_of_latitude_deg`).
    offset_deg : float
        Phase the partner should lead by (``cross_plane_shift`` slots of the next plane).

    Examples
    --------
    >>> u = np.array([0.0, 120.0, 240.0, 10.0, 100.0, 200.0, 300.0])
    >>> a, b = nearest_phase_pairs(np.array([0, 1, 2]), np.array([3, 4, 5, 6]), u)
    >>> sorted(zip(a.tolist(), b.tolist()))
    [(0, 3), (1, 4), (2, 5)]
    """
    from ..kernels._links import greedy_matching

    src = src[np.isfinite(u_deg[src])]
    dst = dst[np.isfinite(u_deg[dst])]
    if src.shape[0] == 0 or dst.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ii, jj = np.meshgrid(np.arange(src.shape[0]), np.arange(dst.shape[0]), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    diff = np.abs((u_deg[dst[jj]] - u_deg[src[ii]] - offset_deg + 180.0) % 360.0 - 180.0)
    order = np.lexsort((dst[jj], src[ii], diff)).astype(np.int64)
    accept = np.zeros(ii.shape[0], dtype=bool)
    greedy_matching(ii.astype(np.int64), (jj + src.shape[0]).astype(np.int64), order,
                    np.zeros(src.shape[0] + dst.shape[0], np.int64), 1, accept)
    return src[ii[accept]], dst[jj[accept]]


@TOPOLOGIES.register("static")
class StaticTopology(FixedTopology):
    """A given list of links (``static_file`` or the constellation's ``static_isls``)."""

    def candidates(self, r_km, v_km_s):
        if self.cfg.static_file is not None:
            path = Path(self.cfg.static_file).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            links = read_links_file(path, self.n)
        else:
            links = getattr(self.constellation, "static_isls", None)
            if links is None:
                raise ScenarioError(
                    "[links].topology = 'static' needs [links].static_file (a file of "
                    "'a b' satellite id pairs) or a constellation with its own ISL list "
                    "(a Hypatia directory)")
            links = np.asarray(links, dtype=np.int64).reshape(-1, 2)
            if links.size and (links.min() < 0 or links.max() >= self.n):
                raise ScenarioError(
                    f"the constellation's static ISLs name satellites outside 0..{self.n - 1}")
        return links[:, 0], links[:, 1]


def read_links_file(path: Path, n_sats: int) -> np.ndarray:
    """Read ``a b`` pairs (Hypatia ``isls.txt``), one per line, ``#`` comments allowed."""
    from ..config import check_input_file
    from ..errors import MeshnetError

    try:  # stat before open: a FIFO must not block; binary data is refused
        check_input_file(path, "static links file", missing_ok=True)
    except MeshnetError as exc:
        raise ScenarioError(f"{exc}; check [links].static_file") from None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the static links file ({exc.strerror}); "
                            "check [links].static_file") from None
    pairs = []
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").split()
        try:
            a, b = (int(x) for x in parts)
        except ValueError:
            raise ScenarioError(f"{path}:{lineno}: expected two satellite ids 'a b', found "
                                f"{quote_excerpt(line.strip())}") from None
        for x in (a, b):
            if not 0 <= x < n_sats:
                raise ScenarioError(f"{path}:{lineno}: satellite id {x} is outside "
                                    f"0..{n_sats - 1}")
        pairs.append((a, b))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


@TOPOLOGIES.register("cluster")
class ClusterTopology(FixedTopology):
    """k-nearest mesh within range under the terminal limit, fixed at the first step."""

    def candidates(self, r_km, v_km_s):
        from scipy.spatial import cKDTree

        from ..kernels._links import greedy_matching

        lattice = getattr(self.constellation, "cluster_pairs", None)
        if lattice is not None:
            # The formation's own lattice neighbours.
            lattice = np.asarray(lattice, dtype=np.int64).reshape(-1, 2)
            a, b = _canonical(lattice[:, 0], lattice[:, 1])
        else:
            valid = np.nonzero(_valid_rows(r_km, v_km_s))[0]
            if valid.shape[0] < 2:
                return np.empty(0, np.int64), np.empty(0, np.int64)
            pos = r_km[valid]
            k = min(int(self.cfg.cluster_neighbours) + 1, valid.shape[0])
            _, idx = cKDTree(pos).query(pos, k=k, distance_upper_bound=self.limits.range_cap_km)
            idx = idx.reshape(valid.shape[0], k)
            src = np.repeat(np.arange(valid.shape[0]), k)
            ok = (idx.ravel() < valid.shape[0]) & (idx.ravel() != src)
            a, b = _canonical(valid[src[ok]], valid[idx.ravel()[ok]])
        length = np.linalg.norm(r_km[a] - r_km[b], axis=1)
        length = np.where(np.isfinite(length), length, np.inf)
        order = np.lexsort((b, a, length))
        accept = np.zeros(a.shape[0], dtype=bool)
        greedy_matching(a, b, order.astype(np.int64), np.zeros(self.n, np.int64),
                        int(self.cfg.n_terminals), accept)
        return a[accept], b[accept]


# Registered here so that every topology is known once this module is imported.
from . import dynamic as _dynamic  # noqa: E402,F401
