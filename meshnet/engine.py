"""The fluid engine: flows advance at their max-min fair rates while the mesh moves.

The engine owns the clock inside a step and knows nothing of orbits or lasers: each step it is
handed a :class:`~meshnet.graph.Snapshot`, a routing policy and an allocator. Between steps the
topology is fixed; inside a step, rates are recomputed at every flow or coflow completion, so
results depend on the step size only through topology changes.

Training jobs follow a simple, explicit step model (see ``docs/design.md``): a training step
computes for ``compute_s``; its communication may start after ``(1 - overlap) * compute_s``
(gradient buckets are all-reduced while the backward pass still runs) and proceeds phase by
phase, each phase a coflow that ends with its slowest flow plus ``latency_rounds`` times the
largest one-way path delay among its flows. The step ends when both compute and communication
are done.

Power (``compute_rate``, see ``docs/power.md``): a training step computes for
``compute_s / factor``, where ``factor`` is the lowest compute-rate factor among the job's nodes
at the step's start (synchronous data parallel: the slowest rank sets the pace). A factor of 0
holds the step, before any compute, until the factor is above 0 at the start of a later
emulation step; the wait counts in the step's time. The engine knows nothing of batteries: it is
handed one factor per node per emulation step.

Faults (``set_outages``, see ``docs/faults.md`` and :mod:`meshnet.jobs`): a job with a
recovery policy is interrupted at the first instant one of its nodes is down; it checkpoints,
rolls back, waits, takes a spare or shrinks as its policy says. The resilience state lives in
:class:`meshnet.jobs.Resilience`; the engine moves the flows.

Times inside the engine are float seconds from the scenario epoch; step boundaries come in as
integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import NS_PER_S

# Job states.
_COMPUTE_ONLY = 0  # before communication may start
_COMM = 1  # flows of a phase in flight
_LATENCY = 2  # all bytes of the phase delivered; paying the rounds' propagation delay
_WAIT_COMPUTE = 3  # communication done, compute still running
_DONE = 4
_HELD = 5  # compute-rate factor 0 (power): the step waits to start computing
_CKPT = 6  # checkpoint flows in flight; the job pauses
_RECOVER = 7  # interrupted: waiting for nodes and paying restart_s; timer = resume time
_CKPT_PHASE = -2  # phase value of checkpoint flows

_EPS_S = 1e-12
_MAX_EVENTS_PER_STEP = 10_000_000
_EPS_BYTES = 1e-3  # a flow with less than a millibyte left is done


class _Flows:
    """Struct of growable numpy arrays, one row per flow the engine still holds.

    Rows are appended in flow order; ``id`` is each row's flow number in the run (its row in
    ``flows.parquet``). Finished flows stay until :meth:`FluidEngine.release_flows` hands
    them out and drops them (:meth:`drop`), which shifts the rows after them down.
    """

    _FIELDS = {
        "id": np.int64,
        "src": np.int32, "dst": np.int32, "job": np.int32, "step": np.int32,
        "phase": np.int32, "bytes_total": np.float64, "remaining": np.float64,
        "demand_bps": np.float64, "weight": np.float64, "start_s": np.float64,
        "end_s": np.float64, "bytes_sent": np.float64, "path_changes": np.int32,
        "reroutes": np.int32, "unreachable_s": np.float64, "blackholed_s": np.float64,
    }

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.n_total = 0  # flows ever added (the next flow's id)
        self._min_capacity = int(capacity)
        for name, dtype in self._FIELDS.items():
            setattr(self, name, np.zeros(capacity, dtype=dtype))

    def _resize(self, capacity: int) -> None:
        for name in self._FIELDS:
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def _grow(self) -> None:
        self._resize(2 * self.src.shape[0])

    @property
    def capacity(self) -> int:
        """Rows allocated (held rows plus free room)."""
        return int(self.src.shape[0])

    def add_many(self, src, dst, job, step, phase, nbytes, demand_bps, weight, t_s):
        """Append flows (array arguments, scalars broadcast); return their rows."""
        src = np.atleast_1d(np.asarray(src, dtype=np.int32))
        k = src.shape[0]
        while self.n + k > self.src.shape[0]:
            self._grow()
        ids = np.arange(self.n, self.n + k, dtype=np.int64)
        sl = slice(self.n, self.n + k)
        self.id[sl] = np.arange(self.n_total, self.n_total + k)
        self.src[sl] = src
        self.dst[sl] = dst
        self.job[sl] = job
        self.step[sl] = step
        self.phase[sl] = phase
        self.bytes_total[sl] = nbytes
        self.remaining[sl] = nbytes
        self.demand_bps[sl] = demand_bps
        self.weight[sl] = weight
        self.start_s[sl] = t_s
        self.end_s[sl] = np.nan
        self.path_changes[sl] = 0
        self.reroutes[sl] = 0
        self.bytes_sent[sl] = 0.0
        self.unreachable_s[sl] = 0.0
        self.blackholed_s[sl] = 0.0
        self.n += k
        self.n_total += k
        return ids

    def drop(self, lo: int, hi: int) -> None:
        """Remove rows ``lo:hi``; later rows move down by ``hi - lo``. The arrays shrink
        when they are less than a quarter full, so memory follows the rows held."""
        k = hi - lo
        if k <= 0:
            return
        for name in self._FIELDS:
            arr = getattr(self, name)
            arr[lo: self.n - k] = arr[hi: self.n].copy()
        self.n -= k
        cap = self.src.shape[0]
        if cap > self._min_capacity and 4 * self.n < cap:
            self._resize(max(self._min_capacity, 2 * self.n))

    def view(self, name: str) -> np.ndarray:
        return getattr(self, name)[: self.n]


class _StepRecords:
    """A job's finished training steps: one row of numbers each in a growable array (120
    bytes a step rather than a dict's kilobyte, so a day-long run stays small); reads back
    as the dicts it was given (``len``, indexing, iteration).

    Examples
    --------
    >>> r = _StepRecords("j")
    >>> r.append({"job": "j", "step": 0, "start_s": 0.0, "end_s": 2.5, **{
    ...     k: 1.0 for k in _StepRecords.KEYS[3:]}})
    >>> len(r), r[-1]["job"], r[-1]["step"], r[0]["end_s"]
    (1, 'j', 0, 2.5)
    """

    KEYS = ("step", "start_s", "end_s", "step_time_s", "compute_s", "comm_time_s",
            "exposed_comm_s", "ideal_step_time_s", "slowdown", "bytes_per_rank", "algbw_gbps",
            "busbw_gbps", "compute_rate", "power_delay_s", "ranks")
    _INT = ("step", "ranks")

    def __init__(self, job_name: str):
        self.job = job_name
        self.n = 0
        self._rows = np.zeros((16, len(self.KEYS)))

    def append(self, row: dict) -> None:
        if self.n == self._rows.shape[0]:
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[self.n] = [row[k] for k in self.KEYS]
        self.n += 1

    def _row(self, i: int) -> dict:
        out = {"job": self.job}
        for k, v in zip(self.KEYS, self._rows[i].tolist(), strict=True):
            out[k] = int(v) if k in self._INT else v
        return out

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self._row(i)

    def __iter__(self):
        return (self._row(i) for i in range(self.n))


@dataclass
class _JobState:
    job: object
    index: int
    phases: list
    step: int = 0
    state: int = _COMPUTE_ONLY
    step_start_s: float = 0.0
    comm_start_s: float = 0.0
    compute_end_s: float = 0.0
    comm_end_s: float = np.nan
    phase: int = 0
    pending: int = 0
    phase_latency_s: float = 0.0
    timer_s: float = np.inf
    compute_rate: float = 1.0  # factor the current step computes at
    held_s: float = 0.0  # time the current step waited for a factor above 0
    records: _StepRecords = None  # finished training steps (set in FluidEngine.__init__)
    res: object = None  # meshnet.jobs.Resilience, or None (the job ignores outages)
    next_fault_s: float = np.inf  # next outage start on one of the job's nodes


@dataclass(frozen=True)
class StepRecord:
    """What one emulation step measured, handed to writers."""

    t_ns: int
    dt_s: float
    snapshot: object
    routes: object
    pair_src: np.ndarray
    pair_dst: np.ndarray
    edge_bytes: np.ndarray  # bytes carried per directed edge during the step
    n_events: int


class FluidEngine:
    """Advance training jobs and background flows over a moving mesh.

    Parameters
    ----------
    jobs : sequence
        Job objects (see :mod:`meshnet.traffic.collectives`): ``name``, ``nodes``,
        ``compute_s``, ``overlap``, ``max_steps``, ``plan(delay_s)``, ``step_phases()``.
    policy : object
        A routing policy with ``route(snapshot, src, dst, t_ns=..., edge_utilisation=...,
        future=...)`` returning :class:`meshnet.routing.Routes`.
    allocate : callable
        ``allocate(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges,
        path_fraction, weight, demand_bps) -> (path_rate_bps, flow_rate_bps)``, as
        :func:`meshnet.allocation.allocate_multipath` with a method bound.
    background : tuple, optional
        ``(src, dst, demand_bps)`` arrays of persistent, demand-capped flows.
    background_weight : float
        Weight of the background flows in weighted max-min fairness (jobs carry their own).
    terminal_rate_bps : float
        Rate of one terminal, for the ideal-mesh comparison.
    ideal_comm_time : callable, optional
        ``ideal_comm_time(phases, rate_bps) -> seconds`` on an ideal mesh.
    injection_bps : dict, optional
        ``{node id: rate}``: a cap on the node's total sending rate and, separately, on its
        total receiving rate (a compute node's network interface), enforced in the
        allocation as one extra resource per direction.
    """

    def __init__(self, jobs, policy, allocate, background=None, terminal_rate_bps=100e9,
                 ideal_comm_time=None, injection_bps=None, background_weight=1.0,
                 spare_nodes=()):
        self.policy = policy
        self.allocate = allocate
        self.flows = _Flows()
        self.jobs = [_JobState(job=j, index=i, phases=[], records=_StepRecords(j.name))
                     for i, j in enumerate(jobs)]
        self.terminal_rate_bps = float(terminal_rate_bps)
        self._ideal_comm_time = ideal_comm_time
        self._nic = dict(injection_bps or {})
        self._active = np.zeros(0, dtype=np.int64)
        self._planned = False
        self._prev_utilisation = None
        self._prev_snapshot = None
        self._routes = None
        self._pair_key = np.zeros(0, dtype=np.int64)  # sorted src * n + dst of routed pairs
        self._n_nodes = 1
        self._bg_pairs = np.zeros((0, 2), dtype=np.int64)
        self._pairs_cache = None
        self._prev_primary: dict | None = None
        self._pair_max_delay = None  # per routed pair, cached per step
        self._compute_rate = None  # per-node factor in [0, 1] for this step (None = all 1)
        self._outages = None  # meshnet.jobs.NodeOutages
        self._snapshot = None  # current step's snapshot and look-ahead (for re-routing)
        self._future = None
        self._rerouted = False
        self._init_resilience(list(spare_nodes))
        if background is not None:
            bsrc, bdst, bdemand = (np.asarray(x) for x in background)
            if bsrc.size:
                ids = self.flows.add_many(bsrc, bdst, -1, -1, -1, np.inf, bdemand,
                                          float(background_weight), 0.0)
                self._active = np.concatenate([self._active, ids])
                self._bg_pairs = np.stack([bsrc, bdst], axis=1).astype(np.int64)
        #: Rows of the flows that live for the whole run (background): never released.
        self.n_fixed = self.flows.n
        #: Totals over the flows handed out by :meth:`release_flows` (no longer held).
        self.released = {"flows": 0, "path_changes": 0, "reroutes": 0,
                         "unreachable_s": 0.0, "blackholed_s": 0.0}

    # ------------------------------------------------------------------ set-up
    def _init_resilience(self, free_nodes: list) -> None:
        """Each job's :class:`~meshnet.jobs.Resilience`; spare-policy jobs take their spares
        from ``free_nodes`` (compute nodes no job uses), else hold back their last nodes."""
        from .jobs import Resilience

        for js in self.jobs:
            res = Resilience.for_job(js.job)
            js.res = res
            if res is None or res.recovery != "spare":
                continue
            k = res.n_spares
            take, free_nodes = free_nodes[:k], free_nodes[k:]
            if len(take) < k:
                held = [int(x) for x in np.asarray(js.job.nodes)[-(k - len(take)):]]
                js.job.remove_nodes(held)
                take += held
            res.spares = take
            res.n_full = len(js.job.nodes)

    def set_outages(self, node, start_s, end_s) -> None:
        """Intervals during which network nodes cannot compute (failed satellites,
        accelerator restarts): they interrupt the jobs that have a recovery policy."""
        from .jobs import NodeOutages

        self._outages = NodeOutages(node, start_s, end_s)
        for js in self.jobs:
            self._update_next_fault(js)

    def _all_pairs(self) -> np.ndarray:
        """Every (src, dst) any flow can use: background pairs and all phases' pairs (cached:
        phases are fixed once jobs are planned)."""
        if self._pairs_cache is not None:
            return self._pairs_cache
        parts = [self._bg_pairs]
        for js in self.jobs:
            for ph in js.phases:
                parts.append(np.stack([ph.src, ph.dst], axis=1).astype(np.int64))
            if js.res is not None and js.res.checkpoint_interval_s is not None:
                pairs = (_ring_pairs(js.job) if js.res.checkpoint_to != "ground"
                         else js.res.ground_pairs)
                if pairs is not None:
                    parts.append(np.stack(pairs, axis=1).astype(np.int64))
        pairs = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        key = np.unique(pairs[:, 0] * (1 << 32) + pairs[:, 1])
        self._pairs_cache = np.stack([key >> 32, key & 0xFFFFFFFF], axis=1)
        return self._pairs_cache

    def _plan_jobs(self, snapshot, t_s):
        """Let each job pick its ring order from the current mesh, then fix its phases."""

        # Plan on the paths traffic can really take: the policy's relay rule applies.
        relay = getattr(self.policy, "_relay", None)
        relay_mask = relay(snapshot) if relay is not None else None
        for js in self.jobs:
            self._plan_job(js, snapshot, relay_mask)
            self._start_step(js, max(t_s, float(getattr(js.job, "start_s", 0.0))))
        self._planned = True

    def _plan_job(self, js: _JobState, snapshot, relay_mask=None) -> None:
        from .routing import distance_matrix

        nodes = np.asarray(js.job.nodes, dtype=np.int32)
        # Searches stop once the job's nodes are settled: a block of satellites is a few hops.
        dist = distance_matrix(snapshot, nodes, weight="delay_s", relay_mask=relay_mask)
        js.job.plan(np.ascontiguousarray(dist))
        js.phases = list(js.job.step_phases())

    # ------------------------------------------------------------------ job machine
    def _start_step(self, js: _JobState, t_s: float) -> None:
        job = js.job
        if job.max_steps is not None and js.step >= job.max_steps:
            js.state = _DONE
            js.timer_s = np.inf
            return
        js.step_start_s = t_s
        js.held_s = 0.0
        js.comm_end_s = np.nan
        factor = self._job_rate(js)
        if factor <= 0.0:
            js.state = _HELD
            js.timer_s = np.inf
            return
        self._begin_compute(js, t_s, factor)

    def _job_rate(self, js: _JobState) -> float:
        """The lowest compute-rate factor among the job's nodes (1 without a power model)."""
        if self._compute_rate is None:
            return 1.0
        return float(np.min(self._compute_rate[np.asarray(js.job.nodes)], initial=1.0))

    def _begin_compute(self, js: _JobState, t_s: float, factor: float) -> None:
        job = js.job
        compute_s = job.compute_s / factor
        js.compute_rate = factor
        js.held_s = t_s - js.step_start_s
        js.compute_end_s = t_s + compute_s
        js.comm_start_s = t_s + (1.0 - job.overlap) * compute_s
        js.phase = 0
        js.state = _COMPUTE_ONLY
        js.timer_s = js.comm_start_s

    def _start_phase(self, js: _JobState, t_s: float) -> None:
        ph = js.phases[js.phase]
        js.state = _COMM
        keep = (np.asarray(ph.bytes) > 0) & (np.asarray(ph.src) != np.asarray(ph.dst))
        src = np.asarray(ph.src)[keep]
        dst = np.asarray(ph.dst)[keep]
        ids = self.flows.add_many(src, dst, js.index, js.step, js.phase,
                                  np.asarray(ph.bytes)[keep], np.inf,
                                  float(getattr(js.job, "weight", 1.0)), t_s)
        self._active = np.concatenate([self._active, ids])
        js.pending = int(ids.shape[0])
        js.phase_flow_ids = ids  # for jobs that time their step from the flows (workloads)
        # Each round of the phase pays the longest one-way path delay among its flows.
        js.phase_latency_s = ph.latency_rounds * float(
            np.max(self._pair_delays(src, dst), initial=0.0))
        js.timer_s = np.inf
        if js.pending == 0:
            self._phase_bytes_done(js, t_s)

    def _phase_bytes_done(self, js: _JobState, t_s: float) -> None:
        js.state = _LATENCY
        js.timer_s = t_s + js.phase_latency_s

    def _finish_phase(self, js: _JobState, t_s: float) -> None:
        js.phase += 1
        if js.phase < len(js.phases):
            self._start_phase(js, t_s)
            return
        js.comm_end_s = t_s
        self._workload_step(js)
        if t_s + _EPS_S < js.compute_end_s:
            js.state = _WAIT_COMPUTE
            js.timer_s = js.compute_end_s
        else:
            self._end_step(js, t_s)

    def _workload_step(self, js: _JobState) -> None:
        """A job with ``step_from_flows`` (meshnet.workloads) times its step from what its
        flows measured (its op graph's longest path); the step lasts at least that long."""
        hook = getattr(js.job, "step_from_flows", None)
        if hook is None:
            return
        ids = getattr(js, "phase_flow_ids", np.zeros(0, np.int64))
        fl = self.flows
        src, dst = fl.src[ids], fl.dst[ids]
        step_s = hook(src, dst, fl.bytes_total[ids], fl.start_s[ids], fl.end_s[ids],
                      self._pair_delays(src, dst), js.compute_rate, js.step)
        begin = js.compute_end_s - js.job.compute_s / js.compute_rate
        js.compute_end_s = max(js.compute_end_s, begin + step_s)

    def _end_step(self, js: _JobState, t_s: float) -> None:
        job = js.job
        step_s = t_s - js.step_start_s
        ideal_comm = (self._ideal_comm_time(js.phases, self.terminal_rate_bps)
                      if self._ideal_comm_time is not None else np.nan)
        ideal_step = max(job.compute_s, (1.0 - job.overlap) * job.compute_s + ideal_comm)
        comm_s = js.comm_end_s - js.comm_start_s
        size = float(getattr(job, "size_bytes", np.nan))
        algbw = size * 8.0 / comm_s / 1e9 if comm_s > 0 else np.nan
        js.records.append({
            "job": job.name,
            "step": js.step,
            "start_s": js.step_start_s,
            "end_s": t_s,
            "step_time_s": step_s,
            "compute_s": job.compute_s,
            "comm_time_s": comm_s,
            "exposed_comm_s": max(0.0, step_s - js.held_s - job.compute_s / js.compute_rate),
            "ideal_step_time_s": ideal_step,
            "slowdown": step_s / ideal_step if ideal_step > 0 else np.nan,
            "bytes_per_rank": _bytes_per_rank(js.phases, job.nodes),
            "algbw_gbps": algbw,
            "busbw_gbps": algbw * float(getattr(job, "bus_factor", np.nan)),
            "compute_rate": js.compute_rate,
            "power_delay_s": js.held_s + job.compute_s * (1.0 / js.compute_rate - 1.0),
            "ranks": len(job.nodes),
        })
        js.step += 1
        res = js.res
        if res is not None:
            res.work += len(job.nodes) / res.n_full
            done = job.max_steps is not None and js.step >= job.max_steps
            if res.checkpoint_due(t_s) and not done:
                self._start_checkpoint(js, t_s)
                return
        self._start_step(js, t_s)

    # ------------------------------------------------------------------ resilience
    def _start_checkpoint(self, js: _JobState, t_s: float) -> None:
        """Each rank sends its shard (checkpoint_bytes / n) to the next rank of the ring."""
        res = js.res
        if res.checkpoint_to == "ground":
            src, dst = self._ground_targets(js)
        else:
            src, dst = _ring_pairs(js.job)
        ids = self.flows.add_many(src, dst, js.index, js.step, _CKPT_PHASE,
                                  res.checkpoint_bytes / max(1, src.shape[0]), np.inf,
                                  float(getattr(js.job, "weight", 1.0)), t_s)
        self._active = np.concatenate([self._active, ids])
        js.state = _CKPT
        js.timer_s = np.inf
        js.pending = int(ids.shape[0])
        res.ckpt_start_s = t_s
        if js.pending == 0:
            self._checkpoint_done(js, t_s)

    def _ground_targets(self, js: _JobState):
        """Each rank and its nearest ground station by path delay on the current mesh (a
        station no path reaches is never nearest; with none reachable, the first station:
        the flows wait). New pairs are routed at once."""
        from .routing import shortest_path_lengths

        snap = self._snapshot
        src = np.asarray(js.job.nodes, dtype=np.int32)
        stations = np.flatnonzero(snap.node_kind != 0)
        if stations.size == 0:
            raise ValueError(f"job '{js.job.name}': checkpoint_to = 'ground' but the mesh has "
                             "no ground stations")
        dist = shortest_path_lengths(snap, indices=src, weight="delay_s")[:, stations]
        dst = stations[np.argmin(dist, axis=1)].astype(np.int32)
        old = js.res.ground_pairs
        js.res.ground_pairs = (src, dst)
        if old is None or not (np.array_equal(old[0], src) and np.array_equal(old[1], dst)):
            self._pairs_cache = None
            self._route(snap, self._future)
            self._rerouted = True
        return src, dst

    def _checkpoint_done(self, js: _JobState, t_s: float) -> None:
        res = js.res
        res.committed_step = js.step
        res.committed_work = res.work
        res.last_ckpt_s = res.progress_since_s = t_s
        res.checkpoints.append((res.ckpt_start_s, t_s))
        self._start_step(js, t_s)

    def _update_next_fault(self, js: _JobState) -> None:
        if js.res is None or self._outages is None or js.state == _DONE:
            js.next_fault_s = np.inf
            return
        js.next_fault_s = self._outages.next_start(js.job.nodes, js.res.fault_seen_s)

    def _interrupt(self, js: _JobState, t_s: float) -> None:
        """A node of the job went down at ``t_s``: cancel, roll back, plan the recovery."""
        res = js.res
        res.fault_seen_s = t_s
        if js.state == _DONE:
            js.next_fault_s = np.inf
            return
        nodes = np.asarray(js.job.nodes)
        down = nodes[self._outages.down(nodes, t_s)]
        if down.size == 0:  # the outage ended at once (zero length)
            self._update_next_fault(js)
            return
        fl = self.flows
        mine = fl.job[self._active] == js.index
        self._active = self._active[~mine]
        if js.state == _RECOVER:
            rolled, lost = 0, 0.0  # already rolled back; the recovery starts again
        elif res.recovery == "elastic":
            rolled, lost = 0, max(0.0, t_s - js.step_start_s)
        else:
            rolled = js.step - res.committed_step
            lost = max(0.0, t_s - res.progress_since_s)  # 0 before the job starts
            js.step = res.committed_step
            res.work = res.committed_work
        resume = self._recovery_plan(js, down, t_s)
        rec = {"job": js.job.name, "t_s": t_s, "nodes": [int(x) for x in down],
               "policy": res.recovery, "steps_rolled_back": int(rolled), "lost_s": lost,
               "resume_s": np.inf, "recovery_s": np.inf}
        res.interruptions.append(rec)
        res.open.append(rec)
        res.resume_s = resume
        js.state = _RECOVER
        js.timer_s = resume
        self._update_next_fault(js)

    def _recovery_plan(self, js: _JobState, down, t_s: float) -> float:
        """Resume time after ``down`` nodes failed at ``t_s``; swaps in spares or shrinks
        the job as the policy says (falling back to waiting when it cannot)."""
        res = js.res
        job = js.job
        if res.recovery == "spare":
            up = [s for s in res.spares if not self._outages.down([s], t_s)[0]]
            if len(up) >= down.size:
                for old, new in zip(down.tolist(), up, strict=False):
                    job.replace_node(old, new)
                    res.spares.remove(new)
                    res.spares.append(old)  # back in the pool once it is up again
                res.replan = True
                return t_s + res.restart_s
        elif res.recovery == "elastic" and len(job.nodes) - down.size >= res.min_nodes:
            job.remove_nodes(down)
            res.replan = True
            return t_s + res.restart_s
        return self._outages.ready_s(job.nodes, t_s) + res.restart_s

    def _resume(self, js: _JobState, t_s: float) -> None:
        res = js.res
        if res.replan and self._snapshot is not None:
            relay = getattr(self.policy, "_relay", None)
            self._plan_job(js, self._snapshot,
                           relay(self._snapshot) if relay is not None else None)
            self._pairs_cache = None
            self._route(self._snapshot, self._future)
            res.replan = False
            self._rerouted = True
        for rec in res.open:
            rec["resume_s"] = t_s
            rec["recovery_s"] = t_s - rec["t_s"]
        res.open = []
        res.progress_since_s = res.last_ckpt_s = t_s
        self._start_step(js, t_s)

    def _fire_timer(self, js: _JobState, t_s: float) -> None:
        if js.state == _COMPUTE_ONLY:
            self._start_phase(js, t_s)
        elif js.state == _LATENCY:
            self._finish_phase(js, t_s)
        elif js.state == _WAIT_COMPUTE:
            self._end_step(js, t_s)
        elif js.state == _RECOVER:
            self._resume(js, t_s)

    def _fire_due(self, t_s: float) -> None:
        # A timer may start a phase with no bytes, whose latency timer is then due too.
        for _ in range(100_000):
            due = [js for js in self.jobs
                   if min(js.timer_s, js.next_fault_s) <= t_s + _EPS_S]
            if not due:
                return
            for js in due:
                if js.next_fault_s <= js.timer_s:
                    self._interrupt(js, max(t_s, js.next_fault_s))
                else:
                    self._fire_timer(js, max(t_s, js.timer_s))

    # ------------------------------------------------------------------ routing
    def _pair_index(self, src, dst) -> np.ndarray:
        """Row of each (src, dst) in this step's routes, -1 where it was not routed."""
        key = np.asarray(src, np.int64) * self._n_nodes + np.asarray(dst, np.int64)
        if self._pair_key.size == 0:
            return np.full(key.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._pair_key, key), self._pair_key.size - 1)
        return np.where(self._pair_key[pos] == key, pos, -1)

    def _pair_delays(self, src, dst) -> np.ndarray:
        """Largest one-way delay over each pair's paths (0 where unreachable), vectorised."""
        routes = self._routes
        if routes is None or len(src) == 0:
            return np.zeros(len(src))
        if self._pair_max_delay is None:
            ptr = routes.pair_path_indptr
            counts = np.diff(ptr)
            per_pair = np.zeros(counts.shape[0])
            has = (counts > 0) & np.asarray(routes.pair_reachable, bool)
            if counts.shape[0]:
                # A trailing 0 keeps every start a valid index (delays are >= 0).
                padded = np.append(np.asarray(routes.path_delay_s, np.float64), 0.0)
                per_pair[has] = np.maximum.reduceat(padded, ptr[:-1])[has]
            self._pair_max_delay = per_pair
        p = self._pair_index(src, dst)
        return np.where(p >= 0, self._pair_max_delay[np.maximum(p, 0)], 0.0)

    def _route(self, snapshot, future):
        pairs = self._all_pairs()
        self._n_nodes = snapshot.n_nodes
        src = pairs[:, 0].astype(np.int32)
        dst = pairs[:, 1].astype(np.int32)
        self._pair_key = pairs[:, 0] * self._n_nodes + pairs[:, 1]  # sorted by np.unique
        if pairs.shape[0] == 0:
            self._routes = None
            return src, dst
        util = self._prev_utilisation
        # Carrying utilisation onto the new edges costs a search per edge: only for policies
        # that read it (load_aware); unknown policies get it as before.
        if util is not None and getattr(self.policy, "uses_utilisation", True):
            util = _map_edge_values(self._prev_snapshot, snapshot, util)
        elif util is not None:
            util = None
        self._routes = self.policy.route(snapshot, src, dst, t_ns=snapshot.t_ns,
                                         edge_utilisation=util, future=future)
        self._pair_max_delay = None
        return src, dst

    def _track_paths(self, snapshot, t0_s: float) -> None:
        """Count path changes (primary path differs) and re-routes (old path broke).

        Paths are compared per (src, dst) pair between consecutive steps, by a 64-bit hash of
        the node sequence (vectorised; thousands of pairs per step); a flow is charged when
        its pair's primary path changed while the flow was active across the boundary.
        """
        routes = self._routes
        prev = self._prev_primary
        if routes is None:
            self._prev_primary = None
            return
        cur = _primary_paths(routes, self._pair_key)
        self._prev_primary = cur
        if prev is None:
            return
        pos = np.searchsorted(prev["key"], cur["key"])
        pos = np.minimum(pos, max(0, prev["key"].shape[0] - 1))
        both = prev["key"].shape[0] > 0
        seen = (prev["key"][pos] == cur["key"]) if both else np.zeros(cur["key"].shape, bool)
        old_ok = np.zeros(cur["key"].shape, bool)
        old_ok[seen] = prev["reach"][pos[seen]]
        differs = np.where(cur["reach"] & old_ok, cur["hash"] != prev["hash"][pos],
                           cur["reach"] != old_ok)
        changed = seen & differs
        if not changed.any():
            return
        broken = np.zeros_like(changed)
        idx = np.flatnonzero(changed & old_ok)
        if idx.size:
            broken[idx] = ~_paths_exist(snapshot, prev["nodes"], prev["start"][pos[idx]],
                                        prev["len"][pos[idx]])
        fl = self.flows
        act = self._active[fl.start_s[self._active] < t0_s]
        fkey = fl.src[act].astype(np.int64) * self._n_nodes + fl.dst[act]
        fl.path_changes[act[np.isin(fkey, cur["key"][changed])]] += 1
        if broken.any():
            fl.reroutes[act[np.isin(fkey, cur["key"][broken])]] += 1

    # ------------------------------------------------------------------ allocation
    def _allocate(self, snapshot):
        """Rates of the active flows (bits/s) and the per-edge load of their subflows."""
        routes = self._routes
        fl = self.flows
        act = self._active
        n = act.shape[0]
        empty = (np.zeros(n), np.zeros(n, bool), np.zeros(snapshot.n_edges))
        if n == 0 or routes is None:
            return empty
        pair = self._pair_index(fl.src[act], fl.dst[act])
        ok = pair >= 0
        ok[ok] = routes.pair_reachable[pair[ok]] & ~routes.pair_blackholed[pair[ok]]
        blackholed = np.zeros(n, bool)
        has = pair >= 0
        blackholed[has] = routes.pair_blackholed[pair[has]]
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return np.zeros(n), blackholed, np.zeros(snapshot.n_edges)
        pp = routes.pair_path_indptr
        counts = pp[pair[idx] + 1] - pp[pair[idx]]
        path_ids = _ranges(pp[pair[idx]], counts)
        flow_path_indptr = np.zeros(idx.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=flow_path_indptr[1:])
        ep = routes.path_edge_indptr
        ecounts = ep[path_ids + 1] - ep[path_ids]
        sub_edges = routes.path_edges[_ranges(ep[path_ids], ecounts)].astype(np.int32)
        sub_indptr = np.zeros(path_ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(ecounts, out=sub_indptr[1:])
        capacity = snapshot.capacity_bps
        alloc_indptr, alloc_edges = sub_indptr, sub_edges
        if self._nic:
            capacity, alloc_indptr, alloc_edges = self._with_nic_resources(
                snapshot, np.repeat(act[idx], counts), sub_indptr, sub_edges)
        path_rates, flow_rates = self.allocate(
            capacity, flow_path_indptr, alloc_indptr, alloc_edges,
            routes.path_fraction[path_ids], fl.weight[act[idx]], fl.demand_bps[act[idx]])
        rates = np.zeros(n)
        rates[idx] = flow_rates
        edge_rate = np.bincount(sub_edges, weights=np.repeat(path_rates, ecounts),
                                minlength=snapshot.n_edges)
        return rates, blackholed, edge_rate

    def _with_nic_resources(self, snapshot, path_flow, indptr, edges):
        """Append each path's source-out and destination-in interface as extra resources.

        Resource ``E + 2k`` is node k's sending interface, ``E + 2k + 1`` its receiving one
        (k indexes the capped nodes); uncapped ends add nothing.
        """
        nodes = np.fromiter(self._nic, np.int64, len(self._nic))
        caps = np.fromiter(self._nic.values(), np.float64, len(self._nic))
        slot = np.full(snapshot.n_nodes, -1, np.int64)
        slot[nodes] = np.arange(nodes.shape[0])
        e = snapshot.n_edges
        out_res = slot[self.flows.src[path_flow]]
        in_res = slot[self.flows.dst[path_flow]]
        extra_out = np.where(out_res >= 0, e + 2 * out_res, -1)
        extra_in = np.where(in_res >= 0, e + 2 * in_res + 1, -1)
        n_paths = indptr.shape[0] - 1
        lens = np.diff(indptr) + (extra_out >= 0) + (extra_in >= 0)
        new_indptr = np.zeros(n_paths + 1, np.int64)
        np.cumsum(lens, out=new_indptr[1:])
        new_edges = np.empty(int(new_indptr[-1]), np.int32)
        # Old edges keep their order, shifted by one where an out-interface comes first.
        shift = np.repeat(new_indptr[:-1] - indptr[:-1] + (extra_out >= 0), np.diff(indptr))
        new_edges[np.arange(edges.shape[0]) + shift] = edges
        has_out = extra_out >= 0
        new_edges[new_indptr[:-1][has_out]] = extra_out[has_out]
        has_in = extra_in >= 0
        new_edges[new_indptr[1:][has_in] - 1] = extra_in[has_in]
        capacity = np.concatenate([snapshot.capacity_bps, np.repeat(caps, 2)])
        return capacity, new_indptr, new_edges

    # ------------------------------------------------------------------ the step
    def step(self, snapshot, dt_s: float, future=None, compute_rate=None) -> StepRecord:
        """Advance everything from ``snapshot.t_ns`` for ``dt_s`` seconds on ``snapshot``.

        ``compute_rate``, optional, is a (n_nodes,) factor in [0, 1] per node for this step
        (from :mod:`meshnet.power`); training steps that start during the step compute at the
        lowest factor of their nodes, and held steps (factor 0) resume once it is above 0.
        """
        t0 = snapshot.t_ns / NS_PER_S
        t_end = t0 + dt_s
        self._compute_rate = None if compute_rate is None else np.asarray(compute_rate, float)
        self._snapshot, self._future = snapshot, future
        if not self._planned:
            self._plan_jobs(snapshot, t0)
        for js in self.jobs:
            if js.state == _HELD and (factor := self._job_rate(js)) > 0.0:
                self._begin_compute(js, max(t0, js.step_start_s), factor)
        pair_src, pair_dst = self._route(snapshot, future)
        self._track_paths(snapshot, t0)
        fl = self.flows
        edge_bytes = np.zeros(snapshot.n_edges)
        t = t0
        n_events = 0
        self._fire_due(t)
        dirty = True
        while t < t_end - _EPS_S:
            if dirty:
                rates, blackholed, edge_rate = self._allocate(snapshot)
                dirty = False
            act = self._active
            with np.errstate(divide="ignore", invalid="ignore"):
                finish = np.where(rates > 0, fl.remaining[act] * 8.0 / rates, np.inf)
            t_timer = min((min(js.timer_s, js.next_fault_s) for js in self.jobs),
                          default=np.inf)
            t_next = max(t, min(t_end, t + (finish.min() if finish.size else np.inf), t_timer))
            dt = t_next - t
            # A flow due to end within the clock's resolution ends now (else dt could be 0
            # forever: t + tiny == t in floating point).
            due = finish <= _EPS_S * max(1.0, abs(t))
            if dt > 0 or due.any():
                sent = rates * dt / 8.0
                sent[due] = fl.remaining[act[due]]
                fl.remaining[act] = np.maximum(0.0, fl.remaining[act] - sent)
                fl.bytes_sent[act] += sent
                stalled = rates <= 0
                fl.blackholed_s[act[stalled & blackholed]] += dt
                fl.unreachable_s[act[stalled & ~blackholed]] += dt
                edge_bytes += edge_rate * dt / 8.0
            t = t_next
            n_events += 1
            if n_events > _MAX_EVENTS_PER_STEP:  # pragma: no cover - a bug guard, not a limit
                raise RuntimeError(f"fluid engine made no progress at t = {t} s")
            n_before = (self._active.shape[0], tuple(js.phase for js in self.jobs))
            self._complete_flows(t)
            self._fire_due(t)
            n_after = (self._active.shape[0], tuple(js.phase for js in self.jobs))
            dirty = (n_before != n_after or not np.array_equal(act, self._active)
                     or self._rerouted)
            self._rerouted = False
        with np.errstate(divide="ignore", invalid="ignore"):
            self._prev_utilisation = np.where(
                snapshot.capacity_bps > 0, edge_bytes * 8.0 / (dt_s * snapshot.capacity_bps), 0.0)
        self._prev_snapshot = snapshot
        if self._routes is not None:  # a resume or ground checkpoint may have re-routed
            pair_src = (self._pair_key // self._n_nodes).astype(np.int32)
            pair_dst = (self._pair_key % self._n_nodes).astype(np.int32)
        return StepRecord(t_ns=snapshot.t_ns, dt_s=dt_s, snapshot=snapshot, routes=self._routes,
                          pair_src=pair_src, pair_dst=pair_dst, edge_bytes=edge_bytes,
                          n_events=n_events)

    def _complete_flows(self, t_s: float) -> None:
        fl = self.flows
        act = self._active
        done = fl.remaining[act] <= _EPS_BYTES
        if not done.any():
            return
        fin = act[done]
        fl.end_s[fin] = t_s
        fl.remaining[fin] = 0.0
        self._active = act[~done]
        jobs = fl.job[fin]
        jobs = jobs[jobs >= 0]
        for j, k in zip(*np.unique(jobs, return_counts=True), strict=True):
            js = self.jobs[int(j)]
            js.pending -= int(k)
            if js.pending <= 0 and js.state == _COMM:
                self._phase_bytes_done(js, t_s)
            elif js.pending <= 0 and js.state == _CKPT:
                self._checkpoint_done(js, t_s)

    # ------------------------------------------------------------------ results
    def job_records(self) -> list[dict]:
        """One dict per finished training step of every job."""
        return [r for js in self.jobs for r in js.records]

    def flow_records(self, t_end_s: float) -> dict:
        """Column dict of every flow still held: bytes, times, mean rate, path changes,
        re-routes (every flow of the run unless :meth:`release_flows` handed some out)."""
        return self._records(0, self.flows.n, t_end_s)

    def release_flows(self, t_end_s: float, min_rows: int = 1) -> dict | None:
        """Hand out and drop the flows that are over and precede every flow still in use.

        A flow is released once it is no longer active (finished, or cancelled by a fault)
        and every flow started after the background flows and before it is too, and no job
        still needs it (a workload job reads its last phase's flows after they end). The
        released rows come in flow order, so appending each release to what came before
        gives every flow but the background ones (:attr:`n_fixed` first rows, never
        released) and those still held, in order. What the summary needs of them is kept
        in :attr:`released`. Call it between steps only: flow rows held by callers during
        a step (``_active``, research samplers) move down when rows are dropped.

        Parameters
        ----------
        t_end_s : float
            End of the run (seconds): the duration of a cancelled flow runs to it, as in
            :meth:`flow_records`.
        min_rows : int
            Release nothing unless at least this many flows can go (batches the copy).

        Returns
        -------
        dict or None
            The released flows as :meth:`flow_records` columns, or None.

        Examples
        --------
        >>> eng = FluidEngine([], policy=None, allocate=None)
        >>> _ = eng.flows.add_many([0, 1], [1, 0], -1, -1, -1, 10.0, np.inf, 1.0, 0.0)
        >>> eng.release_flows(1.0)["flow"].tolist(), eng.flows.n
        ([0, 1], 0)
        """
        fl = self.flows
        lo = self.n_fixed
        hi = fl.n
        act = self._active
        if act.size:
            mine = act[act >= lo]
            if mine.size:
                hi = min(hi, int(mine.min()))
        for js in self.jobs:
            ids = getattr(js, "phase_flow_ids", None)
            if ids is not None and ids.size:
                hi = min(hi, int(ids.min()))
        if hi - lo < max(1, int(min_rows)):
            return None
        out = self._records(lo, hi, t_end_s)
        r = self.released
        r["flows"] += hi - lo
        r["path_changes"] += int(np.sum(out["path_changes"], dtype=np.int64))
        r["reroutes"] += int(np.sum(out["reroutes"], dtype=np.int64))
        r["unreachable_s"] += float(np.sum(out["unreachable_s"]))
        r["blackholed_s"] += float(np.sum(out["blackholed_s"]))
        shift = hi - lo
        fl.drop(lo, hi)
        self._active = np.where(act >= hi, act - shift, act)
        for js in self.jobs:
            ids = getattr(js, "phase_flow_ids", None)
            if ids is not None and ids.size:
                js.phase_flow_ids = ids - shift
        return out

    def flow_totals(self, t_end_s: float) -> dict:
        """Run totals over every flow, held or released: count, path changes, re-routes,
        unreachable and black-holed flow-seconds."""
        fl = self.flows
        r = self.released
        return {
            "flows": r["flows"] + fl.n,
            "path_changes": r["path_changes"] + int(np.sum(fl.view("path_changes"),
                                                           dtype=np.int64)),
            "reroutes": r["reroutes"] + int(np.sum(fl.view("reroutes"), dtype=np.int64)),
            "unreachable_s": r["unreachable_s"] + float(np.sum(fl.view("unreachable_s"))),
            "blackholed_s": r["blackholed_s"] + float(np.sum(fl.view("blackholed_s"))),
        }

    def _records(self, lo: int, hi: int, t_end_s: float) -> dict:
        fl = self.flows
        sl = slice(lo, hi)
        end = fl.end_s[sl]
        start = fl.start_s[sl]
        duration = np.where(np.isnan(end), t_end_s, end) - start
        sent = fl.bytes_sent[sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_rate = np.where(duration > 0, sent * 8.0 / duration, np.nan)
        job = fl.job[sl]
        names = np.array(["background"] + [js.job.name for js in self.jobs], dtype=object)
        total = fl.bytes_total[sl]
        return {
            "flow": fl.id[sl].copy(),
            "job": names[job + 1],
            "train_step": fl.step[sl].copy(),
            "phase": fl.phase[sl].copy(),
            "src": fl.src[sl].copy(),
            "dst": fl.dst[sl].copy(),
            "bytes": np.where(np.isfinite(total), total, sent),
            "demand_gbps": fl.demand_bps[sl] / 1e9,
            "start_s": start.copy(),
            "end_s": end.copy(),
            "finished": ~np.isnan(end),
            "mean_rate_gbps": mean_rate / 1e9,
            "path_changes": fl.path_changes[sl].copy(),
            "reroutes": fl.reroutes[sl].copy(),
            "unreachable_s": fl.unreachable_s[sl].copy(),
            "blackholed_s": fl.blackholed_s[sl].copy(),
        }


_HASH_MULT = np.random.default_rng(20261127).integers(
    1, np.iinfo(np.int64).max, size=4096, dtype=np.int64).astype(np.uint64) | np.uint64(1)


def _primary_paths(routes, pair_key) -> dict:
    """Per routed pair: key, reachability, the primary path's nodes and a 64-bit hash of them."""
    n_pairs = pair_key.shape[0]
    reach = np.asarray(routes.pair_reachable, bool).copy()
    first = routes.pair_path_indptr[:-1]
    has_path = reach & (routes.pair_path_indptr[1:] > first)
    start = np.zeros(n_pairs, np.int64)
    length = np.zeros(n_pairs, np.int64)
    start[has_path] = routes.path_node_indptr[first[has_path]]
    length[has_path] = routes.path_node_indptr[first[has_path] + 1] - start[has_path]
    idx = _ranges(start, length)
    offsets = np.cumsum(length) - length
    pos = np.arange(idx.shape[0], dtype=np.int64) - np.repeat(offsets, length)
    nodes = routes.path_nodes[idx].astype(np.uint64) + np.uint64(1)
    # Multiplication and addition wrap modulo 2**64: a polynomial-style hash of the sequence.
    vals = nodes * _HASH_MULT[pos % _HASH_MULT.shape[0]]
    hashes = np.zeros(n_pairs, np.uint64)
    nz = length > 0
    if idx.shape[0]:
        hashes[nz] = np.add.reduceat(vals, offsets[nz])
    hashes ^= length.astype(np.uint64)
    return {"key": pair_key, "reach": has_path, "hash": hashes, "nodes": routes.path_nodes,
            "start": start, "len": length}


def _paths_exist(snapshot, nodes, start, length) -> np.ndarray:
    """Whether every hop of each node path ``nodes[start[i]:start[i] + length[i]]`` is an
    edge of ``snapshot`` (vectorised twin of :func:`_path_exists`)."""
    from .kernels._routing import find_edges

    hops = np.maximum(np.asarray(length, np.int64) - 1, 0)
    first = _ranges(start, hops)
    u = nodes[first].astype(np.int64)
    v = nodes[first + 1].astype(np.int64)
    n = snapshot.n_nodes
    inside = (u < n) & (v < n)
    e = np.full(u.shape[0], -1, np.int64)
    e[inside] = find_edges(snapshot.indptr, snapshot.indices, u[inside], v[inside])
    bad = np.bincount(np.repeat(np.arange(hops.shape[0]), hops), weights=e < 0,
                      minlength=hops.shape[0])
    return bad == 0


def _path_exists(snapshot, nodes) -> bool:
    """Whether every hop of a node path is an edge of ``snapshot``."""
    for u, v in zip(nodes[:-1].tolist(), nodes[1:].tolist(), strict=True):
        if u >= snapshot.n_nodes:
            return False
        nbrs = snapshot.indices[snapshot.indptr[u]:snapshot.indptr[u + 1]]
        k = np.searchsorted(nbrs, v)
        if k >= nbrs.shape[0] or nbrs[k] != v:
            return False
    return True


def _ring_pairs(job) -> tuple[np.ndarray, np.ndarray]:
    """(rank, next rank) over the job's ring order (its node order when it has none)."""
    nodes = np.asarray(job.nodes, dtype=np.int32)
    order = getattr(job, "order", None)
    if order is not None and len(order) == nodes.shape[0]:
        nodes = nodes[np.asarray(order)]
    return nodes, np.roll(nodes, -1)


def _bytes_per_rank(phases, nodes) -> float:
    total = sum(float(np.sum(ph.bytes)) for ph in phases)
    return total / max(1, len(nodes))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for every (s, c), vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(np.asarray(starts, dtype=np.int64), counts) + (
        np.arange(total, dtype=np.int64) - offsets)


def _map_edge_values(old, new, values):
    """Carry per-edge values from one snapshot to the next by node pair (0 for new edges)."""
    out = np.zeros(new.n_edges)
    if old is None:
        return out
    n = max(old.n_nodes, new.n_nodes)
    old_key = old.edge_sources().astype(np.int64) * n + old.indices
    new_key = new.edge_sources().astype(np.int64) * n + new.indices
    pos = np.searchsorted(old_key, new_key)  # CSR edges are sorted by (src, dst)
    pos = np.minimum(pos, max(0, old_key.shape[0] - 1))
    hit = old_key.shape[0] > 0
    if hit:
        match = old_key[pos] == new_key
        out[match] = values[pos[match]]
    return out
