"""Collectives with NCCL's names, nccl-tests' byte conventions and their flows.

Sizes follow nccl-tests (``doc/PERFORMANCE.md`` of NVIDIA/nccl-tests): ``size`` ``S`` is the
buffer the test reports, ``algbw = S / t`` and ``busbw = algbw x factor`` with

=================  ====================  ===============================================
collective         busbw factor          S is
=================  ====================  ===============================================
AllReduce          ``2 (n-1) / n``       the buffer every rank reduces
ReduceScatter      ``(n-1) / n``         the full input (n x each rank's output)
AllGather          ``(n-1) / n``         the full output (n x each rank's input)
AllToAll           ``(n-1) / n``         each rank's send buffer (S/n to each peer)
Broadcast, Reduce  ``1``                 the buffer
SendRecv           ``1``                 what each rank sends
=================  ====================  ===============================================

``busbw x t = factor x S`` is the data each rank must move through its busiest link, so
:func:`bytes_per_rank` returns ``factor x S``: the flows of the bandwidth-optimal algorithms
below carry exactly that from every rank (double binary tree: on average over ranks).

Algorithms and their cost (``alpha`` per message round, ``B`` bytes/s per link; Thakur,
Rabenseifner and Gropp 2005, "Optimization of collective communication operations in MPICH";
NCCL for the trees):

- ``ring`` AllReduce: ``2 (n-1) alpha + 2 (n-1)/n S / B`` (reduce-scatter then all-gather
  around a ring); ReduceScatter, AllGather: ``(n-1) alpha + (n-1)/n S / B``.
- ``tree`` AllReduce (NCCL's double binary tree, Sanders, Speck and Traeff 2009): two binary
  trees each reduce then broadcast half the buffer; a rank is inner in at most one of them:
  ``2 ceil(log2 n) alpha + max-rank bytes / B`` with ``S`` to ``2 S`` bytes per rank,
  ``2 (n-1)/n S`` on average.
- ``halving_doubling`` AllReduce (Rabenseifner): ``2 log2 n alpha + 2 (n-1)/n S / B`` for n a
  power of two; other n fold the first ``2 r`` ranks in pairs first (MPICH), ``+ 2 alpha``.
- ``hierarchical`` AllReduce (2-D): ring reduce-scatter inside groups of ``g`` ranks (a
  satellite's accelerators), ring all-reduce of the ``S/g`` shards across the ``G`` groups,
  ring all-gather inside: ``2 (g-1) alpha_in + 2 (g-1)/g S / B_in + 2 (G-1) alpha_out + 2 (G-1)
  /G S/g / B_out``, the same ``2 (n-1)/n S`` bytes per rank as one ring.
- AllToAll: every rank sends ``S/n`` to every peer at once: ``alpha + (n-1)/n S / B``.
- Broadcast, Reduce: pipelined chain from (to) the root: ``(n-1) alpha + S / B``.
- SendRecv: ``alpha + S / B``.

Examples
--------
>>> bytes_per_rank("AllReduce", 4, 1e9), bytes_per_rank("AllToAll", 4, 1e9)
(1500000000.0, 750000000.0)
>>> c = Collective("AllReduce", np.arange(4), 1e9, "ring")
>>> src, dst, nbytes = c.flows()
>>> np.bincount(src, weights=nbytes).tolist()
[1500000000.0, 1500000000.0, 1500000000.0, 1500000000.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COLLECTIVES = ("AllReduce", "ReduceScatter", "AllGather", "AllToAll", "Broadcast", "Reduce",
               "SendRecv")
ALGORITHMS = ("ring", "tree", "halving_doubling", "hierarchical")

_FACTORS = {
    "AllReduce": lambda n: 2.0 * (n - 1) / n,
    "ReduceScatter": lambda n: (n - 1) / n,
    "AllGather": lambda n: (n - 1) / n,
    "AllToAll": lambda n: (n - 1) / n,
    "Broadcast": lambda n: 1.0,
    "Reduce": lambda n: 1.0,
    "SendRecv": lambda n: 1.0,
}

#: meshnet's older snake_case names (meshnet.traffic.collectives) and SimAI/AICB's upper case.
ALIASES = {
    "allreduce": "AllReduce", "reduce_scatter": "ReduceScatter", "reducescatter":
    "ReduceScatter", "allgather": "AllGather", "all_gather": "AllGather", "alltoall": "AllToAll",
    "all_to_all": "AllToAll", "broadcast": "Broadcast", "reduce": "Reduce", "sendrecv":
    "SendRecv", "send": "SendRecv", "recv": "SendRecv", "all_reduce": "AllReduce",
}


def nccl_name(name: str) -> str:
    """The NCCL name of a collective given in any common spelling.

    >>> nccl_name("ALLREDUCE"), nccl_name("reduce_scatter"), nccl_name("AllToAll")
    ('AllReduce', 'ReduceScatter', 'AllToAll')
    """
    if name in _FACTORS:
        return name
    key = name.lower()
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown collective '{name}'; one of {', '.join(COLLECTIVES)}")


def bus_factor(collective: str, n: int) -> float:
    """busbw / algbw as nccl-tests defines it."""
    if n < 1:
        raise ValueError(f"n must be >= 1, found {n}")
    return float(_FACTORS[nccl_name(collective)](n))


def bytes_per_rank(collective: str, n: int, size_bytes: float) -> float:
    """Bytes each rank moves through its busiest link: ``bus_factor x size`` (nccl-tests)."""
    return bus_factor(collective, n) * float(size_bytes)


def algbw(size_bytes: float, time_s: float) -> float:
    """nccl-tests' algorithm bandwidth ``S / t`` in bytes/s."""
    return size_bytes / time_s if time_s > 0 else float("nan")


def busbw(collective: str, n: int, size_bytes: float, time_s: float) -> float:
    """nccl-tests' bus bandwidth ``algbw x factor`` in bytes/s."""
    return algbw(size_bytes, time_s) * bus_factor(collective, n)


@dataclass(frozen=True)
class Communicator:
    """A communicator: a named group of global ranks (``ncclCommSplit`` of the world).

    ``dim`` is the parallel dimension it serves (``tp``, ``pp``, ``dp``, ``edp``, ``ep``).
    """

    name: str
    ranks: tuple
    dim: str

    @property
    def size(self) -> int:
        return len(self.ranks)


@dataclass(frozen=True)
class Collective:
    """One collective call on ``ranks`` (communicator order) of ``size_bytes`` (nccl-tests'
    size). ``pairs`` gives (sender, receiver) rank pairs for ``SendRecv``; ``group_size`` the
    intra-group size of a ``hierarchical`` all-reduce; ``root`` the root's position."""

    op: str
    ranks: np.ndarray
    size_bytes: float
    algorithm: str = "ring"
    group_size: int = 1
    root: int = 0
    pairs: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "op", nccl_name(self.op))
        object.__setattr__(self, "ranks", np.asarray(self.ranks, dtype=np.int64).reshape(-1))
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm '{self.algorithm}'; one of {ALGORITHMS}")

    @property
    def n(self) -> int:
        return int(self.ranks.shape[0])

    def bytes_per_rank(self) -> float:
        return bytes_per_rank(self.op, self.n, self.size_bytes)

    def rounds(self) -> int:
        """Sequential message rounds (``alpha`` terms) of the algorithm."""
        n, op = self.n, self.op
        if n < 2:
            return 0
        if op == "AllReduce":
            if self.algorithm == "tree":
                return 2 * math.ceil(math.log2(n))
            if self.algorithm == "halving_doubling":
                p = 1 << int(math.floor(math.log2(n)))
                return 2 * int(math.log2(p)) + (2 if p != n else 0)
            if self.algorithm == "hierarchical":
                g = self.group_size if n % max(1, self.group_size) == 0 else 1
                return 2 * (g - 1) + 2 * (n // g - 1)
            return 2 * (n - 1)
        if op in ("ReduceScatter", "AllGather", "Broadcast", "Reduce"):
            return n - 1
        return 1

    def flows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(src rank, dst rank, bytes) of every message stream of the collective."""
        r, n, s = self.ranks, self.n, float(self.size_bytes)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if self.op == "SendRecv":
            p = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
            return p[:, 0], p[:, 1], np.full(p.shape[0], s)
        if n < 2 or s <= 0:
            return empty
        if self.op == "AllReduce":
            return _ALLREDUCE[self.algorithm](self)
        if self.op in ("ReduceScatter", "AllGather"):
            return _ring(r, (n - 1) / n * s)
        if self.op == "AllToAll":
            i, j = np.nonzero(~np.eye(n, dtype=bool))
            return r[i], r[j], np.full(i.shape[0], s / n)
        chain = np.roll(r, -self.root)  # root first
        if self.op == "Broadcast":
            return chain[:-1], chain[1:], np.full(n - 1, s)
        return chain[:0:-1], chain[-2::-1], np.full(n - 1, s)  # Reduce: towards the root


def _ring(ranks, per_rank):
    return ranks, np.roll(ranks, -1), np.full(ranks.shape[0], float(per_rank))


def _ar_ring(c: Collective):
    return _ring(c.ranks, 2.0 * (c.n - 1) / c.n * c.size_bytes)


def _heap_edges(order: np.ndarray):
    """(child, parent) of a binary heap laid over ``order``."""
    k = np.arange(1, order.shape[0])
    return order[k], order[(k - 1) // 2]


def _ar_tree(c: Collective):
    # Two complementary binary trees (the second over the reversed order: the leaves of one
    # are the inner nodes of the other), each reducing up and broadcasting down S/2.
    half = c.size_bytes / 2.0
    parts = []
    for order in (c.ranks, c.ranks[::-1]):
        child, parent = _heap_edges(order)
        parts.append((np.concatenate([child, parent]), np.concatenate([parent, child])))
    src = np.concatenate([p[0] for p in parts])
    dst = np.concatenate([p[1] for p in parts])
    return src, dst, np.full(src.shape[0], half)


def _ar_halving_doubling(c: Collective):
    r, n, s = c.ranks, c.n, float(c.size_bytes)
    m = int(math.floor(math.log2(n)))
    p = 1 << m
    rest = n - p
    src, dst, nb = [], [], []
    if rest:
        even, odd = r[0:2 * rest:2], r[1:2 * rest:2]
        src += [even, odd]
        dst += [odd, even]
        nb += [np.full(rest, s), np.full(rest, s)]
        active = np.concatenate([odd, r[2 * rest:]])
    else:
        active = r
    idx = np.arange(p)
    for k in range(m):  # the reduce-scatter and the all-gather exchange the same amounts
        src.append(active)
        dst.append(active[idx ^ (1 << k)])
        nb.append(np.full(p, 2.0 * s / (1 << (k + 1))))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(nb)


def _ar_hierarchical(c: Collective):
    r, n, s = c.ranks, c.n, float(c.size_bytes)
    g = c.group_size if c.group_size > 1 and n % c.group_size == 0 else 1
    groups = r.reshape(n // g, g)
    n_groups = groups.shape[0]
    src, dst, nb = [], [], []
    if g > 1:  # reduce-scatter + all-gather inside each group
        src.append(groups.reshape(-1))
        dst.append(np.roll(groups, -1, axis=1).reshape(-1))
        nb.append(np.full(n, 2.0 * (g - 1) / g * s))
    if n_groups > 1:  # ring all-reduce of the S/g shards among same-index ranks
        src.append(groups.reshape(-1))
        dst.append(np.roll(groups, -1, axis=0).reshape(-1))
        nb.append(np.full(n, 2.0 * (n_groups - 1) / n_groups * s / g))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(nb)


_ALLREDUCE = {"ring": _ar_ring, "tree": _ar_tree, "halving_doubling": _ar_halving_doubling,
              "hierarchical": _ar_hierarchical}


def alpha_beta_time_s(c: Collective, bandwidth_bytes_per_s: float, alpha_s: float) -> float:
    """Cost of ``c`` when every link runs at ``bandwidth_bytes_per_s`` and every round costs
    ``alpha_s``: rounds x alpha + the busiest rank's bytes / bandwidth.

    >>> c = Collective("AllReduce", np.arange(8), 8e9)
    >>> alpha_beta_time_s(c, 1e9, 1e-3)          # 2*7 rounds + 2*7/8*8 GB at 1 GB/s
    14.014
    """
    src, _, nbytes = c.flows()
    busiest = float(np.bincount(src - src.min(), weights=nbytes).max()) if src.size else 0.0
    return c.rounds() * alpha_s + busiest / bandwidth_bytes_per_s
