"""Time a step's ops on the mesh: node-pair traffic, op costs, longest path, breakdown.

Ranks sit on nodes (``rank_node``). Every collective's flows between ranks of different nodes
add up per ordered node pair: that is the step's traffic on the mesh, which the engine moves
as one coflow (all pairs at once, max-min fair with everything else on the mesh). Each pair
then has a measured rate (bytes it carried / time it took) and path delay. An op's duration is

``rounds x alpha + max(max over its node pairs of bytes on the pair / pair rate,
busiest intra-node rank flow / scale-up bandwidth)``

with ``alpha`` the largest path delay among its pairs (the scale-up latency if it stays inside
nodes). Ops then start when their dependencies (and the previous op of each of their
streams) have ended: the step time is the longest path. Because every pair's rate is the one
it got with the whole step's traffic on the mesh at once, the ops of one pair add up to the
time the engine took to move that pair's bytes.

Breakdown (of the compute stream of the rank group that ends last): ``compute`` (its
kernels), per dimension the collectives that block it and the waits for them (``tp``,
``ep``), the part of each idle gap during which the pipeline transfer it waits for was in
flight (``pp``), the rest of the gaps (``bubble``: waiting for other stages' compute), and the
tail after its last kernel until its last transfer ends (``dp``, ``edp`` or ``pp``, whichever
ends last). They add up to the step time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BREAKDOWN_KEYS = ("compute", "tp", "ep", "pp", "dp", "edp", "bubble")


@dataclass
class StepTiming:
    start_s: np.ndarray
    end_s: np.ndarray
    duration_s: np.ndarray
    ready_s: np.ndarray  # per op: when its own rank's previous work was done (first rank)
    step_s: float
    breakdown: dict
    critical_ranks: tuple


class StepModel:
    """A step's ops placed on nodes: pair traffic, costs and replay.

    Parameters
    ----------
    ops : list of Op
        In a topological order (deps before the op), as :class:`~.ops.OpList` builds them.
    rank_node : numpy.ndarray
        ``(world,)`` network node id of every rank.
    scale_up_bps, scale_up_latency_s : float
        Bandwidth (bits/s, per direction) and per-round latency between ranks of one node.
    compute_scale : float
        Multiplies every compute duration (1 / the power model's compute-rate factor).
    """

    def __init__(self, ops, rank_node, scale_up_bps: float, scale_up_latency_s: float):
        self.ops = list(ops)
        self.rank_node = np.asarray(rank_node, dtype=np.int64)
        self.scale_up_Bps = float(scale_up_bps) / 8.0
        self.scale_up_latency_s = float(scale_up_latency_s)
        n_ops = len(self.ops)
        self.is_comm = np.array([not o.is_compute for o in self.ops], bool)
        self.compute_s = np.array([o.duration_s for o in self.ops], float)
        self.rounds = np.array([o.rounds() for o in self.ops], float)
        keys, op_of, nbytes = [], [], []
        self.intra_max = np.zeros(n_ops)
        n_nodes_key = int(self.rank_node.max()) + 1 if self.rank_node.size else 1
        self._key_base = n_nodes_key
        for i, o in enumerate(self.ops):
            if o.is_compute:
                continue
            s, d, b = o.flows()
            ns, nd = self.rank_node[s], self.rank_node[d]
            intra = ns == nd
            if intra.any():
                self.intra_max[i] = float(np.bincount(s[intra], weights=b[intra]).max())
            if (~intra).any():
                k = ns[~intra] * n_nodes_key + nd[~intra]
                uk, inv = np.unique(k, return_inverse=True)
                keys.append(uk)
                op_of.append(np.full(uk.shape[0], i))
                nbytes.append(np.bincount(inv, weights=b[~intra]))
        keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        self.pair_key, pair_idx = np.unique(keys, return_inverse=True)
        self.op_pair_op = np.concatenate(op_of) if op_of else np.zeros(0, np.int64)
        self.op_pair_idx = pair_idx
        self.op_pair_bytes = np.concatenate(nbytes) if nbytes else np.zeros(0)
        self.pair_bytes = np.bincount(pair_idx, weights=self.op_pair_bytes,
                                      minlength=self.pair_key.shape[0])
        self.deps = [np.asarray(o.deps, np.int64) for o in self.ops]
        counts = [len(o.ranks) for o in self.ops]
        self._op_rank = np.fromiter((r for o in self.ops for r in o.ranks), np.int64,
                                    sum(counts))
        self._op_of_rank = np.repeat(np.arange(n_ops), counts)
        self._n_ranks = int(self._op_rank.max()) + 1 if self._op_rank.size else 0

    # ------------------------------------------------------------------ mesh traffic
    @property
    def pair_src(self) -> np.ndarray:
        return (self.pair_key // self._key_base).astype(np.int32)

    @property
    def pair_dst(self) -> np.ndarray:
        return (self.pair_key % self._key_base).astype(np.int32)

    def pair_index(self, src, dst) -> np.ndarray:
        key = np.asarray(src, np.int64) * self._key_base + np.asarray(dst, np.int64)
        pos = np.searchsorted(self.pair_key, key)
        pos = np.minimum(pos, max(0, self.pair_key.shape[0] - 1))
        ok = self.pair_key.shape[0] > 0
        return np.where(ok & (self.pair_key[pos] == key), pos, -1)

    def dim_bytes(self) -> dict:
        """Bytes each parallel dimension puts on the mesh per step (between nodes)."""
        out: dict = {}
        for i, b in zip(self.op_pair_op, self.op_pair_bytes, strict=True):
            d = self.ops[i].dim
            out[d] = out.get(d, 0.0) + float(b)
        return out

    # ------------------------------------------------------------------ costs and replay
    def durations(self, pair_rate_Bps, pair_delay_s, compute_scale: float = 1.0) -> np.ndarray:
        """Duration of every op given each node pair's rate (bytes/s) and path delay (s)."""
        rate = np.asarray(pair_rate_Bps, float)
        delay = np.asarray(pair_delay_s, float)
        dur = self.compute_s * compute_scale
        comm = np.zeros(len(self.ops))
        alpha = np.where(self.intra_max > 0, self.scale_up_latency_s, 0.0)
        if self.op_pair_op.size:
            with np.errstate(divide="ignore"):
                t = self.op_pair_bytes / rate[self.op_pair_idx]
            np.maximum.at(comm, self.op_pair_op, t)
            np.maximum.at(alpha, self.op_pair_op, delay[self.op_pair_idx])
        comm = np.maximum(comm, self.intra_max / self.scale_up_Bps)
        return np.where(self.is_comm, self.rounds * alpha + comm, dur)

    def replay(self, durations) -> StepTiming:
        """Longest-path start and end of every op; the step's time and its breakdown."""
        n = len(self.ops)
        start = np.zeros(n)
        end = np.zeros(n)
        dur = np.asarray(durations, float)
        for i in range(n):
            d = self.deps[i]
            s = float(end[d].max()) if d.size else 0.0
            start[i] = s
            end[i] = s + dur[i]
        step = float(end.max()) if n else 0.0
        bd, crit = self._breakdown(start, end, step)
        return StepTiming(start, end, dur, start.copy(), step, bd, crit)

    def _breakdown(self, start, end, step) -> tuple[dict, tuple]:
        out = dict.fromkeys(BREAKDOWN_KEYS, 0.0)
        if not self.ops:
            return out, ()
        # the compute-stream group (ranks of a compute op) whose last op ends last; a group's
        # ops are those that involve its first rank
        first = {}
        for o in self.ops:
            if o.stream == "compute" and o.is_compute:
                first.setdefault(o.ranks, o.ranks[0])
        lead = np.full(self._n_ranks, -1, np.int64)
        for r in first.values():
            lead[r] = r
        rank_end = np.zeros(self._n_ranks)
        np.maximum.at(rank_end, self._op_rank, end[self._op_of_rank])
        leads = np.flatnonzero(lead >= 0)
        crit_rank = int(leads[np.argmax(rank_end[leads])])
        crit = next(g for g, r in first.items() if r == crit_rank)
        mine = self._op_of_rank[self._op_rank == crit_rank].tolist()
        stream = [i for i in mine if self.ops[i].stream == "compute"]
        t = 0.0
        for i in stream:
            o = self.ops[i]
            gap = max(0.0, start[i] - t)
            if o.is_compute:
                pp = [j for j in o.deps if self.ops[j].dim == "pp"]
                in_flight = 0.0
                if pp and gap > 0:
                    j = max(pp, key=lambda j: end[j])
                    in_flight = max(0.0, min(end[j], start[i]) - max(start[j], t))
                out[_dim(o.dim if not o.is_compute else "pp")] += in_flight
                out["bubble"] += gap - in_flight
                out["compute"] += end[i] - start[i]
            else:
                out[_dim(o.dim)] += gap + end[i] - start[i]
            t = max(t, end[i])
        tail = [j for j in mine if self.ops[j].stream != "compute"]
        last = max(tail, key=lambda j: end[j]) if tail else None
        if last is not None and end[last] > t:
            out[_dim(self.ops[last].dim)] += end[last] - t
            t = end[last]
        out["bubble"] += max(0.0, step - t)
        return {k: float(v) for k, v in out.items()}, crit

    def nominal_rates(self, rate_bps: float) -> np.ndarray:
        """Every pair at ``rate_bps`` shared by the pairs leaving the same node at once."""
        src = self.pair_src
        fan = np.bincount(src)[src] if src.size else np.zeros(0)
        return rate_bps / 8.0 / np.maximum(fan, 1)


def _dim(d: str) -> str:
    return d if d in BREAKDOWN_KEYS else "tp"
