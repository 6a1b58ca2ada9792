"""Parallel layouts: TP x PP x DP (with EP inside DP), their groups and their placement.

Ranks follow Megatron-LM's convention: ``rank -> (tp, dp, pp)`` coordinates with an order of
dimensions, fastest first (``order``, default ``tp-dp-pp`` as Megatron's
``RankGenerator``); expert parallelism splits the data-parallel dimension (``dp = ep x edp``,
``ep`` fastest), as Megatron-Core's expert-data-parallel groups do.

Placement: accelerators are taken node by node (``accelerators_per_node`` consecutive ranks
per node), so the fastest dimension lands inside a satellite. The job's nodes are first put in
orbital order (shell, plane, slot; a boustrophedon across planes) so that consecutive nodes are
neighbours in a plane: with ``order = "tp-pp-dp"`` the pipeline stages of a replica follow the
plane and the replicas sit side by side across it. ``placement = "as_listed"`` keeps the order
of the job's ``nodes`` list instead (the user's own placement).

Examples
--------
>>> lay = Layout(tp=2, pp=2, dp=2, accelerators_per_node=2)
>>> lay.world_size, lay.groups("tp")[:2], lay.groups("pp")[:2], lay.groups("dp")[:2]
(8, [(0, 1), (2, 3)], [(0, 4), (1, 5)], [(0, 2), (1, 3)])
>>> lay.node_of_rank().tolist()
[0, 0, 1, 1, 2, 2, 3, 3]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import option
from ..errors import ScenarioError
from .nccl import ALGORITHMS

DIMS = ("tp", "dp", "pp")
SCHEDULES = ("1f1b", "gpipe")


@dataclass(frozen=True)
class LayoutSpec:
    """``[traffic.jobs.layout]``: parallel degrees, micro-batches, schedule and placement."""

    tp: int = option(1, min=1, doc="tensor-parallel degree")
    pp: int = option(1, min=1, doc="pipeline-parallel degree (stages)")
    dp: int = option(1, min=1, doc="data-parallel degree (model replicas)")
    ep: int = option(1, min=1, doc="expert-parallel degree; divides dp (dp = ep x edp)")
    micro_batches: int = option(8, min=1, doc="micro-batches per step per replica")
    schedule: str = option("1f1b", choices=SCHEDULES,
                           doc="pipeline schedule: 1f1b (PipeDream-Flush) or gpipe")
    sequence_parallel: bool = option(
        False, doc="TP as reduce-scatter + all-gather per layer (Megatron sequence "
                   "parallelism) instead of all-reduce")
    order: str = option("tp-dp-pp", doc="rank order of the dimensions, fastest first "
                        "(a permutation of tp, dp, pp; Megatron: tp-dp-pp)")
    placement: str = option("orbital", choices=("orbital", "as_listed"),
                            doc="node order: orbital (shell, plane, slot snake) or as_listed "
                                "(the job's nodes list)")
    dp_algorithm: str = option("ring", choices=ALGORITHMS,
                               doc="data-parallel all-reduce algorithm")
    tp_algorithm: str = option("ring", choices=ALGORITHMS, doc="tensor-parallel all-reduce "
                               "algorithm")
    bucket_params: float = option(
        40e6, min=1.0, doc="parameters per gradient bucket (Megatron-LM DDP: 40M)")
    mfu: float = option(0.4, min=0.0, min_inclusive=False, max=1.0,
                        doc="share of the dense peak reached by compute kernels (Llama 3 "
                            "405B: 38-43 %, arXiv 2407.21783)")
    scale_up_bps: float = option(
        7.2e12, min=0.0, min_inclusive=False,
        doc="bandwidth between accelerators of one node per direction (H100 NVLink 4: "
            "900 GB/s = 7.2 Tbps)")
    scale_up_latency_s: float = option(
        5e-6, min=0.0, doc="latency of one message round inside a node (assumed)")
    trace_steps: int = option(1, min=0, doc="training steps of this job written to trace.json")

    def validate(self, name: str, where: str) -> None:
        dims = self.order.split("-")
        if sorted(dims) != sorted(DIMS):
            raise ScenarioError(f"{where}: [{name}].order = '{self.order}' must order tp, dp "
                                "and pp, e.g. 'tp-dp-pp'")
        if self.dp % self.ep:
            raise ScenarioError(f"{where}: [{name}].ep = {self.ep} must divide dp = {self.dp} "
                                "(experts are spread over data-parallel ranks)")


class Layout:
    """Rank coordinates and communicator groups of a TP x PP x DP (x EP) layout.

    Parameters
    ----------
    tp, pp, dp, ep : int
        Parallel degrees (``ep`` divides ``dp``).
    accelerators_per_node : int
        Consecutive ranks on each node.
    order : str
        Dimensions fastest first, e.g. ``"tp-dp-pp"``.
    """

    def __init__(self, tp=1, pp=1, dp=1, ep=1, accelerators_per_node=1, order="tp-dp-pp"):
        self.tp, self.pp, self.dp, self.ep = int(tp), int(pp), int(dp), int(ep)
        if self.dp % self.ep:
            raise ValueError(f"ep = {ep} must divide dp = {dp}")
        self.edp = self.dp // self.ep
        self.accelerators_per_node = int(accelerators_per_node)
        self.order = tuple(order.split("-"))
        size = {"tp": self.tp, "dp": self.dp, "pp": self.pp}
        shape = [size[d] for d in self.order]
        # coords[d][rank]
        grid = np.indices(shape[::-1]).reshape(len(shape), -1)[::-1]
        self._coord = {d: grid[i] for i, d in enumerate(self.order)}

    @property
    def world_size(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def n_nodes(self) -> int:
        return -(-self.world_size // self.accelerators_per_node)

    def coord(self, dim: str) -> np.ndarray:
        """``(world,)`` coordinate of every rank along ``tp``, ``dp``, ``pp``, ``ep``, ``edp``."""
        if dim == "ep":
            return self._coord["dp"] % self.ep
        if dim == "edp":
            return self._coord["dp"] // self.ep
        return self._coord[dim]

    def rank_of(self, tp: int, dp: int, pp: int) -> int:
        hit = ((self._coord["tp"] == tp) & (self._coord["dp"] == dp)
               & (self._coord["pp"] == pp))
        return int(np.flatnonzero(hit)[0])

    def groups(self, dim: str) -> list[tuple]:
        """Communicator groups of ``dim`` (ranks varying along it, the others fixed), in order
        of their first rank; each group ordered along ``dim``."""
        fixed = {"tp": ("dp", "pp"), "dp": ("tp", "pp"), "pp": ("tp", "dp"),
                 "ep": ("tp", "pp", "edp"), "edp": ("tp", "pp", "ep")}[dim]
        keys = np.stack([self.coord(d) for d in fixed])
        out: dict = {}
        along = self.coord(dim)
        for r in np.lexsort((along,)):  # ranks sorted along dim
            out.setdefault(tuple(keys[:, r]), []).append(int(r))
        groups = [tuple(g) for g in out.values()]
        return sorted(groups, key=lambda g: min(g))

    def communicators(self, dim: str) -> list:
        """The :class:`~meshnet.workloads.nccl.Communicator` of every group of ``dim``.

        >>> [c.name for c in Layout(tp=2, dp=2).communicators("dp")]
        ['dp0', 'dp1']
        """
        from .nccl import Communicator

        return [Communicator(f"{dim}{i}", g, dim) for i, g in enumerate(self.groups(dim))]

    def node_of_rank(self) -> np.ndarray:
        """``(world,)`` index of the node (in the job's node order) each rank runs on."""
        return np.arange(self.world_size) // self.accelerators_per_node


def orbital_order(plane, slot, shell) -> np.ndarray:
    """Node order for placement: shells, planes in turn, slots up then down (boustrophedon),
    so that consecutive nodes are neighbours; unknown orbits (-1) keep their order.

    >>> orbital_order(np.array([1, 0, 0, 1]), np.array([0, 1, 0, 1]), np.zeros(4)).tolist()
    [2, 1, 3, 0]
    """
    plane, slot, shell = (np.asarray(x, np.int64) for x in (plane, slot, shell))
    if plane.size == 0 or (plane < 0).any() or (slot < 0).any():
        return np.arange(plane.shape[0])
    key = shell * 1_000_000 + plane
    planes = np.unique(key)
    k = np.searchsorted(planes, key)
    s = np.where(k % 2 == 0, slot, -slot)
    return np.lexsort((s, k))
