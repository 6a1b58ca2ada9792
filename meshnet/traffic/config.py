"""The ``[traffic]`` scenario tables: compute nodes, training jobs and background traffic.

Examples
--------
>>> from meshnet.config import parse_table
>>> cfg = parse_table(TrafficConfig, {
...     "compute": {"placement": "every_kth", "every_k": 11},
...     "jobs": [{"name": "llm", "kind": "allreduce", "model_params": 7e9, "compute_s": 2.0}],
... }, "traffic", "demo.toml")
>>> cfg.jobs[0].algorithm, cfg.jobs[0].bytes_per_param, cfg.background.enabled
('ring', 2.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ScenarioError
from ..workloads.config import TraceSpec
from ..workloads.layout import LayoutSpec
from ..workloads.model import ModelSpec
from .compute import FLOPS_MODELS

PLACEMENTS = ("names", "every_kth", "shell", "block", "random", "ground")
ALLREDUCE_ALGORITHMS = ("ring", "hierarchical", "halving_doubling")


def _job_kinds():
    from .collectives import JOB_KINDS

    return JOB_KINDS.names()


@dataclass(frozen=True)
class ComputeConfig:
    """``[traffic.compute]``: which nodes carry accelerators.

    Placements
    ----------
    ``names``
        the satellites or ground stations listed in ``names``, in that order;
    ``every_kth``
        every ``every_k``-th satellite of each plane (slots ``offset``, ``offset + k``, ...), in
        every shell or only in ``shell``;
    ``shell``
        every satellite of shell ``shell`` (a whole cluster constellation is one shell);
    ``block``
        ``plane_count`` adjacent planes x ``slot_count`` adjacent slots of shell ``shell``,
        from ``plane_start`` / ``slot_start`` (wrapping around);
    ``random``
        ``count`` satellites drawn with the scenario seed (from ``shell`` only if it is set);
    ``ground``
        the ground stations listed in ``ground_sites`` (terrestrial data centres).
    """

    placement: str = option("every_kth", choices=PLACEMENTS, doc="how compute nodes are chosen")
    names: tuple[str, ...] = option((), doc="node names for placement = 'names'")
    every_k: int = option(22, min=1, doc="every k-th satellite of each plane")
    offset: int = option(0, min=0, doc="first slot for 'every_kth'")
    shell: int = option(-1, min=-1, doc="shell index (0-based); -1 = all shells")
    plane_start: int = option(0, min=0, doc="first plane of a 'block'")
    plane_count: int = option(8, min=1, doc="planes in a 'block'")
    slot_start: int = option(0, min=0, doc="first slot of a 'block'")
    slot_count: int = option(8, min=1, doc="slots per plane in a 'block'")
    count: int = option(64, min=1, doc="satellites drawn for placement = 'random'")
    ground_sites: tuple[str, ...] = option((), doc="ground-station names for 'ground'")
    accelerators_per_node: int = option(1, min=1, doc="accelerators on each compute node")
    accelerator_tflops: float = option(
        989.0, min=0.0, min_inclusive=False,
        doc="dense bf16 TFLOPS per accelerator (H100 SXM: 989); sets compute_s from the model")
    injection_bps: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="cap on a node's total send (and receive) rate; unset = only its links limit it")

    def validate(self, name: str, where: str) -> None:
        if self.placement == "names" and not self.names:
            raise ScenarioError(
                f"{where}: [{name}].names is empty; placement = 'names' needs node names")
        if self.placement == "ground" and not self.ground_sites:
            raise ScenarioError(
                f"{where}: [{name}].ground_sites is empty; placement = 'ground' needs "
                "ground-station names")
        if self.placement in ("shell", "block") and self.shell < 0:
            raise ScenarioError(
                f"{where}: [{name}].shell must be set (0-based shell index) for "
                f"placement = '{self.placement}'")
        if self.placement == "every_kth" and self.offset >= self.every_k:
            raise ScenarioError(
                f"{where}: [{name}].offset = {self.offset} must be < every_k = {self.every_k}")
        for key in ("names", "ground_sites"):
            values = getattr(self, key)
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ScenarioError(f"{where}: [{name}].{key} lists '{dup[0]}' twice")


#: Recovery policies of ``[traffic.jobs.resilience]`` (docs/faults.md, "Training that survives").
RECOVERY_POLICIES = ("none", "restart", "spare", "elastic")
#: Model state per parameter for mixed-precision Adam: 2 bytes bf16 weights + 12 bytes of fp32
#: master weights and two moments (ZeRO, Rajbhandari et al. 2020, section 3.1: 16 bytes with
#: the fp16 gradients, which a checkpoint does not keep).
CHECKPOINT_BYTES_PER_PARAM = 14.0
#: Restart cost of a job after an interruption: reload the checkpoint and re-form the
#: collective (assumed; Llama 3 reports restarts in minutes without a figure).
DEFAULT_JOB_RESTART_S = 300.0


@dataclass(frozen=True)
class ResilienceConfig:
    """``[traffic.jobs.resilience]``: checkpoints and what the job does when a node goes down.

    A job is interrupted when one of its nodes is down: a failed satellite (``[faults]``
    effect ``failed``) or an accelerator restart (``kind = "accelerator"`` events and the
    radiation process). ``recovery = "none"`` (default) keeps the behaviour without this
    table: the job ignores node outages and its flows stall while paths are missing.
    """

    recovery: str = option("none", choices=RECOVERY_POLICIES,
                           doc="none, restart (roll back, wait for the node), spare (a spare "
                               "node takes over, roll back) or elastic (go on with fewer nodes)")
    checkpoint_interval_s: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="time between checkpoints (after the step that ends past it); unset = none")
    checkpoint_bytes: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="bytes of one checkpoint over the whole job; unset = 14 x model_params (bf16 "
            "weights + fp32 Adam state)")
    checkpoint_to: str = option("neighbour", choices=("neighbour", "ground"),
                                doc="neighbour: each rank sends its shard to the next rank "
                                    "of the ring over the ISLs; ground: to its nearest "
                                    "ground station (path delay) over the GSLs")
    restart_s: float = option(DEFAULT_JOB_RESTART_S, min=0.0,
                              doc="restart cost after an interruption: reload the checkpoint "
                                  "and re-form the collective (assumed)")
    spares: int = option(0, min=0, doc="spare policy: hot spares taken from the compute nodes "
                         "no job uses")
    min_nodes: int = option(2, min=2, doc="elastic: fewest nodes the job goes on with")

    def validate(self, name: str, where: str) -> None:
        if self.recovery == "spare" and self.spares < 1:
            raise ScenarioError(f"{where}: [{name}].recovery = 'spare' needs spares >= 1 "
                                "(e.g. spares = 2)")
        if self.spares and self.recovery != "spare":
            raise ScenarioError(f"{where}: [{name}].spares only applies to recovery = "
                                "'spare'")


@dataclass(frozen=True)
class JobConfig:
    """``[[traffic.jobs]]``: one training job.

    ``allreduce``
        data-parallel gradient all-reduce of ``model_params x bytes_per_param`` bytes per step
        with ``algorithm`` ``ring``, ``hierarchical`` (rings inside planes, then across) or
        ``halving_doubling`` (Rabenseifner).
    ``pipeline``
        ``stages`` pipeline stages on the job's nodes in order; ``activation_bytes`` cross each
        stage boundary per micro-batch forward (and as gradients backward).
    ``moe_alltoall``
        expert-parallel all-to-all: each node routes ``tokens_per_step`` tokens to ``top_k``
        experts spread over all nodes (``experts_per_node`` each), ``hidden_size`` x
        ``bytes_per_element`` bytes per token, dispatch then combine, for ``moe_layers`` layers.

    A training step is ``compute_s`` of computation and the step's communication, which starts
    once ``(1 - overlap) x compute_s`` of the computation is done (gradients of the last layers
    are ready early): the step lasts ``max(compute_s, (1 - overlap) x compute_s + comm_s)``.

    ``compute_s`` is set by hand, or (left unset) derived from the model: ``tokens_per_step``
    (or ``global_batch`` x ``sequence_length``), ``flops_model``, ``mfu`` and
    ``[traffic.compute].accelerator_tflops`` (see :mod:`meshnet.traffic.compute`); not both.
    """

    name: str = option(doc="job name, used in outputs")
    kind: str = option("allreduce", choices=_job_kinds,
                       doc="allreduce, pipeline, moe_alltoall, model (a transformer on a "
                           "parallel layout) or trace (AICB / Chakra)")
    nodes: tuple[str, ...] = option((), doc="compute-node names of this job; empty = all")
    compute_s: float | None = option(
        None, min=0.0,
        doc="computation time per training step; unset = derived from the model "
            "(tokens_per_step, flops_model, mfu)")
    overlap: float = option(
        0.0, min=0.0, max=1.0,
        doc="share of compute_s that communication can overlap (it starts after "
            "(1 - overlap) x compute_s)")
    steps: int | None = option(None, min=1, doc="training steps; unset = until the run ends")
    start_s: float = option(0.0, min=0.0, doc="time the job starts")
    weight: float = option(1.0, min=0.0, min_inclusive=False,
                           doc="weight of the job's flows in weighted max-min fairness")
    resilience: ResilienceConfig = option(
        default_factory=ResilienceConfig,
        doc="checkpoints and recovery ([traffic.jobs.resilience]; docs/faults.md)")
    # allreduce
    algorithm: str = option("ring", choices=ALLREDUCE_ALGORITHMS, doc="all-reduce algorithm")
    model_params: float = option(7e9, min=0.0, min_inclusive=False,
                                 doc="parameters whose gradients are all-reduced")
    bytes_per_param: float = option(2.0, min=0.0, min_inclusive=False,
                                    doc="gradient bytes per parameter (bf16: 2)")
    group_size: int | None = option(
        None, min=1, doc="hierarchical: ranks per group; unset = one group per orbital plane")
    # pipeline
    stages: int | None = option(None, min=2, doc="pipeline stages; unset = one per node")
    activation_bytes: float = option(
        1e9, min=0.0, doc="bytes crossing one stage boundary per micro-batch")
    micro_batches: int = option(8, min=1, doc="micro-batches per training step")
    # moe_alltoall
    tokens_per_step: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="tokens per training step over the whole job (global batch x sequence length); "
            "moe_alltoall: tokens EACH node routes per step and MoE layer (unset = 1e6)")
    hidden_size: int = option(4096, min=1, doc="model width (elements per token)")
    bytes_per_element: float = option(2.0, min=0.0, min_inclusive=False,
                                      doc="bytes per activation element (bf16: 2)")
    experts_per_node: int = option(1, min=1, doc="experts hosted on each node")
    top_k: int = option(2, min=1, doc="experts each token is sent to")
    moe_layers: int = option(1, min=1, doc="MoE layers per step (one all-to-all pair each)")
    backward: bool = option(True, doc="moe: also the backward all-to-alls (4 per layer, not 2)")
    # compute from the model (when compute_s is unset)
    global_batch: int | None = option(
        None, min=1, doc="sequences per step over the whole job (with sequence_length, "
                         "instead of tokens_per_step)")
    sequence_length: int | None = option(None, min=1, doc="tokens per sequence")
    flops_model: str | None = option(
        None, choices=FLOPS_MODELS,
        doc="dense (6 N T), dense_attention (+ 12 n_layers hidden_size s T) or moe "
            "(6 N_active T); unset = moe for moe_alltoall jobs, dense otherwise")
    recompute: bool = option(
        False, doc="activation recomputation: one more forward pass (8 N T, not 6 N T)")
    mfu: float | None = option(
        None, min=0.0, min_inclusive=False, max=1.0,
        doc="share of the accelerators' dense peak reached while computing; unset = 0.4 "
            "(Llama 3 405B: 38-43 %, arXiv 2407.21783)")
    n_layers: int | None = option(None, min=1, doc="dense_attention: transformer layers")
    active_params: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="moe: parameters one token uses; unset = model_params less the skipped experts")
    expert_params: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="moe: parameters of one expert in one layer; unset = 8 x hidden_size^2")

    # model / trace (meshnet.workloads, docs/workloads.md)
    model: ModelSpec | None = option(
        None, doc="kind = 'model': the transformer ([traffic.jobs.model])")
    layout: LayoutSpec | None = option(
        None, doc="kind = 'model' or 'trace': parallel layout ([traffic.jobs.layout])")
    trace: TraceSpec | None = option(
        None, doc="kind = 'trace': the AICB or Chakra trace ([traffic.jobs.trace])")

    def validate(self, name: str, where: str) -> None:
        if not self.name.strip():
            raise ScenarioError(f"{where}: [{name}].name is empty; give the job a name")
        if self._validate_workload(name, where):
            return
        dup = sorted({v for v in self.nodes if self.nodes.count(v) > 1})
        if dup:
            raise ScenarioError(f"{where}: [{name}].nodes lists '{dup[0]}' twice")
        if self.nodes and len(self.nodes) < 2:
            raise ScenarioError(
                f"{where}: [{name}].nodes has one node; a job needs at least 2 to communicate")
        if self.group_size is not None and self.algorithm != "hierarchical":
            raise ScenarioError(
                f"{where}: [{name}].group_size only applies to algorithm = 'hierarchical'")
        if self.kind == "pipeline":
            if self.nodes and self.stages is not None and len(self.nodes) % self.stages:
                raise ScenarioError(
                    f"{where}: [{name}].stages = {self.stages} must divide the number of "
                    f"nodes ({len(self.nodes)}); each replica of the pipeline gets "
                    "'stages' nodes")
        if self.kind == "moe_alltoall" and self.nodes:
            n_experts = len(self.nodes) * self.experts_per_node
            if self.top_k > n_experts:
                raise ScenarioError(
                    f"{where}: [{name}].top_k = {self.top_k} exceeds the {n_experts} experts "
                    "(nodes x experts_per_node)")
        if self.resilience.recovery == "elastic" and self.kind != "allreduce":
            raise ScenarioError(
                f"{where}: [{name}.resilience].recovery = 'elastic' re-forms a data-parallel "
                f"ring; a {self.kind} job cannot shrink (use 'restart' or 'spare')")
        self._validate_compute(name, where)

    def _validate_workload(self, name: str, where: str) -> bool:
        """Model and trace jobs: their tables present, the other job keys left alone."""
        need = {"model": ("model", "layout"), "trace": ("trace",)}.get(self.kind)
        if need is None:
            for key in ("model", "layout", "trace"):
                if getattr(self, key) is not None:
                    raise ScenarioError(f"{where}: [{name}.{key}] only applies to kind = "
                                        f"'{'trace' if key == 'trace' else 'model'}'")
            return False
        for key in need:
            if getattr(self, key) is None:
                raise ScenarioError(f"{where}: kind = '{self.kind}' needs a [{name}.{key}] "
                                    "table (docs/workloads.md)")
        other = "trace" if self.kind == "model" else "model"
        if getattr(self, other) is not None:
            raise ScenarioError(f"{where}: [{name}.{other}] does not apply to kind = "
                                f"'{self.kind}'")
        set_keys = [k for k in ("compute_s", "tokens_per_step", "global_batch",
                                "sequence_length", "mfu", "flops_model", "n_layers")
                    if getattr(self, k) is not None]
        if set_keys:
            raise ScenarioError(
                f"{where}: [{name}].{set_keys[0]} does not apply to kind = '{self.kind}'; "
                "the step comes from the [model] and [layout] tables (or the trace)")
        if self.resilience.recovery == "elastic":
            raise ScenarioError(f"{where}: [{name}.resilience].recovery = 'elastic' cannot "
                                f"shrink a {self.kind} job's layout (use 'restart' or 'spare')")
        if self.kind == "model" and self.model.is_moe and self.layout.ep > 1 \
                and self.model.experts % self.layout.ep:
            raise ScenarioError(f"{where}: [{name}.layout].ep = {self.layout.ep} must divide "
                                f"[{name}.model].experts = {self.model.experts}")
        if self.kind == "model":
            b, rest = divmod(self.model.global_batch,
                             self.layout.dp * self.layout.micro_batches)
            if rest or b < 1:
                raise ScenarioError(
                    f"{where}: [{name}.model].global_batch = {self.model.global_batch} must be "
                    f"a multiple of dp x micro_batches = {self.layout.dp} x "
                    f"{self.layout.micro_batches} ([{name}.layout])")
        return True

    def _model_keys(self) -> list[str]:
        """The compute-model keys this job sets (moe's token keys also size its traffic)."""
        keys = ["flops_model", "mfu", "n_layers", "active_params", "expert_params"]
        if self.kind != "moe_alltoall":
            keys += ["tokens_per_step", "global_batch", "sequence_length"]
        out = [k for k in keys if getattr(self, k) is not None]
        return out + (["recompute"] if self.recompute else [])

    def _validate_compute(self, name: str, where: str) -> None:
        """Exactly one of compute_s or the model; the model's keys complete and consistent."""
        key = f"{where}: [{name}]"
        if self.global_batch is not None and self.tokens_per_step is not None:
            raise ScenarioError(
                f"{key}.global_batch and tokens_per_step are both set; give one (tokens_per_step"
                " = global_batch x sequence_length)")
        if self.global_batch is not None and self.sequence_length is None:
            raise ScenarioError(
                f"{key}.global_batch needs sequence_length (tokens per step = global_batch x "
                "sequence_length)")
        model_keys = self._model_keys()
        if self.compute_s is not None:
            if model_keys:
                raise ScenarioError(
                    f"{key}.compute_s is set and so is {', '.join(model_keys)}; remove "
                    "compute_s to derive it from the model, or the model keys to set it by hand")
            return
        if self.tokens_per_step is None and self.global_batch is None:
            raise ScenarioError(
                f"{key} sets neither compute_s nor tokens_per_step; set compute_s (seconds per "
                "step) or tokens_per_step (or global_batch and sequence_length) to derive it")
        model = self.flops_model or ("moe" if self.kind == "moe_alltoall" else "dense")
        if model == "dense_attention" and (self.n_layers is None
                                           or self.sequence_length is None):
            raise ScenarioError(
                f"{key}.flops_model = 'dense_attention' needs n_layers and sequence_length "
                "(and hidden_size)")
        if model != "dense_attention" and self.n_layers is not None:
            raise ScenarioError(
                f"{key}.n_layers only applies to flops_model = 'dense_attention'")
        if model != "moe":
            for k in ("active_params", "expert_params"):
                if getattr(self, k) is not None:
                    raise ScenarioError(f"{key}.{k} only applies to flops_model = 'moe'")
        elif self.kind != "moe_alltoall" and self.active_params is None:
            raise ScenarioError(
                f"{key}.flops_model = 'moe' on a '{self.kind}' job needs active_params "
                "(parameters one token uses)")


@dataclass(frozen=True)
class BackgroundConfig:
    """``[traffic.background]``: steady traffic between ground stations.

    Gravity model: the demand from station ``i`` to ``j`` is proportional to
    ``population_i * population_j / distance_ij ** distance_exponent`` (``distance_exponent =
    0``, the default, is the plain product of populations), over ordered pairs at least
    ``min_distance_km`` apart (great-circle), scaled so that all demands add up to
    ``total_offered_bps``. With ``pairs`` set, only the heaviest pairs are kept (and rescaled).
    ``noise_sigma > 0`` multiplies each pair by a log-normal factor drawn with the scenario seed.
    """

    enabled: bool = option(True, doc="whether background traffic runs")
    total_offered_bps: float = option(100e9, min=0.0, doc="sum of all pair demands")
    top_n: int | None = option(100, min=2, doc="only the top_n most populous stations")
    stations: tuple[str, ...] = option((), doc="only these stations (names); empty = all")
    pairs: int | None = option(None, min=1, doc="keep only the heaviest pairs (ordered)")
    distance_exponent: float = option(0.0, min=0.0, doc="gravity-model distance exponent")
    min_distance_km: float = option(500.0, min=0.0, doc="pairs closer than this carry none")
    noise_sigma: float = option(0.0, min=0.0, doc="log-normal spread of pair demands")
    weight: float = option(1.0, min=0.0, min_inclusive=False,
                           doc="weight of background flows in weighted max-min fairness")

    def validate(self, name: str, where: str) -> None:
        dup = sorted({v for v in self.stations if self.stations.count(v) > 1})
        if dup:
            raise ScenarioError(f"{where}: [{name}].stations lists '{dup[0]}' twice")
        if self.stations and len(self.stations) < 2:
            raise ScenarioError(f"{where}: [{name}].stations needs at least 2 stations")


@dataclass(frozen=True)
class TrafficConfig:
    """``[traffic]``: compute placement, training jobs and background traffic."""

    compute: ComputeConfig = option(default_factory=ComputeConfig, doc="compute nodes")
    jobs: tuple[JobConfig, ...] = option((), doc="training jobs ([[traffic.jobs]])")
    background: BackgroundConfig = option(default_factory=BackgroundConfig,
                                          doc="background traffic between ground stations")

    def validate(self, name: str, where: str) -> None:
        seen = set()
        for i, job in enumerate(self.jobs):
            if job.name in seen:
                raise ScenarioError(
                    f"{where}: [{name}].jobs[{i}].name = '{job.name}' is used by another job; "
                    "job names must be unique")
            seen.add(job.name)
