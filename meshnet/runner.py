"""``meshnet run``: the whole pipeline for one scenario, from orbits to plots.

Data flow per chunk of steps: propagate (one SGP4 call) -> link model (stateful) -> Snapshot ->
routing policy -> max-min allocation inside the fluid engine -> records. Records stream to
Parquet (finished flows too, as the run goes); what is kept per step is a few numbers in
arrays sized by the time grid.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .io.datasets import AtomicParquetWriter, output_folder, run_metadata, write_json_atomic
from .links.reasons import FAULT_REASONS
from .units import NS_PER_S

#: Bins of the link-utilisation histogram kept during a run (2 % each).
UTIL_BINS = 50

#: Steps propagated per SGP4 call: large enough to amortise the call, small enough for memory.
CHUNK_STEPS = 60

LINK_SCHEMA = pa.schema([
    ("t", pa.timestamp("ns", tz="UTC")),
    ("t_s", pa.float64()),
    ("a", pa.int32()),
    ("b", pa.int32()),
    ("a_name", pa.dictionary(pa.int32(), pa.string())),
    ("b_name", pa.dictionary(pa.int32(), pa.string())),
    ("kind", pa.dictionary(pa.int8(), pa.string())),
    ("state", pa.dictionary(pa.int8(), pa.string())),
    ("reason", pa.dictionary(pa.int8(), pa.string())),
    ("length_km", pa.float64()),
    ("delay_ms", pa.float64()),
    ("capacity_gbps", pa.float64()),
    ("load_gbps", pa.float64()),
    ("utilisation", pa.float64()),
])


@dataclass
class StepStats:
    """Per-step mesh figures kept for the summary: five numbers a step in arrays allocated
    (and touched) once for the whole time grid, so memory does not grow as the run goes on;
    the rest are running totals."""

    #: Steps the arrays hold (the run's time grid); more steps double them (not expected).
    capacity: int = 0
    n: int = 0
    #: Histogram of the utilisation of up ISLs over all steps (UTIL_BINS bins over [0, 1]).
    util_hist: np.ndarray = field(default_factory=lambda: np.zeros(UTIL_BINS, np.int64))
    #: Up ISL link-steps that carried any traffic.
    busy_link_steps: int = 0
    #: Routes between ground stations against the great-circle bound (meshnet.latency).
    stretch: object = None
    #: DOWN link rows per reason code over all steps (the fault reasons feed the summary).
    down_by_reason: np.ndarray = field(default_factory=lambda: np.zeros(64, np.int64))

    _SERIES = {"t_s": np.float64, "links_up": np.int64, "links_total": np.int64,
               "mean_util": np.float64, "events": np.int64}

    def __post_init__(self):
        # np.full writes every page now: the resident set does not creep up step by step.
        self._arrays = {k: np.full(max(1, self.capacity), 0, d) for k, d in self._SERIES.items()}

    def add_step(self, t_s, links_up, links_total, mean_util, events) -> None:
        """Record one step's figures."""
        if self.n == self._arrays["t_s"].shape[0]:
            self._arrays = {k: np.concatenate([a, np.zeros_like(a)])
                            for k, a in self._arrays.items()}
        for k, v in zip(self._SERIES, (t_s, links_up, links_total, mean_util, events),
                        strict=True):
            self._arrays[k][self.n] = v
        self.n += 1

    def __getattr__(self, name):
        # t_s, links_up, links_total, mean_util, events: the recorded steps' values.
        if name in StepStats._SERIES and "_arrays" in self.__dict__:
            return self.__dict__["_arrays"][name][: self.__dict__["n"]]
        raise AttributeError(name)

    def add_utilisation(self, util: np.ndarray) -> None:
        """Fold one step's up-ISL utilisations into the running histogram."""
        idx = np.minimum((np.clip(util, 0.0, 1.0) * UTIL_BINS).astype(np.int64), UTIL_BINS - 1)
        self.util_hist += np.bincount(idx, minlength=UTIL_BINS)
        self.busy_link_steps += int(np.count_nonzero(util > 0))


@dataclass
class RunResult:
    """What ``meshnet run`` measured; ``report()`` is the table printed at the end."""

    scenario: object
    out_dir: Path
    summary: dict
    jobs: list
    wall_s: float

    def report(self) -> str:
        s = self.summary
        lines = [
            f"meshnet run: {s['scenario']}  ({s['steps']} steps of {s['step_s']:g} s, "
            f"{s['satellites']} satellites, {s['ground_stations']} ground stations, "
            f"routing {s['routing']})",
            "",
            f"{'job':<20} {'steps':>6} {'mean step s':>12} {'p95 step s':>11} "
            f"{'comm share':>11} {'slowdown':>9} {'busbw Gbps':>11}",
        ]
        for j in s["jobs"]:
            share = None if j["comm_share"] is None else 100 * j["comm_share"]
            lines.append(
                f"{j['job']:<20} {j['steps_done']:>6} {_f(j['mean_step_s'], 12, 3)} "
                f"{_f(j['p95_step_s'], 11, 3)} {_f(share, 10, 1)}% "
                f"{_f(j['mean_slowdown'], 9, 2)} {_f(j['mean_busbw_gbps'], 11, 2)}")
            if j.get("ground_reference_step_s") is not None:
                lines.append(f"{'  ground cluster ref.':<20} {'':>6} "
                             f"{_f(j['ground_reference_step_s'], 12, 3)}   "
                             f"(ideal fabric, {s['ground_reference_gbps']:g} Gbps per "
                             "accelerator)")
        if not s["jobs"]:
            lines.append("(no training jobs in this scenario)")
        lines += [
            "",
            f"mean ISL utilisation   {100 * s['mean_isl_utilisation']:.2f} %",
            f"link availability      {100 * s['link_availability']:.2f} % of link-time up",
            f"background traffic     {s['background_offered_gbps']:.1f} Gbps offered, "
            f"{s['background_carried_gbps']:.1f} Gbps carried",
            f"flows without a path   {s['unreachable_s']:.1f} flow-seconds unreachable, "
            f"{s['blackholed_s']:.1f} black-holed; {s['path_changes']} path changes, "
            f"{s['reroutes']} re-routes",
            *_stretch_lines(s.get("latency_stretch")),
            *_power_lines(s.get("power"), s["jobs"]),
            *_resilience_lines(s["jobs"]),
            *_workload_lines(s["jobs"]),
            *_fault_lines(s.get("faults")),
            *_research_lines(s),
            f"outputs                {self.out_dir}",
            f"wall time              {self.wall_s:.1f} s",
        ]
        return "\n".join(lines)


def _workload_lines(jobs) -> list[str]:
    from .workloads.output import report_lines

    return report_lines(jobs)


def _resilience_lines(jobs) -> list[str]:
    lines = []
    for j in jobs:
        r = j.get("resilience")
        if r is None:
            continue
        rec = "-" if r["mean_recovery_s"] is None else f"{r['mean_recovery_s']:.0f} s"
        lines.append(
            f"{'training (' + j['job'] + ')':<23}goodput {_f(100 * (j['goodput'] or 0), 5, 1)} %"
            f" ({r['recovery']}); {r['interruptions']} interruptions "
            f"({r['interruptions_per_day']:.2f}/day), {r['steps_rolled_back']} steps rolled "
            f"back, {r['lost_work_s']:.0f} s work lost, mean recovery {rec}, "
            f"{r['checkpoints']} checkpoints")
    return lines


def _fault_lines(f) -> list[str]:
    if not f:
        return []
    from .faults.output import summary_lines

    return summary_lines(f)


def _stretch_lines(st) -> list[str]:
    if not st or not st["pairs"]:
        return []
    line = (f"RTT / great circle     median {st['median_stretch']:.2f}x, p95 "
            f"{st['p95_stretch']:.2f}x over {st['pairs']:,} station pairs; "
            f"{st['flagged_pairs']:,} pairs above {st['flag']:g}x")
    w = st["worst"]
    if st["flagged_pairs"] and w is not None:
        line += f" (worst {w['src']} -> {w['dst']}: {w['stretch']:.2f}x)"
    return [line]


def _power_lines(p, jobs) -> list[str]:
    if not p:
        return []
    lost = sum(j.get("power_delay_s") or 0.0 for j in jobs)
    label = f"power ({p['policy']})"
    lines = [f"{label:<22} mean eclipse {100 * p['mean_eclipse_fraction']:.1f} % of the time, "
             f"max depth of discharge {100 * p['max_depth_of_discharge']:.1f} %"]
    if p["compute_nodes"]:
        lines.append(f"compute lost to power  {lost:.1f} s of training-step time; compute "
                     f"nodes throttled {p['node_throttled_s']:.0f} node-s, stopped "
                     f"{p['node_paused_s']:.0f} node-s; some node stopped "
                     f"{p['any_compute_node_stopped_s']:.0f} s of {p['duration_s']:.0f} s")
    if p["policy"] == "shed_lasers":
        lines.append(f"lasers shed for power  {p.get('laser_head_hours_shed', 0.0):.1f} "
                     f"laser-head hours on {p.get('sats_shed', 0)} satellites")
    return lines


def _f(x, width, prec):
    return f"{x:>{width}.{prec}f}" if x is not None and np.isfinite(x) else f"{'-':>{width}}"


def _research_lines(s) -> list[str]:
    from .routing.research import report_lines  # optimum, link-state, policy errors

    return report_lines(s)


def snapshot_stream(scenario, world, grid, link_model, progress=False):
    """Yield ``(k, t_ns, r_km, link_table, snapshot)`` for every step of ``grid``.

    Propagation runs in chunks of :data:`CHUNK_STEPS`; the link model carries its state from
    one step to the next.
    """
    from .orbits.propagate import propagate, sun_direction_ecef

    bar = _progress(len(grid), progress, "steps")
    names, kinds = world.node_names, world.node_kind
    try:
        for c0 in range(0, len(grid), CHUNK_STEPS):
            sub = grid[c0:c0 + CHUNK_STEPS]
            orbits = propagate(world.constellation, sub)
            sun = sun_direction_ecef(sub)
            for i in range(len(sub)):
                t_ns = int(sub.t_ns[i])
                table = link_model.step(t_ns, orbits.r_km[i], orbits.v_km_s[i], sun[i])
                snap = table.to_snapshot(names, kinds)
                yield c0 + i, t_ns, orbits.r_km[i], table, snap
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _progress(total, enabled, unit):
    if not enabled or total < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, dynamic_ncols=True, leave=False)


def build_traffic(scenario, world):
    """Compute nodes, jobs and background demands of a scenario (seeded, deterministic)."""
    from .traffic import background_demands, make_job, place_compute

    rng = np.random.default_rng(scenario.run.seed)
    tcfg = scenario.traffic
    jobs = []
    compute = None
    if tcfg.jobs:
        compute = place_compute(tcfg.compute, world.constellation, world.ground, rng)
        jobs = [make_job(jc, compute, n_nodes=world.n_nodes) for jc in tcfg.jobs]
    background = None
    if tcfg.background.enabled and world.n_ground > 1:
        background = background_demands(tcfg.background, world.ground, rng,
                                         n_satellites=world.n_sats)
    return compute, jobs, background


def make_engine(scenario, world, jobs, background, compute=None):
    from .allocation import allocate_multipath
    from .engine import FluidEngine
    from .routing import make_policy
    from .traffic import ideal_comm_time_s

    relay = np.ones(world.n_nodes, dtype=bool)
    if not scenario.routing.ground_relay:
        relay[world.n_sats:] = False
    policy = make_policy(scenario.routing, world.n_nodes, relay)
    method = scenario.allocation.method

    def alloc(capacity_bps, flow_path_indptr, path_edge_indptr, path_edges, path_fraction,
              weight, demand_bps):
        return allocate_multipath(method, capacity_bps, flow_path_indptr, path_edge_indptr,
                                  path_edges, path_fraction, weight=weight,
                                  demand_bps=demand_bps)

    nic = None
    if compute is not None and compute.injection_bps is not None:
        nic = {int(u): float(compute.injection_bps) for u in compute.node_ids}
    for job in jobs:
        res = getattr(getattr(job, "cfg", None), "resilience", None)
        if res is not None and res.checkpoint_to == "ground" and world.n_ground == 0:
            from .errors import ScenarioError

            raise ScenarioError(
                f"{scenario.source or '<scenario>'}: [traffic.jobs.resilience].checkpoint_to "
                f"= 'ground' for job '{job.name}', but [ground] has no stations; use "
                "'neighbour' or add stations")
    # Hot spares (recovery = "spare") come from the compute nodes no job uses.
    used = set()
    for job in jobs:
        used.update(int(u) for u in job.nodes)
    free = [] if compute is None else [int(u) for u in compute.node_ids if int(u) not in used]
    return FluidEngine(jobs, policy, alloc, background=background,
                       terminal_rate_bps=scenario.links.capacity_bps,
                       ideal_comm_time=ideal_comm_time_s, injection_bps=nic,
                       background_weight=scenario.traffic.background.weight,
                       spare_nodes=free)


@dataclass
class ComparisonResult:
    """Several variants of one scenario (the ``[compare]`` table), run one after another."""

    out_dir: Path
    variants: list  # (label, RunResult)

    def report(self) -> str:
        head = (f"{'variant':<28} {'steps':>6} {'mean step s':>12} {'p95 step s':>11} "
                f"{'path chg':>9} {'reroutes':>9} {'blackholed s':>13} {'ISL util %':>11}")
        lines = [f"meshnet run: comparison of {len(self.variants)} variants", "", head]
        for label, res in self.variants:
            s = res.summary
            job = s["jobs"][0] if s["jobs"] else {}
            lines.append(
                f"{label:<28} {job.get('steps_done', 0):>6} "
                f"{_f(job.get('mean_step_s'), 12, 3)} {_f(job.get('p95_step_s'), 11, 3)} "
                f"{s['path_changes']:>9} {s['reroutes']:>9} {s['blackholed_s']:>13.1f} "
                f"{100 * s['mean_isl_utilisation']:>11.2f}")
        lines += ["", f"outputs: {self.out_dir}/<variant>/ and {self.out_dir}/comparison.json"]
        return "\n".join(lines)


# Files that show a folder holds an earlier run (replaced whole by the next run into it).
RUN_MARKERS = ("summary.json", "comparison.json", "links.parquet")


def comparison_variants(scenario) -> list:
    """``(label, scenario)`` for every variant the ``[compare]`` table asks for."""
    import dataclasses

    cmp_cfg = scenario.compare
    out = []
    from .routing.plugins import short_name

    for policy in cmp_cfg.routing:
        out.append((f"routing-{short_name(policy)}", scenario.replace(
            routing=dataclasses.replace(scenario.routing, policy=policy))))
    for method in cmp_cfg.allocation:
        out.append((f"allocation-{short_name(method)}", scenario.replace(
            allocation=dataclasses.replace(scenario.allocation, method=method))))
    return out


def run(scenario, grid, out_dir, plots=True, progress=True):
    """Run a scenario, or each of its ``[compare]`` variants; return an object with ``report()``.
    """
    variants = comparison_variants(scenario)
    if not variants:
        return run_scenario(scenario, grid, out_dir, plots=plots, progress=progress)
    final = Path(out_dir)
    # All variants' sub-folders and comparison.json appear together, in one swap.
    with output_folder(final, RUN_MARKERS) as tmp:
        results = []
        for label, variant in variants:
            if progress:
                print(f"[{label}]", flush=True)
            (tmp / label).mkdir()
            results.append((label, _run_scenario_into(variant, grid, tmp / label, final / label,
                                                      plots=plots, progress=progress)))
        write_json_atomic(tmp / "comparison.json",
                          {label: res.summary for label, res in results})
    return ComparisonResult(out_dir=final, variants=results)


def run_scenario(scenario, grid, out_dir, plots=True, progress=True) -> RunResult:
    """Run ``scenario`` over ``grid`` and write datasets, ``summary.json`` and plots.

    ``out_dir`` holds exactly one run: everything is written into a temporary sibling
    folder that replaces ``out_dir`` only once complete (:func:`meshnet.io.datasets.output_folder`).

    Parameters
    ----------
    scenario : Scenario
        From :func:`meshnet.scenario.load_scenario`.
    grid : TimeGrid
        Steps to emulate.
    out_dir : Path
        Receives ``links.parquet``, ``flows.parquet``, ``jobs.parquet``, ``summary.json`` and
        PNG plots.
    """
    final = Path(out_dir)
    with output_folder(final, RUN_MARKERS) as tmp:
        return _run_scenario_into(scenario, grid, tmp, final, plots=plots, progress=progress)


def _run_scenario_into(scenario, grid, out_dir, shown_dir, plots=True, progress=True):
    """:func:`run_scenario` writing into the existing folder ``out_dir`` (its result names
    ``shown_dir``, where the folder will be once swapped in)."""
    from .links import LinkModel
    from .links.model import attach_faults
    from .world import build_world

    wall0 = time.perf_counter()
    world = build_world(scenario)
    compute, jobs, background = build_traffic(scenario, world)
    engine = make_engine(scenario, world, jobs, background, compute)
    from .routing import research  # [routing.optimum], link-state and plugin figures

    research.attach(engine, scenario.routing, getattr(engine.policy, "relay_mask", None))
    step_s = len(grid) > 1 and grid.step_ns / NS_PER_S or scenario.run.step_s
    link_model = LinkModel(scenario.links, scenario.ground, world.constellation, world.ground,
                           step_s)
    faults = attach_faults(link_model, scenario, world, grid)
    if faults is not None:
        engine.set_outages(*faults.node_outages())
    names = world.node_names.astype(str)
    epoch_ns = int(np.datetime64(grid.epoch.replace(tzinfo=None), "ns").astype(np.int64))
    meta = run_metadata(scenario, steps=len(grid), step_s=step_s)
    links_w = LinkRowWriter(out_dir / "links.parquet", meta, names, epoch_ns)
    stats = StepStats(capacity=len(grid))
    if world.n_ground > 1:
        from .latency import LatencyBound, StretchStats

        stats.stretch = StretchStats(LatencyBound.for_world(scenario, world))
    power = _power_model(scenario, world, compute, grid, step_s, link_model)
    horizon = _lookahead_steps(scenario, step_s)
    stream = snapshot_stream(scenario, world, grid, link_model, progress=progress)
    window: deque = deque()
    map_frame = None
    t_end_s = (grid.t_ns[-1] / NS_PER_S) + step_s
    # Finished flows stream to flows.parquet as the run goes (engine.release_flows).
    from .io.flows_writer import FlowRowWriter

    flows_w = FlowRowWriter(out_dir / "flows.parquet", meta,
                            ["background"] + [js.job.name for js in engine.jobs])
    try:
        for item in stream:
            window.append(item)
            if len(window) <= horizon:
                continue
            map_frame = _advance(engine, window, step_s, links_w, names, epoch_ns, stats,
                                 map_frame, power=power)
            _release_flows(engine, flows_w, t_end_s, stats.n)
        while window:
            map_frame = _advance(engine, window, step_s, links_w, names, epoch_ns, stats,
                                 map_frame, power=power)
            _release_flows(engine, flows_w, t_end_s, stats.n)
    except BaseException:
        links_w.abort()
        flows_w.abort()
        raise
    links_w.close()
    job_rows = engine.job_records()
    _write_table(out_dir / "jobs.parquet", _jobs_columns(job_rows), meta)
    held = engine.flow_records(t_end_s)
    head = held["flow"] < engine.n_fixed
    flows_w.close({k: v[head] for k, v in held.items()},
                  {k: v[~head] for k, v in held.items()})
    summary = _summary(scenario, world, grid, step_s, stats, engine, jobs, background, t_end_s)
    _add_resilience(summary, engine, grid, t_end_s)
    from .workloads.output import add_workload_outputs  # model / trace jobs (workloads.md)

    add_workload_outputs(out_dir, engine, summary)
    summary.update(research.summary(engine, summary))
    if power is not None:
        _write_table(out_dir / "power.parquet", power.records(names), meta)
        summary["power"] = power.summary()
        if power.config.policy == "shed_lasers":
            from .links.reasons import POWER

            summary["power"]["link_s_down_power"] = float(stats.down_by_reason[POWER] * step_s)
    if faults is not None:
        map_frame = _fault_outputs(out_dir, faults, grid, step_s, stats, summary, meta,
                                   map_frame, link_model.n_terminals)
    summary["wall_time_s"] = time.perf_counter() - wall0
    write_json_atomic(out_dir / "summary.json", summary)
    if plots:
        from .plots import write_plots

        write_plots(out_dir, stats, job_rows, map_frame, world,
                    compute_nodes=None if compute is None else compute.node_ids)
    return RunResult(scenario=scenario, out_dir=Path(shown_dir), summary=summary, jobs=job_rows,
                     wall_s=time.perf_counter() - wall0)


def _fault_outputs(out_dir, faults, grid, step_s, stats, summary, meta, map_frame, heads):
    """faults.parquet, the summary's ``faults`` figures and the mesh map's fault marks."""
    from .faults.output import fault_summary, write_faults
    from .faults.schedule import FAILED, NO_EFFECT
    from .links.reasons import REASON_NAMES

    write_faults(out_dir / "faults.parquet", faults, meta)
    t0 = int(grid.t_ns[0])
    lost = {REASON_NAMES[i]: float(stats.down_by_reason[i] * step_s) for i in FAULT_REASONS
            if stats.down_by_reason[i]}
    summary["faults"] = fault_summary(faults, t0, t0 + int(round(len(grid) * step_s * NS_PER_S)),
                                      lost, heads)
    if map_frame is not None:
        mask = faults.at(int(round(map_frame["t_s"] * NS_PER_S)), map_frame["r_km"])
        map_frame["failed"] = np.nonzero(mask.sat_effect == FAILED)[0]
        map_frame["lasers_down"] = np.nonzero((mask.sat_effect != NO_EFFECT)
                                              & (mask.sat_effect != FAILED))[0]
    return map_frame


def _lookahead_steps(scenario, step_s) -> int:
    """Steps of known future a policy needs (``predictive`` looks ``horizon_s`` ahead)."""
    from .routing.policies import ROUTING_POLICIES

    policy = scenario.routing.policy
    if policy != "predictive" and ROUTING_POLICIES.builtin(policy):
        return 0  # policies of the user's get the known future (routing/protocol.py)
    return int(np.ceil(scenario.routing.horizon_s / step_s))


def _power_model(scenario, world, compute, grid, step_s, link_model=None):
    """The run's :class:`meshnet.power.PowerModel`, or None without ``[power].enabled``.

    Policy ``shed_lasers``: the model hands its lasers-off mask to ``link_model`` after each
    step, for the links of the next step not yet computed (``predictive`` routing computes
    ``horizon_s`` of steps ahead, so the mask then applies after that look-ahead).
    """
    cfg = getattr(scenario, "power", None)
    if cfg is None or not cfg.enabled:
        return None
    from .power import PowerModel

    power = PowerModel.for_run(cfg, world, compute, grid, step_s,
                               scenario.traffic.compute.accelerators_per_node)
    if cfg.policy == "shed_lasers" and link_model is not None:
        power.on_shed = link_model.set_lasers_off
    return power


#: Steps between releases of finished flows from the engine to flows.parquet.
RELEASE_EVERY_STEPS = 64


def _release_flows(engine, flows_w, t_end_s: float, step: int) -> None:
    """Every RELEASE_EVERY_STEPS steps, stream the flows the engine is done with."""
    if step % RELEASE_EVERY_STEPS == 0:
        out = engine.release_flows(t_end_s)
        if out is not None:
            flows_w.append(out)


def _advance(engine, window, step_s, links_w, names, epoch_ns, stats, map_frame, power=None):
    k, t_ns, r_km, table, snap = window.popleft()
    future = [w[4] for w in window] if window else None
    rate = None
    if power is not None:
        from .power import active_heads

        heads = active_heads(power.n_sats, table.a, table.b, table.kind, table.state)
        rate = power.step(k, r_km, heads)
    rec = engine.step(snap, step_s, future=future, compute_rate=rate)
    if stats.stretch is not None and rec.routes is not None:
        stats.stretch.add(rec.pair_src, rec.pair_dst, primary_delay_s(rec.routes))
    n_links = table.a.shape[0]
    load = np.zeros(n_links)
    util = np.zeros(n_links)
    if snap.n_edges:
        edge_util = np.where(snap.capacity_bps > 0,
                             rec.edge_bytes * 8.0 / (step_s * snap.capacity_bps), 0.0)
        np.maximum.at(util, snap.link_id, edge_util)
        np.maximum.at(load, snap.link_id, rec.edge_bytes * 8.0 / step_s / 1e9)
    links_w.append(table, t_ns, load, util)
    up = table.state == 2
    isl_up = up & (table.kind == 0)
    stats.down_by_reason += np.bincount(table.reason[table.state == 0], minlength=64)[:64]
    stats.add_step(t_ns / NS_PER_S, int(np.count_nonzero(up)), int(n_links),
                   float(util[isl_up].mean()) if isl_up.any() else 0.0, rec.n_events)
    stats.add_utilisation(util[isl_up])
    # The map shows the busiest instant of the run (highest mean ISL utilisation); with
    # [faults], the instant with the most links down for faults (then the busiest).
    n_fault = int(np.count_nonzero((table.state == 0) & np.isin(table.reason, FAULT_REASONS)))
    if map_frame is None or (n_fault, stats.mean_util[-1]) > (map_frame.get("n_fault", 0),
                                                               map_frame["mean_util"]):
        map_frame = {"mean_util": stats.mean_util[-1], "t_s": t_ns / NS_PER_S,
                     "n_fault": n_fault,
                     "r_km": np.array(r_km), "a": table.a[up], "b": table.b[up],
                     "kind": table.kind[up], "util": util[up]}
    return map_frame


def primary_delay_s(routes) -> np.ndarray:
    """One-way delay of each routed pair's first path (NaN where unreachable)."""
    ptr = np.asarray(routes.pair_path_indptr)
    has = (ptr[1:] > ptr[:-1]) & np.asarray(routes.pair_reachable, bool)
    out = np.full(ptr.shape[0] - 1, np.nan)
    out[has] = np.asarray(routes.path_delay_s, np.float64)[ptr[:-1][has]]
    return out


class LinkRowWriter:
    """``links.parquet`` of a run: each step's rows copied into bounded, reused buffers and
    written in large row groups (:class:`meshnet.io.rowgroups.RowGroupBuffer`), the name
    dictionaries built once; no Arrow table or row group per step."""

    def __init__(self, path, meta, node_names, epoch_ns: int,
                 rows_per_group: int | None = None):
        from .io.rowgroups import RowGroupBuffer, dictionary_columns, statistics_columns
        from .links import KIND_NAMES, REASON_NAMES, STATE_NAMES

        self.out = AtomicParquetWriter(
            path, LINK_SCHEMA, meta,
            use_dictionary=dictionary_columns(LINK_SCHEMA, ("t", "t_s", "a", "b", "capacity_gbps")),
            write_statistics=statistics_columns(LINK_SCHEMA))
        names = pa.array([str(x) for x in node_names], pa.string())
        dicts = {"a_name": names, "b_name": names, "kind": pa.array(list(KIND_NAMES)),
                 "state": pa.array(list(STATE_NAMES)), "reason": pa.array(list(REASON_NAMES))}
        self.buf = RowGroupBuffer(self.out.schema, self.out.write_batch, dicts, rows_per_group)
        self.epoch_ns = int(epoch_ns)

    def append(self, table, t_ns: int, load_gbps, util) -> None:
        """One step's link rows (``load_gbps`` and ``util`` per row of ``table``)."""
        self.buf.append(
            table.a.shape[0], t=self.epoch_ns + int(t_ns), t_s=t_ns / NS_PER_S, a=table.a,
            b=table.b, a_name=table.a, b_name=table.b, kind=table.kind, state=table.state,
            reason=table.reason, length_km=table.length_km,
            delay_ms=table.length_km / 299_792.458 * 1e3,
            capacity_gbps=table.capacity_bps / 1e9, load_gbps=load_gbps, utilisation=util)

    def close(self) -> None:
        self.buf.close()
        self.out.close()

    def abort(self) -> None:
        self.out.abort()


def _write_table(path, columns, meta):
    table = pa.table(columns) if not isinstance(columns, pa.Table) else columns
    with AtomicParquetWriter(path, table.schema, meta) as w:
        w.write(table)


def _jobs_columns(rows):
    keys = ["job", "step", "start_s", "end_s", "step_time_s", "compute_s", "comm_time_s",
            "exposed_comm_s", "ideal_step_time_s", "slowdown", "bytes_per_rank",
            "algbw_gbps", "busbw_gbps", "compute_rate", "power_delay_s", "ranks"]
    return {k: [r.get(k) for r in rows] for k in keys} if rows else {
        k: pa.array([], pa.string() if k == "job" else pa.float64()) for k in keys}


def _summary(scenario, world, grid, step_s, stats, engine, jobs, background, t_end_s):
    rows = engine.job_records()
    jobs_out = []
    for job in jobs:
        mine = [r for r in rows if r["job"] == job.name]
        st = np.array([r["step_time_s"] for r in mine])
        comm = np.array([r["exposed_comm_s"] for r in mine])
        jobs_out.append({
            "job": job.name,
            "nodes": int(len(job.nodes)),
            "steps_done": len(mine),
            "mean_step_s": float(st.mean()) if st.size else None,
            "p95_step_s": float(np.percentile(st, 95)) if st.size else None,
            "comm_share": float(comm.sum() / st.sum()) if st.size and st.sum() > 0 else None,
            "mean_slowdown": float(np.mean([r["slowdown"] for r in mine])) if mine else None,
            "mean_busbw_gbps": float(np.mean([r.get("busbw_gbps", np.nan) for r in mine]))
            if mine else None,
            "ideal_step_s": float(mine[0]["ideal_step_time_s"]) if mine else None,
            "ground_reference_step_s": _ground_reference(scenario, job),
            "power_delay_s": float(sum(r.get("power_delay_s", 0.0) for r in mine)),
            # compute per step: set by hand, or from the model (flops_per_step, mfu not None)
            "compute_s": float(job.compute_s),
            "flops_per_step": job.compute_model.flops_per_step,
            "mfu": job.compute_model.mfu,
            # model FLOPs over the mean step at the job's peak: mfu less the exposed network
            "achieved_mfu": (job.compute_model.flops_per_step / (
                float(st.mean()) * job.compute_model.peak_flops_per_s)
                if job.compute_model.derived and st.size and st.mean() > 0 else None),
        })
    fl = engine.flow_records(t_end_s)  # background flows are held to the end
    totals = engine.flow_totals(t_end_s)  # every flow, held or streamed out (flows.parquet)
    bg = fl["job"] == "background"
    offered = float(np.sum(np.asarray(background[2]))) / 1e9 if background is not None else 0.0
    carried = float(np.sum(fl["bytes"][bg]) * 8 / max(t_end_s, 1e-9) / 1e9) if bg.any() else 0.0
    up = np.asarray(stats.links_up, float)
    total = np.asarray(stats.links_total, float)
    return {
        "scenario": scenario.name,
        "steps": len(grid),
        "step_s": step_s,
        "duration_s": len(grid) * step_s,
        "satellites": world.n_sats,
        "ground_stations": world.n_ground,
        "routing": scenario.routing.policy,
        "allocation": scenario.allocation.method,
        "topology": scenario.links.topology,
        "jobs": jobs_out,
        "ground_reference_gbps": (scenario.compare.ground_reference_bps or 0) / 1e9,
        "mean_isl_utilisation": float(np.mean(stats.mean_util)) if stats.n else 0.0,
        "link_availability": float(up.sum() / total.sum()) if total.sum() else 0.0,
        "background_offered_gbps": offered,
        "background_carried_gbps": carried,
        "flows": int(totals["flows"]),
        "path_changes": int(totals["path_changes"]),
        "reroutes": int(totals["reroutes"]),
        "blackholed_s": float(totals["blackholed_s"]),
        "unreachable_s": float(totals["unreachable_s"]),
        "latency_stretch": (None if stats.stretch is None else stats.stretch.summary(
            world.node_names[world.n_sats:])),
    }


def _add_resilience(summary, engine, grid, t_end_s) -> None:
    """Goodput, lost work, recovery and interruptions of each job (docs/faults.md).

    Goodput is useful steps per hour over the steps per hour of the same job without faults
    or power limits. The reference step time is measured in the same run: the median time
    of its steps that ran at full compute rate, waited for no power and were not cut short
    (analytic alternatives ignore the mesh's own communication time).
    """
    t0_s = int(grid.t_ns[0]) / NS_PER_S if len(grid) else 0.0
    for js, out in zip(engine.jobs, summary["jobs"], strict=True):
        job = js.job
        rows = js.records
        full = [r["step_time_s"] for r in rows
                if r["compute_rate"] >= 1.0 and r["power_delay_s"] <= 1e-9]
        ref = float(np.median(full)) if full else None
        start = max(t0_s, float(getattr(job, "start_s", 0.0)))
        finished = job.max_steps is not None and js.step >= job.max_steps and bool(rows)
        end = float(rows[-1]["end_s"]) if finished else float(t_end_s)
        span_h = max(end - start, 1e-9) / 3600.0
        res = js.res
        useful = float(res.work) if res is not None else float(len(rows))
        out["reference_step_s"] = ref
        out["useful_steps"] = useful
        out["useful_steps_per_hour"] = useful / span_h
        out["goodput"] = (useful / span_h) / (3600.0 / ref) if ref else None
        cm = job.compute_model
        out["orbit_mfu"] = (cm.flops_per_step * useful / (span_h * 3600.0 * cm.peak_flops_per_s)
                            if cm.derived and cm.peak_flops_per_s else None)
        if res is not None:
            r = res.summary(end, start)
            out["resilience"] = {k: v for k, v in r.items() if k != "interruption_log"}
            out["resilience"]["lost_work_steps_s"] = (
                r["steps_rolled_back"] * ref if ref else None)
            out["resilience"]["spares_left"] = [int(x) for x in res.spares]
            out["interruptions"] = r["interruption_log"]


def _ground_reference(scenario, job):
    """Step time of ``job`` on a ground cluster with ``ground_reference_bps`` per accelerator."""
    from .traffic import ideal_comm_time_s

    rate = scenario.compare.ground_reference_bps
    if rate is None:
        return None
    comm = ideal_comm_time_s(job.step_phases(), rate)
    return float(max(job.compute_s, (1.0 - job.overlap) * job.compute_s + comm))
