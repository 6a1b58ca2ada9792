"""``sweep.parquet`` (a row per run) and the comparison plots.

Columns: ``run_id``, ``variant``, one per key the sweep sets (``routing.policy``), ``seed``,
``epoch``, ``status`` (``ok``/``failed``), ``error``, ``wall_s``, then every figure of the
run's ``summary.json`` flattened with dots (``jobs.llm-7b.mean_step_s``,
``latency_stretch.median_stretch``). A metric whose name equals a set key's column is
prefixed ``summary.``.
"""

from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

#: Columns before the overrides and after them (the metrics follow, sorted by name).
HEAD = ("run_id", "variant")
TAIL = ("seed", "epoch", "status", "error", "wall_s")


def flatten_summary(summary: dict) -> dict:
    """``summary.json`` as one level of dotted names; lists of jobs keyed by job name.

    The run's own wall time is left out (the sweep measures ``wall_s``); lists of plain
    values become JSON text.

    Examples
    --------
    >>> flatten_summary({"steps": 3, "jobs": [{"job": "a", "mean_step_s": 2.0}],
    ...                  "latency_stretch": {"p95_stretch": 1.5}, "wall_time_s": 9.0})
    {'steps': 3, 'jobs.a.mean_step_s': 2.0, 'latency_stretch.p95_stretch': 1.5}
    """
    out: dict = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
              and all("job" in v for v in value)):
            for v in value:
                walk(f"{prefix}{v['job']}.", {k: x for k, x in v.items() if k != "job"})
        elif isinstance(value, list):
            out[prefix[:-1]] = json.dumps(value, sort_keys=True)
        else:
            out[prefix[:-1]] = value

    walk("", {k: v for k, v in summary.items() if k != "wall_time_s"})
    return out


def build_rows(runs, records: dict) -> list[dict]:
    """One row per run of ``runs`` (plan order), from ``records`` keyed by run id."""
    keys = list(runs[0].overrides) if runs else []
    rows = []
    for r in runs:
        rec = records.get(r.run_id, {"status": "failed", "error": "not run", "wall_s": None})
        row = {"run_id": r.run_id, "variant": r.variant}
        row.update({k: r.overrides[k] for k in keys})
        row.update(seed=r.seed, epoch=r.epoch, status=rec.get("status"),
                   error=rec.get("error"), wall_s=rec.get("wall_s"))
        for name, value in flatten_summary(rec.get("summary") or {}).items():
            row[f"summary.{name}" if name in row else name] = value
        rows.append(row)
    return rows


def rows_table(rows: list[dict], override_keys) -> pa.Table:
    """The rows as a table: fixed columns first, then overrides, then sorted metrics."""
    fixed = [*HEAD, *override_keys, *TAIL]
    metrics = sorted({k for row in rows for k in row} - set(fixed))
    cols = {}
    for name in fixed + metrics:
        values = [row.get(name) for row in rows]
        if name == "epoch":
            cols[name] = pa.array(values, pa.timestamp("us", tz="UTC"))
        elif name == "seed":
            cols[name] = pa.array(values, pa.int64())
        elif name in ("run_id", "variant", "status", "error"):
            cols[name] = pa.array(values, pa.string())
        else:
            cols[name] = _column(values)
    return pa.table(cols)


def _column(values):
    """A column from mixed Python values: numbers, text, or (if mixed) JSON text."""
    vals = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    if all(v is None or isinstance(v, bool) for v in vals) and any(v is not None for v in vals):
        return pa.array(vals, pa.bool_())
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in vals):
        if all(v is None or isinstance(v, int) for v in vals):
            return pa.array(vals, pa.int64() if any(v is not None for v in vals)
                            else pa.float64())
        return pa.array([None if v is None else float(v) for v in vals], pa.float64())
    if all(v is None or isinstance(v, str) for v in vals):
        return pa.array(vals, pa.string())
    return pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str)
                     for v in vals], pa.string())


def write_table(path: Path, table: pa.Table, meta: dict) -> None:
    """Write ``sweep.parquet`` atomically."""
    from ..io.datasets import AtomicParquetWriter

    with AtomicParquetWriter(path, table.schema, meta) as w:
        w.write(table)


def choose_metrics(table: pa.Table, patterns) -> tuple[list[str], list[str]]:
    """Numeric metric columns matching ``patterns`` (globs), and patterns that matched none."""
    numeric = [f.name for f in table.schema
               if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
               and f.name not in (*HEAD, *TAIL)]
    chosen, unmatched = [], []
    for pat in patterns:
        hits = [n for n in numeric if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            unmatched.append(pat)
        chosen += [h for h in hits if h not in chosen]
    return chosen, unmatched


def spread(table: pa.Table, metric: str) -> list[tuple[str, np.ndarray]]:
    """``(variant, values over seeds and epochs)`` for ``metric``, in the sweep's order,
    successful runs only."""
    variants = table.column("variant").to_pylist()
    status = table.column("status").to_pylist()
    values = table.column(metric).to_pylist()
    groups: dict[str, list] = {}
    for v, s, x in zip(variants, status, values, strict=True):
        if s == "ok" and x is not None:
            groups.setdefault(v, []).append(float(x))
        else:
            groups.setdefault(v, [])
    return [(v, np.asarray(xs, float)) for v, xs in groups.items()]


def write_plots(out_dir: Path, table: pa.Table, metrics: list[str]) -> list[Path]:
    """One PNG per metric (box over seeds and epochs per variant, every run a dot) in
    ``out_dir/plots/``, plus ``comparison.png`` with all of them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..io.datasets import atomic_write, prepare_dir

    if not metrics or table.num_rows == 0:
        return []
    plot_dir = prepare_dir(Path(out_dir) / "plots")
    written = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * _n_variants(table) + 2), 4.2))
        _draw(ax, table, metric)
        fig.tight_layout()
        path = plot_dir / f"{_file_slug(metric)}.png"
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110))
        plt.close(fig)
        written.append(path)
    ncols = 2 if len(metrics) > 1 else 1
    nrows = -(-len(metrics) // ncols)
    width = max(6.0, 0.6 * _n_variants(table) + 2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.8 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        _draw(ax, table, metric)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    path = Path(out_dir) / "comparison.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return [*written, path]


def _n_variants(table) -> int:
    return len(set(table.column("variant").to_pylist()))


def _draw(ax, table, metric) -> None:
    groups = spread(table, metric)
    labels = [v for v, _ in groups]
    pos = np.arange(1, len(groups) + 1)
    ax.boxplot([x if x.size else [np.nan] for _, x in groups], positions=pos, widths=0.55,
               showfliers=False, medianprops={"color": "black"})
    # Every run a dot, coloured by start epoch (the geometry under the stations).
    where = {v: p for v, p in zip(labels, pos, strict=True)}
    epochs = table.column("epoch").to_pylist()
    order = list(dict.fromkeys(epochs))
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for i, ep in enumerate(order):
        xs, ys = [], []
        for v, e, s, y in zip(table.column("variant").to_pylist(), epochs,
                              table.column("status").to_pylist(),
                              table.column(metric).to_pylist(), strict=True):
            if e == ep and s == "ok" and y is not None:
                xs.append(where[v] + rng.uniform(-0.12, 0.12))
                ys.append(float(y))
        label = ep.strftime("%Y-%m-%d %H:%M UTC") if len(order) > 1 else None
        ax.plot(xs, ys, "o", ms=3.5, alpha=0.75, color=f"C{i % 10}", label=label)
    if len(order) > 1:
        ax.legend(title="epoch", fontsize=7, title_fontsize=7)
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.set_title(f"{metric} (spread over seeds and epochs)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def _file_slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def report_lines(table: pa.Table, metrics: list[str], limit: int = 4) -> list[str]:
    """Mean and standard deviation over seeds and epochs of each variant, per metric."""
    if not metrics or table.num_rows == 0:
        return []
    shown = metrics[:limit]
    widths = [max(20, len(m)) for m in shown]
    width = max(8, *(len(v) for v in table.column("variant").to_pylist()))
    lines = [f"{'variant':<{width}} {'runs':>5} "
             + " ".join(f"{m:>{w}}" for m, w in zip(shown, widths, strict=True))]
    groups = {m: dict(spread(table, m)) for m in shown}
    for v in groups[shown[0]]:
        cells = []
        for m, w in zip(shown, widths, strict=True):
            x = groups[m][v]
            sd = x.std(ddof=1) if x.size > 1 else 0.0
            cells.append(f"{'-':>{w}}" if not x.size else f"{_g(x.mean()) + ' ± ' + _g(sd):>{w}}")
        lines.append(f"{v:<{width}} {len(groups[shown[0]][v]):>5} " + " ".join(cells))
    return lines


def _g(x: float) -> str:
    return f"{x:.4g}"
