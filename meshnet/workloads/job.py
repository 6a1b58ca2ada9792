"""Workload jobs for the fluid engine: ``kind = "model"`` and ``kind = "trace"``.

Both turn a step's op graph (:mod:`.schedule` from a model and a layout, or :mod:`.aicb` /
:mod:`.chakra` from a trace) into what :class:`meshnet.engine.FluidEngine` moves: ONE phase
per training step holding the step's traffic between nodes, summed per ordered node pair, that
starts with the step (``overlap = 1``). When its flows are done the engine calls
:meth:`WorkloadJob.step_from_flows`: every pair's measured rate and path delay time the ops
(:mod:`.simulate`), the longest path through the op graph is the step time, and the engine
keeps the step running until then. ``compute_s`` is the compute of the busiest rank group.
"""

from __future__ import annotations

import numpy as np

from ..errors import ScenarioError
from ..traffic.collectives import JOB_KINDS, Job, Phase
from ..traffic.compute import ComputeModel
from ..traffic.placement import ComputeNodes
from .layout import LayoutSpec, orbital_order
from .simulate import BREAKDOWN_KEYS, StepModel


class WorkloadJob(Job):
    """A job whose step is an op graph on ranks (see the module docs)."""

    kind = ""

    def __init__(self, cfg, nodes: ComputeNodes):
        self.cfg = cfg
        self.layout_spec = cfg.layout or LayoutSpec()
        acc = int(nodes.accelerators.min())
        ops, world, tflops, self.flops, self.describe_shape = self._build_ops(cfg, acc, nodes)
        n_nodes = -(-world // acc)
        where = f"[[traffic.jobs]] '{cfg.name}'"
        if n_nodes > len(nodes):
            raise ScenarioError(
                f"{where}: the layout needs {world} accelerators = {n_nodes} nodes of {acc}, "
                f"but the job has {len(nodes)} compute nodes; add nodes or shrink the layout")
        order = np.arange(len(nodes))
        if self.layout_spec.placement == "orbital":
            order = orbital_order(nodes.plane, nodes.slot, nodes.shell)
        chosen = nodes.subset(order[:n_nodes])
        self.rank_node = np.repeat(chosen.node_ids.astype(np.int64), acc)[:world]
        self.world = world
        self.op_list = ops
        self.model = StepModel(ops.ops, self.rank_node, self.layout_spec.scale_up_bps,
                               self.layout_spec.scale_up_latency_s)
        self._tflops = tflops
        super().__init__(cfg, chosen)
        self.overlap = 1.0
        self.breakdowns: list[dict] = []
        self.timings: list = []  # (step index, StepTiming) of the traced steps
        self.pair_stats: list[dict] = []  # per step: measured rate and delay per dimension

    # ------------------------------------------------------------------ subclass hooks
    def _build_ops(self, cfg, acc, nodes):  # pragma: no cover - abstract
        raise NotImplementedError

    def _compute_model(self) -> ComputeModel:
        busiest = 0.0
        per_group: dict = {}
        for o in self.op_list.ops:
            if o.is_compute:
                per_group[o.ranks] = per_group.get(o.ranks, 0.0) + o.duration_s
        busiest = max(per_group.values(), default=0.0)
        n_acc = self.world
        derived = self.flops is not None
        return ComputeModel(
            compute_s=busiest, derived=derived, flops_per_step=self.flops,
            mfu=self.layout_spec.mfu if derived else None,
            tokens_per_step=None, params=None,
            peak_flops_per_s=n_acc * self._tflops * 1e12 if derived else None,
            n_nodes=len(self.compute_nodes), node_tflops=None,
            flops_model="transformer (per layer)" if derived else None)

    # ------------------------------------------------------------------ engine protocol
    def _build(self):
        m = self.model
        return [Phase(m.pair_src, m.pair_dst, m.pair_bytes, "step", 0)]

    def step_phases(self):
        return self._build()

    @property
    def size_bytes(self) -> float:
        return float(self.model.pair_bytes.sum())

    @property
    def bus_factor(self) -> float:
        return 1.0

    def replace_node(self, old: int, new: int) -> None:
        super().replace_node(old, new)
        self.rank_node = np.where(self.rank_node == old, new, self.rank_node)
        self.model = StepModel(self.op_list.ops, self.rank_node,
                               self.layout_spec.scale_up_bps,
                               self.layout_spec.scale_up_latency_s)

    def step_from_flows(self, src, dst, nbytes, start_s, end_s, delay_s, compute_rate=1.0,
                        step=0) -> float:
        """Step time from the measured pairs (the engine's hook); keeps the breakdown."""
        m = self.model
        rate = np.full(m.pair_key.shape[0], np.inf)
        delay = np.zeros(m.pair_key.shape[0])
        idx = m.pair_index(src, dst)
        ok = idx >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(end_s > start_s, nbytes / (end_s - start_s), np.inf)
        rate[idx[ok]] = r[ok]
        delay[idx[ok]] = np.asarray(delay_s)[ok]
        timing = self.time_step(rate, delay, 1.0 / max(compute_rate, 1e-12))
        self.breakdowns.append({"step": int(step), "step_s": timing.step_s,
                                **timing.breakdown})
        if len(self.timings) < self.layout_spec.trace_steps:
            self.timings.append((int(step), timing))
        self.pair_stats.append(self._pair_stats(rate, delay))
        return timing.step_s

    def time_step(self, pair_rate_Bps, pair_delay_s, compute_scale=1.0):
        return self.model.replay(self.model.durations(pair_rate_Bps, pair_delay_s,
                                                      compute_scale))

    def _pair_stats(self, rate, delay) -> dict:
        """Per parallel dimension: bytes-weighted harmonic mean rate and mean delay of its
        node pairs (the ASTRA-sim network description's bandwidth and latency)."""
        m = self.model
        out = {}
        dims = np.array([m.ops[i].dim for i in m.op_pair_op], dtype=object)
        for d in sorted(set(dims.tolist())):
            sel = dims == d
            b = m.op_pair_bytes[sel]
            r = rate[m.op_pair_idx[sel]]
            fin = np.isfinite(r) & (r > 0)
            t = float(np.sum(b[fin] / r[fin]))
            out[d] = {"bytes": float(b.sum()),
                      "rate_Bps": float(b[fin].sum() / t) if t > 0 else None,
                      "delay_s": float(np.mean(delay[m.op_pair_idx[sel]]))}
        return out

    def summary(self) -> dict:
        """Layout, traffic per dimension and the mean step-time breakdown."""
        bd = self.breakdowns
        mean = {k: float(np.mean([b[k] for b in bd])) if bd else None for k in BREAKDOWN_KEYS}
        return {
            "shape": self.describe_shape,
            "ranks": self.world,
            "nodes_used": int(len(self.nodes)),
            "ops_per_step": len(self.op_list),
            "mesh_bytes_per_step": {k: v for k, v in sorted(self.model.dim_bytes().items())},
            "compute_s_per_step": float(self.compute_s),
            "mean_step_s": float(np.mean([b["step_s"] for b in bd])) if bd else None,
            "breakdown_s": mean,
        }


@JOB_KINDS.register("model")
class ModelJob(WorkloadJob):
    """A transformer ([traffic.jobs.model]) on a parallel layout ([traffic.jobs.layout])."""

    kind = "model"

    def _build_ops(self, cfg, acc, nodes):
        from .schedule import build_step

        model, spec = cfg.model, cfg.layout
        tflops = float(nodes.tflops.min()) / acc
        try:
            ops, lay, _ = build_step(model, spec, acc, tflops)
        except ValueError as exc:
            raise ScenarioError(f"[[traffic.jobs]] '{cfg.name}': {exc}") from None
        shape = (f"{'MoE' if model.is_moe else 'dense'} {model.params() / 1e9:.1f}B params, "
                 f"TP{spec.tp} x PP{spec.pp} x DP{spec.dp}"
                 + (f" (EP{spec.ep})" if spec.ep > 1 else "")
                 + f", {spec.micro_batches} micro-batches {spec.schedule}, {acc} per node")
        return ops, lay.world_size, tflops, model.training_flops_per_step(), shape


@JOB_KINDS.register("trace")
class TraceJob(WorkloadJob):
    """A step read from an AICB workload file or Chakra execution traces ([..trace])."""

    kind = "trace"

    def _build_ops(self, cfg, acc, nodes):
        from . import aicb, chakra

        tr = cfg.trace
        tflops = float(nodes.tflops.min()) / acc
        if tr.format == "aicb":
            ops, world, shape = aicb.read_ops(tr.path, time_unit_s=tr.time_unit_s,
                                              dp_algorithm=self.layout_spec.dp_algorithm)
        else:
            ops, world, shape = chakra.read_ops(tr.path, time_unit_s=tr.time_unit_s)
        return ops, world, tflops, None, f"{tr.format} trace {tr.path}: {shape}"
