"""Compute time from the model: FLOPs formulas and compute_s against hand calculations,
the engine's step time of a derived job against the same job set by hand, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from meshnet.cli import main
from meshnet.config import parse_table
from meshnet.errors import ScenarioError
from meshnet.traffic import (
    JobConfig,
    compute_time_s,
    flops_per_step,
    make_job,
    moe_active_params,
)
from meshnet.traffic.placement import ComputeNodes

H100_TFLOPS = 989.0  # dense bf16 per H100 SXM (NVIDIA datasheet: 1,979 with sparsity)


def nodes(n, tflops=H100_TFLOPS):
    """``n`` compute nodes without orbital labels, ``tflops`` each."""
    return ComputeNodes(
        node_ids=np.arange(n, dtype=np.int32),
        names=np.array([f"n{i}" for i in range(n)], dtype=object),
        accelerators=np.ones(n, np.int32), tflops=np.full(n, float(tflops)),
        shell=np.full(n, -1, np.int32), plane=np.full(n, -1, np.int32),
        slot=np.full(n, -1, np.int32), n_satellites=n)


def job_cfg(**kw):
    """A ``[[traffic.jobs]]`` entry through the scenario parser (so validate() runs)."""
    return parse_table(JobConfig, {"name": "j", **kw}, "traffic.jobs[0]", "s.toml")


def build(n=64, tflops=H100_TFLOPS, **kw):
    return make_job(job_cfg(**kw), nodes(n, tflops), n_nodes=n)


# --------------------------------------------------------------------------- FLOPs formulas


def test_dense_is_six_n_t():
    # 7B parameters x 4M tokens x 6 (2 forward + 4 backward) = 1.68e17 FLOPs.
    assert flops_per_step(7e9, 4e6) == pytest.approx(1.68e17, rel=1e-12)
    assert flops_per_step(7e9, 4e6, model="moe") == pytest.approx(1.68e17, rel=1e-12)


def test_recompute_adds_one_forward():
    # 8 N T: 2.24e17 for 7B x 4M tokens; the attention term grows by 4/3 as well.
    assert flops_per_step(7e9, 4e6, recompute=True) == pytest.approx(2.24e17, rel=1e-12)
    attn = dict(model="dense_attention", n_layers=32, d_model=4096, sequence_length=4096)
    base = flops_per_step(7e9, 4e6, **attn) - 1.68e17
    assert flops_per_step(7e9, 4e6, recompute=True, **attn) - 2.24e17 == pytest.approx(
        base * 4 / 3, rel=1e-9)


def test_dense_attention_adds_twelve_l_d_s_per_token():
    # Llama-2-7B shape: 32 layers, 4096 wide, 4096-token sequences (Touvron et al. 2023).
    # 12 x 32 x 4096 x 4096 = 6.442450944e9 FLOPs per token on top of 6 N = 4.2e10.
    f = flops_per_step(7e9, 4e6, model="dense_attention", n_layers=32, d_model=4096,
                       sequence_length=4096)
    assert f == pytest.approx(4e6 * (4.2e10 + 6.442450944e9), rel=1e-12)
    # Narayanan et al. 2021: per layer and sequence forward 24 B s h^2 + 4 B s^2 h, x 3 with
    # the backward; with N = 12 l h^2 the whole is 6 N T + 12 l h s T.
    layers, h, s, b = 32, 4096, 4096, 1000
    megatron = 3 * layers * (24 * b * s * h**2 + 4 * b * s**2 * h)
    assert flops_per_step(12 * layers * h**2, b * s, model="dense_attention", n_layers=layers,
                          d_model=h, sequence_length=s) == pytest.approx(megatron, rel=1e-12)


def test_moe_active_params_match_mixtral():
    # Mixtral 8x7B: 46.7 B parameters, 12.9 B active (Jiang et al. 2024, arXiv 2401.04088);
    # 32 layers, 8 experts, top-2, SwiGLU experts of 3 x 4096 x 14336 parameters.
    active = moe_active_params(46.7e9, 8, 2, 32, 3 * 4096 * 14336)
    assert active == pytest.approx(12.9e9, abs=0.05e9)


def test_compute_time_hand_calculation():
    # The guide's worked example: 1.68e17 FLOPs over 64 x 989 TFLOPS at 40 % = 6.6355 s.
    assert compute_time_s(1.68e17, 64, 989.0, 0.4) == pytest.approx(
        1.68e17 / (64 * 989e12 * 0.4), rel=1e-12)
    assert compute_time_s(1.68e17, 64, 989.0, 0.4) == pytest.approx(6.6355, abs=1e-4)
    with pytest.raises(ValueError):
        compute_time_s(1e15, 1, 989.0, 0.0)


# --------------------------------------------------------------------------- jobs


def test_allreduce_job_derives_compute_s():
    job = build(tokens_per_step=4e6, model_params=7e9)  # data parallel, 64 ranks, mfu 0.4
    assert job.compute_model.derived and job.mfu == 0.4
    assert job.flops_per_step == pytest.approx(1.68e17, rel=1e-12)
    assert job.compute_s == pytest.approx(6.6355, abs=1e-4)
    # global_batch x sequence_length is the same step; twice the accelerators, half the time.
    same = build(global_batch=1000, sequence_length=4000, model_params=7e9)
    assert same.compute_s == pytest.approx(job.compute_s, rel=1e-12)
    fast = build(tflops=2 * H100_TFLOPS, tokens_per_step=4e6, model_params=7e9, mfu=0.8)
    assert fast.compute_s == pytest.approx(job.compute_s / 4, rel=1e-12)
    # A hand-set job is left alone.
    hand = build(compute_s=1.5)
    assert hand.compute_s == 1.5 and hand.flops_per_step is None and hand.mfu is None


def test_pipeline_job_pays_the_bubble():
    # 8 nodes = 2 replicas x 4 stages, 8 micro-batches: each node does 1/8 of 6 N T, and the
    # schedule stretches it by (8 + 4 - 1) / 8.
    job = build(n=8, kind="pipeline", stages=4, micro_batches=8, model_params=7e9,
                tokens_per_step=2**20, mfu=0.5)
    hand = 6 * 7e9 * 2**20 / 8 / (989e12 * 0.5) * 11 / 8
    assert job.compute_s == pytest.approx(hand, rel=1e-12)
    assert job.flops_per_step == pytest.approx(6 * 7e9 * 2**20, rel=1e-12)


def test_moe_job_tokens_per_node_and_active_params():
    kw = dict(n=8, kind="moe_alltoall", top_k=2, experts_per_node=1, moe_layers=32,
              hidden_size=4096, model_params=46.7e9, expert_params=3 * 4096 * 14336)
    job = build(tokens_per_step=1000, **kw)  # tokens EACH node routes: 8000 in all
    active = 46.7e9 - 32 * 6 * 3 * 4096 * 14336
    assert job.flops_per_step == pytest.approx(6 * active * 8000, rel=1e-12)
    assert job.compute_s == pytest.approx(6 * active * 1000 / (989e12 * 0.4), rel=1e-12)
    # global_batch x sequence_length splits over the nodes, for the all-to-all's bytes too.
    same = build(global_batch=16, sequence_length=500, **kw)
    assert same.buffer_bytes == job.buffer_bytes == 1000 * 2 * 4096 * 2.0
    assert same.compute_s == pytest.approx(job.compute_s, rel=1e-12)
    # active_params wins over the experts' count.
    given = build(tokens_per_step=1000, active_params=13e9, **kw)
    assert given.flops_per_step == pytest.approx(6 * 13e9 * 8000, rel=1e-12)


def test_moe_with_too_few_params_names_the_fix():
    with pytest.raises(ScenarioError, match=r"set active_params") as exc:
        build(n=64, kind="moe_alltoall", tokens_per_step=1000, model_params=7e9, moe_layers=4)
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("table,match", [
    ({"compute_s": 2.0, "tokens_per_step": 4e6},
     r"\[traffic.jobs\[0\]\].compute_s is set and so is tokens_per_step; remove compute_s"),
    ({"compute_s": 2.0, "mfu": 0.5}, r"compute_s is set and so is mfu"),
    ({}, r"\[traffic.jobs\[0\]\] sets neither compute_s nor tokens_per_step; set compute_s"),
    ({"tokens_per_step": 4e6, "mfu": 0}, r"\[traffic.jobs\[0\]\].mfu must be > 0"),
    ({"tokens_per_step": 4e6, "mfu": 1.2}, r"\[traffic.jobs\[0\]\].mfu must be <= 1"),
    ({"global_batch": 1024}, r"global_batch needs sequence_length"),
    ({"global_batch": 1024, "sequence_length": 4096, "tokens_per_step": 4e6},
     r"global_batch and tokens_per_step are both set"),
    ({"tokens_per_step": 4e6, "flops_model": "dense_attention"},
     r"'dense_attention' needs n_layers and sequence_length"),
    ({"tokens_per_step": 4e6, "n_layers": 32}, r"n_layers only applies to flops_model = "
                                               r"'dense_attention'"),
    ({"tokens_per_step": 4e6, "flops_model": "moe"}, r"'moe' on a 'allreduce' job needs "
                                                     r"active_params"),
    ({"tokens_per_step": 4e6, "active_params": 1e9}, r"active_params only applies to "
                                                     r"flops_model = 'moe'"),
    ({"tokens_per_step": 4e6, "flops_model": "sparse"}, r"flops_model = 'sparse' is not known"),
])
def test_bad_compute_keys_are_one_line(table, match):
    with pytest.raises(ScenarioError, match=r"^s\.toml: .*" + match) as exc:
        job_cfg(**table)
    assert "\n" not in str(exc.value)


def test_moe_kind_may_size_its_traffic_with_compute_s_set():
    # tokens_per_step sizes a moe_alltoall job's all-to-all: allowed next to compute_s.
    cfg = job_cfg(kind="moe_alltoall", tokens_per_step=1000, compute_s=1.0)
    assert cfg.compute_s == 1.0 and cfg.tokens_per_step == 1000


# --------------------------------------------------------------------------- end to end

SMALL = """
[scenario]
name = "small"
epoch = 2026-02-23T00:00:00Z
duration_s = 20
step_s = 2
seed = 5

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[ground]
stations = "none"

[links]
topology = "plus_grid"
capacity_bps = 100e9
acquisition_s = 10

[traffic.compute]
placement = "block"
shell = 0
plane_count = 2
slot_count = 3
accelerators_per_node = 2
accelerator_tflops = 500.0

[[traffic.jobs]]
name = "job"
kind = "allreduce"
model_params = 1e9
{compute}

[traffic.background]
enabled = false
"""

# 6 nodes x 2 accelerators x 500 TFLOPS at 50 % MFU: 6 x 1e9 x 2**20 / (6 x 1000e12 x 0.5)
DERIVED_S = 6 * 1e9 * 2**20 / (6 * 2 * 500e12 * 0.5)


def scenario(tmp_path, compute, name="s.toml"):
    path = tmp_path / name
    path.write_text(SMALL.format(compute=compute))
    return path


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_the_derived_compute_s(tmp_path, capsys):
    path = scenario(tmp_path, "tokens_per_step = 1048576\nmfu = 0.5")
    code, out, err = run_cli(["show", path], capsys)
    assert code == 0, err
    assert f"compute_s = {DERIVED_S:.4g} s derived" in out  # 1.049 s
    assert "6.291e+15 FLOPs/step" in out and "(6 nodes x 1000 TFLOPS x 0.5 MFU)" in out
    hand = scenario(tmp_path, "compute_s = 1.5", "hand.toml")
    code, out, err = run_cli(["show", hand], capsys)
    assert code == 0 and "job: compute_s = 1.5 s (set by hand)" in out


def test_bad_compute_key_exits_2_with_one_line(tmp_path, capsys):
    path = scenario(tmp_path, "compute_s = 1.0\ntokens_per_step = 1048576")
    code, out, err = run_cli(["show", path], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "s.toml" in err and "compute_s is set" in err


def test_engine_step_time_same_as_compute_s_by_hand(tmp_path, capsys):
    steps, summaries = [], []
    for name, compute in (("derived.toml", "tokens_per_step = 1048576\nmfu = 0.5"),
                          ("hand.toml", f"compute_s = {DERIVED_S!r}")):
        out_dir = tmp_path / f"out_{name}"
        code, _, err = run_cli(["run", scenario(tmp_path, compute, name), "--out", out_dir,
                                "-q", "--no-plots"], capsys)
        assert code == 0, err
        jobs = pq.read_table(out_dir / "jobs.parquet").to_pandas()
        steps.append(jobs["step_time_s"].to_numpy())
        summaries.append(json.loads((out_dir / "summary.json").read_text())["jobs"][0])
        np.testing.assert_allclose(jobs["compute_s"], DERIVED_S, rtol=1e-12)
    assert steps[0].size >= 3
    np.testing.assert_allclose(steps[0], steps[1], rtol=1e-12)
    derived, hand = summaries
    assert derived["compute_s"] == pytest.approx(DERIVED_S, rel=1e-12)
    assert derived["flops_per_step"] == pytest.approx(6 * 1e9 * 2**20, rel=1e-12)
    assert derived["mfu"] == 0.5
    # The network's exposed time lowers the MFU the run achieves: mfu x compute / step.
    assert derived["achieved_mfu"] == pytest.approx(
        0.5 * DERIVED_S / derived["mean_step_s"], rel=1e-9)
    assert derived["achieved_mfu"] < 0.5
    assert hand["flops_per_step"] is None and hand["mfu"] is None
    assert hand["achieved_mfu"] is None
