"""Link kernels: ISL feasibility with reason codes, ground visibility, in-plane neighbours,
predicted link lifetime and the greedy terminal-limited matching (private).

Reason codes are defined in :mod:`meshnet.links.reasons`; the kernels use the integers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._geometry import in_earth_shadow, orbit_normal, segment_min_radius

# Keep in step with meshnet.links.reasons.
_NONE = 0
_INVALID = 1
_SEAM = 2
_EARTH_BLOCKED = 3
_OUT_OF_RANGE = 4
_POLAR = 5
_ANGULAR_RATE = 6
_SUN = 7

# Layout of the float64 parameter vector of the feasibility kernels.
P_GRAZE_R_KM = 0       # Earth radius + grazing altitude
P_RANGE_CAP_KM = 1     # terminal range cap
P_COS_SUN = 2          # cos(sun exclusion half-angle); > 1 switches the check off
P_SIN_POLAR = 3        # sin(polar cut-off latitude); > 1 switches the check off
P_MAX_RATE_RAD_S = 4   # fastest trackable line-of-sight rotation
P_ALLOW_SEAM = 5       # 1.0: counter-rotating pairs allowed
P_COS_COPLANAR = 6     # orbit normals closer than this angle: same plane
P_OMEGA = 7            # Earth rotation rate (rad/s)
P_R_EARTH_KM = 8       # Earth radius for the shadow test
N_PARAMS = 9


@njit(cache=True, inline="always")
def _check_pair(r, v, a, b, plane_key, sun, p):
    """Reason code and length (km) of the link a--b; reason 0 means feasible."""
    ax, ay, az = r[a, 0], r[a, 1], r[a, 2]
    bx, by, bz = r[b, 0], r[b, 1], r[b, 2]
    dx, dy, dz = bx - ax, by - ay, bz - az
    d = math.sqrt(dx * dx + dy * dy + dz * dz)
    if not (d > 0.0) or not np.isfinite(d) or not np.isfinite(v[a, 0] + v[b, 0]):
        return _INVALID, d
    omega = p[P_OMEGA]
    hax, hay, haz = orbit_normal(ax, ay, az, v[a, 0], v[a, 1], v[a, 2], omega)
    hbx, hby, hbz = orbit_normal(bx, by, bz, v[b, 0], v[b, 1], v[b, 2], omega)
    hdot = hax * hbx + hay * hby + haz * hbz
    if p[P_ALLOW_SEAM] < 0.5 and hdot < 0.0:
        return _SEAM, d
    if segment_min_radius(ax, ay, az, bx, by, bz) < p[P_GRAZE_R_KM]:
        return _EARTH_BLOCKED, d
    if d > p[P_RANGE_CAP_KM]:
        return _OUT_OF_RANGE, d
    sin_polar = p[P_SIN_POLAR]
    if sin_polar <= 1.0:
        ka = plane_key[a]
        kb = plane_key[b]
        if ka >= 0 and kb >= 0:
            cross = ka != kb
        else:
            cross = hdot < p[P_COS_COPLANAR]
        if cross:
            ra = math.sqrt(ax * ax + ay * ay + az * az)
            rb = math.sqrt(bx * bx + by * by + bz * bz)
            if abs(az) > sin_polar * ra or abs(bz) > sin_polar * rb:
                return _POLAR, d
    # Line-of-sight rotation rate in the inertial frame: |dr x dv| / |dr|^2.
    ux = v[b, 0] - v[a, 0] - omega * dy
    uy = v[b, 1] - v[a, 1] + omega * dx
    uz = v[b, 2] - v[a, 2]
    cx = dy * uz - dz * uy
    cy = dz * ux - dx * uz
    cz = dx * uy - dy * ux
    if math.sqrt(cx * cx + cy * cy + cz * cz) > p[P_MAX_RATE_RAD_S] * d * d:
        return _ANGULAR_RATE, d
    cos_sun = p[P_COS_SUN]
    if cos_sun <= 1.0:
        c = (dx * sun[0] + dy * sun[1] + dz * sun[2]) / d
        re = p[P_R_EARTH_KM]
        # The Sun behind b blinds a; behind a blinds b; not if the Earth eclipses that terminal.
        if c > cos_sun and not in_earth_shadow(ax, ay, az, sun[0], sun[1], sun[2], re):
            return _SUN, d
        if -c > cos_sun and not in_earth_shadow(bx, by, bz, sun[0], sun[1], sun[2], re):
            return _SUN, d
    return _NONE, d


@njit(cache=True)
def feasibility_serial(r, v, a, b, plane_key, sun, p, reason_out, length_out):
    """Serial twin of :func:`feasibility_parallel`."""
    for i in range(a.shape[0]):
        code, d = _check_pair(r, v, a[i], b[i], plane_key, sun, p)
        reason_out[i] = code
        length_out[i] = d


@njit(cache=True, parallel=True)
def feasibility_parallel(r, v, a, b, plane_key, sun, p, reason_out, length_out):
    """Reason code (int8) and length (km) of every link ``a[i]--b[i]``."""
    for i in prange(a.shape[0]):
        code, d = _check_pair(r, v, a[i], b[i], plane_key, sun, p)
        reason_out[i] = code
        length_out[i] = d


@njit(cache=True, inline="always")
def _gsl_visible(r_sat, s, g, r_gs, up_gs, sin_min_elev, max_d2, use_len):
    """Whether station g links to satellite s; ``max_d2`` bounds the squared distance (both
    rules), so the square root is only taken for nearby satellites."""
    dx = r_sat[s, 0] - r_gs[g, 0]
    dy = r_sat[s, 1] - r_gs[g, 1]
    dz = r_sat[s, 2] - r_gs[g, 2]
    d2 = dx * dx + dy * dy + dz * dz
    if not (d2 <= max_d2):
        return False, 0.0, 0.0
    up = dx * up_gs[g, 0] + dy * up_gs[g, 1] + dz * up_gs[g, 2]
    d = math.sqrt(d2)
    sin_el = up / d
    if use_len:
        return True, sin_el, d
    return sin_el >= sin_min_elev, sin_el, d


@njit(cache=True, inline="always")
def _gsl_count_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len):
    n = 0
    for s in range(r_sat.shape[0]):
        ok, _, _ = _gsl_visible(r_sat, s, g, r_gs, up_gs, sin_min_elev, max_d2, use_len)
        if ok:
            n += 1
    return n


@njit(cache=True, inline="always")
def _gsl_fill_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, offsets,
                  sat_out, sin_elev_out, length_out):
    k = offsets[g]
    for s in range(r_sat.shape[0]):
        ok, sin_el, d = _gsl_visible(r_sat, s, g, r_gs, up_gs, sin_min_elev, max_d2, use_len)
        if ok:
            sat_out[k] = s
            sin_elev_out[k] = sin_el
            length_out[k] = d
            k += 1


@njit(cache=True)
def gsl_count_serial(r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, counts):
    """Serial twin of :func:`gsl_count`."""
    for g in range(r_gs.shape[0]):
        counts[g] = _gsl_count_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len)


@njit(cache=True, parallel=True)
def gsl_count(r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, counts):
    """Number of satellites each ground station links to (elevation, or distance rule)."""
    for g in prange(r_gs.shape[0]):
        counts[g] = _gsl_count_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len)


@njit(cache=True)
def gsl_fill_serial(r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, offsets,
                    sat_out, sin_elev_out, length_out):
    """Serial twin of :func:`gsl_fill`."""
    for g in range(r_gs.shape[0]):
        _gsl_fill_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, offsets,
                      sat_out, sin_elev_out, length_out)


@njit(cache=True, parallel=True)
def gsl_fill(r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, offsets,
             sat_out, sin_elev_out, length_out):
    """Linked satellites of station g in ``sat_out[offsets[g]:offsets[g + 1]]``, id order."""
    for g in prange(r_gs.shape[0]):
        _gsl_fill_one(g, r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len, offsets,
                      sat_out, sin_elev_out, length_out)


@njit(cache=True)
def inplane_neighbours(r, v, pi, pj, max_dr_km, omega, ahead, behind):
    """Nearest satellite ahead and behind along the orbit among coplanar pairs ``pi--pj``.

    ``ahead[i]`` / ``behind[i]`` (prefilled with -1) receive the partner with the smallest
    positive / negative phase angle seen from ``i`` about its own orbit normal. Pairs whose
    orbital radii differ by more than ``max_dr_km`` (a satellite still raising its orbit) are
    skipped.
    """
    n = r.shape[0]
    best_a = np.full(n, np.inf)
    best_b = np.full(n, np.inf)
    for k in range(pi.shape[0]):
        for side in range(2):
            if side == 0:
                i, j = pi[k], pj[k]
            else:
                i, j = pj[k], pi[k]
            rix, riy, riz = r[i, 0], r[i, 1], r[i, 2]
            rjx, rjy, rjz = r[j, 0], r[j, 1], r[j, 2]
            ri = math.sqrt(rix * rix + riy * riy + riz * riz)
            rj = math.sqrt(rjx * rjx + rjy * rjy + rjz * rjz)
            if not (abs(ri - rj) <= max_dr_km):
                continue
            hx, hy, hz = orbit_normal(rix, riy, riz, v[i, 0], v[i, 1], v[i, 2], omega)
            cx = riy * rjz - riz * rjy
            cy = riz * rjx - rix * rjz
            cz = rix * rjy - riy * rjx
            phase = math.atan2(hx * cx + hy * cy + hz * cz, rix * rjx + riy * rjy + riz * rjz)
            if phase > 0.0:
                if phase < best_a[i] or (phase == best_a[i] and j < ahead[i]):
                    best_a[i] = phase
                    ahead[i] = j
            elif phase < 0.0:
                if -phase < best_b[i] or (-phase == best_b[i] and j < behind[i]):
                    best_b[i] = -phase
                    behind[i] = j


@njit(cache=True)
def predicted_lifetime(r, v, a, b, graze_r_km, range_cap_km, horizon_s, out):
    """Seconds until link a--b would exceed its range limit under straight-line relative motion.

    The limit is the smaller of the terminal cap and the geometric limit for the pair's
    current radii (beyond it the line of sight dips below the grazing altitude). Capped at
    ``horizon_s``.
    """
    for i in range(a.shape[0]):
        p, q = a[i], b[i]
        dx, dy, dz = r[q, 0] - r[p, 0], r[q, 1] - r[p, 1], r[q, 2] - r[p, 2]
        ux, uy, uz = v[q, 0] - v[p, 0], v[q, 1] - v[p, 1], v[q, 2] - v[p, 2]
        rp2 = r[p, 0] ** 2 + r[p, 1] ** 2 + r[p, 2] ** 2
        rq2 = r[q, 0] ** 2 + r[q, 1] ** 2 + r[q, 2] ** 2
        g2 = graze_r_km * graze_r_km
        geo = math.sqrt(max(rp2 - g2, 0.0)) + math.sqrt(max(rq2 - g2, 0.0))
        lim = min(geo, range_cap_km)
        dd = dx * dx + dy * dy + dz * dz
        du = ux * ux + uy * uy + uz * uz
        b2 = dx * ux + dy * uy + dz * uz
        c = dd - lim * lim
        if c >= 0.0:
            out[i] = 0.0
        elif du <= 0.0:
            out[i] = horizon_s
        else:
            t = (-b2 + math.sqrt(b2 * b2 - du * c)) / du
            out[i] = min(t, horizon_s)


@njit(cache=True)
def greedy_matching(a, b, order, degree, max_degree, accept):
    """Accept links in ``order`` while both ends have a free terminal (updates ``degree``)."""
    n_acc = 0
    for k in range(order.shape[0]):
        i = order[k]
        p, q = a[i], b[i]
        if degree[p] < max_degree and degree[q] < max_degree:
            degree[p] += 1
            degree[q] += 1
            accept[i] = True
            n_acc += 1
    return n_acc


@njit(cache=True)
def links_to_csr(n_nodes, a, b, rows):
    """Symmetric CSR of the undirected links ``a[rows[i]] -- b[rows[i]]``.

    Edges sorted by (source, destination); equal pairs (parallel links) keep the order of
    :meth:`meshnet.graph.Snapshot.from_links`' stable sort: the ``a -> b`` copies in link
    order, then the ``b -> a`` copies. Returns ``(indptr, indices, link)`` with ``link[e]``
    the position in ``rows`` of edge ``e``'s link. A counting sort by source plus an
    insertion sort of each (short) row: O(E), no global sort.
    """
    m = rows.shape[0]
    indptr = np.zeros(n_nodes + 1, np.int64)
    for i in range(m):
        indptr[a[rows[i]] + 1] += 1
        indptr[b[rows[i]] + 1] += 1
    for u in range(n_nodes):
        indptr[u + 1] += indptr[u]
    fill = indptr[:-1].copy()
    indices = np.empty(2 * m, np.int32)
    link = np.empty(2 * m, np.int64)
    for half in range(2):
        for i in range(m):
            r = rows[i]
            u = a[r] if half == 0 else b[r]
            v = b[r] if half == 0 else a[r]
            k = fill[u]
            fill[u] += 1
            # Stable insertion into the row, keyed by the destination.
            j = k
            lo = indptr[u]
            while j > lo and indices[j - 1] > v:
                indices[j] = indices[j - 1]
                link[j] = link[j - 1]
                j -= 1
            indices[j] = v
            link[j] = i
    return indptr, indices, link


@njit(cache=True)
def gsl_grid(r_sat, r_gs, up_gs, sin_min_elev, max_d2, use_len):
    """Every station's linked satellites, as :func:`gsl_count` + :func:`gsl_fill` give them,
    but testing only the satellites in the 27 grid cells around the station.

    Cells are cubes at least ``sqrt(max_d2)`` wide, so every satellite within that distance of
    a station lies in the station's cell or a neighbouring one; satellites with non-finite
    positions are never linked (as in the brute-force kernels) and are left out of the grid.
    Returns ``(offsets, sat, sin_elev, length_km)`` over stations, satellites ascending.
    ``max_d2`` must be finite and positive.
    """
    n_s = r_sat.shape[0]
    n_g = r_gs.shape[0]
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    ok = np.zeros(n_s, np.bool_)
    for s in range(n_s):
        x, y, z = r_sat[s, 0], r_sat[s, 1], r_sat[s, 2]
        if np.isfinite(x) and np.isfinite(y) and np.isfinite(z):
            ok[s] = True
            lo[0] = min(lo[0], x)
            lo[1] = min(lo[1], y)
            lo[2] = min(lo[2], z)
            hi[0] = max(hi[0], x)
            hi[1] = max(hi[1], y)
            hi[2] = max(hi[2], z)
    offsets = np.zeros(n_g + 1, np.int64)
    if lo[0] > hi[0]:  # no finite position
        return offsets, np.empty(0, np.int64), np.empty(0), np.empty(0)
    # A small margin keeps rounding of the cell index from splitting a pair exactly max_d
    # apart by two cells; at most ~8 cells per satellite keeps the grid small.
    cell = math.sqrt(max_d2) * (1.0 + 1e-9) + 1e-9
    extent = max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])
    cell = max(cell, extent / max(1.0, (8.0 * n_s) ** (1.0 / 3.0)))
    dims = np.empty(3, np.int64)
    for j in range(3):
        dims[j] = int((hi[j] - lo[j]) / cell) + 1
    n_cells = dims[0] * dims[1] * dims[2]
    cell_of = np.empty(n_s, np.int64)
    cell_ptr = np.zeros(n_cells + 1, np.int64)
    for s in range(n_s):
        if ok[s]:
            ix = min(int((r_sat[s, 0] - lo[0]) / cell), dims[0] - 1)
            iy = min(int((r_sat[s, 1] - lo[1]) / cell), dims[1] - 1)
            iz = min(int((r_sat[s, 2] - lo[2]) / cell), dims[2] - 1)
            c = (ix * dims[1] + iy) * dims[2] + iz
            cell_of[s] = c
            cell_ptr[c + 1] += 1
    for c in range(n_cells):
        cell_ptr[c + 1] += cell_ptr[c]
    fill = cell_ptr[:-1].copy()
    cell_sats = np.empty(cell_ptr[n_cells], np.int64)
    for s in range(n_s):  # ascending ids within each cell
        if ok[s]:
            cell_sats[fill[cell_of[s]]] = s
            fill[cell_of[s]] += 1
    buf = np.empty(n_s, np.int64)
    bsin = np.empty(n_s)
    blen = np.empty(n_s)
    per_g = np.zeros(n_g, np.int64)
    for rnd in range(2):  # 0: count, 1: fill (after offsets are known)
        if rnd == 1:
            for g in range(n_g):
                offsets[g + 1] = offsets[g] + per_g[g]
            sat = np.empty(offsets[n_g], np.int64)
            sin_el_out = np.empty(offsets[n_g])
            len_out = np.empty(offsets[n_g])
        for g in range(n_g):
            m = 0
            gi = np.empty(3, np.int64)
            for j in range(3):
                gi[j] = int(math.floor((r_gs[g, j] - lo[j]) / cell))
            for ix in range(max(gi[0] - 1, 0), min(gi[0] + 2, dims[0])):
                for iy in range(max(gi[1] - 1, 0), min(gi[1] + 2, dims[1])):
                    for iz in range(max(gi[2] - 1, 0), min(gi[2] + 2, dims[2])):
                        c = (ix * dims[1] + iy) * dims[2] + iz
                        for k in range(cell_ptr[c], cell_ptr[c + 1]):
                            s = cell_sats[k]
                            vis, sin_el, d = _gsl_visible(r_sat, s, g, r_gs, up_gs,
                                                          sin_min_elev, max_d2, use_len)
                            if vis:
                                buf[m] = s
                                bsin[m] = sin_el
                                blen[m] = d
                                m += 1
            if rnd == 0:
                per_g[g] = m
                continue
            # Insertion sort by satellite id (lists are short; numpy's sort costs seconds of
            # compile time).
            for i in range(1, m):
                x, xs, xl = buf[i], bsin[i], blen[i]
                j = i
                while j > 0 and buf[j - 1] > x:
                    buf[j] = buf[j - 1]
                    bsin[j] = bsin[j - 1]
                    blen[j] = blen[j - 1]
                    j -= 1
                buf[j] = x
                bsin[j] = xs
                blen[j] = xl
            k0 = offsets[g]
            for j in range(m):
                sat[k0 + j] = buf[j]
                sin_el_out[k0 + j] = bsin[j]
                len_out[k0 + j] = blen[j]
    return offsets, sat, sin_el_out, len_out


@njit(cache=True)
def _knn_grid(pos, in_grid, range_km):
    """Uniform grid of the points ``in_grid`` for :func:`shell_knn_pairs`: cells half
    ``range_km`` wide (at most 64 per axis; no finite range: one cell), and the cell offsets
    within range sorted by their least possible distance."""
    m = pos.shape[0]
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for i in range(m):
        for j in range(3):
            lo[j] = min(lo[j], pos[i, j])
            hi[j] = max(hi[j], pos[i, j])
    extent = max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])
    cell = extent + 1.0
    if np.isfinite(range_km):
        cell = max(range_km / 2.0, extent / 64.0, 1e-9)
    dims = np.empty(3, np.int64)
    for j in range(3):
        dims[j] = int((hi[j] - lo[j]) / cell) + 1
    n_cells = dims[0] * dims[1] * dims[2]
    cidx = np.empty((m, 3), np.int64)
    cell_ptr = np.zeros(n_cells + 1, np.int64)
    for i in range(m):
        for j in range(3):
            cidx[i, j] = min(int((pos[i, j] - lo[j]) / cell), dims[j] - 1)
        if in_grid[i]:
            cell_ptr[(cidx[i, 0] * dims[1] + cidx[i, 1]) * dims[2] + cidx[i, 2] + 1] += 1
    for c in range(n_cells):
        cell_ptr[c + 1] += cell_ptr[c]
    fill = cell_ptr[:-1].copy()
    members = np.empty(cell_ptr[n_cells], np.int64)
    for i in range(m):
        if in_grid[i]:
            c = (cidx[i, 0] * dims[1] + cidx[i, 1]) * dims[2] + cidx[i, 2]
            members[fill[c]] = i
            fill[c] += 1
    reach = max(dims[0], dims[1], dims[2])
    if np.isfinite(range_km):
        reach = min(reach, int(range_km / cell) + 1)
    w = 2 * reach + 1
    offs = np.empty((w * w * w, 3), np.int64)
    lb = np.empty(w * w * w)
    n = 0
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            for dz in range(-reach, reach + 1):
                gx = max(abs(dx) - 1, 0) * cell
                gy = max(abs(dy) - 1, 0) * cell
                gz = max(abs(dz) - 1, 0) * cell
                offs[n, 0], offs[n, 1], offs[n, 2] = dx, dy, dz
                lb[n] = gx * gx + gy * gy + gz * gz
                n += 1
    order = np.argsort(lb, kind="mergesort")
    return lo, cell, dims, cidx, cell_ptr, members, offs[order], lb[order]


@njit(cache=True, inline="always")
def _knn_offer(i, j, d2, t, kk, best_d, best_j, count):
    """Offer point j (shell t, squared distance d2) to point i's list of shell t."""
    n_t = count[t]
    if n_t == kk and (d2 > best_d[t, kk - 1] or (
            d2 == best_d[t, kk - 1] and j > best_j[i, t, kk - 1])):
        return False
    # Insertion into the shell's sorted list (distance, then index).
    q = n_t if n_t < kk else kk - 1
    while q > 0 and (best_d[t, q - 1] > d2 or (
            best_d[t, q - 1] == d2 and best_j[i, t, q - 1] > j)):
        best_d[t, q] = best_d[t, q - 1]
        best_j[i, t, q] = best_j[i, t, q - 1]
        q -= 1
    best_d[t, q] = d2
    best_j[i, t, q] = j
    if n_t < kk:
        count[t] = n_t + 1
    return True


@njit(cache=True, inline="always")
def _knn_one(i, pos, shell, n_shells, kk, r2, big, few, lo, cell, dims, cidx, cell_ptr,
             members, offs, lb, best_j):
    """The ``kk`` nearest points of every other shell to point ``i`` into ``best_j[i]``.

    Shells with at most ``kk`` points (``few``) are scanned whole; the others through the
    grid, nearest cells first, stopping once no unvisited cell can improve any list.
    """
    best_d = np.empty((n_shells, kk))
    count = np.zeros(n_shells, np.int64)
    si = shell[i]
    xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
    for p in range(few.shape[0]):
        j = few[p]
        t = shell[j]
        if t == si:
            continue
        dx = xi - pos[j, 0]
        dy = yi - pos[j, 1]
        dz = zi - pos[j, 2]
        d2 = dx * dx + dy * dy + dz * dz
        if d2 < r2:
            _knn_offer(i, j, d2, t, kk, best_d, best_j, count)
    # Largest squared distance that can still enter a list of a grid shell.
    bound = -1.0
    for t in range(n_shells):
        if big[t] and t != si:
            bound = r2
    cx0, cy0, cz0 = cidx[i, 0], cidx[i, 1], cidx[i, 2]
    slack = 1.0 + 1e-9  # rounding margin of the cell-distance bounds
    for o in range(offs.shape[0]):
        if lb[o] > bound * slack + 1e-6:
            break
        cx = cx0 + offs[o, 0]
        cy = cy0 + offs[o, 1]
        cz = cz0 + offs[o, 2]
        if cx < 0 or cy < 0 or cz < 0 or cx >= dims[0] or cy >= dims[1] or cz >= dims[2]:
            continue
        c = (cx * dims[1] + cy) * dims[2] + cz
        if cell_ptr[c] == cell_ptr[c + 1]:
            continue
        gx = max(lo[0] + cx * cell - xi, xi - (lo[0] + (cx + 1) * cell), 0.0)
        gy = max(lo[1] + cy * cell - yi, yi - (lo[1] + (cy + 1) * cell), 0.0)
        gz = max(lo[2] + cz * cell - zi, zi - (lo[2] + (cz + 1) * cell), 0.0)
        if gx * gx + gy * gy + gz * gz > bound * slack + 1e-6:
            continue
        changed = False
        for p in range(cell_ptr[c], cell_ptr[c + 1]):
            j = members[p]
            t = shell[j]
            if t == si:
                continue
            dx = xi - pos[j, 0]
            dy = yi - pos[j, 1]
            dz = zi - pos[j, 2]
            d2 = dx * dx + dy * dy + dz * dz
            if d2 < r2 and _knn_offer(i, j, d2, t, kk, best_d, best_j, count):
                changed = True
        if changed:
            bound = -1.0
            for t in range(n_shells):
                if big[t] and t != si:
                    bt = r2 if count[t] < kk else best_d[t, kk - 1]
                    bound = max(bound, bt)


@njit(cache=True)
def _knn_split(shell, n_shells, kk):
    """Shells with more than ``kk`` points (``big``, searched in the grid) and the points of
    the other shells (``few``, scanned whole)."""
    size = np.zeros(n_shells, np.int64)
    for i in range(shell.shape[0]):
        size[shell[i]] += 1
    big = size > kk
    in_grid = np.empty(shell.shape[0], np.bool_)
    n_few = 0
    for i in range(shell.shape[0]):
        in_grid[i] = big[shell[i]]
        if not in_grid[i]:
            n_few += 1
    few = np.empty(n_few, np.int64)
    n_few = 0
    for i in range(shell.shape[0]):
        if not in_grid[i]:
            few[n_few] = i
            n_few += 1
    return big, few, in_grid


@njit(cache=True)
def _knn_pairs_out(best_j, shell, n_shells, kk):
    """Each proposed pair once: from its lower end, or from its upper end when the lower end
    did not propose it. Counting sort by the lower end, then each (short) row sorted."""
    m = best_j.shape[0]
    per = np.zeros(m + 1, np.int64)
    out_i = np.empty(0, np.int64)
    out_j = np.empty(0, np.int64)
    fill = per[:-1].copy()
    for rnd in range(2):
        if rnd == 1:
            for i in range(m):
                per[i + 1] += per[i]
            out_i = np.empty(per[m], np.int64)
            out_j = np.empty(per[m], np.int64)
            fill = per[:-1].copy()
        for i in range(m):
            si = shell[i]
            for t in range(n_shells):
                for q in range(kk):
                    j = best_j[i, t, q]
                    if j < 0:
                        break
                    if j < i:
                        dup = False
                        for u in range(kk):
                            if best_j[j, si, u] == i:
                                dup = True
                                break
                        if dup:
                            continue
                        a, b = j, i
                    else:
                        a, b = i, j
                    if rnd == 0:
                        per[a + 1] += 1
                    else:
                        out_i[fill[a]] = a
                        out_j[fill[a]] = b
                        fill[a] += 1
    for i in range(m):
        s, e = per[i], per[i + 1]
        for p in range(s + 1, e):  # insertion sort of the row by j
            v = out_j[p]
            q = p
            while q > s and out_j[q - 1] > v:
                out_j[q] = out_j[q - 1]
                q -= 1
            out_j[q] = v
    return out_i, out_j


@njit(cache=True, parallel=True)
def shell_knn_pairs(pos, shell, n_shells, k, range_km):
    """Inter-shell candidate pairs: every point proposes its ``k`` nearest points of every
    other shell closer than ``range_km`` (ties by index).

    ``pos`` (m, 3) finite positions and ``shell`` (m,) labels in ``0..n_shells - 1``. Returns
    ``(i, j)`` int64 index pairs, ``i < j``, unique, sorted by (i, j). The points are bucketed
    in a uniform grid of cells half ``range_km`` wide; each point scans the cells
    nearest first and stops once no cell left can enter any of its lists (shells of at most
    ``k`` points are scanned whole; in parallel: each point fills its own rows). The same
    pairs as one k-d tree per shell (the distance is summed in x, y, z order, as scipy's
    cKDTree does).
    """
    m = pos.shape[0]
    kk = max(k, 1)
    best_j = np.full((m, n_shells, kk), -1, np.int32)
    if m == 0 or k < 1 or n_shells < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    big, few, in_grid = _knn_split(shell, n_shells, kk)
    lo, cell, dims, cidx, cell_ptr, members, offs, lb = _knn_grid(pos, in_grid, range_km)
    r2 = range_km * range_km
    for i in prange(m):
        _knn_one(i, pos, shell, n_shells, kk, r2, big, few, lo, cell, dims, cidx, cell_ptr,
                 members, offs, lb, best_j)
    return _knn_pairs_out(best_j, shell, n_shells, kk)
