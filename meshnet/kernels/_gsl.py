"""Ground-antenna assignment with handover hysteresis (one station at a time, serial).

The rule (also in docs/links.md, "Ground links"), for each station and step, given the
candidates (satellites above the elevation mask, with a group label and an elevation) and the
satellites its antennas held at the previous step:

1. Release every held satellite that is no longer a candidate (``below_mask``, or
   ``invalid`` when its position is unknown).
2. Fill free antennas one at a time with the unlinked candidate of least key
   ``(links already in its group, -elevation, satellite id)``: groups reached least come
   first, the highest satellite first inside them.
3. Handover: while some unlinked candidate ``u`` may replace a held satellite ``l``, i.e.
   ``elev(u) > elev(l) + margin`` and (``u`` and ``l`` share a group, or ``u``'s group holds
   fewer links than ``l``'s), take the least-key such ``u`` and replace the lowest such ``l``
   (ties by satellite id); ``l`` is released (``handover``) and not linked again this step.
   Each swap raises the summed elevation by more than ``margin``, so the loop ends.

The twin in tests/naive_links.py (``naive_gsl_assign``) states the same rule with Python sets.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Release codes written by :func:`gsl_assign` (mapped to reason codes by the caller).
RELEASE_BELOW_MASK = 1
RELEASE_HANDOVER = 2
RELEASE_INVALID = 3


@njit(cache=True, inline="always")
def _key_less(c1, c2, cnt1, cnt2, elev, sat):
    """Whether candidate c1 (group count cnt1) comes before c2 in the fill order."""
    if cnt1 != cnt2:
        return cnt1 < cnt2
    if elev[c1] != elev[c2]:
        return elev[c1] > elev[c2]
    return sat[c1] < sat[c2]


@njit(cache=True)
def gsl_assign(offsets, cand_sat, cand_group, cand_elev_deg, n_groups, sat_ok, margin_deg,
               held, rel_sat, rel_station, rel_code, held_out):
    """Update each station's antennas in place; returns the number of releases written.

    Parameters
    ----------
    offsets : int64 (G + 1,)
        Station g's candidates are ``offsets[g]:offsets[g + 1]`` of the ``cand_*`` arrays.
    cand_sat, cand_group : int64
        Satellite id and group (0..n_groups-1) of every candidate.
    cand_elev_deg : float64
        Elevation of every candidate.
    sat_ok : bool (N,)
        Whether each satellite has a position (a held satellite without one is ``invalid``).
    margin_deg : float
    held : int64 (G, A)
        Satellite held by each antenna, -1 if free; updated in place.
    rel_sat, rel_station, rel_code : int64 (G * A,)
        Releases (satellites held at the previous step and dropped now), filled from 0.
    held_out : bool (number of candidates,)
        Set to whether each candidate is held after the update.
    """
    n_ground, n_ant = held.shape
    n_rel = 0
    for g in range(n_ground):
        o0 = offsets[g]
        nc = offsets[g + 1] - o0
        sat = cand_sat[o0:o0 + nc]
        grp = cand_group[o0:o0 + nc]
        elev = cand_elev_deg[o0:o0 + nc]
        linked = np.zeros(nc, np.bool_)
        banned = np.zeros(nc, np.bool_)
        fresh = np.zeros(nc, np.bool_)  # linked this step (never reported up, so no release)
        at = np.full(n_ant, -1, np.int64)  # candidate index held by each antenna
        count = np.zeros(n_groups, np.int64)
        # 1. Release what set (or vanished); keep the rest.
        for j in range(n_ant):
            s = held[g, j]
            if s < 0:
                continue
            found = -1
            for c in range(nc):
                if sat[c] == s:
                    found = c
                    break
            if found < 0:
                rel_sat[n_rel] = s
                rel_station[n_rel] = g
                rel_code[n_rel] = RELEASE_BELOW_MASK if sat_ok[s] else RELEASE_INVALID
                n_rel += 1
                held[g, j] = -1
            else:
                at[j] = found
                linked[found] = True
                count[grp[found]] += 1
        # 2. Free antennas take the least-key unlinked candidate, one at a time.
        for j in range(n_ant):
            if at[j] >= 0:
                continue
            best = -1
            for c in range(nc):
                if linked[c]:
                    continue
                if best < 0 or _key_less(c, best, count[grp[c]], count[grp[best]], elev, sat):
                    best = c
            if best < 0:
                break
            at[j] = best
            held[g, j] = sat[best]
            linked[best] = True
            fresh[best] = True
            count[grp[best]] += 1
        # 3. Handovers by margin (only when no antenna is free, i.e. candidates remain).
        for _ in range(n_ant * nc + 1):
            best_u = -1
            best_j = -1
            for u in range(nc):
                if linked[u] or banned[u]:
                    continue
                if best_u >= 0 and not _key_less(u, best_u, count[grp[u]], count[grp[best_u]],
                                                 elev, sat):
                    continue
                low_j = -1
                for j in range(n_ant):
                    lc = at[j]
                    if lc < 0:
                        continue
                    if not (elev[u] > elev[lc] + margin_deg):
                        continue
                    if grp[u] != grp[lc] and not (count[grp[u]] < count[grp[lc]]):
                        continue
                    if low_j < 0 or elev[lc] < elev[at[low_j]] or (
                            elev[lc] == elev[at[low_j]] and sat[lc] < sat[at[low_j]]):
                        low_j = j
                if low_j >= 0:
                    best_u = u
                    best_j = low_j
            if best_u < 0:
                break
            lc = at[best_j]
            if not fresh[lc]:
                rel_sat[n_rel] = sat[lc]
                rel_station[n_rel] = g
                rel_code[n_rel] = RELEASE_HANDOVER
                n_rel += 1
            linked[lc] = False
            banned[lc] = True
            count[grp[lc]] -= 1
            at[best_j] = best_u
            held[g, best_j] = sat[best_u]
            linked[best_u] = True
            fresh[best_u] = True
            count[grp[best_u]] += 1
        for c in range(nc):
            held_out[o0 + c] = linked[c]
    return n_rel
