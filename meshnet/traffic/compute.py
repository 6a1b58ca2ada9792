"""Compute time from the model: training FLOPs per step, and the seconds they take.

A job that does not set ``compute_s`` gets it from its model:

``compute_s = executed FLOPs per step / (n_nodes x accelerators_per_node x accelerator_tflops
x 1e12 x mfu)`` for data-parallel (``allreduce``) and expert-parallel (``moe_alltoall``) jobs,
where every node processes ``1/n`` of the step's tokens; a ``pipeline`` job also pays the
pipeline bubble, ``x (micro_batches + stages - 1) / micro_batches``.

FLOPs models (``N`` parameters, ``T`` tokens per step)
-----------------------------------------------------
``dense``
    ``6 N T``: forward ``2 N T``, backward ``4 N T`` (Kaplan et al. 2020, arXiv 2001.08361;
    Hoffmann et al. 2022, "Chinchilla", arXiv 2203.15556).
``dense_attention``
    ``6 N T + 12 n_layers d_model s T``: adds the attention scores and their weighted sum,
    ``4 s d_model`` per token and layer forward, three times that forward + backward (Narayanan
    et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using
    Megatron-LM", SC21, arXiv 2104.04473, Sec. 5.1), ``s`` the sequence length.
``moe``
    ``6 N_active T`` with ``N_active`` the parameters one token uses: ``active_params``, or the
    job's ``model_params`` less the experts a token skips, ``moe_layers x (E - top_k) x
    expert_params`` (``E`` experts in all); Mixtral 8x7B: 46.7 B total, 12.9 B active (Jiang et
    al. 2024, arXiv 2401.04088).

``recompute = true`` (activation recomputation) runs the forward pass twice: ``8 N T`` instead
of ``6 N T`` and the attention term ``x 4/3`` (Narayanan et al. 2021, Sec. 5.1). MFU as PaLM
defines it (Chowdhery et al. 2022, arXiv 2204.02311, App. B) does not count the recomputed
forward; meshnet applies ``mfu`` to the FLOPs the accelerators execute, so with recomputation
``mfu`` is the hardware FLOPs utilisation.

Examples
--------
>>> flops_per_step(7e9, 4 * 2**20)             # 7B dense, 4M tokens: 6 N T
1.76160768e+17
>>> compute_time_s(1.68e17, 64, 989.0, 0.4)    # 64 H100-class accelerators at 40 % MFU
6.635490394337715
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScenarioError

FLOPS_MODELS = ("dense", "dense_attention", "moe")

#: Model FLOPs utilisation when ``mfu`` is unset: Llama 3 405B trained at 38-43 % BF16 MFU on
#: H100s (Dubey et al. 2024, arXiv 2407.21783, Table 4); PaLM 540B at 46.2 % (Chowdhery et
#: al. 2022, arXiv 2204.02311).
DEFAULT_MFU = 0.4

#: Tokens each node of a ``moe_alltoall`` job routes when neither ``tokens_per_step`` nor
#: ``global_batch`` is set (the all-to-all's size before compute came from the model).
DEFAULT_MOE_TOKENS = 1e6

#: ``compute_s`` of a :class:`~meshnet.traffic.config.JobConfig` built in Python with neither
#: ``compute_s`` nor tokens (the value every job had before compute came from the model);
#: scenario files must give one or the other.
DEFAULT_COMPUTE_S = 2.0

#: Parameters of one expert when ``expert_params`` is unset, in units of ``hidden_size**2``:
#: a two-matrix feed-forward block 4x as wide as the model (Vaswani et al. 2017; the Switch
#: Transformer's experts, Fedus et al. 2022, arXiv 2101.03961).
EXPERT_PARAMS_PER_HIDDEN2 = 8.0


def flops_per_step(params: float, tokens: float, *, model: str = "dense",
                   n_layers: int | None = None, d_model: int | None = None,
                   sequence_length: int | None = None, recompute: bool = False) -> float:
    """Training FLOPs of one step (forward + backward) of a transformer.

    Parameters
    ----------
    params : float
        Parameters ``N`` a token goes through (for ``moe``: the active parameters, see
        :func:`moe_active_params`).
    tokens : float
        Tokens ``T`` in the step, over the whole job (global batch x sequence length).
    model : {"dense", "dense_attention", "moe"}
        ``dense`` and ``moe``: ``6 N T``; ``dense_attention`` adds ``12 n_layers d_model s T``.
    n_layers, d_model, sequence_length : int, optional
        Layers, model width and sequence length ``s``, for ``dense_attention``.
    recompute : bool
        Activation recomputation: one more forward pass, ``x 4/3`` (``8 N T`` for dense).

    Returns
    -------
    float
        FLOPs the accelerators execute for one step.

    Examples
    --------
    >>> flops_per_step(7e9, 4e6)                                      # 6 x 7e9 x 4e6
    1.68e+17
    >>> flops_per_step(7e9, 4e6, recompute=True)                      # 8 x 7e9 x 4e6
    2.24e+17
    >>> flops_per_step(7e9, 4e6, model="dense_attention", n_layers=32, d_model=4096,
    ...                sequence_length=4096)                          # + 12 l d s T
    1.93769803776e+17
    """
    if model not in FLOPS_MODELS:
        raise ValueError(f"model must be one of {FLOPS_MODELS}, found {model!r}")
    if not (params > 0 and tokens > 0):
        raise ValueError(f"params and tokens must be > 0, found {params} and {tokens}")
    passes = 4.0 if recompute else 3.0  # forward = 1 pass, backward = 2, recompute = 1 more
    flops = 2.0 * passes * params * tokens
    if model == "dense_attention":
        if not (n_layers and d_model and sequence_length):
            raise ValueError("dense_attention needs n_layers, d_model and sequence_length")
        flops += 4.0 * passes * n_layers * d_model * sequence_length * tokens
    return float(flops)


def moe_active_params(total_params: float, n_experts: int, top_k: int, moe_layers: int,
                      expert_params: float) -> float:
    """Parameters one token uses in a mixture-of-experts model.

    ``total_params - moe_layers x (n_experts - top_k) x expert_params``: every expert but the
    ``top_k`` a token is routed to is skipped, in each of the ``moe_layers`` MoE layers.

    Examples
    --------
    Mixtral 8x7B (46.7 B parameters, 32 layers of 8 experts, top-2, SwiGLU experts of
    3 x 4096 x 14336 parameters) uses 12.9 B per token (Jiang et al. 2024):

    >>> round(moe_active_params(46.7e9, 8, 2, 32, 3 * 4096 * 14336) / 1e9, 1)
    12.9
    """
    return float(total_params - moe_layers * (n_experts - top_k) * expert_params)


def compute_time_s(flops: float, n_accelerators: float, accelerator_tflops: float,
                   mfu: float) -> float:
    """Seconds ``n_accelerators`` take for ``flops`` at ``mfu`` of their dense peak.

    ``flops / (n_accelerators x accelerator_tflops x 1e12 x mfu)``.

    Examples
    --------
    >>> compute_time_s(1e15, 1, 1000.0, 0.5)
    2.0
    """
    if not (n_accelerators > 0 and accelerator_tflops > 0 and 0 < mfu <= 1):
        raise ValueError("n_accelerators and accelerator_tflops must be > 0 and mfu in (0, 1]")
    return float(flops / (n_accelerators * accelerator_tflops * 1e12 * mfu))


@dataclass(frozen=True)
class ComputeModel:
    """How a job's ``compute_s`` came about.

    Attributes
    ----------
    compute_s : float
        Computation per training step on each node.
    derived : bool
        False when ``compute_s`` was set by hand (the other figures are then None).
    flops_per_step : float or None
        FLOPs the whole job executes per step.
    mfu : float or None
        Utilisation of the dense peak while computing.
    params, tokens_per_step : float or None
        Parameters a token uses and tokens per step over the whole job.
    peak_flops_per_s : float or None
        Dense peak of all the job's accelerators together.
    n_nodes : int or None
        Nodes the work is spread over.
    node_tflops : float or None
        Dense peak of the slowest node (accelerators x TFLOPS), which sets the pace.
    bubble : float
        Pipeline schedule factor ``(micro_batches + stages - 1) / micro_batches`` (1 otherwise).
    flops_model : str or None
    """

    compute_s: float
    derived: bool = False
    flops_per_step: float | None = None
    mfu: float | None = None
    params: float | None = None
    tokens_per_step: float | None = None
    peak_flops_per_s: float | None = None
    n_nodes: int | None = None
    node_tflops: float | None = None
    bubble: float = 1.0
    flops_model: str | None = None

    def describe(self) -> str:
        """One line: the value and where it comes from."""
        if not self.derived:
            return f"compute_s = {self.compute_s:.4g} s (set by hand)"
        text = (f"compute_s = {self.compute_s:.4g} s derived: {self.flops_model} "
                f"{self.flops_per_step:.4g} FLOPs/step ({self.params:.4g} params x "
                f"{self.tokens_per_step:.4g} tokens) / ({self.n_nodes} nodes x "
                f"{self.node_tflops:g} TFLOPS x {self.mfu:g} MFU)")
        if self.bubble != 1.0:
            text += f" x {self.bubble:.4g} pipeline bubble"
        return text


def job_tokens_per_step(cfg, n_nodes: int) -> float | None:
    """Tokens of one step over the whole job (None when the job gives none).

    ``global_batch x sequence_length``, else ``tokens_per_step``; for ``moe_alltoall``
    ``tokens_per_step`` counts the tokens of each node, so the job's are ``n_nodes x`` that.
    """
    if cfg.global_batch is not None:
        return float(cfg.global_batch) * float(cfg.sequence_length)
    if cfg.tokens_per_step is None:
        return None
    if cfg.kind == "moe_alltoall":
        return float(cfg.tokens_per_step) * n_nodes
    return float(cfg.tokens_per_step)


def job_compute(cfg, nodes, *, stages: int | None = None,
                n_experts: int | None = None) -> ComputeModel:
    """The :class:`ComputeModel` of a ``[[traffic.jobs]]`` entry on its compute nodes.

    Parameters
    ----------
    cfg : JobConfig
    nodes : ComputeNodes
        The job's nodes (their ``tflops``: accelerators x dense TFLOPS each).
    stages : int, optional
        Pipeline stages (``pipeline`` jobs: adds the bubble factor).
    n_experts : int, optional
        Experts over the job (``moe`` FLOPs model without ``active_params``).

    Raises
    ------
    ScenarioError
        The active parameters of an MoE model come out <= 0, or ``flops_model = 'moe'`` on a
        job without experts and without ``active_params``.
    """
    where = f"[[traffic.jobs]] '{cfg.name}'"
    if cfg.compute_s is not None:
        return ComputeModel(compute_s=float(cfg.compute_s))
    n = len(nodes)
    tokens = job_tokens_per_step(cfg, n)
    if tokens is None:  # scenario files cannot get here (JobConfig.validate)
        return ComputeModel(compute_s=DEFAULT_COMPUTE_S)
    model = cfg.flops_model or ("moe" if cfg.kind == "moe_alltoall" else "dense")
    params = float(cfg.model_params)
    if model == "moe":
        if cfg.active_params is not None:
            params = float(cfg.active_params)
        else:
            if n_experts is None:
                raise ScenarioError(
                    f"{where}: flops_model = 'moe' needs active_params on a "
                    f"'{cfg.kind}' job (only moe_alltoall jobs know their experts)")
            expert = (cfg.expert_params if cfg.expert_params is not None
                      else EXPERT_PARAMS_PER_HIDDEN2 * float(cfg.hidden_size) ** 2)
            params = moe_active_params(params, n_experts, cfg.top_k, cfg.moe_layers, expert)
            if params <= 0:
                raise ScenarioError(
                    f"{where}: model_params = {cfg.model_params:g} is less than the "
                    f"{cfg.moe_layers} x ({n_experts} - {cfg.top_k}) x {expert:.4g} expert "
                    "parameters a token skips; set active_params, or model_params to the "
                    "total with all experts")
    flops = flops_per_step(params, tokens, model=model, n_layers=cfg.n_layers,
                           d_model=cfg.hidden_size, sequence_length=cfg.sequence_length,
                           recompute=cfg.recompute)
    mfu = DEFAULT_MFU if cfg.mfu is None else float(cfg.mfu)
    # A synchronous step waits for its slowest node: every node does 1/n of the work.
    slowest_tflops = float(nodes.tflops.min())
    bubble = 1.0
    if stages is not None:
        bubble = (cfg.micro_batches + stages - 1) / cfg.micro_batches
    compute_s = compute_time_s(flops / n, 1, slowest_tflops, mfu) * bubble
    return ComputeModel(compute_s=compute_s, derived=True, flops_per_step=flops, mfu=mfu,
                        params=params, tokens_per_step=tokens,
                        peak_flops_per_s=float(nodes.tflops.sum()) * 1e12, n_nodes=n,
                        node_tflops=slowest_tflops, bubble=bubble,
                        flops_model=model + (" +recompute" if cfg.recompute else ""))
