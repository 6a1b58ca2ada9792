"""Expand a sweep into runs: variants x grid x seeds x epochs, each with a stable id and hash.

The run id is readable and made of the run's settings (``policy=ecmp+seed=1+epoch=...``), so
the same run keeps its folder when the sweep file is edited around it. The run hash covers
every table of the run's scenario: a run is reused only if nothing that changes its results
changed. The sweep's definition hash covers the list of (run id, run hash).

Examples
--------
>>> from meshnet.sweep.config import parse_sweep
>>> cfg = parse_sweep('''
... [sweep]
... scenario = "starlink_550"
... seeds = [1, 2]
... [grid]
... links.acquisition_s = [10, 30]
... ''', source="demo.toml")
>>> runs = expand(cfg)
>>> len(runs), runs[1].run_id
(4, 'acquisition_s=10+seed=2+epoch=20260101T000000Z')
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass

from ..errors import ScenarioError
from .config import apply_keys, scenario_tables, value_at


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: what a worker needs to run it, and its row keys."""

    run_id: str
    #: The variant's label (every setting but seed and epoch).
    variant: str
    #: ``{TABLE.KEY: value}`` of every key the sweep sets, for this run.
    overrides: dict
    seed: int
    epoch: object
    #: The run's validated scenario (base with every override, seed and epoch applied).
    scenario: object
    #: Hash of every table of ``scenario`` (hex).
    run_hash: str


def scenario_hash(scenario) -> str:
    """sha256 of every table of ``scenario`` (not its file name or comments).

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> a = load_scenario("starlink_550")
    >>> scenario_hash(a) == scenario_hash(load_scenario("starlink_550"))
    True
    """
    doc = {name: dataclasses.asdict(getattr(scenario, attr))
           for name, (attr, _) in scenario_tables().items()}
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def definition_hash(runs) -> str:
    """sha256 over the runs' (id, hash) pairs: equal exactly when the same runs are asked."""
    text = json.dumps([[r.run_id, r.run_hash] for r in runs], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _slug(value) -> str:
    if isinstance(value, float):
        text = f"{value:g}".replace("e+", "e")
    elif isinstance(value, list | tuple):
        text = "-".join(_slug(v) for v in value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:40] or "_"


def _folder_name(label: str) -> str:
    """A label as a file name: ``=`` and ``+`` kept, other unsafe characters ``_``."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", label).strip("._")[:120] or "run"


def _auto_label(items) -> str:
    return "+".join(f"{key.rsplit('.', 1)[-1]}={_slug(value)}" for key, value in items)


def _compare_axis(base) -> list:
    """The base scenario's ``[compare]`` variants as ``(label, items)`` (runner's own list)."""
    from ..runner import comparison_variants

    out = []
    for label, variant in comparison_variants(base):
        items = []
        for name, (attr, _) in scenario_tables().items():
            a = dataclasses.asdict(getattr(base, attr))
            b = dataclasses.asdict(getattr(variant, attr))
            items += [(f"{name}.{k}", b[k]) for k in b if a.get(k) != b[k]]
        out.append((label, tuple(items)))
    return out


def expand(cfg) -> list[RunSpec]:
    """Every run of sweep ``cfg``, validated, in a fixed order (variants, grid, seed, epoch).

    The base scenario's ``[compare]`` variants, the ``[[variants]]`` list and the ``[grid]``
    combinations multiply; each combination runs once per seed and epoch.

    Raises
    ------
    ScenarioError
        A key or value the scenario schema refuses (naming the sweep file and the key), or two
        runs that would be the same.
    """
    where = str(cfg.source) if cfg.source is not None else "<sweep>"
    fixed = list(cfg.fixed)
    # [set] first: it may also edit or empty the base scenario's [compare] lists.
    base = apply_keys(cfg.scenario, fixed, f"{where} [set]")
    compare = _compare_axis(base) or [(None, ())]
    cmp_keys = {k for _, items in compare for k, _ in items}
    clash = cmp_keys & ({k for k, _ in cfg.grid} | {k for _, it in cfg.variants for k, _ in it}
                        | {k for k, _ in fixed})
    if clash:
        raise ScenarioError(
            f"{where}: {sorted(clash)[0]} is varied by the base scenario's [compare] table "
            "and by the sweep; drop one (e.g. [set] compare.routing = [])")
    # [compare] is expanded here; each run is one plain scenario.
    fixed_sc = base.replace(compare=dataclasses.replace(base.compare, routing=(),
                                                        allocation=()))
    variants = list(cfg.variants) or [(None, ())]
    grid_keys = [k for k, _ in cfg.grid]
    grid = list(itertools.product(*[values for _, values in cfg.grid])) or [()]
    all_keys = list(dict.fromkeys(
        [k for k, _ in fixed if not k.startswith("compare.")] + sorted(cmp_keys)
        + [k for _, items in cfg.variants for k, _ in items] + grid_keys))

    runs: list[RunSpec] = []
    for (c_label, c_items), (v_label, v_items), combo in itertools.product(
            compare, variants, grid):
        g_items = tuple(zip(grid_keys, combo, strict=True))
        sc = apply_keys(fixed_sc, c_items, f"{where} [compare]")
        sc = apply_keys(sc, v_items, f"{where} [[variants]]")
        sc = apply_keys(sc, g_items, f"{where} [grid]")
        parts = [p for p in (c_label, v_label if v_label is not None else (
            _auto_label(v_items) if v_items else None), _auto_label(g_items) if g_items
            else None) if p]
        label = "+".join(parts) or "base"
        overrides = {k: value_at(sc, k) for k in all_keys}
        for seed, epoch in itertools.product(cfg.seeds, cfg.epochs):
            run_sc = apply_keys(sc, [("scenario.seed", seed), ("scenario.epoch", epoch)],
                                f"{where} [sweep].seeds/epochs")
            run_id = (f"{_folder_name(label)}+seed={seed}"
                      f"+epoch={epoch.strftime('%Y%m%dT%H%M%SZ')}")
            runs.append(RunSpec(run_id=run_id, variant=label, overrides=overrides, seed=seed,
                                epoch=run_sc.run.epoch, scenario=run_sc,
                                run_hash=scenario_hash(run_sc)))
    return _unique(runs, where)


def _unique(runs, where) -> list[RunSpec]:
    seen: dict[str, RunSpec] = {}
    by_hash: dict[str, RunSpec] = {}
    out = []
    for r in runs:
        twin = by_hash.get(r.run_hash)
        if twin is not None:
            raise ScenarioError(f"{where}: runs '{twin.run_id}' and '{r.run_id}' are the same "
                                "scenario; remove the repeated value or variant")
        by_hash[r.run_hash] = r
        if r.run_id in seen:  # two values with the same slug: tell them apart by hash
            r = dataclasses.replace(r, run_id=f"{r.run_id}+{r.run_hash[:8]}")
        seen[r.run_id] = r
        out.append(r)
    return out
