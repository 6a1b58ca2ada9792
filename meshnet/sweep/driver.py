"""``meshnet sweep``: plan, resume, run (serially or on Dask), then tabulate and plot.

Output folder::

    OUT/sweep.json        the definition (sweep file text, runs, definition hash)
    OUT/runs/<run id>/    each run's outputs, and done.json (complete) or error.json
    OUT/sweep.parquet     a row per run (meshnet.sweep.results)
    OUT/comparison.png    the chosen metrics per variant, spread over seeds and epochs
    OUT/plots/*.png       one figure per metric
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MeshnetError
from .execute import RunTask, check_dask, completed, read_summary, run_dask, run_serial
from .plan import definition_hash, expand
from .results import (
    build_rows,
    choose_metrics,
    report_lines,
    rows_table,
    write_plots,
    write_table,
)

#: The folder's definition file; its presence marks a sweep folder.
DEFINITION = "sweep.json"


@dataclass
class SweepResult:
    """What a sweep did; ``report()`` is what ``meshnet sweep`` prints."""

    out_dir: Path
    table: object
    runs: int
    reused: int
    ran: int
    failed: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    unmatched: list = field(default_factory=list)
    mode: str = "serial"

    def report(self) -> str:
        ok = self.runs - len(self.failed)
        lines = [f"meshnet sweep: {self.runs} runs ({self.reused} already complete, "
                 f"{self.ran} run now, {self.mode}); {ok} ok, {len(self.failed)} failed", ""]
        lines += report_lines(self.table, self.metrics)
        for run_id, err in self.failed[:5]:
            lines.append(f"failed: {run_id}: {err}")
        if len(self.failed) > 5:
            lines.append(f"... and {len(self.failed) - 5} more failed runs (column 'error')")
        for pat in self.unmatched:
            lines.append(f"note: metric '{pat}' matches no numeric column of sweep.parquet")
        lines += ["", f"outputs: {self.out_dir}/sweep.parquet, comparison.png, plots/, "
                      "runs/<run id>/"]
        return "\n".join(lines)


def run_sweep(cfg, out_dir, mode: str = "local", workers: int | None = None,
              force: bool = False, metrics=None, progress: bool = True,
              processes: bool = True) -> SweepResult:
    """Run every run of sweep ``cfg`` not already complete in ``out_dir``; write the table
    and plots.

    Parameters
    ----------
    cfg : SweepConfig
        From :func:`meshnet.sweep.load_sweep`.
    out_dir : Path
        The sweep's folder (created; reused when it holds the same sweep).
    mode : str
        ``"serial"`` (this process), ``"local"`` (a Dask LocalCluster of ``workers``
        processes) or a Dask scheduler address.
    force : bool
        Reuse a folder holding a different sweep: its runs whose scenario is unchanged are
        kept, runs not in this sweep are removed.
    metrics : list of str, optional
        Metrics to plot (glob patterns); default the sweep's ``metrics``.
    processes : bool
        LocalCluster workers as processes (default) or threads.
    """
    runs = expand(cfg)
    if mode != "serial":
        check_dask()  # before the folder is touched
    out = Path(out_dir)
    digest = definition_hash(runs)
    _claim_folder(out, cfg, runs, digest, force)
    runs_dir = out / "runs"
    records: dict = {}
    todo = []
    for r in runs:
        done = completed(runs_dir / r.run_id, r.run_hash)
        if done is not None:
            try:
                records[r.run_id] = {**done, "summary": read_summary(runs_dir / r.run_id)}
                continue
            except (OSError, ValueError):
                pass
        todo.append(RunTask(run_id=r.run_id, run_hash=r.run_hash, scenario=r.scenario,
                            run_dir=str((runs_dir / r.run_id).resolve()),
                            datasets=cfg.datasets, plots=cfg.plots))
    reused = len(records)
    if mode == "serial":
        stream = run_serial(todo)
    else:
        stream = run_dask(todo, None if mode == "local" else mode, workers=workers,
                          processes=processes)
    bar = _bar(len(todo), progress)
    try:
        for rec in stream:
            records[rec["run_id"]] = rec
            if bar is not None:
                bar.update(1)
                if rec.get("status") != "ok":
                    bar.write(f"failed: {rec['run_id']}: {rec.get('error')}")
    finally:
        stream.close()  # stops a local cluster now, also on Ctrl-C
        if bar is not None:
            bar.close()
    return _finish(cfg, out, runs, records, digest, reused, len(todo), metrics,
                   "serial" if mode == "serial" else
                   ("Dask LocalCluster" if mode == "local" else f"Dask {mode}"))


def _finish(cfg, out, runs, records, digest, reused, ran, metrics, mode) -> SweepResult:
    from ..io.datasets import run_metadata

    keys = list(runs[0].overrides) if runs else []
    rows = build_rows(runs, records)
    table = rows_table(rows, keys)
    meta = run_metadata(sweep_name=cfg.name, definition_hash=digest, sweep_toml=cfg.text,
                        sweep_source=str(cfg.source))
    write_table(out / "sweep.parquet", table, meta)
    chosen, unmatched = choose_metrics(table, metrics or cfg.metrics)
    write_plots(out, table, chosen)
    failed = [(r["run_id"], r["error"]) for r in rows if r["status"] != "ok"]
    return SweepResult(out_dir=out, table=table, runs=len(runs), reused=reused, ran=ran,
                       failed=failed, metrics=chosen, unmatched=unmatched, mode=mode)


def _claim_folder(out: Path, cfg, runs, digest: str, force: bool) -> None:
    """Make ``out`` this sweep's folder: new, or holding the same definition (or --force)."""
    from ..io.datasets import prepare_dir, write_json_atomic

    final = Path(os.path.abspath(out))
    if final.exists() and not final.is_dir():
        raise MeshnetError(f"--out {out}: exists and is not a folder; choose another --out")
    cwd = Path(os.path.abspath(os.getcwd()))
    if final == cwd or final in cwd.parents:
        raise MeshnetError(f"--out {out}: is the current folder or holds it; name a new "
                           "folder for the sweep")
    definition = final / DEFINITION
    if final.is_dir():
        if definition.is_file():
            try:
                old = json.loads(definition.read_text(encoding="utf-8")).get("definition_hash")
            except (OSError, ValueError, AttributeError):
                old = None
            if old != digest and not force:
                raise MeshnetError(
                    f"--out {out}: holds a different sweep (definition {str(old)[:12]}, this "
                    f"one {digest[:12]}); choose another --out, or pass --force to keep its "
                    "unchanged runs and redo or drop the others")
        elif any(final.iterdir()):
            raise MeshnetError(f"--out {out}: exists and holds files not from a meshnet sweep "
                               f"(no {DEFINITION}); name a new or empty folder")
    prepare_dir(final / "runs")
    write_json_atomic(definition, {
        "name": cfg.name,
        "definition_hash": digest,
        "source": str(cfg.source),
        "scenario": cfg.scenario_spec,
        "runs": [{"run_id": r.run_id, "run_hash": r.run_hash, "variant": r.variant,
                  "seed": r.seed, "epoch": r.epoch.isoformat()} for r in runs],
        "sweep_toml": cfg.text,
    })
    if force:  # drop run folders of the old definition that this one does not have
        keep = {r.run_id for r in runs}
        for p in (final / "runs").iterdir():
            if p.is_dir() and not p.name.startswith(".") and p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)


def _bar(total: int, enabled: bool):
    if not enabled or total < 1:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc="sweep", dynamic_ncols=True)
