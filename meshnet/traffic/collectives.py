"""Training jobs as coflow generators: the flows of one training step, phase by phase.

A job knows its nodes and the shape of its collective. The engine asks it to :meth:`Job.plan`
with the pairwise path delays between its nodes (so that rings follow short mesh paths), then
for the :class:`Phase` list of one training step. Phases run in sequence with a barrier between
them; the flows inside a phase run together (a coflow) and the phase ends with its slowest flow.
Each phase also carries ``latency_rounds``, the number of sequential message rounds it stands
for, so that the engine can charge ``latency_rounds x`` path delay.

Kinds (registered in :data:`JOB_KINDS`)
---------------------------------------
``allreduce``
    Data-parallel gradient all-reduce of ``S = model_params x bytes_per_param`` bytes:

    - ``ring``: the bandwidth-optimal pipelined ring (reduce-scatter then all-gather) as ONE
      phase in which each rank sends ``2 (n-1)/n x S`` bytes to its ring successor,
      ``latency_rounds = 2 (n-1)``. The ring order follows short paths: greedy nearest
      neighbour from rank 0 then 2-opt on the (symmetrised) delay matrix.
    - ``hierarchical``: groups are orbital planes (or ``group_size`` consecutive ranks of the
      planned ring). Equal groups of ``g`` (``G`` groups): intra-group ring reduce-scatter
      (``(g-1)/g x S`` per rank), ring all-reduce of the ``S/g`` shards across groups among
      ranks with the same index (``2 (G-1)/G x S/g``), intra-group ring all-gather
      (``(g-1)/g x S``), i.e. ``2 (n-1)/n x S`` per rank in total, the same as one ring.
      Unequal groups use leaders instead: reduce-scatter, gather of the shards to the group's
      leader, ring all-reduce of ``S`` among the leaders, scatter, all-gather.
    - ``halving_doubling``: Rabenseifner's algorithm on the ranks in planned path order:
      ``log2 p`` recursive-halving reduce-scatter phases (rank pairs at distance 1, 2, 4, ...
      exchange ``S/2``, ``S/4``, ..., so the biggest exchanges are between neighbours), then
      ``log2 p`` recursive-doubling all-gather phases in reverse. For ``n`` not a power of two
      (``p`` the largest power of two below ``n``, ``r = n - p``) the first ``2r`` ranks fold
      pairwise first (even sends ``S`` to odd) and unfold at the end (the MPICH scheme).
``pipeline``
    ``stages`` consecutive job nodes form a pipeline (several replicas if the job has a
    multiple of ``stages`` nodes). One ``forward`` phase sends ``activation_bytes x
    micro_batches`` across every stage boundary, one ``backward`` phase sends the same back.
    Simplification: real 1F1B schedules interleave forward and backward micro-batches and
    overlap them with compute; here the two directions are sequential phases and each pays
    ``latency_rounds = micro_batches + stages - 1`` (the pipeline's fill and drain). Gradient
    synchronisation between replicas is not included (add an ``allreduce`` job for it).
``moe_alltoall``
    Expert-parallel all-to-all with experts spread evenly over the job's nodes and uniform
    routing: each node sends ``tokens_per_step x top_k x hidden_size x bytes_per_element / n``
    bytes to every other node in ``dispatch`` and the same back in ``combine`` (the ``1/n``
    share for its own experts stays local); with ``backward`` the gradients add a
    ``combine_grad`` and a ``dispatch_grad`` phase. ``moe_layers`` sequential layers are one
    phase each with ``moe_layers x`` the bytes and ``latency_rounds = moe_layers``.

Flows of zero bytes are dropped, and so are phases left with no flow.

Compute per step (``compute_s`` unset: derived, see :mod:`meshnet.traffic.compute`)
---------------------------------------------------------------------------------
``allreduce`` (data parallel) and ``moe_alltoall`` (expert parallel, uniform routing): each of
the ``n`` nodes does ``1/n`` of the step's FLOPs, ``compute_s = FLOPs / (n x node peak x
mfu)``. ``pipeline``: each node is one stage of one replica and also does ``1/n`` of the
FLOPs, in ``micro_batches`` pieces; the schedule's bubble stretches that by ``(micro_batches +
stages - 1) / micro_batches`` (GPipe, Huang et al. 2019; Narayanan et al. 2021, Sec. 2.2).

Examples
--------
>>> import numpy as np
>>> from meshnet.traffic.config import JobConfig
>>> from meshnet.traffic.placement import ComputeNodes
>>> k = 4
>>> nodes = ComputeNodes(node_ids=np.arange(k, dtype=np.int32),
...     names=np.array([f"n{i}" for i in range(k)], dtype=object),
...     accelerators=np.ones(k, np.int32), tflops=np.ones(k),
...     shell=np.full(k, -1, np.int32), plane=np.full(k, -1, np.int32),
...     slot=np.full(k, -1, np.int32), n_satellites=k)
>>> job = make_job(JobConfig(name="llm", model_params=1e9), nodes, n_nodes=k)
>>> (phase,) = job.step_phases()
>>> phase.bytes.tolist(), phase.latency_rounds   # 2 (n-1)/n x 2 GB each
([3000000000.0, 3000000000.0, 3000000000.0, 3000000000.0], 6)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..config import Registry
from ..errors import NodeNameError, ScenarioError
from .compute import DEFAULT_MOE_TOKENS, ComputeModel, job_compute, job_tokens_per_step
from .config import JobConfig
from .placement import ComputeNodes

JOB_KINDS = Registry("traffic job kind")
ALLREDUCE_ALGORITHMS = Registry("all-reduce algorithm")

_BITS_PER_BYTE = 8.0


@dataclass(frozen=True)
class Phase:
    """One phase of a training step: flows that run together, ended by the slowest.

    Attributes
    ----------
    src, dst : numpy.ndarray
        ``(F,)`` int32 network node ids.
    bytes : numpy.ndarray
        ``(F,)`` float64 bytes each flow carries.
    label : str
        What the phase is (``"ring"``, ``"reduce_scatter"``, ``"rs_0"``, ``"dispatch"``...).
    latency_rounds : int
        Sequential message rounds the phase stands for; the engine charges this many path
        delays on top of the transfer time.
    """

    src: np.ndarray
    dst: np.ndarray
    bytes: np.ndarray
    label: str
    latency_rounds: int

    def __post_init__(self):
        src = np.ascontiguousarray(self.src, dtype=np.int32).reshape(-1)
        dst = np.ascontiguousarray(self.dst, dtype=np.int32).reshape(-1)
        nbytes = np.ascontiguousarray(self.bytes, dtype=np.float64).reshape(-1)
        if not (src.shape == dst.shape == nbytes.shape):
            raise ValueError("Phase: src, dst and bytes must have the same length")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "bytes", nbytes)
        object.__setattr__(self, "latency_rounds", int(self.latency_rounds))

    @property
    def n_flows(self) -> int:
        return int(self.src.shape[0])

    @property
    def total_bytes(self) -> float:
        return float(self.bytes.sum())


def _phase(src, dst, nbytes, label: str, rounds: int) -> Phase | None:
    """A phase without zero-byte flows, or None if nothing is left."""
    src, dst = np.asarray(src, np.int32), np.asarray(dst, np.int32)
    nbytes = np.broadcast_to(np.asarray(nbytes, np.float64), src.shape)
    keep = (nbytes > 0) & (src != dst)
    if not keep.any():
        return None
    return Phase(src[keep], dst[keep], nbytes[keep], label, rounds)


# --------------------------------------------------------------------------- ring ordering


def _tour_cost(delay_s) -> np.ndarray:
    """Symmetric, finite cost matrix: unreachable pairs cost more than any reachable tour."""
    d = np.asarray(delay_s, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"delay_s must be a square (n, n) matrix, got shape {d.shape}")
    if np.isnan(d).any() or (d < 0).any():
        raise ValueError("delay_s must be >= 0 (inf for unreachable), found NaN or negative")
    cost = 0.5 * (d + d.T)
    finite = np.isfinite(cost)
    big = (float(cost[finite].max()) if finite.any() else 1.0) * (d.shape[0] + 1) + 1.0
    cost[~finite] = big
    np.fill_diagonal(cost, 0.0)
    return np.ascontiguousarray(cost)


def ring_order(delay_s, max_sweeps: int = 100) -> np.ndarray:
    """A closed ring through all ranks that follows short paths.

    Greedy nearest neighbour from rank 0, then 2-opt sweeps, on the symmetrised
    delays (unreachable pairs cost more than any tour of reachable ones). Deterministic.

    Parameters
    ----------
    delay_s : array_like
        ``(n, n)`` path delay between ranks (``inf`` = unreachable).
    max_sweeps : int, optional
        Cap on 2-opt sweeps over the tour (each ``O(n^2)``).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int32 permutation of ``0..n-1``: rank ``order[k]`` sends to ``order[k+1]``.

    Examples
    --------
    >>> x = np.array([0.0, 3.0, 1.0, 2.0])       # four points on a line
    >>> ring_order(np.abs(x[:, None] - x[None, :])).tolist()
    [0, 2, 3, 1]
    """
    from ._kernels import nearest_neighbour_tour, two_opt

    cost = _tour_cost(delay_s)
    n = cost.shape[0]
    if n <= 3:
        return np.arange(n, dtype=np.int32)
    order = nearest_neighbour_tour(cost, 0)
    scale = float(cost.max())
    two_opt(cost, order, int(max_sweeps), 1e-12 * scale)
    return order


def path_order(delay_s) -> np.ndarray:
    """An open path through all ranks that follows short paths (shortest Hamiltonian path
    heuristic): :func:`ring_order` with an extra node at zero cost from and to every rank,
    cut at that node.

    Examples
    --------
    >>> x = np.array([2.0, 0.0, 3.0, 1.0])
    >>> path_order(np.abs(x[:, None] - x[None, :])).tolist()
    [2, 0, 3, 1]
    """
    cost = _tour_cost(delay_s)
    n = cost.shape[0]
    if n <= 2:
        return np.arange(n, dtype=np.int32)
    padded = np.zeros((n + 1, n + 1))
    padded[:n, :n] = cost
    ring = ring_order(padded)
    cut = int(np.flatnonzero(ring == n)[0])
    return np.roll(ring, -cut)[1:].astype(np.int32)


def tour_delay_s(delay_s, order, closed: bool = True) -> float:
    """Sum of ``delay_s`` along ``order`` (back to the start if ``closed``)."""
    d = np.asarray(delay_s, dtype=np.float64)
    order = np.asarray(order)
    nxt = np.roll(order, -1) if closed else order[1:]
    cur = order if closed else order[:-1]
    return float(d[cur, nxt].sum())


def _snake_order(nodes: ComputeNodes) -> np.ndarray:
    """Before any delays are known: planes in turn, slots up then down (boustrophedon)."""
    n = len(nodes)
    if n == 0 or (nodes.plane < 0).any() or (nodes.slot < 0).any():
        return np.arange(n, dtype=np.int32)
    key_plane = nodes.shell.astype(np.int64) * 1_000_000 + nodes.plane
    planes = np.unique(key_plane)
    rank_of_plane = np.searchsorted(planes, key_plane)
    slot = np.where(rank_of_plane % 2 == 0, nodes.slot, -nodes.slot)
    return np.lexsort((slot, rank_of_plane)).astype(np.int32)


# --------------------------------------------------------------------------- jobs


class Job:
    """A training job: its nodes, its computation per step and its communication per step.

    Attributes
    ----------
    name, kind : str
    nodes : numpy.ndarray
        ``(n,)`` int32 network node ids; ``plan``'s delay matrix is indexed in this order.
    compute_s, overlap : float
        Computation per step, and the share of it that communication can overlap
        (communication starts after ``(1 - overlap) x compute_s``).
    compute_model : ComputeModel
        Where ``compute_s`` comes from: set by hand, or derived from the model's FLOPs
        (:func:`meshnet.traffic.compute.job_compute`); ``flops_per_step`` and ``mfu`` with it.
    max_steps : int or None
        Steps to run; None = until the scenario ends.
    start_s, weight : float
        When the job starts; weight of its flows in weighted max-min fairness.
    size_bytes : float
        The nccl-tests "size" of one step's communication (see :func:`algbw_bytes_per_s`).
    bus_factor : float
        busbw / algbw for this collective (nccl-tests' definition).
    """

    kind = ""

    def __init__(self, cfg: JobConfig, nodes: ComputeNodes):
        self.cfg = cfg
        self.name = cfg.name
        self.compute_nodes = nodes
        self.nodes = np.ascontiguousarray(nodes.node_ids, dtype=np.int32)
        self.compute_model = self._compute_model()
        self.compute_s = self.compute_model.compute_s
        self.overlap = float(cfg.overlap)
        self.max_steps = cfg.steps
        self.start_s = float(cfg.start_s)
        self.weight = float(cfg.weight)
        self._phases: list[Phase] | None = None
        self._planned = False

    @property
    def n(self) -> int:
        return int(self.nodes.shape[0])

    def _compute_model(self) -> ComputeModel:
        """``compute_s`` as given, or derived from the model (data parallel: 1/n each)."""
        return job_compute(self.cfg, self.compute_nodes)

    @property
    def flops_per_step(self) -> float | None:
        """FLOPs the whole job executes per step (None when ``compute_s`` is set by hand)."""
        return self.compute_model.flops_per_step

    @property
    def mfu(self) -> float | None:
        """Utilisation of the dense peak while computing (None when set by hand)."""
        return self.compute_model.mfu

    def plan(self, delay_s) -> None:
        """Adapt the rank layout to the current mesh.

        Parameters
        ----------
        delay_s : array_like
            ``(n, n)`` float64 path delay between the job's nodes, in :attr:`nodes` order
            (``inf`` = unreachable).
        """
        d = np.asarray(delay_s, dtype=np.float64)
        if d.shape != (self.n, self.n):
            raise ValueError(
                f"job '{self.name}': delay_s has shape {d.shape}, expected ({self.n}, {self.n})")
        self._plan(d)
        self._planned = True
        self._phases = None

    def _plan(self, delay_s: np.ndarray) -> None:
        pass

    def step_phases(self) -> list[Phase]:
        """The communication of one training step: phases run in sequence, barrier between."""
        if self._phases is None:
            self._phases = [p for p in self._build() if p is not None]
        return list(self._phases)

    def replace_node(self, old: int, new: int) -> None:
        """Put network node ``new`` (a spare) in the place of ``old``: same rank, same ring
        position; the phases are rebuilt (call :meth:`plan` to re-order the ring)."""
        k = int(np.flatnonzero(self.nodes == old)[0])
        self.nodes = self.nodes.copy()
        self.nodes[k] = int(new)
        ids = np.asarray(self.compute_nodes.node_ids).copy()
        ids[k] = int(new)
        self.compute_nodes = dataclasses.replace(self.compute_nodes, node_ids=ids)
        self._phases = None

    def remove_nodes(self, gone) -> None:
        """Elastic re-forming: drop network nodes ``gone``; the per-step bytes follow the
        smaller job (the ring's ``2 (n - 1) / n`` share) once :meth:`plan` has run."""
        keep = ~np.isin(self.nodes, np.asarray(gone))
        self.nodes = np.ascontiguousarray(self.nodes[keep])
        self.compute_nodes = self.compute_nodes.subset(np.flatnonzero(keep))
        if hasattr(self, "order"):
            self.order = np.arange(self.n)
        self._phases = None

    def _build(self) -> list[Phase | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def size_bytes(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def bus_factor(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_time_s(self, comm_s: float) -> float:
        """Step time given the step's communication time (see :func:`step_time_s`)."""
        return step_time_s(self.compute_s, comm_s, self.overlap)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}' kind={self.kind} n={self.n}>"


@JOB_KINDS.register("allreduce")
class AllReduceJob(Job):
    """Data-parallel gradient all-reduce (see the module docs for the algorithms)."""

    kind = "allreduce"

    def __init__(self, cfg: JobConfig, nodes: ComputeNodes):
        super().__init__(cfg, nodes)
        self.algorithm = cfg.algorithm
        self.gradient_bytes = float(cfg.model_params) * float(cfg.bytes_per_param)
        self._impl = ALLREDUCE_ALGORITHMS.get(cfg.algorithm)
        self.order = _snake_order(nodes)  # rank k is job node order[k]
        self._delay: np.ndarray | None = None

    def _plan(self, delay_s: np.ndarray) -> None:
        self._delay = delay_s
        self.order = ring_order(delay_s)

    def _build(self):
        if self.n < 2:
            return []
        return self._impl(self)

    @property
    def size_bytes(self) -> float:
        return self.gradient_bytes

    @property
    def bus_factor(self) -> float:
        return bus_factor("allreduce", self.n)


def _ring_flows(ranks: np.ndarray, per_rank_bytes: float):
    """Each of ``ranks`` (node ids, ring order) sends ``per_rank_bytes`` to its successor."""
    return ranks, np.roll(ranks, -1), np.full(ranks.shape[0], per_rank_bytes)


@ALLREDUCE_ALGORITHMS.register("ring")
def _ring(job: AllReduceJob) -> list[Phase | None]:
    n, s = job.n, job.gradient_bytes
    src, dst, b = _ring_flows(job.nodes[job.order], 2.0 * (n - 1) / n * s)
    return [_phase(src, dst, b, "ring", 2 * (n - 1))]


def _groups(job: AllReduceJob) -> list[np.ndarray]:
    """Rank groups (job-node positions, each in intra-group ring order), in inter-group order."""
    cn, n = job.compute_nodes, job.n
    if job.cfg.group_size is None and not ((cn.plane < 0).any() or (cn.slot < 0).any()):
        key = cn.shell.astype(np.int64) * 1_000_000 + cn.plane
        groups = []
        for k in np.unique(key):
            members = np.flatnonzero(key == k)
            groups.append(members[np.argsort(cn.slot[members], kind="stable")])
        if job._delay is not None and len(groups) > 2:
            lead = np.array([g[0] for g in groups])
            groups = [groups[i] for i in ring_order(job._delay[np.ix_(lead, lead)])]
        return groups
    size = job.cfg.group_size or max(1, round(math.sqrt(n)))
    order = job.order
    groups = [order[i:i + size] for i in range(0, n, size)]
    return _align(groups, job._delay)


def _align(groups: list[np.ndarray], delay: np.ndarray | None) -> list[np.ndarray]:
    """Rotate/orient each group's ring so that its rank i sits near rank i of the previous one."""
    if delay is None:
        return groups
    out = [groups[0]]
    for g in groups[1:]:
        prev = out[-1]
        if g.shape[0] > 2:
            g = g[ring_order(delay[np.ix_(g, g)])]
        start = int(np.argmin(delay[prev[0], g]))
        g = np.roll(g, -start)
        if g.shape[0] > 2 and prev.shape[0] > 1:
            fwd, back = g, np.concatenate([g[:1], g[:0:-1]])
            if delay[prev[1], back[1]] < delay[prev[1], fwd[1]]:
                g = back
        out.append(g)
    return out


@ALLREDUCE_ALGORITHMS.register("hierarchical")
def _hierarchical(job: AllReduceJob) -> list[Phase | None]:
    s = job.gradient_bytes
    groups = _groups(job)
    nodes = job.nodes
    sizes = np.array([g.shape[0] for g in groups])
    n_groups = len(groups)
    max_g = int(sizes.max())

    def intra(label: str):
        src, dst, b = [], [], []
        for g in groups:
            if g.shape[0] > 1:
                fs, fd, fb = _ring_flows(nodes[g], (g.shape[0] - 1) / g.shape[0] * s)
                src.append(fs)
                dst.append(fd)
                b.append(fb)
        if not src:
            return None
        return _phase(np.concatenate(src), np.concatenate(dst), np.concatenate(b), label,
                      max_g - 1)

    phases = [intra("intra_reduce_scatter")]
    if n_groups > 1 and (sizes == max_g).all():
        # same-index ranks of every group all-reduce their S/g shard around a ring of groups
        grid = np.stack(groups)  # (G, g): grid[a, i] = position of rank i of group a
        src = nodes[grid].reshape(-1)
        dst = nodes[np.roll(grid, -1, axis=0)].reshape(-1)
        per = 2.0 * (n_groups - 1) / n_groups * s / max_g
        phases.append(_phase(src, dst, per, "inter_allreduce", 2 * (n_groups - 1)))
    elif n_groups > 1:
        leaders = np.array([g[0] for g in groups])
        src = np.concatenate([nodes[g[1:]] for g in groups])
        dst = np.concatenate([np.full(g.shape[0] - 1, nodes[g[0]]) for g in groups])
        shard = np.concatenate([np.full(g.shape[0] - 1, s / g.shape[0]) for g in groups])
        phases.append(_phase(src, dst, shard, "gather_to_leader", 1))
        ls, ld, lb = _ring_flows(nodes[leaders], 2.0 * (n_groups - 1) / n_groups * s)
        phases.append(_phase(ls, ld, lb, "inter_allreduce", 2 * (n_groups - 1)))
        phases.append(_phase(dst, src, shard, "scatter_from_leader", 1))
    phases.append(intra("intra_all_gather"))
    return phases


@ALLREDUCE_ALGORITHMS.register("halving_doubling")
def _halving_doubling(job: AllReduceJob) -> list[Phase | None]:
    n, s = job.n, job.gradient_bytes
    order = job.order
    if job._delay is not None:
        order = path_order(job._delay)
    ranks = job.nodes[order]  # node id of rank k
    m = int(math.floor(math.log2(n)))
    p = 1 << m
    r = n - p
    phases: list[Phase | None] = []
    if r:
        even, odd = ranks[0:2 * r:2], ranks[1:2 * r:2]
        phases.append(_phase(even, odd, s, "fold", 1))
        active = np.concatenate([odd, ranks[2 * r:]])
    else:
        active = ranks
    idx = np.arange(p)
    for k in range(m):  # reduce-scatter: partner at distance 2^k, half the remaining data
        phases.append(_phase(active, active[idx ^ (1 << k)], s / (1 << (k + 1)), f"rs_{k}", 1))
    for k in reversed(range(m)):  # all-gather: the same exchanges in reverse
        phases.append(_phase(active, active[idx ^ (1 << k)], s / (1 << (k + 1)), f"ag_{k}", 1))
    if r:
        phases.append(_phase(odd, even, s, "unfold", 1))
    return phases


@JOB_KINDS.register("pipeline")
class PipelineJob(Job):
    """Pipeline parallelism: activations forward and gradients backward across stage boundaries.

    The delay matrix given to ``plan`` is not used: stages map onto the job's nodes in order.
    """

    kind = "pipeline"

    def __init__(self, cfg: JobConfig, nodes: ComputeNodes):
        n = len(nodes)
        self.stages = n if cfg.stages is None else int(cfg.stages)
        if self.stages > n or n % self.stages:
            raise ScenarioError(
                f"[[traffic.jobs]] '{cfg.name}': stages = {self.stages} must divide the "
                f"job's {n} nodes (each pipeline replica gets 'stages' nodes)")
        super().__init__(cfg, nodes)
        self.replicas = self.n // self.stages
        self.micro_batches = int(cfg.micro_batches)
        self.boundary_bytes = float(cfg.activation_bytes) * self.micro_batches

    def _compute_model(self) -> ComputeModel:
        # Each node is one stage of one replica: 1/n of the FLOPs, plus the bubble.
        return job_compute(self.cfg, self.compute_nodes, stages=self.stages)

    def _build(self):
        grid = self.nodes.reshape(self.replicas, self.stages)
        up, down = grid[:, :-1].reshape(-1), grid[:, 1:].reshape(-1)
        rounds = self.micro_batches + self.stages - 1
        return [_phase(up, down, self.boundary_bytes, "forward", rounds),
                _phase(down, up, self.boundary_bytes, "backward", rounds)]

    @property
    def size_bytes(self) -> float:
        return 2.0 * self.boundary_bytes

    @property
    def bus_factor(self) -> float:
        return bus_factor("sendrecv", self.n)


@JOB_KINDS.register("moe_alltoall")
class MoEJob(Job):
    """Expert-parallel all-to-all (dispatch, combine, and their gradients)."""

    kind = "moe_alltoall"

    def __init__(self, cfg: JobConfig, nodes: ComputeNodes):
        super().__init__(cfg, nodes)
        n_experts = self.n * cfg.experts_per_node
        if cfg.top_k > n_experts:
            raise ScenarioError(
                f"[[traffic.jobs]] '{self.name}': top_k = {cfg.top_k} exceeds the job's "
                f"{n_experts} experts (nodes x experts_per_node)")
        self.layers = int(cfg.moe_layers)
        tokens = job_tokens_per_step(cfg, self.n)
        #: Tokens each node routes per step and layer (its share of the job's).
        self.tokens_per_node = DEFAULT_MOE_TOKENS if tokens is None else tokens / self.n
        # one all-to-all's send buffer per node (nccl-tests' size), self share included
        self.buffer_bytes = (self.tokens_per_node * cfg.top_k * cfg.hidden_size
                             * float(cfg.bytes_per_element))
        self.labels = (("dispatch", "combine", "combine_grad", "dispatch_grad") if cfg.backward
                       else ("dispatch", "combine"))

    def _compute_model(self) -> ComputeModel:
        # Expert parallel: each node runs its tokens through the shared layers and its
        # experts; with uniform routing every node does 1/n of the FLOPs.
        n_experts = len(self.compute_nodes) * self.cfg.experts_per_node
        return job_compute(self.cfg, self.compute_nodes, n_experts=n_experts)

    def _build(self):
        n = self.n
        i, j = np.nonzero(~np.eye(n, dtype=bool))
        src, dst = self.nodes[i], self.nodes[j]
        per_pair = self.buffer_bytes / n * self.layers
        out = []
        for label in self.labels:
            forward = label in ("dispatch", "combine_grad")  # token owner -> expert
            out.append(_phase(src if forward else dst, dst if forward else src, per_pair,
                              label, self.layers))
        return out

    @property
    def size_bytes(self) -> float:
        return self.buffer_bytes * self.layers * len(self.labels)

    @property
    def bus_factor(self) -> float:
        return bus_factor("alltoall", self.n)


def make_job(job_cfg: JobConfig, compute_nodes: ComputeNodes, *, n_nodes: int) -> Job:
    """Build the job a ``[[traffic.jobs]]`` entry describes.

    Parameters
    ----------
    job_cfg : JobConfig
    compute_nodes : ComputeNodes
        All compute nodes of the scenario; ``job_cfg.nodes`` picks a subset by name.
    n_nodes : int
        Nodes in the network (satellites + ground stations), to check the node ids.

    Raises
    ------
    NodeNameError
        ``job_cfg.nodes`` names a node that is not a compute node.
    ScenarioError
        The job has fewer than 2 nodes, or its shape does not fit its nodes.
    """
    cls = JOB_KINDS.get(job_cfg.kind)
    where = f"[[traffic.jobs]] '{job_cfg.name}'"
    if job_cfg.nodes:
        try:
            index = compute_nodes.index_of(job_cfg.nodes, what="compute node")
        except NodeNameError as exc:
            raise NodeNameError(f"{where}: nodes: {exc}") from None
        nodes = compute_nodes.subset(index)
    else:
        nodes = compute_nodes
    if len(nodes) < 2:
        raise ScenarioError(
            f"{where} has {len(nodes)} compute node(s); a job needs at least 2 "
            "(see [traffic.compute])")
    ids = nodes.node_ids
    if ids.min() < 0 or ids.max() >= n_nodes:
        raise ValueError(f"{where}: node ids must lie in [0, {n_nodes}), found {ids.max()}")
    return cls(job_cfg, nodes)


# --------------------------------------------------------------------------- metrics helpers


def step_time_s(compute_s: float, comm_s: float, overlap: float) -> float:
    """Step time when communication starts after ``(1 - overlap) x compute_s``.

    ``max(compute_s, (1 - overlap) x compute_s + comm_s)``, the engine's model: 0 gives
    ``compute + comm``, 1 gives ``max(compute, comm)``.

    Examples
    --------
    >>> step_time_s(2.0, 1.0, 0.0), step_time_s(2.0, 1.0, 1.0), step_time_s(2.0, 3.0, 0.5)
    (3.0, 2.0, 4.0)
    """
    return max(compute_s, (1.0 - overlap) * compute_s + comm_s)


def ideal_comm_time_s(phases, rate_bps: float, *, latency_s: float = 0.0,
                      node_rate_bps: float | None = None) -> float:
    """Communication time of ``phases`` on an ideal mesh.

    Every pair of nodes has its own link at ``rate_bps`` (a full mesh at terminal rate), so a
    phase lasts as long as its largest flow, plus ``latency_rounds x latency_s``. With
    ``node_rate_bps`` each node's total sending and receiving rate is capped as well.

    Examples
    --------
    >>> p = Phase(np.array([0, 1]), np.array([1, 0]), np.array([1e9, 2e9]), "x", 2)
    >>> ideal_comm_time_s([p], 8e9), ideal_comm_time_s([p], 8e9, latency_s=0.01)
    (2.0, 2.02)
    """
    if not rate_bps > 0:
        raise ValueError(f"rate_bps must be > 0, found {rate_bps}")
    total = 0.0
    for ph in phases:
        if ph.n_flows == 0:
            continue
        t = float(ph.bytes.max()) * _BITS_PER_BYTE / rate_bps
        if node_rate_bps is not None:
            out_b = np.bincount(ph.src, weights=ph.bytes)
            in_b = np.bincount(ph.dst, weights=ph.bytes)
            t = max(t, max(out_b.max(), in_b.max()) * _BITS_PER_BYTE / node_rate_bps)
        total += t + ph.latency_rounds * latency_s
    return total


_BUS_FACTORS = {
    "allreduce": lambda n: 2.0 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "sendrecv": lambda n: 1.0,
}


def bus_factor(collective: str, n: int) -> float:
    """busbw / algbw as nccl-tests defines it (``allreduce``: 2 (n-1)/n, ``alltoall``: (n-1)/n).

    Examples
    --------
    >>> bus_factor("allreduce", 4), bus_factor("alltoall", 4), bus_factor("sendrecv", 4)
    (1.5, 0.75, 1.0)
    """
    if collective not in _BUS_FACTORS:
        raise ValueError(f"unknown collective '{collective}'; one of {sorted(_BUS_FACTORS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, found {n}")
    return float(_BUS_FACTORS[collective](n))


def algbw_bytes_per_s(size_bytes: float, time_s: float) -> float:
    """nccl-tests' algorithm bandwidth ``size / time`` (bytes per second; NaN if time is 0)."""
    return size_bytes / time_s if time_s > 0 else float("nan")


def busbw_bytes_per_s(size_bytes: float, time_s: float, collective: str, n: int) -> float:
    """nccl-tests' bus bandwidth: algbw x :func:`bus_factor`."""
    return algbw_bytes_per_s(size_bytes, time_s) * bus_factor(collective, n)
