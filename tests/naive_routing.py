"""Slow, obvious references and graph generators for the routing tests."""

from __future__ import annotations

import heapq
import itertools
import math

import networkx as nx
import numpy as np

from meshnet.graph import Snapshot

# ------------------------------------------------------------------ graph generators


def random_snapshot(rng, n_nodes=40, n_links=90, n_ground=0, zero_fraction=0.0,
                    integer=False, components=1) -> Snapshot:
    """Random undirected graph; ``components`` > 1 splits the nodes into unlinked groups."""
    groups = np.array_split(np.arange(n_nodes), components)
    pairs = set()
    tries = 0
    while len(pairs) < n_links and tries < 50 * n_links:
        tries += 1
        g = groups[rng.integers(len(groups))]
        if len(g) < 2:
            continue
        a, b = rng.choice(g, 2, replace=False)
        pairs.add((min(a, b), max(a, b)))
    pairs = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    if integer:
        length = rng.integers(1, 20, pairs.shape[0]).astype(float) * 1000.0
    else:
        length = rng.uniform(100.0, 5000.0, pairs.shape[0])
    length[rng.random(pairs.shape[0]) < zero_fraction] = 0.0
    cap = rng.choice([1e9, 1e10, 1e11], pairs.shape[0])
    kind = np.zeros(n_nodes, np.int8)
    if n_ground:
        kind[-n_ground:] = 1
    names = np.array([f"n{i}" for i in range(n_nodes)], dtype=object)
    return Snapshot.from_links(0, names, kind, pairs[:, 0], pairs[:, 1], length, cap)


def torus_links(planes: int, per_plane: int, offset: int = 0, altitude_km: float = 550.0,
                inclination_deg: float = 53.0, phase: float = 0.0):
    """+Grid links of one Walker shell with plausible lengths (km).

    In-plane neighbours are a fixed chord apart; cross-plane neighbours are closest near the
    inclination's turning latitude and furthest at the equator.
    """
    r = 6378.135 + altitude_km
    a_list, b_list, length = [], [], []
    in_plane = 2 * r * math.sin(math.pi / per_plane)
    for p in range(planes):
        for s in range(per_plane):
            u = offset + p * per_plane + s
            a_list.append(u)
            b_list.append(offset + p * per_plane + (s + 1) % per_plane)
            length.append(in_plane)
            u_lat = 2 * math.pi * s / per_plane + phase
            sep = 2 * r * math.sin(math.pi / planes) * (0.55 + 0.45 * abs(math.cos(u_lat)))
            a_list.append(u)
            b_list.append(offset + ((p + 1) % planes) * per_plane + s)
            length.append(sep)
    return np.array(a_list), np.array(b_list), np.array(length)


def torus_snapshot(rng, planes=12, per_plane=10, n_ground=6, gsl_per_ground=3,
                   phase=0.0, t_ns=0) -> Snapshot:
    """A +Grid shell with ground stations attached to a few random satellites."""
    a, b, length = torus_links(planes, per_plane, phase=phase)
    n_sats = planes * per_plane
    ga, gb, gl = [], [], []
    for g in range(n_ground):
        sats = rng.choice(n_sats, gsl_per_ground, replace=False)
        for s in sats:
            ga.append(n_sats + g)
            gb.append(int(s))
            gl.append(rng.uniform(550.0, 1200.0))
    a = np.concatenate([a, ga]).astype(np.int64)
    b = np.concatenate([b, gb]).astype(np.int64)
    length = np.concatenate([length, gl])
    n = n_sats + n_ground
    kind = np.zeros(n, np.int8)
    kind[n_sats:] = 1
    names = np.array([f"sat{i}" for i in range(n_sats)] + [f"GS-{g}" for g in range(n_ground)],
                     dtype=object)
    cap = np.full(a.shape[0], 1e11)
    return Snapshot.from_links(t_ns, names, kind, a, b, length, cap)


# ------------------------------------------------------------------ references


def naive_dijkstra(snap_or_csr, weights, src, relay_ok=None):
    """Textbook Dijkstra with a lazy heap; non-relay nodes are not expanded (except src)."""
    indptr, indices = snap_or_csr
    n = len(indptr) - 1
    if relay_ok is None:
        relay_ok = np.ones(n, bool)
    dist = [math.inf] * n
    dist[src] = 0.0
    done = [False] * n
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        if u != src and not relay_ok[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = int(indices[e])
            nd = d + weights[e]
            if nd < dist[v]:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return np.array(dist)


def naive_widest(indptr, indices, capacity, weights, src, relay_ok=None):
    """Widest-shortest by brute force: for each capacity threshold, shortest paths on the
    subgraph of edges at least that wide; keep the largest threshold reaching each node."""
    n = len(indptr) - 1
    width = np.zeros(n)
    dist = np.full(n, math.inf)
    for c in sorted(set(capacity.tolist())):
        w = np.where(capacity >= c, weights, math.inf)
        d = _dijkstra_inf(indptr, indices, w, src, relay_ok)
        reach = np.isfinite(d)
        width[reach] = c
        dist[reach] = d[reach]
    width[src] = math.inf
    dist[src] = 0.0
    return width, dist


def _dijkstra_inf(indptr, indices, w, src, relay_ok):
    n = len(indptr) - 1
    relay_ok = np.ones(n, bool) if relay_ok is None else relay_ok
    dist = np.full(n, math.inf)
    dist[src] = 0.0
    done = np.zeros(n, bool)
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        if u != src and not relay_ok[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            if not math.isfinite(w[e]):
                continue
            v = int(indices[e])
            if d + w[e] < dist[v]:
                dist[v] = d + w[e]
                heapq.heappush(heap, (dist[v], v))
    return dist


def relay_graph(snap: Snapshot, weights, relay_ok, src, dst) -> nx.Graph:
    """networkx graph without the non-relay nodes other than src and dst."""
    g = nx.Graph()
    g.add_nodes_from(range(snap.n_nodes))
    s = snap.edge_sources()
    for e in range(snap.n_edges):
        u, v = int(s[e]), int(snap.indices[e])
        if u < v:
            g.add_edge(u, v, weight=float(weights[e]))
    drop = [u for u in range(snap.n_nodes) if not relay_ok[u] and u not in (src, dst)]
    g.remove_nodes_from(drop)
    return g


def naive_k_shortest_costs(g: nx.Graph, src, dst, k):
    if src not in g or dst not in g or not nx.has_path(g, src, dst):
        return []
    gen = nx.shortest_simple_paths(g, src, dst, weight="weight")
    paths = list(itertools.islice(gen, k))
    return [nx.path_weight(g, p, "weight") for p in paths]


def naive_min_cost_disjoint(g: nx.Graph, src, dst, k):
    """(number of paths, total cost) of the min-cost flow of up to k link-disjoint units."""
    if src not in g or dst not in g:
        return 0, 0.0
    d = nx.DiGraph()
    d.add_nodes_from(g.nodes())
    for u, v, data in g.edges(data=True):
        w = int(round(data["weight"]))
        d.add_edge(u, v, capacity=1, weight=w)
        d.add_edge(v, u, capacity=1, weight=w)
    if not nx.has_path(d, src, dst):
        return 0, 0.0
    m = min(k, nx.maximum_flow_value(d, src, dst))
    d.nodes[src]["demand"] = -m
    d.nodes[dst]["demand"] = m
    flow = nx.min_cost_flow(d)
    cost = 0.0
    for u, v, data in d.edges(data=True):
        # Flow in both directions of one link cancels; count the net unit once.
        net = flow[u][v] - flow[v][u]
        if net > 0:
            cost += net * data["weight"]
    return m, cost


# ------------------------------------------------------------------ Hypatia reference


def naive_hypatia_fstate(n_sats, isls, sat_r_km, ground_r_m, max_gsl_length_m):
    """satgenpy's free_one_only_over_isls decisions, re-expressed with scipy and numpy.

    All-pairs satellite distances over the ISLs; a satellite heads for the in-range satellite
    of the destination minimising (distance + GSL length, satellite id) and forwards to the
    first neighbour, in isls.txt order, minimising (edge + remaining distance); a station
    picks the in-range satellite minimising (GSL + that satellite's distance, id).
    Returns {(cur, dst_node): (next_hop, cur_if, next_if)} and the distances.
    """
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import dijkstra

    isls = np.asarray(isls)
    r_m = sat_r_km * 1000.0
    w = np.linalg.norm(r_m[isls[:, 0]] - r_m[isls[:, 1]], axis=1)
    m = coo_array((np.concatenate([w, w]), (np.concatenate([isls[:, 0], isls[:, 1]]),
                                            np.concatenate([isls[:, 1], isls[:, 0]]))),
                  shape=(n_sats, n_sats)).tocsr()
    dist = dijkstra(m)
    neigh = [[] for _ in range(n_sats)]
    if_of = {}
    count = [0] * n_sats
    for a, b in isls.tolist():
        neigh[a].append(b)
        neigh[b].append(a)
        if_of[(a, b)] = count[a]
        if_of[(b, a)] = count[b]
        count[a] += 1
        count[b] += 1
    n_g = ground_r_m.shape[0]
    gsl = np.linalg.norm(ground_r_m[:, None, :] - r_m[None, :, :], axis=2)
    in_range = [np.flatnonzero(gsl[g] <= max_gsl_length_m) for g in range(n_g)]
    state = {}
    to_gs = np.full((n_sats, n_g), np.inf)
    for g in range(n_g):
        sats = in_range[g]
        node = n_sats + g
        for cur in range(n_sats):
            best = None
            for b in sats:  # ascending ids: strict < keeps the lowest id on ties
                if np.isfinite(dist[cur, b]):
                    d = dist[cur, b] + gsl[g, b]
                    if best is None or d < best[0]:
                        best = (d, b)
            if best is None:
                state[(cur, node)] = (-1, -1, -1)
                continue
            to_gs[cur, g] = best[0]
            target = best[1]
            if cur == target:
                state[(cur, node)] = (node, count[cur], 0)
                continue
            choice, best_d = None, math.inf
            for nb in neigh[cur]:
                d = dist[cur, nb] + dist[nb, target]
                if d < best_d:
                    choice, best_d = nb, d
            state[(cur, node)] = (choice, if_of[(cur, choice)], if_of[(choice, cur)])
    for s in range(n_g):
        for g in range(n_g):
            if s == g:
                continue
            best = None
            for a in in_range[s]:
                if np.isfinite(to_gs[a, g]):
                    d = gsl[s, a] + to_gs[a, g]
                    if best is None or d < best[0]:
                        best = (d, a)
            state[(n_sats + s, n_sats + g)] = (
                (-1, -1, -1) if best is None else (best[1], 0, count[best[1]]))
    return state, to_gs


def naive_shortest_widest(snap: Snapshot, src, dst, relay_ok=None):
    """networkx reference of ``widest`` routing: the largest bottleneck capacity from ``src``
    to ``dst`` and the least delay among the paths that reach it (non-relay nodes other than
    the ends removed). Returns ``(width, delay_s)``, ``(0.0, inf)`` when unreachable."""
    relay_ok = np.ones(snap.n_nodes, bool) if relay_ok is None else relay_ok
    g = relay_graph(snap, snap.delay_s, relay_ok, src, dst)
    s = snap.edge_sources()
    for e in range(snap.n_edges):
        u, v = int(s[e]), int(snap.indices[e])
        if g.has_edge(u, v):
            g[u][v]["cap"] = float(snap.capacity_bps[e])
    for c in sorted({d["cap"] for _, _, d in g.edges(data=True)}, reverse=True):
        wide = g.edge_subgraph([(u, v) for u, v, d in g.edges(data=True) if d["cap"] >= c])
        if src in wide and dst in wide and nx.has_path(wide, src, dst):
            return c, nx.dijkstra_path_length(wide, src, dst, weight="weight")
    return 0.0, math.inf


# ------------------------------------------------------------------ pair routing (cover roots)


def naive_greedy_cover(src, dst, n):
    """Greedy vertex cover of the pairs: most uncovered pairs first, the lower id on ties."""
    uncovered = {p for p in range(len(src))}
    is_root = np.zeros(n, bool)
    while uncovered:
        deg = {}
        for p in uncovered:
            for u in {int(src[p]), int(dst[p])}:
                deg[u] = deg.get(u, 0) + 1
        best = min(deg, key=lambda u: (-deg[u], u))
        is_root[best] = True
        uncovered = {p for p in uncovered if best not in (src[p], dst[p])}
    return is_root


def naive_tree(indptr, indices, weights, root, relay_ok):
    """Shortest-path tree by the documented rule: textbook Dijkstra distances, then each
    node's predecessor is the lowest-id node ``u`` that may expand (the root, or a relay)
    with ``dist[u] + w(u, v) == dist[v]`` (exact float equality; positive weights)."""
    n = len(indptr) - 1
    dist = _dijkstra_inf(indptr, indices, weights, root, relay_ok)
    pred = np.full(n, -1)
    for u in range(n):
        if not np.isfinite(dist[u]) or (u != root and not relay_ok[u]):
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = int(indices[e])
            if v != root and dist[u] + weights[e] == dist[v] and (pred[v] < 0 or u < pred[v]):
                pred[v] = u
    return dist, pred


def naive_pair_paths(snap, weights, relay_ok, src, dst):
    """Node path of every pair read off the tree of its cover root (destination if it is a
    root, else source); trees towards a destination use the reversed edge weights."""
    indptr, indices = snap.indptr, snap.indices
    edge_src = snap.edge_sources()
    w_of = {(int(a), int(b)): float(w) for a, b, w in zip(edge_src, indices, weights,
                                                                strict=True)}
    w_rev = np.array([w_of[(int(b), int(a))] for a, b in zip(edge_src, indices,
                                                                    strict=True)])
    is_root = naive_greedy_cover(src, dst, snap.n_nodes)
    out = []
    for s, d in zip(src.tolist(), dst.tolist(), strict=True):
        towards = bool(is_root[d])
        root, other = (d, s) if towards else (s, d)
        dist, pred = naive_tree(indptr, indices, w_rev if towards else weights, root, relay_ok)
        if not np.isfinite(dist[other]):
            out.append(None)
            continue
        path = [other]
        while path[-1] != root:
            path.append(int(pred[path[-1]]))
        out.append(path if towards else path[::-1])
    return out
