"""The ops of one training step of a model on a layout (1F1B or GPipe micro-batches).

Per pipeline stage ``p`` of replica ``d`` (a tensor-parallel group of ranks), in program order:

- forward of micro-batch ``m``: compute (``1/tp`` of the stage's forward FLOPs of ``b s``
  tokens), then the layer collectives that block it: tensor-parallel ``2`` all-reduces per
  layer (sequence parallel: ``2`` all-gathers + ``2`` reduce-scatters) of ``b s h`` elements,
  expert-parallel ``2`` all-to-alls per MoE layer (dispatch, combine) of each rank's ``b s /
  tp`` tokens x ``top_k x h`` elements; then the activations go to stage ``p + 1``: each TP
  rank sends ``b s h / tp`` elements to the same TP rank of the next stage (Megatron's
  scatter-gather, Narayanan et al. 2021, Sec. 4.1) on the ``pp`` stream;
- backward of micro-batch ``m``: compute (twice the forward; three times with recomputation),
  the same TP and EP collectives, then the activation gradients to stage ``p - 1``;
- 1F1B (PipeDream-Flush, Narayanan et al. 2021, Sec. 2.2): ``min(pp - p - 1, M)`` warm-up
  forwards, then one forward one backward, then the remaining backwards; GPipe: all forwards
  then all backwards;
- gradients: the last micro-batch's backward is cut into as many equal chunks as the stage has
  gradient buckets (``bucket_params`` parameters per rank each, Megatron-LM DDP's default
  40M); bucket ``k`` is all-reduced over the data-parallel group once chunk ``k`` is done, on
  the ``dp`` stream, so the reduce overlaps the rest of the backward pass (Megatron's
  ``overlap_grad_reduce``). Expert parameters reduce over the expert-data-parallel group
  (``dp / ep`` ranks) instead.

The step ends when every op has ended. The optimizer step and the embedding-gradient all-reduce
between the first and last stage are left out (both small next to the rest).
"""

from __future__ import annotations

import math

from .layout import Layout, LayoutSpec
from .model import ModelSpec
from .ops import Op, OpList, coll


def stage_layers(n_layers: int, pp: int) -> list[range]:
    """Layers of each stage: as even as possible, the first stages one more."""
    base, extra = divmod(n_layers, pp)
    out, start = [], 0
    for p in range(pp):
        k = base + (p < extra)
        out.append(range(start, start + k))
        start += k
    return out


def micro_batch_size(model: ModelSpec, spec: LayoutSpec) -> int:
    """Sequences per micro-batch: ``global_batch / (dp x micro_batches)``; ValueError if not
    a whole number."""
    b, rest = divmod(model.global_batch, spec.dp * spec.micro_batches)
    if rest or b < 1:
        raise ValueError(
            f"global_batch = {model.global_batch} is not a multiple of dp x micro_batches = "
            f"{spec.dp} x {spec.micro_batches}")
    return b


def one_f_one_b(p: int, pp: int, m: int, schedule: str = "1f1b") -> list[tuple[str, int]]:
    """Program order of stage ``p``: ``("F", mb)`` and ``("B", mb)`` items.

    >>> one_f_one_b(0, 2, 3)
    [('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)]
    >>> one_f_one_b(1, 2, 3)
    [('F', 0), ('B', 0), ('F', 1), ('B', 1), ('F', 2), ('B', 2)]
    """
    if schedule == "gpipe":
        return [("F", i) for i in range(m)] + [("B", i) for i in range(m)]
    warm = min(pp - p - 1, m)
    out = [("F", i) for i in range(warm)]
    for i in range(m - warm):
        out += [("F", warm + i), ("B", i)]
    return out + [("B", i) for i in range(m - warm, m)]


class StageCosts:
    """FLOPs, parameters and seconds per stage and micro-batch of a model on a layout."""

    def __init__(self, model: ModelSpec, spec: LayoutSpec, accelerator_tflops: float):
        self.model, self.spec = model, spec
        self.b = micro_batch_size(model, spec)
        self.tokens = self.b * model.sequence_length
        self.layers = stage_layers(model.n_layers, spec.pp)
        self.rate = accelerator_tflops * 1e12 * spec.mfu  # FLOP/s per accelerator

    def forward_flops(self, p: int) -> tuple[float, float]:
        """Forward FLOPs of one micro-batch on stage ``p`` (whole TP group): (layers,
        output layer)."""
        m = self.model
        f = sum(m.layer_forward_flops_per_token(m.is_moe_layer(i)) for i in self.layers[p])
        out = m.logits_forward_flops_per_token() if p == self.spec.pp - 1 else 0.0
        return f * self.tokens, out * self.tokens

    def forward_s(self, p: int) -> float:
        return sum(self.forward_flops(p)) / self.spec.tp / self.rate

    def backward_s(self, p: int) -> float:
        """Twice the forward; with recomputation the layers' forward once more."""
        layers, out = self.forward_flops(p)
        return ((self.model.passes - 1.0) * layers + 2.0 * out) / self.spec.tp / self.rate

    def params_per_rank(self, p: int) -> tuple[float, float]:
        """(dense, expert) parameters a rank of stage ``p`` holds (gradients it reduces)."""
        m, s = self.model, self.spec
        dense = expert = 0.0
        for i in self.layers[p]:
            d, e = m.layer_params(m.is_moe_layer(i))
            dense += d
            expert += e / s.ep
        if p == 0:
            dense += m.vocab_size * m.hidden_size
        if p == s.pp - 1:
            dense += m.vocab_size * m.hidden_size
        return dense / s.tp, expert / s.tp


def build_step(model: ModelSpec, spec: LayoutSpec, accelerators_per_node: int,
               accelerator_tflops: float) -> tuple[OpList, Layout, StageCosts]:
    """The ops of one training step (see the module docs)."""
    lay = Layout(spec.tp, spec.pp, spec.dp, spec.ep, accelerators_per_node, spec.order)
    costs = StageCosts(model, spec, accelerator_tflops)
    ops = OpList()
    tp, pp, dp, m_count = spec.tp, spec.pp, spec.dp, spec.micro_batches
    act = model.activation_bytes(costs.b)  # b s h elements
    tp_groups = {}
    for g in lay.groups("tp"):
        r = g[0]
        tp_groups[(int(lay.coord("pp")[r]), int(lay.coord("dp")[r]))] = g
    ep_groups = lay.groups("ep") if spec.ep > 1 else []

    def ep_members(p, d):
        """Replicas of stage p in d's EP group, and its EP communicators (one per TP index)."""
        edp = d // spec.ep
        reps = [edp * spec.ep + e for e in range(spec.ep)]
        comms = [g for g in ep_groups if lay.coord("pp")[g[0]] == p
                 and lay.coord("edp")[g[0]] == edp]
        return reps, comms

    def tp_colls(g):
        if tp < 2:
            return []
        if spec.sequence_parallel:
            return [coll("AllGather", g, act), coll("ReduceScatter", g, act)]
        return [coll("AllReduce", g, act, spec.tp_algorithm)]

    dense_buckets, expert_buckets = {}, {}
    for p in range(pp):
        dense, expert = costs.params_per_rank(p)
        dense_buckets[p] = max(1, math.ceil(dense / spec.bucket_params))
        expert_buckets[p] = (math.ceil(expert / spec.bucket_params)
                             if expert > 0 and lay.edp > 1 else 0)

    programs = {(p, d): one_f_one_b(p, pp, m_count, spec.schedule)
                for p in range(pp) for d in range(dp)}
    # Walk the programs in lock-step rounds so that every op's deps exist when it is added;
    # an item waits until its cross-stage inputs (and EP partners) are there.
    pos = {k: 0 for k in programs}
    remaining = sum(len(v) for v in programs.values())
    while remaining:
        progressed = False
        for (p, d), prog in programs.items():
            while pos[(p, d)] < len(prog):
                kind, mb = prog[pos[(p, d)]]
                if not _ready(ops, kind, p, d, mb, pp, spec, ep_members):
                    break
                _emit(ops, kind, p, d, mb, tp_groups[(p, d)], costs, spec, lay, tp_colls,
                      ep_members, act, dense_buckets[p], expert_buckets[p], model)
                pos[(p, d)] += 1
                remaining -= 1
                progressed = True
        if not progressed:  # pragma: no cover - schedules above never deadlock
            raise RuntimeError("pipeline schedule deadlocked")
    return ops, lay, costs


def _ready(ops, kind, p, d, mb, pp, spec, ep_members) -> bool:
    if kind == "F" and p > 0 and ops.get(("pp", "F", p - 1, d, mb)) is None:
        return False
    if kind == "B" and p < pp - 1 and ops.get(("pp", "B", p + 1, d, mb)) is None:
        return False
    wait = ops.get(("ep_wait", p, d))
    if wait is not None and ops.get(("epdone",) + wait) is None:
        return False  # the cell's last all-to-all waits for a partner: keep program order
    return True


def _emit(ops, kind, p, d, mb, group, costs, spec, lay, tp_colls, ep_members, act,
          n_dense, n_expert, model):
    pp, m_count = spec.pp, spec.micro_batches
    layers = costs.layers[p]
    n_moe = sum(model.is_moe_layer(i) for i in layers)
    deps = []
    if kind == "F" and p > 0:
        deps.append(ops.get(("pp", "F", p - 1, d, mb)))
    if kind == "B" and p < pp - 1:
        deps.append(ops.get(("pp", "B", p + 1, d, mb)))
    dur = costs.forward_s(p) if kind == "F" else costs.backward_s(p)
    last_bwd = kind == "B" and mb == m_count - 1 and spec.dp > 1
    n_chunks = (n_dense + n_expert) if last_bwd else 1
    chunk_ids = []
    for k in range(n_chunks):
        name = f"{'forward' if kind == 'F' else 'backward'} mb{mb}" + (
            f" chunk {k + 1}/{n_chunks}" if n_chunks > 1 else "")
        chunk_ids.append(ops.add(
            Op(name, "compute", group, duration_s=dur / n_chunks,
               args={"stage": p, "replica": d, "micro_batch": mb, "pass": kind}),
            key=("compute", kind, p, d, mb, k), deps=deps if k == 0 else ()))
    last = chunk_ids[-1]
    colls = tp_colls(group)
    if colls:
        last = ops.add(Op(f"TP {'+'.join(c.op for c in colls)} x{2 * len(layers)}", "tp",
                          group, colls=colls, count=2 * len(layers),
                          args={"micro_batch": mb, "pass": kind, "layers": len(layers)}),
                       key=("tp", kind, p, d, mb))
    if n_moe and spec.ep > 1:
        reps, comms = ep_members(p, d)
        ops._key[("epready", kind, p, d, mb)] = last
        if all(ops.get(("epready", kind, p, r, mb)) is not None for r in reps):
            tokens = costs.tokens / spec.tp
            size = tokens * model.top_k * model.hidden_size * model.element_bytes
            ranks = tuple(sorted(r for c in comms for r in c))
            eid = ops.add(Op(f"EP AllToAll x{2 * n_moe}", "ep", ranks,
                             colls=[coll("AllToAll", c, size) for c in comms], count=2 * n_moe,
                             args={"micro_batch": mb, "pass": kind, "moe_layers": n_moe}),
                          key=("ep", kind, p, reps[0] // spec.ep, mb),
                          deps=[ops.get(("epready", kind, p, r, mb)) for r in reps])
            for r in reps:
                ops._key[("epdone", kind, p, r, mb)] = eid
        ops._key[("ep_wait", p, d)] = (kind, p, d, mb)
        # the partners' sends follow the all-to-all; they are added once it exists
    _send(ops, kind, p, d, mb, group, spec, lay, act, last)
    if last_bwd:
        _grad_reduce(ops, p, d, spec, lay, costs, chunk_ids, n_dense, n_expert, model)


def _send(ops, kind, p, d, mb, group, spec, lay, act, last):
    target = p + 1 if kind == "F" else p - 1
    if not 0 <= target < spec.pp:
        return
    if spec.ep > 1 and ops.get(("epready", kind, p, d, mb)) is not None:
        eid = ops.get(("epdone", kind, p, d, mb))
        if eid is None:
            # the EP all-to-all is not there yet (a partner is behind): defer to it
            ops._key.setdefault(("pending_send", kind, p, mb), []).append((d, group))
            return
        for dd, gg in ops._key.pop(("pending_send", kind, p, mb), []):
            _add_send(ops, kind, p, dd, mb, gg, spec, lay, act, eid, target)
        last = eid
    _add_send(ops, kind, p, d, mb, group, spec, lay, act, last, target)


def _add_send(ops, kind, p, d, mb, group, spec, lay, act, last, target):
    peers = [lay.rank_of(int(lay.coord("tp")[r]), d, target) for r in group]
    pairs = [[s, t] for s, t in zip(group, peers, strict=True)]
    size = act / spec.tp
    ops.add(Op(f"PP send {'activations' if kind == 'F' else 'gradients'} mb{mb} "
               f"-> stage {target}", "pp", group, stream="pp",
               colls=[coll("SendRecv", [s, t], size, pairs=[pr]) for s, t, pr in
                      zip(group, peers, pairs, strict=True)],
               args={"micro_batch": mb, "pass": kind, "to_stage": target}),
            key=("pp", kind, p, d, mb), deps=[last])


def _grad_reduce(ops, p, d, spec, lay, costs, chunk_ids, n_dense, n_expert, model):
    """Bucket all-reduces of stage p, added by the last replica to finish its backward."""
    for k in range(len(chunk_ids)):
        ops._key[("chunk", p, d, k)] = chunk_ids[k]
    if any(ops.get(("chunk", p, r, 0)) is None for r in range(spec.dp)):
        return
    dense, expert = costs.params_per_rank(p)
    dp_comms = [g for g in lay.groups("dp") if lay.coord("pp")[g[0]] == p]
    edp_comms = [g for g in lay.groups("edp") if lay.coord("pp")[g[0]] == p]
    gb = model.gradient_bytes
    for k in range(n_dense + n_expert):
        deps = [ops.get(("chunk", p, r, k)) for r in range(spec.dp)]
        if k < n_dense:
            size, comms, dim = dense / n_dense * gb, dp_comms, "dp"
        else:
            size, comms, dim = expert / n_expert * gb, edp_comms, "edp"
        ranks = tuple(sorted(r for c in comms for r in c))
        node = lay.node_of_rank()
        g = int(sum(node[r] == node[comms[0][0]] for r in comms[0]))
        ops.add(Op(f"{dim.upper()} AllReduce bucket {k + 1}", dim, ranks, stream="dp",
                   colls=[coll("AllReduce", c, size, spec.dp_algorithm,
                               group_size=g) for c in comms],
                   args={"stage": p, "bucket": k}),
                key=(dim, p, k), deps=deps)
