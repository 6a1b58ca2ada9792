"""Routing-research figures gathered alongside a run: the LP optimum, link-state convergence
and errors of a policy of your own. :func:`attach` hooks them onto a
:class:`~meshnet.engine.FluidEngine`; :func:`summary` gives the run summary's entries.

Optimum samples (``[routing.optimum] enabled = true``), every ``every_s`` seconds, for the
traffic of that step:

``policy_gbps`` / ``optimum_gbps``
    What the policy carried (mean over the step) and the most any routing could carry with no
    pair above its offered demand (``max_throughput``). Elastic pairs (training traffic, which
    takes whatever it gets) are held at the rate the policy gave them, so the comparison is:
    with the same training traffic, how much of the offered traffic could be carried.
    ``throughput_fraction`` is their ratio (1: nothing more was possible).
``policy_max_util`` / ``optimum_max_util``
    The policy's busiest link and the least possible busiest link for the same per-pair
    rates (``min_max_utilisation``); ``util_fraction`` = optimum / policy (1: the policy
    spread its load as well as possible). Its inverse bounds how much faster the step's
    communication could have been with the same worst link: ``comm_speedup_bound``.
"""

from __future__ import annotations

import numpy as np

from ..units import NS_PER_S


class OptimumTracker:
    """Solves the optimum every ``cfg.every_s`` around an engine's steps."""

    def __init__(self, cfg, relay=None):
        self.cfg = cfg
        self.relay = relay
        self.samples: list[dict] = []
        self._next_s = None

    def due(self, t_s: float) -> bool:
        if self._next_s is None:
            self._next_s = t_s
        return t_s + 1e-9 >= self._next_s

    def sample(self, snapshot, dt_s, flows, sent_before, active_before, edge_bytes) -> None:
        from .optimum import solve_optimum

        t_s = snapshot.t_ns / NS_PER_S
        self._next_s = t_s + self.cfg.every_s
        n_f = flows.n
        sent = flows.view("bytes_sent").copy()
        sent[:sent_before.shape[0]] -= sent_before
        touched = np.zeros(n_f, bool)
        touched[active_before[active_before < n_f]] = True
        touched |= sent > 0
        idx = np.flatnonzero(touched)
        if idx.size == 0 or snapshot.n_edges == 0:
            return
        n = snapshot.n_nodes
        key = flows.src[idx].astype(np.int64) * n + flows.dst[idx]
        ukey, inv = np.unique(key, return_inverse=True)
        inv = inv.ravel()
        src, dst = (ukey // n).astype(np.int32), (ukey % n).astype(np.int32)
        rate = np.bincount(inv, weights=sent[idx] * 8.0 / dt_s, minlength=ukey.size)
        demand = np.bincount(inv, weights=np.where(np.isfinite(flows.demand_bps[idx]),
                                                   flows.demand_bps[idx], 0.0),
                             minlength=ukey.size)
        elastic = np.bincount(inv, weights=~np.isfinite(flows.demand_bps[idx]),
                              minlength=ukey.size) > 0
        demand = np.where(elastic, np.inf, np.maximum(demand, rate))
        keep = src != dst
        src, dst, rate, demand = src[keep], dst[keep], rate[keep], demand[keep]
        cap = snapshot.capacity_bps
        util = np.divide(edge_bytes * 8.0 / dt_s, cap, out=np.zeros_like(cap), where=cap > 0)
        kw = dict(relay=self.relay, k_paths=self.cfg.k_paths,
                  column_generation=self.cfg.column_generation, gap=self.cfg.gap,
                  max_rounds=self.cfg.max_rounds)
        # Elastic pairs (training traffic) keep the rate the policy gave them; the optimum
        # routes everything and carries as much of the offered, finite demand as fits.
        fixed = np.isinf(demand)
        demand_lp = np.where(fixed, rate, demand)
        tp = solve_optimum(snapshot, src, dst, demand_lp, min_bps=np.where(fixed, rate, 0.0),
                           objective="max_throughput", **kw)
        pos = rate > 0
        mm = None
        if pos.any():
            mm = solve_optimum(snapshot, src[pos], dst[pos], rate[pos],
                               objective="min_max_utilisation", **kw)
        policy_gbps = float(rate.sum()) / 1e9
        pol_u = float(util.max()) if util.size else 0.0
        opt_u = None if mm is None else float(mm.value)
        self.samples.append({
            "t_s": t_s, "pairs": int(src.size),
            "policy_gbps": policy_gbps, "optimum_gbps": tp.value / 1e9,
            "optimum_gbps_bound": tp.bound / 1e9, "throughput_gap": tp.gap,
            "throughput_fraction": policy_gbps / (tp.value / 1e9) if tp.value > 0 else None,
            "policy_max_util": pol_u, "optimum_max_util": opt_u,
            "util_gap": None if mm is None else mm.gap,
            "util_fraction": (opt_u / pol_u) if opt_u is not None and pol_u > 0 else None,
            "comm_speedup_bound": (pol_u / opt_u) if opt_u else None,
            "solve_s": tp.solve_s + (0.0 if mm is None else mm.solve_s),
            "throughput_solve_s": tp.solve_s, "throughput_rounds": tp.rounds,
            "util_solve_s": None if mm is None else mm.solve_s,
            "util_rounds": None if mm is None else mm.rounds,
            "lp_paths": tp.n_paths + (0 if mm is None else mm.n_paths),
        })

    def summary(self) -> dict:
        s = self.samples

        def mean(k):
            v = [x[k] for x in s if x[k] is not None]
            return float(np.mean(v)) if v else None

        def worst(k, fn):
            v = [x[k] for x in s if x[k] is not None]
            return float(fn(v)) if v else None

        return {
            "samples": len(s), "every_s": self.cfg.every_s,
            "mean_throughput_fraction": mean("throughput_fraction"),
            "min_throughput_fraction": worst("throughput_fraction", min),
            "mean_util_fraction": mean("util_fraction"),
            "mean_comm_speedup_bound": mean("comm_speedup_bound"),
            "max_gap": worst("throughput_gap", max),
            "mean_solve_s": mean("solve_s"), "max_solve_s": worst("solve_s", max),
            "series": s,
        }


def attach(engine, routing_cfg, relay=None):
    """Wrap ``engine.step`` to sample the optimum when ``[routing.optimum]`` is enabled.

    Returns the :class:`OptimumTracker` (None when disabled)."""
    cfg = getattr(routing_cfg, "optimum", None)
    if cfg is None or not cfg.enabled:
        return None
    tracker = OptimumTracker(cfg, relay)
    step = engine.step

    def step_with_optimum(snapshot, dt_s, *args, **kwargs):
        t_s = snapshot.t_ns / NS_PER_S
        if not tracker.due(t_s):
            return step(snapshot, dt_s, *args, **kwargs)
        before = engine.flows.view("bytes_sent").copy()
        active = np.asarray(engine._active).copy()
        rec = step(snapshot, dt_s, *args, **kwargs)
        tracker.sample(snapshot, dt_s, engine.flows, before, active, rec.edge_bytes)
        return rec

    engine.step = step_with_optimum
    engine.optimum_tracker = tracker
    return tracker


def summary(engine, run_summary: dict | None = None) -> dict:
    """The run summary's routing-research entries (empty when none apply).

    With ``run_summary`` (the rest of summary.json) and optimum samples, each job's mean
    exposed communication time per step is set beside an estimate under the optimum: divided
    by the mean ``comm_speedup_bound`` (the same traffic spread so that the busiest link is
    as loaded as the policy's, every flow proportionally faster)."""
    out = {}
    policy = engine.policy
    inner = getattr(policy, "inner", policy)
    errors = getattr(inner, "policy_errors", None)
    if errors is not None:
        out["policy_errors"] = int(errors)
        out["policy_first_error"] = inner.first_error
    if hasattr(policy, "events") and hasattr(policy, "summary"):
        out["linkstate"] = policy.summary()
    tracker = getattr(engine, "optimum_tracker", None)
    if tracker is not None:
        out["optimum"] = tracker.summary()
        speedup = out["optimum"]["mean_comm_speedup_bound"]
        jobs = {}
        for j in (run_summary or {}).get("jobs", []):
            if j.get("comm_share") is None or j.get("mean_step_s") is None:
                continue
            comm = j["comm_share"] * j["mean_step_s"]
            jobs[j["job"]] = {"comm_s": comm,
                              "optimum_comm_s_estimate": comm / speedup if speedup else None}
        out["optimum"]["jobs"] = jobs
    return out


def report_lines(s: dict) -> list[str]:
    """Lines of ``meshnet run``'s report for the routing-research entries of a summary."""
    out = []
    opt = s.get("optimum")
    if opt and opt.get("samples"):
        frac = opt.get("mean_throughput_fraction")
        util = opt.get("mean_util_fraction")
        out.append(
            f"vs LP optimum          throughput {100 * frac:.1f} % of the optimum (worst "
            f"{100 * opt['min_throughput_fraction']:.1f} %), busiest link "
            + (f"{1 / util:.2f}x the optimum's" if util else "-")
            + f"; {opt['samples']} samples, {opt['mean_solve_s']:.2f} s each, gap <= "
            f"{opt['max_gap']:.1e}" if frac is not None else
            f"vs LP optimum          {opt['samples']} samples, no traffic")
    ls = s.get("linkstate")
    if ls:
        conv = ls.get("mean_convergence_s")
        out.append(f"link-state             {ls['link_events']} link changes, convergence "
                   + (f"{conv:.3f} s mean / {ls['max_convergence_s']:.3f} s worst"
                      if conv is not None else "-")
                   + f"; {ls['blackholed_pair_steps']} black-holed and "
                   f"{ls['looped_pair_steps']} looped pair-steps")
    if s.get("policy_errors"):
        out.append(f"policy errors          {s['policy_errors']} steps routed by the fallback "
                   f"(first: {s['policy_first_error']})")
    return out
