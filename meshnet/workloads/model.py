"""Transformer descriptions and their training FLOPs, layer by layer.

A :class:`ModelSpec` is the ``[traffic.jobs.model]`` table: a dense or mixture-of-experts
decoder-only transformer as its config file describes it (layers, hidden size, heads, feed-
forward width, experts) plus the batch it trains on. FLOPs are counted per token from the
matrix multiplications, two FLOPs per multiply-add (Narayanan et al. 2021, "Efficient
Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC21, arXiv
2104.04473, Sec. 5.1 and App. A):

- attention projections ``2 h (h + 2 kv d_head)`` (Q, K, V; grouped-query attention keeps
  ``kv_heads`` key/value heads) and ``2 h^2`` (output);
- attention scores and weighted sum ``4 s h`` (not halved for the causal mask, as Narayanan);
- feed-forward ``2 m h f`` with ``m = 3`` matrices for a gated (SwiGLU) block, 2 otherwise;
  a mixture-of-experts layer runs ``top_k`` experts of width ``expert_ffn`` plus the router
  ``2 h E``;
- the output layer ``2 h V`` once per token (on the last pipeline stage).

A training step is forward + backward = 3 forward passes (4 with activation recomputation,
which re-runs the layers but not the output layer).
For Llama-2-70B shapes this gives 444 GFLOPs per token, within 0.5 % of Narayanan's closed
form ``72 l h^2 (1 + s/6h + V/12lh)`` adapted to grouped-query attention and SwiGLU.

Examples
--------
>>> m = ModelSpec(n_layers=2, hidden_size=8, heads=2, ffn_hidden_size=32, vocab_size=10,
...               sequence_length=4, global_batch=2, gated_mlp=False)
>>> m.layer_forward_flops_per_token(moe=False)   # 2*8*24 + 2*64 + 4*4*8 + 2*2*8*32
1664.0
>>> m.forward_flops_per_token()                  # 2 layers + 2*8*10 logits
3488.0
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ScenarioError

PRECISIONS = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp32": 4.0}


@dataclass(frozen=True)
class ModelSpec:
    """``[traffic.jobs.model]``: a dense or MoE transformer and the batch it trains on."""

    n_layers: int = option(doc="transformer layers")
    hidden_size: int = option(doc="model width h")
    heads: int = option(doc="attention heads")
    kv_heads: int | None = option(None, min=1, doc="key/value heads (grouped-query "
                                  "attention); unset = heads")
    ffn_hidden_size: int | None = option(None, min=1, doc="feed-forward width; unset = 4 h")
    gated_mlp: bool = option(True, doc="SwiGLU feed-forward (3 matrices; false = 2)")
    vocab_size: int = option(32000, min=1, doc="vocabulary (output layer 2 h V FLOPs/token)")
    sequence_length: int = option(4096, min=1, doc="tokens per sequence s")
    global_batch: int = option(1024, min=1, doc="sequences per training step (all replicas)")
    precision: str = option("bf16", choices=tuple(PRECISIONS),
                            doc="activation precision (bytes per element on the wire)")
    gradient_bytes: float = option(2.0, min=0.0, min_inclusive=False,
                                   doc="bytes per gradient element in the data-parallel "
                                       "reduce (bf16: 2; fp32: 4)")
    experts: int = option(0, min=0, doc="experts per MoE layer (0 = dense model)")
    top_k: int = option(2, min=1, doc="experts each token is routed to")
    expert_ffn_hidden_size: int | None = option(
        None, min=1, doc="feed-forward width of one expert; unset = ffn_hidden_size")
    moe_every: int = option(1, min=1, doc="every k-th layer is an MoE layer (1 = all)")
    recompute: bool = option(False, doc="full activation recomputation (4 passes, not 3)")

    def validate(self, name: str, where: str) -> None:
        for key in ("n_layers", "hidden_size", "heads"):
            if getattr(self, key) < 1:
                raise ScenarioError(f"{where}: [{name}].{key} must be >= 1")
        if self.hidden_size % self.heads:
            raise ScenarioError(f"{where}: [{name}].hidden_size = {self.hidden_size} must be a "
                                f"multiple of heads = {self.heads}")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ScenarioError(f"{where}: [{name}].kv_heads = {self.kv_heads} must divide "
                                f"heads = {self.heads}")
        if self.experts and self.top_k > self.experts:
            raise ScenarioError(f"{where}: [{name}].top_k = {self.top_k} exceeds experts = "
                                f"{self.experts}")

    # ------------------------------------------------------------------ shapes
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def element_bytes(self) -> float:
        return PRECISIONS[self.precision]

    @property
    def ffn(self) -> int:
        return self.ffn_hidden_size or 4 * self.hidden_size

    @property
    def expert_ffn(self) -> int:
        return self.expert_ffn_hidden_size or self.ffn

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    def is_moe_layer(self, layer: int) -> bool:
        """Layer ``layer`` (0-based) is an MoE layer: ``(layer + 1) % moe_every == 0``."""
        return self.is_moe and (layer + 1) % self.moe_every == 0

    @property
    def n_moe_layers(self) -> int:
        return sum(self.is_moe_layer(i) for i in range(self.n_layers))

    # ------------------------------------------------------------------ parameters
    def attention_params(self) -> float:
        h = self.hidden_size
        kv = self.kv_heads or self.heads
        d_head = h // self.heads
        return float(h * (h + 2 * kv * d_head) + h * h)

    def expert_params(self) -> float:
        """Parameters of one expert (one feed-forward block of width ``expert_ffn``)."""
        return float(self.mlp_matrices * self.hidden_size * self.expert_ffn)

    def layer_params(self, moe: bool) -> tuple[float, float]:
        """(dense, expert) parameters of one layer; norms and biases are left out."""
        if moe:
            router = self.hidden_size * self.experts
            return self.attention_params() + router, self.experts * self.expert_params()
        return self.attention_params() + self.mlp_matrices * self.hidden_size * self.ffn, 0.0

    def params(self) -> float:
        """All parameters: layers, input embedding and (untied) output layer."""
        total = 2.0 * self.vocab_size * self.hidden_size
        for i in range(self.n_layers):
            dense, expert = self.layer_params(self.is_moe_layer(i))
            total += dense + expert
        return total

    # ------------------------------------------------------------------ FLOPs
    def layer_forward_flops_per_token(self, moe: bool) -> float:
        """Forward FLOPs of one layer for one token (see the module docs)."""
        h, s = self.hidden_size, self.sequence_length
        flops = 2.0 * self.attention_params() + 4.0 * s * h
        if moe:
            flops += self.top_k * 2.0 * self.expert_params() + 2.0 * h * self.experts
        else:
            flops += 2.0 * self.mlp_matrices * h * self.ffn
        return flops

    def logits_forward_flops_per_token(self) -> float:
        return 2.0 * self.hidden_size * self.vocab_size

    def forward_flops_per_token(self) -> float:
        """Forward FLOPs of the whole model for one token."""
        return (sum(self.layer_forward_flops_per_token(self.is_moe_layer(i))
                    for i in range(self.n_layers)) + self.logits_forward_flops_per_token())

    @property
    def passes(self) -> float:
        """Forward-pass equivalents per training step: 3, or 4 with recomputation."""
        return 4.0 if self.recompute else 3.0

    def training_flops_per_step(self) -> float:
        """FLOPs the accelerators execute per step over the whole job.

        Examples
        --------
        >>> m = ModelSpec(n_layers=80, hidden_size=8192, heads=64, kv_heads=8,
        ...               ffn_hidden_size=28672, vocab_size=32000, sequence_length=4096,
        ...               global_batch=1)
        >>> round(m.training_flops_per_step() / 4096 / 1e9, 1)   # GFLOPs per token
        444.5
        """
        tokens = float(self.global_batch) * self.sequence_length
        layers = self.forward_flops_per_token() - self.logits_forward_flops_per_token()
        # recomputation re-runs the layers, not the output layer (Narayanan et al., App. A)
        return (self.passes * layers + 3.0 * self.logits_forward_flops_per_token()) * tokens

    def activation_bytes(self, micro_batch_size: int) -> float:
        """Bytes of one micro-batch's hidden states ``b s h`` (a pipeline boundary, a TP
        all-reduce)."""
        return float(micro_batch_size) * self.sequence_length * self.hidden_size * \
            self.element_bytes
