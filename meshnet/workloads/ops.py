"""Operations of a training step: compute and collectives with their dependencies.

An :class:`Op` runs on a set of ranks: a computation (``duration_s`` on each of them), or one
or more concurrent collectives (the same call on parallel communicators, e.g. the data-parallel
all-reduce of every tensor-parallel index of a stage) repeated ``count`` times back to back.
Each op occupies one ``stream`` on each of its ranks (``compute`` for kernels and the
collectives that block them, ``pp`` for pipeline sends, ``dp`` for gradient reduces), so ops
of one stream run in program order; ``deps`` are the ops it waits for besides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .nccl import Collective


@dataclass
class Op:
    """One operation of the step (see the module docs)."""

    name: str
    dim: str  # "compute" or the parallel dimension: tp, pp, dp, edp, ep (or the trace's)
    ranks: tuple
    stream: str = "compute"
    duration_s: float = 0.0
    colls: list = field(default_factory=list)  # list[Collective]
    count: int = 1
    deps: list = field(default_factory=list)  # op ids
    args: dict = field(default_factory=dict)
    id: int = -1

    @property
    def is_compute(self) -> bool:
        return not self.colls

    def flows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rank-level (src, dst, bytes) of all its collectives, ``count`` times."""
        if not self.colls:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        parts = [c.flows() for c in self.colls]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]) * self.count)

    def rounds(self) -> int:
        return max((c.rounds() for c in self.colls), default=0) * self.count

    @property
    def op(self) -> str:
        return self.colls[0].op if self.colls else "compute"

    @property
    def size_bytes(self) -> float:
        """nccl-tests size of one call on one communicator."""
        return float(self.colls[0].size_bytes) if self.colls else 0.0


class OpList:
    """Ops in creation order with keyed look-ups and per-(rank, stream) program order."""

    def __init__(self):
        self.ops: list[Op] = []
        self._key: dict = {}
        self._last: dict = {}  # (rank, stream) -> last op id

    def add(self, op: Op, key=None, deps=()) -> int:
        op.id = len(self.ops)
        op.ranks = tuple(int(r) for r in op.ranks)
        prev = {self._last[(r, op.stream)] for r in op.ranks if (r, op.stream) in self._last}
        op.deps = sorted(set(op.deps) | set(int(d) for d in deps if d is not None) | prev)
        for r in op.ranks:
            self._last[(r, op.stream)] = op.id
        self.ops.append(op)
        if key is not None:
            self._key[key] = op.id
        return op.id

    def get(self, key):
        return self._key.get(key)

    def __len__(self):
        return len(self.ops)


def coll(op: str, ranks, size_bytes: float, algorithm: str = "ring", **kw) -> Collective:
    return Collective(op, np.asarray(ranks), float(size_bytes), algorithm, **kw)
