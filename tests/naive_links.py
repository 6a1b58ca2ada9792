"""Slow, obvious references for the link kernels, and a tiny circular-orbit constellation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from meshnet.kernels._geometry import OMEGA_EARTH_RAD_S
from meshnet.units import MU_EARTH_KM3_S2, R_EARTH_KM

REASONS = ("none", "invalid", "seam", "earth_blocked", "out_of_range", "polar",
           "angular_rate", "sun")


def walker(n_planes, sats_per_plane, altitude_km, inclination_deg, phasing=1,
           pattern="delta", t_s=0.0, raan0_deg=0.0):
    """Circular Walker shell: Earth-fixed r (N, 3), v (N, 3) at ``t_s`` and a constellation.

    Satellite id = plane * sats_per_plane + slot. Earth-fixed = inertial rotated by
    ``-omega t`` (GMST zero at t = 0).
    """
    n = n_planes * sats_per_plane
    a = R_EARTH_KM + altitude_km
    n_mean = math.sqrt(MU_EARTH_KM3_S2 / a**3)
    spread = 360.0 if pattern == "delta" else 180.0
    inc = math.radians(inclination_deg)
    plane = np.repeat(np.arange(n_planes), sats_per_plane)
    slot = np.tile(np.arange(sats_per_plane), n_planes)
    raan = np.radians(raan0_deg + spread * plane / n_planes)
    u = (2 * np.pi * slot / sats_per_plane
         + 2 * np.pi * phasing * plane / n + n_mean * t_s)
    # Perifocal -> inertial for a circular orbit: position along (cos u, sin u).
    cO, sO, ci, si = np.cos(raan), np.sin(raan), math.cos(inc), math.sin(inc)
    px = cO * np.cos(u) - sO * np.sin(u) * ci
    py = sO * np.cos(u) + cO * np.sin(u) * ci
    pz = np.sin(u) * si
    vx = -cO * np.sin(u) - sO * np.cos(u) * ci
    vy = -sO * np.sin(u) + cO * np.cos(u) * ci
    vz = np.cos(u) * si
    r_i = a * np.stack([px, py, pz], axis=1)
    v_i = a * n_mean * np.stack([vx, vy, vz], axis=1)
    th = -OMEGA_EARTH_RAD_S * t_s
    rot = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0],
                    [0, 0, 1]])
    r = r_i @ rot.T
    # Earth-fixed velocity: rotate, then remove omega x r.
    v = v_i @ rot.T
    v[:, 0] += OMEGA_EARTH_RAD_S * r[:, 1]
    v[:, 1] -= OMEGA_EARTH_RAD_S * r[:, 0]
    shell_info = SimpleNamespace(name="test", altitude_km=altitude_km,
                                 inclination_deg=inclination_deg, n_planes=n_planes,
                                 sats_per_plane=sats_per_plane, pattern=pattern,
                                 phasing=phasing)
    const = SimpleNamespace(
        names=np.array([f"S{i}" for i in range(n)], dtype=object),
        n=n,
        shell=np.zeros(n, np.int32), plane=plane.astype(np.int32), slot=slot.astype(np.int32),
        shells=(shell_info,), static_isls=None, max_isl_length_km=None,
        max_gsl_length_km=None)
    return r, v, const


def naive_reason(ra, rb, va, vb, sun, *, graze_alt_km=80.0, range_cap_km=5400.0,
                 sun_deg=5.0, polar_deg=70.0, max_rate_deg_s=1.0, cross_seam=False,
                 cross_plane=None, coplanar_deg=1.0):
    """Reason name of one link, the obvious way (numpy, one pair)."""
    ra, rb, va, vb, sun = (np.asarray(x, float) for x in (ra, rb, va, vb, sun))
    if not (np.isfinite(ra).all() and np.isfinite(rb).all()):
        return "invalid"
    w = np.array([0.0, 0.0, OMEGA_EARTH_RAD_S])
    ha = np.cross(ra, va + np.cross(w, ra))
    hb = np.cross(rb, vb + np.cross(w, rb))
    ha, hb = ha / np.linalg.norm(ha), hb / np.linalg.norm(hb)
    if not cross_seam and ha @ hb < 0:
        return "seam"
    # Line of sight sampled densely: lowest point of the segment.
    s = np.linspace(0.0, 1.0, 20001)[:, None]
    pts = ra + s * (rb - ra)
    if np.linalg.norm(pts, axis=1).min() < R_EARTH_KM + graze_alt_km:
        return "earth_blocked"
    d = rb - ra
    dist = np.linalg.norm(d)
    if dist > range_cap_km:
        return "out_of_range"
    if cross_plane is None:
        cross_plane = math.degrees(math.acos(min(1.0, ha @ hb))) > coplanar_deg
    if polar_deg is not None and cross_plane:
        lat = [math.degrees(math.asin(x[2] / np.linalg.norm(x))) for x in (ra, rb)]
        if max(abs(x) for x in lat) > polar_deg:
            return "polar"
    dv = (vb + np.cross(w, rb)) - (va + np.cross(w, ra))
    rate = np.linalg.norm(np.cross(d, dv)) / dist**2
    if math.degrees(rate) > max_rate_deg_s:
        return "angular_rate"
    if sun_deg > 0:
        u = d / dist
        for pos, look in ((ra, u), (rb, -u)):
            ang = math.degrees(math.acos(np.clip(look @ sun, -1, 1)))
            along = pos @ sun
            shadow = along < 0 and np.linalg.norm(pos - along * sun) < R_EARTH_KM
            if ang < sun_deg and not shadow:
                return "sun"
    return "none"


def brute_candidates(r_km, v_km_s, free, k, coplanar_tolerance_deg, range_km):
    """All-pairs numpy twin of ``meshnet.links.dynamic.kdtree_candidates``."""
    from meshnet.links.dynamic import _inplane_pairs, _merge_candidates, orbit_normals

    nf = free.shape[0]
    if nf < 2:
        e = np.empty(0, np.int32)
        return e, e, np.empty(0, np.int8)
    h = orbit_normals(r_km[free], v_km_s[free])
    pos = r_km[free]
    chord = 2.0 * math.sin(math.radians(coplanar_tolerance_deg) / 2.0)
    cop_i, cop_j, near_i, near_j = [], [], [], []
    kk = min(k, nf - 1)
    for s in range(0, nf, 512):
        blk = slice(s, min(nf, s + 512))
        dh = np.linalg.norm(h[blk, None, :] - h[None, :, :], axis=2)
        ii, jj = np.nonzero(dh <= chord)
        ii += s
        up = ii < jj
        cop_i.append(ii[up])
        cop_j.append(jj[up])
        dist = np.linalg.norm(pos[blk, None, :] - pos[None, :, :], axis=2)
        rows = np.arange(dist.shape[0])
        dist[rows, rows + s] = np.inf
        idx = np.argsort(dist, axis=1, kind="stable")[:, :kk]
        dsel = np.take_along_axis(dist, idx, axis=1)
        ok = dsel <= range_km
        near_i.append(np.repeat(np.arange(s, blk.stop), kk)[ok.ravel()])
        near_j.append(idx.ravel()[ok.ravel()])
    ci, cj = np.concatenate(cop_i), np.concatenate(cop_j)
    ia, ib = _inplane_pairs(r_km, v_km_s, free[ci], free[cj], free)
    return _merge_candidates(ia, ib, free[np.concatenate(near_i)],
                             free[np.concatenate(near_j)])


def naive_lifetime(ra, rb, va, vb, graze_r_km, range_cap_km, horizon_s, dt=0.01):
    """Seconds of straight-line relative motion until the pair exceeds its range limit."""
    g2 = graze_r_km**2
    lim = min(math.sqrt(max(ra @ ra - g2, 0)) + math.sqrt(max(rb @ rb - g2, 0)), range_cap_km)
    d, u = rb - ra, vb - va
    if np.linalg.norm(d) >= lim:
        return 0.0
    # Bisection on |d + u t| = lim (monotone after the closest approach).
    lo, hi = 0.0, horizon_s
    tc = max(0.0, -(d @ u) / (u @ u)) if u @ u > 0 else horizon_s
    lo = min(tc, horizon_s)
    if np.linalg.norm(d + u * hi) < lim:
        return horizon_s
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(d + u * mid) < lim:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def naive_greedy(a, b, order, degree, max_degree):
    """Accept links in order while both ends have a free terminal."""
    degree = list(degree)
    accept = [False] * len(a)
    for i in order:
        if degree[a[i]] < max_degree and degree[b[i]] < max_degree:
            degree[a[i]] += 1
            degree[b[i]] += 1
            accept[i] = True
    return accept


def naive_gsl_assign(cands, held, margin_deg, sat_ok):
    """One station's antennas for one step, the obvious way (docs/links.md, "Ground links").

    ``cands``: {sat: (group, elevation_deg)} above the mask; ``held``: list of the satellite
    each antenna held (None: free). Returns the new list and ``[(sat, reason)]`` released.
    """
    held = list(held)
    released = []
    for j, s in enumerate(held):
        if s is not None and s not in cands:
            released.append((s, "below_mask" if sat_ok[s] else "invalid"))
            held[j] = None

    def count(group):
        return sum(1 for s in held if s is not None and cands[s][0] == group)

    def key(s):
        return (count(cands[s][0]), -cands[s][1], s)

    fresh, banned = set(), set()
    for j in range(len(held)):
        free = [s for s in cands if s not in held]
        if held[j] is None and free:
            held[j] = min(free, key=key)
            fresh.add(held[j])
    while True:
        swaps = []
        for u in cands:
            if u in held or u in banned:
                continue
            ok = [j for j, s in enumerate(held) if s is not None
                  and cands[u][1] > cands[s][1] + margin_deg
                  and (cands[u][0] == cands[s][0] or count(cands[u][0]) < count(cands[s][0]))]
            if ok:
                j = min(ok, key=lambda j: (cands[held[j]][1], held[j]))
                swaps.append((key(u), u, j))
        if not swaps:
            return held, released
        _, u, j = min(swaps)
        if held[j] not in fresh:
            released.append((held[j], "handover"))
        banned.add(held[j])
        held[j] = u
        fresh.add(u)


def naive_intershell_candidates(r_km, free, shell, k, range_km):
    """All-pairs twin of ``meshnet.links.intershell.intershell_candidates``."""
    pairs = set()
    free = [int(i) for i in free]
    for i in free:
        if shell[i] < 0:
            continue  # no shell, no inter-shell head
        for t in sorted({int(shell[j]) for j in free} - {int(shell[i]), -1}):
            others = [j for j in free if shell[j] == t]
            dist = sorted((float(np.linalg.norm(r_km[i] - r_km[j])), j) for j in others)
            for d, j in dist[:k]:
                if d <= range_km:
                    pairs.add((min(i, j), max(i, j)))
    out = sorted(pairs)
    return [p[0] for p in out], [p[1] for p in out]


def naive_intershell_matching(ca, cb, life, length, shell, links, heads):
    """Twin of the inter-shell matching: shell pairs served in rounds, then greedy.

    ``links`` are the (a, b) inter-shell links already held; returns the accepted flags.
    """
    def pair(i, j):
        return (min(shell[i], shell[j]), max(shell[i], shell[j]))

    held = {}
    degree = {}
    for i, j in links:
        held[pair(i, j)] = held.get(pair(i, j), 0) + 1
        degree[i] = degree.get(i, 0) + 1
        degree[j] = degree.get(j, 0) + 1
    idx = list(range(len(ca)))
    best = {c: (-life[c], length[c], ca[c], cb[c]) for c in idx}
    level = {}
    for p in {pair(ca[c], cb[c]) for c in idx}:
        mine = sorted((c for c in idx if pair(ca[c], cb[c]) == p), key=best.get)
        for rank, c in enumerate(mine):
            level[c] = held.get(p, 0) + rank
    order = sorted(idx, key=lambda c: (level[c],) + best[c])
    n = max([0] + [int(x) + 1 for x in list(ca) + list(cb)] + [i + 1 for i in degree])
    return naive_greedy(list(ca), list(cb), order,
                        [degree.get(i, 0) for i in range(n)], heads)
