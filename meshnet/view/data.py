"""Read a run folder into the compact arrays the viewer page and the CZML export need.

Everything comes from the run's own files: ``links.parquet`` (every link at every step),
``flows.parquet`` (which nodes each job uses, and its rank pairs), ``jobs.parquet`` (training
step times), ``summary.json``. Satellite positions come from ``positions.parquet`` in the
folder when present (``meshnet positions --out RUN_DIR/positions.parquet``); otherwise they
are propagated again, with the same SGP4 code, from the scenario text every run file
stores in its metadata (with the run's ``--set`` overrides), at the run's own instants.

Size is bounded by decimating in time: links are kept at every ``link_stride``-th step so
that pairs x frames stays under ``max_link_cells``; positions are kept every ``pos_stride``
steps (at most ``key_interval_s`` apart) and interpolated on the sphere in between, which
is within a few metres for LEO at 10 s spacing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..errors import MeshnetError
from ..units import NS_PER_S

#: Link cells (pairs x frames) kept at most; above it links are kept every n-th step.
MAX_LINK_CELLS = 8_000_000
#: Positions keyframes x satellites kept at most (long runs space keyframes further apart).
MAX_POS_CELLS = 1_500_000
#: Points per side-panel series at most (longer runs are averaged over blocks of steps).
MAX_SERIES_POINTS = 20_000
#: Rows of links.parquet read at once (memory stays bounded whatever the run's length).
BATCH_ROWS = 1_000_000
#: Most positions keyframes are this far apart (s); see the module notes on accuracy.
KEY_INTERVAL_S = 10.0

_LINK_COLUMNS = ["t", "t_s", "a", "b", "kind", "state", "reason", "length_km",
                 "capacity_gbps", "load_gbps", "utilisation"]


@dataclass
class RunView:
    """A run, reduced to what the viewer draws (see :func:`load_run`)."""

    run_dir: Path
    scenario_name: str
    summary: dict
    epoch_iso: str
    step_s: float
    steps_t_s: np.ndarray          # (S,) every step of the run
    node_names: list
    n_sats: int
    ground_r_km: np.ndarray        # (G, 3) ECEF
    ground_lat_lon: np.ndarray     # (G, 2) geodetic degrees
    key_t_s: np.ndarray            # (K,) positions keyframes
    sat_r_km: np.ndarray           # (K, N, 3) float32 ECEF, NaN where SGP4 failed
    frame_t_s: np.ndarray          # (F,) link frames
    link_stride: int
    pair_a: np.ndarray             # (P,) int32
    pair_b: np.ndarray
    pair_kind: np.ndarray          # (P,) 0 isl, 1 gsl
    # (P, F) per pair and frame; state code 0 = no such link at that frame, else
    # 1 + 16 * state + reason (state 0 down, 1 acquiring, 2 up; reason code of links.reasons)
    code: np.ndarray
    util: np.ndarray               # (P, F) float32
    load_gbps: np.ndarray          # (P, F) float32
    capacity_gbps: np.ndarray      # (P, F) float32
    length_km: np.ndarray          # (P, F) float32
    reason_names: list
    jobs: dict = field(default_factory=dict)   # name -> {"nodes": [...], "pairs": [[s, d]]}
    series: dict = field(default_factory=dict)  # per-step mesh figures (full resolution)
    job_steps: dict = field(default_factory=dict)  # name -> {end_s, step_time_s, busbw_gbps}
    ground_relay: bool = False
    routing: str = ""
    position_source: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.frame_t_s.shape[0])

    @property
    def n_pairs(self) -> int:
        return int(self.pair_a.shape[0])


def load_run(run_dir, *, max_link_cells: int = MAX_LINK_CELLS,
             key_interval_s: float = KEY_INTERVAL_S, link_values: bool = True,
             max_series_points: int = MAX_SERIES_POINTS) -> RunView:
    """Load ``run_dir`` (a folder written by ``meshnet run``) for the viewer.

    Parameters
    ----------
    run_dir : path-like
        Folder holding ``links.parquet`` and ``summary.json``.
    max_link_cells : int
        Budget of link pairs x frames (bounds the page size).
    key_interval_s : float
        Most seconds between two positions keyframes.
    max_series_points : int
        Most points of each side-panel series (longer runs are averaged over blocks of
        steps; the 95th percentile takes the block's largest).
    link_values : bool
        Keep utilisation, load, capacity and length per pair and frame (False: states only,
        as the CZML export needs; those arrays are then empty).

    Returns
    -------
    RunView

    Examples
    --------
    >>> v = load_run("runs/starlink_550_training")                # doctest: +SKIP
    >>> v.n_sats, v.n_frames, v.link_stride                        # doctest: +SKIP
    (1584, 600, 1)
    """
    run_dir = Path(run_dir)
    links_path = run_dir / "links.parquet"
    if not links_path.is_file():
        if (run_dir / "comparison.json").is_file():
            raise MeshnetError(f"{run_dir}: a comparison run; view one variant, e.g. "
                               f"meshnet view {run_dir}/<variant>")
        raise MeshnetError(f"{run_dir}: no links.parquet here; give a folder written by "
                           "'meshnet run'")
    try:
        pf = pq.ParquetFile(links_path)
        meta = {k.decode(): v.decode() for k, v in (pf.schema_arrow.metadata or {}).items()}
        n_rows = pf.metadata.num_rows
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MeshnetError(f"{links_path}: cannot read ({exc}); run 'meshnet run' again") from None
    summary = _read_json(run_dir / "summary.json")
    if n_rows == 0:
        raise MeshnetError(f"{links_path}: no rows; the run has no links to show")
    scenario = _scenario_from_meta(meta, links_path)
    world = _world(scenario, links_path)
    n_sats = world.n_sats
    names = [str(x) for x in world.node_names]
    n_nodes = len(names)

    # Pass 1: the steps and the link pairs (streamed: memory independent of the run length).
    steps, pairs = np.zeros(0), np.zeros(0, np.int64)
    epoch_ns = None
    for batch in _batches(pf, links_path, ["t", "t_s", "a", "b", "kind"]):
        t_s = batch.column("t_s").to_numpy()
        if epoch_ns is None:
            epoch_ns = int(batch.column("t").slice(0, 1).cast("int64").to_numpy()[0]
                           - round(t_s[0] * NS_PER_S))
        steps = np.union1d(steps, np.unique(t_s))
        pairs = np.union1d(pairs, np.unique(_pair_key(batch, n_nodes, links_path)))
    step_s = float(np.median(np.diff(steps))) if len(steps) > 1 else float(
        summary.get("step_s", 1.0))

    # Pass 2: the kept frames of every pair, and per-step figures at full resolution.
    n_pairs = len(pairs)
    link_stride = max(1, int(np.ceil(n_pairs * len(steps) / max_link_cells)))
    frame_t = steps[::link_stride]
    shape = (n_pairs, len(frame_t))
    code = np.zeros(shape, np.uint8)
    values = {c: np.zeros(shape if link_values else (n_pairs, 0), np.float32)
              for c in ("utilisation", "load_gbps", "capacity_gbps", "length_km")}
    series = _SeriesAccumulator(steps)
    from ..links.reasons import REASON_NAMES

    for batch in _batches(pf, links_path, _LINK_COLUMNS[1:]):
        step_idx = np.searchsorted(steps, batch.column("t_s").to_numpy())
        pair_idx = np.searchsorted(pairs, _pair_key(batch, n_nodes, links_path))
        kind = _codes(batch, "kind", ("isl", "gsl"))
        state = _codes(batch, "state", ("down", "acquiring", "up"))
        reason = _codes(batch, "reason", REASON_NAMES)
        cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in values}
        series.add(step_idx, kind, state, cols["utilisation"], cols["load_gbps"])
        keep = step_idx % link_stride == 0
        f_idx, p_idx = step_idx[keep] // link_stride, pair_idx[keep]
        code[p_idx, f_idx] = 1 + 16 * state[keep] + reason[keep]
        if link_values:
            for c, arr in values.items():
                arr[p_idx, f_idx] = cols[c][keep]

    pair_node = pairs // 2
    # Positions keyframes: every pos_stride-th step plus the last one.
    pos_stride = max(1, int(key_interval_s // step_s)) if step_s > 0 else 1
    # ... and fewer for very long runs, so that keyframes x satellites stays bounded
    pos_stride = max(pos_stride, int(np.ceil(len(steps) * n_sats / MAX_POS_CELLS)))
    key_idx = np.unique(np.r_[np.arange(0, len(steps), pos_stride), len(steps) - 1])
    key_t = steps[key_idx]
    sat_r, source = _positions(run_dir, world, scenario, epoch_ns, key_t)

    view = RunView(
        run_dir=run_dir, scenario_name=meta.get("scenario_name", summary.get("scenario", "")),
        summary=summary,
        epoch_iso=np.datetime64(epoch_ns, "ns").astype("datetime64[s]").astype(str) + "Z",
        step_s=step_s, steps_t_s=steps, node_names=names, n_sats=n_sats,
        ground_r_km=np.asarray(world.ground.r_km, np.float64).reshape(-1, 3),
        ground_lat_lon=np.column_stack([world.ground.lat_deg, world.ground.lon_deg]),
        key_t_s=key_t, sat_r_km=sat_r, frame_t_s=frame_t, link_stride=link_stride,
        pair_a=(pair_node // n_nodes).astype(np.int32),
        pair_b=(pair_node % n_nodes).astype(np.int32),
        pair_kind=(pairs % 2).astype(np.uint8), code=code, util=values["utilisation"],
        load_gbps=values["load_gbps"], capacity_gbps=values["capacity_gbps"],
        length_km=values["length_km"], reason_names=list(REASON_NAMES),
        ground_relay=bool(scenario.routing.ground_relay),
        # a [compare] variant stores the base scenario's text; its summary names its policy
        routing=str(summary.get("routing") or scenario.routing.policy),
        position_source=source)
    view.series = series.result(max_series_points)
    view.jobs = _jobs(run_dir / "flows.parquet")
    view.job_steps = _job_steps(run_dir / "jobs.parquet")
    return view


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MeshnetError(f"{path}: cannot read ({exc}); run 'meshnet run' again") from None


def _codes(table, col, names) -> np.ndarray:
    """Integer codes of a dictionary column, mapped onto the fixed ``names`` order."""
    arr = table.column(col)
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    if hasattr(arr, "indices"):
        lut = np.array([list(names).index(str(v)) if str(v) in names else 0
                        for v in arr.dictionary.to_pylist()], np.int64)
        return lut[arr.indices.to_numpy(zero_copy_only=False)]
    values = np.asarray(arr.to_pylist(), dtype=object)
    return np.array([list(names).index(str(v)) for v in values], np.int64)


def _scenario_from_meta(meta: dict, path: Path):
    """The run's scenario, rebuilt from the text stored in the file (with its --set lines)."""
    from ..scenario import apply_overrides, parse_scenario

    text = meta.get("scenario_toml")
    if not text:
        raise MeshnetError(f"{path}: no scenario stored in the file's metadata; run "
                           "'meshnet run' again with this meshnet")
    if text.startswith("# Hypatia satellite-network directory"):
        import tomllib

        from ..scenario import hypatia_scenario

        return hypatia_scenario(Path(tomllib.loads(text)["hypatia_dir"]))
    source = meta.get("scenario_source") or ""
    base = Path(source).parent if source and source != "None" else path.parent
    sc = parse_scenario(text, source=Path(source) if source else None, base_dir=base)
    sets = [ln[len("# --set "):].strip() for ln in text.splitlines()
            if ln.startswith("# --set ")]
    return apply_overrides(sc, sets)


def _world(scenario, path):
    from ..world import build_world

    try:
        return build_world(scenario)
    except FileNotFoundError as exc:
        raise MeshnetError(f"{path}: the run's scenario refers to {exc.filename}, which is "
                           "gone; put it back or add positions.parquet to the run folder"
                           ) from None


def _positions(run_dir, world, scenario, epoch_ns, key_t) -> tuple[np.ndarray, str]:
    pos_path = run_dir / "positions.parquet"
    n = world.n_sats
    if pos_path.is_file():
        t = pq.read_table(pos_path, columns=["t_s", "sat", "x_km", "y_km", "z_km"])
        ts = t.column("t_s").to_numpy()
        sel = np.isin(ts, key_t)
        if len(np.unique(ts[sel])) == len(key_t):
            out = np.full((len(key_t), n, 3), np.nan, np.float32)
            ki = np.searchsorted(key_t, ts[sel])
            si = t.column("sat").to_numpy()[sel]
            for j, c in enumerate(("x_km", "y_km", "z_km")):
                out[ki, si, j] = t.column(c).to_numpy()[sel]
            return out, "positions.parquet"
    import datetime as dt

    from ..orbits.propagate import propagate
    from ..timegrid import TimeGrid

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        microseconds=epoch_ns // 1000)
    grid = TimeGrid(epoch, np.round(key_t * NS_PER_S).astype(np.int64))
    return (propagate(world.constellation, grid).r_km.astype(np.float32),
            "propagated again from the run's scenario (SGP4)")


def _batches(pf, path, columns):
    try:
        yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    except MeshnetError:
        raise
    except Exception as exc:  # a damaged file fails part-way through
        raise MeshnetError(f"{path}: cannot read ({exc}); run 'meshnet run' again") from None


def _pair_key(batch, n_nodes, path) -> np.ndarray:
    a = batch.column("a").to_numpy().astype(np.int64)
    b = batch.column("b").to_numpy().astype(np.int64)
    if a.size and max(a.max(), b.max()) >= n_nodes:
        raise MeshnetError(f"{path}: node ids beyond the scenario's {n_nodes} nodes; "
                           "the scenario file changed since the run, run it again")
    return (a * n_nodes + b) * 2 + _codes(batch, "kind", ("isl", "gsl"))


class _SeriesAccumulator:
    """Per-step mesh figures at full time resolution (for the side panels), batch by batch.

    The 95th percentile of up-ISL utilisation is the order statistic ``floor(0.95 (n - 1))``
    of each step's values (rows of one step may straddle batches, so values are kept until
    their step is complete; links.parquet is time-major).
    """

    def __init__(self, steps):
        n = len(steps)
        self.steps = steps
        self.cnt = np.zeros(n)
        self.total = np.zeros(n)
        self.util = np.zeros(n)
        self.load = np.zeros(n)
        self.p95 = np.zeros(n)
        self._held_idx = np.zeros(0, np.int64)
        self._held_util = np.zeros(0)

    def add(self, step_idx, kind, state, util, load):
        n = len(self.steps)
        up = (kind == 0) & (state == 2)
        self.cnt += np.bincount(step_idx[up], minlength=n)
        self.total += np.bincount(step_idx[kind == 0], minlength=n)
        self.util += np.bincount(step_idx[up], weights=util[up], minlength=n)
        self.load += np.bincount(step_idx[up], weights=load[up], minlength=n)
        si = np.r_[self._held_idx, step_idx[up]]
        us = np.r_[self._held_util, util[up]]
        last = step_idx.max() if step_idx.size else -1
        done = si < last
        self._percentiles(si[done], us[done])
        self._held_idx, self._held_util = si[~done], us[~done]

    def _percentiles(self, si, us):
        order = np.lexsort((us, si))
        si, us = si[order], us[order]
        uniq, start, count = np.unique(si, return_index=True, return_counts=True)
        self.p95[uniq] = us[start + (0.95 * (count - 1)).astype(np.int64)]

    def result(self, max_points: int = MAX_SERIES_POINTS) -> dict:
        self._percentiles(self._held_idx, self._held_util)
        cnt = np.maximum(self.cnt, 1)
        out = {"t_s": self.steps, "mean_util": self.util / cnt, "p95_util": self.p95,
               "isl_up_frac": self.cnt / np.maximum(self.total, 1),
               "isl_load_tbps": self.load / 1e3}
        k = int(np.ceil(len(self.steps) / max_points))
        if k <= 1:
            return out
        # Blocks of k steps: time of the block's first step, means, the largest p95.
        starts = np.arange(0, len(self.steps), k)
        width = np.diff(np.r_[starts, len(self.steps)])
        block = {key: np.add.reduceat(v, starts) / width for key, v in out.items()
                 if key not in ("t_s", "p95_util")}
        block["t_s"] = self.steps[starts]
        block["p95_util"] = np.maximum.reduceat(self.p95, starts)
        block["block_steps"] = k
        return block


def _jobs(path: Path) -> dict:
    if not path.is_file():
        return {}
    t = pq.read_table(path, columns=["job", "src", "dst"]).to_pydict()
    out: dict = {}
    for job, s, d in zip(t["job"], t["src"], t["dst"], strict=True):
        if job == "background":
            continue
        e = out.setdefault(job, {"nodes": set(), "pairs": set()})
        e["nodes"].update((int(s), int(d)))
        e["pairs"].add((int(s), int(d)))
    return {k: {"nodes": sorted(v["nodes"]), "pairs": sorted(v["pairs"])}
            for k, v in out.items()}


def _job_steps(path: Path) -> dict:
    if not path.is_file():
        return {}
    t = pq.read_table(path).to_pydict()
    if not t.get("job"):
        return {}
    out: dict = {}
    for i, job in enumerate(t["job"]):
        e = out.setdefault(job, {"end_s": [], "step_time_s": [], "busbw_gbps": []})
        for k in e:
            v = t[k][i]
            e[k].append(float("nan") if v is None else float(v))
    return out
