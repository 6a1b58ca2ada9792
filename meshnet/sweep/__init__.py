"""Sweeps: one base scenario run over a grid or list of overrides, seeds and start epochs,
each run a task on Dask (or in this process), collected in one ``sweep.parquet``.

See docs/sweep.md. Command line: ``meshnet sweep SWEEP.toml``.

Examples
--------
>>> from meshnet.sweep import load_sweep, expand
>>> cfg = load_sweep("routing_policies")
>>> len(expand(cfg)) == 9 * len(cfg.seeds) * len(cfg.epochs)
True
"""

from .config import DEFAULT_METRICS, SweepConfig, builtin_sweeps, load_sweep, parse_sweep
from .driver import SweepResult, run_sweep
from .plan import RunSpec, expand

__all__ = [
    "DEFAULT_METRICS", "RunSpec", "SweepConfig", "SweepResult", "builtin_sweeps", "expand",
    "load_sweep", "parse_sweep", "run_sweep",
]
