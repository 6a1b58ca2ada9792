"""ISL topology policies, registered by name and chosen by ``[links].topology``.

Every policy is a class built as ``Policy(cfg, constellation, limits, plane_key, base_dir)``
with a ``step(t_ns, r_km, v_km_s, sun_dir) -> IslRows`` method; it owns its link state.

``plus_grid``
    Two in-plane neighbours (next and previous slot) and two cross-plane neighbours (the same
    slot plus ``cross_plane_shift`` in the next and previous plane) from the constellation's
    shell/plane/slot labels; the link from the last plane back to plane 0 of a Walker-delta
    shell also adds the phasing F, so it joins the satellite at the same orbital phase. In a
    Walker-star shell the seam between the last and the first plane (counter-rotating) gets no
    links unless ``cross_seam = true``.
``dynamic``
    Every satellite has ``terminals`` laser heads; links are assigned step by step (see
    :class:`DynamicTopology`). Needs no plane labels and links across shells.
``cluster``
    For formations: the constellation's own lattice neighbours (``cluster_pairs``) where it has
    them, otherwise at the first step every satellite proposes its ``cluster_neighbours``
    nearest satellites within range; the shortest proposals are accepted while both ends have
    a free terminal. Fixed afterwards.
``static``
    A given list of links: ``static_file`` (``a b`` per line, Hypatia ``isls.txt``) or the
    constellation's ``static_isls``. Not limited by ``terminals``.

Fixed topologies report every candidate link at every step (DOWN rows with their reason);
``dynamic`` reports its assigned links plus the links that broke at this step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Registry
from ..errors import MeshnetError, ScenarioError
from ..timegrid import seconds_to_ns
from .feasibility import FeasibilityLimits, evaluate_links
from .reasons import DOWN, REASSIGNED
from .state import LinkStates, link_state

TOPOLOGIES = Registry("ISL topology")

#: Satellites of one plane whose orbital radii differ by more than this are not in-plane
#: neighbours (one of them is still raising or already lowering its orbit).
INPLANE_MAX_DR_KM = 25.0

#: Horizon of the predicted link lifetime used to rank new partners.
LIFETIME_HORIZON_S = 3600.0


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
    return np.isfinite(r).all(axis=1) & np.isfinite(v).all(axis=1)


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

    def candidates(self, r_km, v_km_s) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        if self.a is None:
            self.a, self.b = _canonical(*self.candidates(r_km, v_km_s))
            self.states = LinkStates(self.a.shape[0], self.cfg.acquisition_s,
                                     self.cfg.warm_start)
        reason, length = evaluate_links(r_km, v_km_s, self.a, self.b, sun_dir, self.limits,
                                        self.plane_key)
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
        for s in np.unique(shell[labelled]):
            info = shells[s] if s < len(shells) else None
            ids = np.nonzero(labelled & (shell == s))[0]
            n_planes = max(int(plane[ids].max()) + 1, int(getattr(info, "n_planes", 0) or 0))
            n_slots = max(int(slot[ids].max()) + 1,
                          int(getattr(info, "sats_per_plane", 0) or 0))
            star = str(getattr(info, "pattern", "delta")).lower() == "star"
            table = np.full((n_planes, n_slots), -1, dtype=np.int64)
            table[plane[ids], slot[ids]] = ids
            # In-plane ring over the satellites present, in slot order.
            for p in range(n_planes):
                row = table[p][table[p] >= 0]
                if row.shape[0] >= 2:
                    out_a.append(row)
                    out_b.append(np.roll(row, -1))
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
                                f"{line.strip()!r}") from None
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


def orbit_normals(r_km, v_km_s) -> np.ndarray:
    """Unit orbit normals ``r x v_inertial`` in Earth-fixed axes (NaN where undefined)."""
    from ..kernels._geometry import OMEGA_EARTH_RAD_S

    vi = v_km_s.copy()
    vi[:, 0] -= OMEGA_EARTH_RAD_S * r_km[:, 1]
    vi[:, 1] += OMEGA_EARTH_RAD_S * r_km[:, 0]
    h = np.cross(r_km, vi)
    with np.errstate(invalid="ignore", divide="ignore"):
        return h / np.linalg.norm(h, axis=1)[:, None]


def _inplane_pairs(r_km, v_km_s, pi, pj, ids):
    """In-plane candidates: each satellite of ``ids`` with its nearest coplanar satellite
    ahead and behind among the coplanar pairs ``pi--pj``."""
    from ..kernels._geometry import OMEGA_EARTH_RAD_S
    from ..kernels._links import inplane_neighbours

    n = r_km.shape[0]
    ahead = np.full(n, -1, dtype=np.int64)
    behind = np.full(n, -1, dtype=np.int64)
    inplane_neighbours(r_km, v_km_s, pi.astype(np.int64), pj.astype(np.int64),
                       INPLANE_MAX_DR_KM, OMEGA_EARTH_RAD_S, ahead, behind)
    src = np.concatenate([ids, ids])
    dst = np.concatenate([ahead[ids], behind[ids]])
    ok = dst >= 0
    return src[ok], dst[ok]


def kdtree_candidates(r_km, v_km_s, free, k: int, coplanar_tolerance_deg: float,
                      range_km: float):
    """Candidate partners among the satellites ``free`` (ids with a free terminal).

    Returns ``(a, b, cls)``: in-plane neighbours (nearest coplanar satellite ahead and behind,
    class 0) and the ``k`` nearest free satellites within ``range_km`` (class 1), as sorted
    unique pairs with the smaller class kept. Uses k-d trees, never all N^2 pairs.
    """
    from scipy.spatial import cKDTree

    nf = free.shape[0]
    if nf < 2:
        e = np.empty(0, np.int32)
        return e, e, np.empty(0, np.int8)
    h = orbit_normals(r_km[free], v_km_s[free])
    chord = 2.0 * np.sin(np.radians(coplanar_tolerance_deg) / 2.0)
    cop = cKDTree(h).query_pairs(chord, output_type="ndarray")
    ia, ib = _inplane_pairs(r_km, v_km_s, free[cop[:, 0]], free[cop[:, 1]], free)
    kk = min(k + 1, nf)
    _, idx = cKDTree(r_km[free]).query(r_km[free], k=kk, distance_upper_bound=range_km)
    idx = idx.reshape(nf, kk)
    src = np.repeat(np.arange(nf), kk)
    flat = idx.ravel()
    ok = (flat < nf) & (flat != src)
    return _merge_candidates(ia, ib, free[src[ok]], free[flat[ok]])


def _merge_candidates(ia, ib, na, nb):
    """Union of in-plane (class 0) and nearest (class 1) pairs, sorted, smaller class kept."""
    a = np.concatenate([ia, na]).astype(np.int64)
    b = np.concatenate([ib, nb]).astype(np.int64)
    cls = np.concatenate([np.zeros(ia.shape[0], np.int8), np.ones(na.shape[0], np.int8)])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = lo[keep] * (1 << 32) + hi[keep]
    cls = cls[keep]
    order = np.lexsort((cls, key))
    key, cls = key[order], cls[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, cls = key[first], cls[first]
    return (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32), cls


@TOPOLOGIES.register("dynamic")
class DynamicTopology:
    """Terminal-limited link assignment, step by step.

    At every step:

    1. assigned links are re-checked; the feasible ones are kept (hysteresis: a link is never
       dropped for a better one), the others break (a DOWN row with the reason) and free the
       terminals at both ends;
    2. candidates are found among the satellites with a free terminal only: the nearest
       coplanar satellite ahead and behind (orbit normals within ``coplanar_tolerance_deg``
       and radii within 25 km; no plane labels needed) and the ``dynamic_candidates``
       nearest within range, with k-d trees;
    3. feasible candidates are ranked in-plane first, then by the predicted lifetime (time
       until the pair would leave its range limit under straight-line relative motion,
       longest first), then shortest, then by ids; and accepted greedily while both ends have
       a free terminal. New links acquire for ``acquisition_s`` (at the first step with
       ``warm_start`` they start up).

    With ``reoptimise_interval_s`` set, a cross-plane link that has not been reviewed for that
    long is released before step 2 (reason ``reassigned``) and its two terminals compete with
    the free ones: if the same pair wins again it stays up with no new acquisition (only its
    review time is reset); otherwise the heads re-point to better partners. This models the
    roaming terminal that operators re-point for geometry, not only when a link fails.

    ``search`` may be replaced by a function with the signature of :func:`kdtree_candidates`
    (the benchmark swaps in an all-pairs search to compare).
    """

    search = staticmethod(kdtree_candidates)

    def __init__(self, cfg, constellation, limits: FeasibilityLimits, plane_key,
                 base_dir=None):
        self.cfg = cfg
        self.limits = limits
        self.plane_key = np.asarray(plane_key, dtype=np.int64)
        self.n = int(self.plane_key.shape[0])
        self.terminals = int(cfg.n_terminals)
        self.acquisition_ns = seconds_to_ns(cfg.acquisition_s)
        self.a = np.empty(0, np.int32)
        self.b = np.empty(0, np.int32)
        self.since_ns = np.empty(0, np.int64)
        self.review_ns = np.empty(0, np.int64)
        self.cls = np.empty(0, np.int8)
        self.reopt_ns = (None if cfg.reoptimise_interval_s is None
                         else seconds_to_ns(cfg.reoptimise_interval_s))
        self.t_last_ns: int | None = None

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        from ..kernels._links import greedy_matching, predicted_lifetime

        t_ns = int(t_ns)
        first = self.t_last_ns is None
        if not first and t_ns <= self.t_last_ns:
            raise MeshnetError(f"link states must advance in time: {t_ns} ns after "
                               f"{self.t_last_ns} ns")
        lim = self.limits
        reason, length = evaluate_links(r_km, v_km_s, self.a, self.b, sun_dir, lim,
                                        self.plane_key)
        keep = reason == 0
        br_a, br_b, br_reason, br_len = (self.a[~keep], self.b[~keep], reason[~keep],
                                         length[~keep])
        a, b, since, length = self.a[keep], self.b[keep], self.since_ns[keep], length[keep]
        review, link_cls = self.review_ns[keep], self.cls[keep]
        held_key = np.zeros(0, np.int64)
        held_since = np.zeros(0, np.int64)
        held_len = np.zeros(0)
        if self.reopt_ns is not None and not first:
            due = (link_cls != 0) & (t_ns - review >= self.reopt_ns)
            held_key = a[due].astype(np.int64) * (1 << 32) + b[due]
            held_since, held_len = since[due], length[due]
            keep2 = ~due
            a, b, since, length = a[keep2], b[keep2], since[keep2], length[keep2]
            review, link_cls = review[keep2], link_cls[keep2]

        degree = (np.bincount(a, minlength=self.n) + np.bincount(b, minlength=self.n))
        free = np.nonzero(_valid_rows(r_km, v_km_s) & (degree < self.terminals))[0]
        ca, cb, cls = self.search(r_km, v_km_s, free, int(self.cfg.dynamic_candidates),
                                  lim.coplanar_tolerance_deg, lim.range_cap_km)
        if ca.shape[0] and a.shape[0]:
            # A pair of free satellites may already be linked (terminals > 1).
            linked = a.astype(np.int64) * (1 << 32) + b
            fresh = ~np.isin(ca.astype(np.int64) * (1 << 32) + cb, linked,
                             assume_unique=True)
            ca, cb, cls = ca[fresh], cb[fresh], cls[fresh]
        c_reason, c_len = evaluate_links(r_km, v_km_s, ca, cb, sun_dir, lim, self.plane_key)
        ok = c_reason == 0
        ca, cb, cls, c_len = ca[ok], cb[ok], cls[ok], c_len[ok]
        life = np.empty(ca.shape[0], dtype=np.float64)
        predicted_lifetime(r_km, v_km_s, ca, cb, lim.graze_radius_km, lim.range_cap_km,
                           LIFETIME_HORIZON_S, life)
        order = np.lexsort((cb, ca, c_len, -life, cls)).astype(np.int64)
        accept = np.zeros(ca.shape[0], dtype=bool)
        greedy_matching(ca, cb, order, degree.astype(np.int64), self.terminals, accept)
        t0 = t_ns - self.acquisition_ns if (first and self.cfg.warm_start) else t_ns
        new_since = np.full(int(accept.sum()), t0, np.int64)
        if held_key.shape[0]:
            # Released links whose pair won again keep their acquisition time; the others
            # are reported down as reassigned.
            new_key = ca[accept].astype(np.int64) * (1 << 32) + cb[accept]
            pos = np.searchsorted(held_key, new_key)
            pos = np.minimum(pos, held_key.shape[0] - 1)
            again = held_key[pos] == new_key
            new_since[again] = held_since[pos[again]]
            gone = ~np.isin(held_key, new_key, assume_unique=True)
            br_a = np.concatenate([br_a, (held_key[gone] >> 32).astype(np.int32)])
            br_b = np.concatenate([br_b, (held_key[gone] & 0xFFFFFFFF).astype(np.int32)])
            br_reason = np.concatenate([br_reason,
                                        np.full(int(gone.sum()), REASSIGNED, np.int8)])
            br_len = np.concatenate([br_len, held_len[gone]])
        a = np.concatenate([a, ca[accept]])
        b = np.concatenate([b, cb[accept]])
        since = np.concatenate([since, new_since])
        review = np.concatenate([review, np.full(int(accept.sum()), t_ns, np.int64)])
        link_cls = np.concatenate([link_cls, cls[accept].astype(np.int8)])
        length = np.concatenate([length, c_len[accept]])
        order = np.lexsort((b, a))
        self.a, self.b, self.since_ns = a[order], b[order], since[order]
        self.review_ns, self.cls = review[order], link_cls[order]
        self.t_last_ns = t_ns
        length = length[order]
        state = link_state(t_ns, self.since_ns, self.acquisition_ns)
        rows_a = np.concatenate([self.a, br_a])
        rows_b = np.concatenate([self.b, br_b])
        order = np.lexsort((rows_b, rows_a))
        return IslRows(
            a=rows_a[order],
            b=rows_b[order],
            state=np.concatenate([state, np.full(br_a.shape[0], DOWN, np.int8)])[order],
            reason=np.concatenate([np.zeros(self.a.shape[0], np.int8), br_reason])[order],
            length_km=np.concatenate([length, br_len])[order],
        )
