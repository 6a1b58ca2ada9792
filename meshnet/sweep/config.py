"""Sweep files: TOML in, one validated :class:`SweepConfig` out.

A sweep names a base scenario and the ways to vary it (docs/sweep.md)::

    [sweep]
    scenario = "starlink_550_training"   # built-in name, or a path relative to this file
    seeds = [1, 2, 3]                    # [scenario].seed of each run
    epochs = [2026-02-23T00:00:00Z, 2026-02-23T06:00:00Z]

    [set]                                # the same for every run
    scenario.duration_s = 120

    [grid]                               # every combination of these values
    routing.policy = ["shortest_delay", "ecmp"]

    [[variants]]                         # and/or a list of hand-made variants
    label = "fast-lasers"
    links.acquisition_s = 5

Keys are any scenario ``TABLE.KEY``, nested tables too (``traffic.compute.count``), and
numbered entries of arrays of tables (``traffic.jobs.0.model_params``). Every value is checked
against the scenario schema before anything runs; a mistake is one line naming the sweep file
and the key.

Examples
--------
>>> cfg = parse_sweep('''
... [sweep]
... scenario = "starlink_550"
... seeds = [1, 2]
... [grid]
... links.acquisition_s = [10, 30]
... ''', source="demo.toml")
>>> cfg.scenario.name, cfg.seeds, cfg.grid
('starlink_550', (1, 2), (('links.acquisition_s', (10, 30)),))
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from ..config import check_input_file, check_text, option, parse_table
from ..errors import MeshnetError, ScenarioError

#: Tables a sweep file may hold.
SWEEP_TABLES = ("sweep", "set", "grid", "variants")

#: Metrics plotted when the sweep names none (glob patterns over the flattened summary.json).
DEFAULT_METRICS = (
    "jobs.*.mean_step_s",
    "jobs.*.comm_share",
    "mean_isl_utilisation",
    "path_changes",
    "reroutes",
    "blackholed_s",
    "latency_stretch.median_stretch",
    "background_carried_gbps",
)

# Set through [sweep].seeds and [sweep].epochs, which also make them columns of their own.
_RESERVED = {"scenario.seed": "seeds", "scenario.epoch": "epochs"}


@dataclass(frozen=True)
class SweepTable:
    """The ``[sweep]`` table."""

    scenario: str = option(doc="base scenario: a built-in name or a .toml path (relative to "
                               "the sweep file)")
    name: str | None = option(None, doc="sweep name, used for the default output folder "
                                        "(default: the file name)")
    seeds: tuple[int, ...] = option((), doc="[scenario].seed of the runs (default: the "
                                            "scenario's seed)")
    epochs: tuple[datetime, ...] = option((), doc="[scenario].epoch of the runs (default: "
                                                  "the scenario's epoch)")
    metrics: tuple[str, ...] = option((), doc="summary metrics to plot (glob patterns; "
                                              "default: DEFAULT_METRICS)")
    datasets: bool = option(True, doc="keep each run's Parquet datasets (false: only "
                                      "summary.json)")
    plots: bool = option(False, doc="draw each run's own PNG plots")

    def validate(self, name: str, where: str) -> None:
        for key, values in (("seeds", self.seeds), ("epochs", self.epochs)):
            if len(set(values)) != len(values):
                raise ScenarioError(f"{where}: [{name}].{key} lists a value twice; list each "
                                    "once")
        for i, seed in enumerate(self.seeds):
            if seed < 0:
                raise ScenarioError(f"{where}: [{name}].seeds[{i}] must be >= 0, found {seed}")


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep. Build it with :func:`load_sweep` or :func:`parse_sweep`."""

    name: str
    #: The base scenario (validated), its ``[compare]`` table untouched.
    scenario: object
    scenario_spec: str
    seeds: tuple[int, ...]
    epochs: tuple[datetime, ...]
    #: ``((key, value), ...)``: overrides applied to every run.
    fixed: tuple
    #: ``((key, (value, ...)), ...)``: every combination is run.
    grid: tuple
    #: ``((label or None, ((key, value), ...)), ...)``: one run per entry (times the grid).
    variants: tuple
    metrics: tuple[str, ...]
    datasets: bool
    plots: bool
    source: Path | None = None
    text: str = ""


def _sweeps_root():
    """Where the built-in sweep files are (``topologies/sweeps``, shipped as package data)."""
    try:
        return resources.files("meshnet.topologies").joinpath("sweeps")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "topologies" / "sweeps"


def builtin_sweeps() -> list[str]:
    """Names of the sweep files shipped with meshnet.

    Examples
    --------
    >>> "routing_policies" in builtin_sweeps()
    True
    """
    root = _sweeps_root()
    if not root.is_dir():
        return []
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_sweep(spec: str | Path) -> SweepConfig:
    """Load and validate a sweep file (a path, or the name of a built-in sweep).

    Raises
    ------
    ScenarioError
        One line naming the sweep file, the key and what to change.
    """
    text_spec = str(spec)
    path = Path(text_spec).expanduser()
    if path.exists():
        try:
            check_input_file(path, "sweep file (.toml)")
            text = check_text(path.read_bytes(), path, "sweep file (.toml)")
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read sweep file ({exc})") from None
        except MeshnetError as exc:
            raise ScenarioError(str(exc)) from None
        return parse_sweep(text, source=path.resolve())
    if "/" not in text_spec and not text_spec.endswith(".toml"):
        res = _sweeps_root().joinpath(f"{text_spec}.toml")
        if res.is_file():
            with resources.as_file(res) as p:
                return parse_sweep(res.read_text(encoding="utf-8"), source=Path(p))
    names = builtin_sweeps()
    close = difflib.get_close_matches(text_spec, names, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "built-in: " + ", ".join(names)
    raise ScenarioError(f"sweep '{text_spec}' is neither a file nor a built-in sweep; {hint}")


def parse_sweep(text: str, source: Path | str | None = None) -> SweepConfig:
    """Validate sweep TOML ``text``; ``source`` names the file in messages and resolves
    a relative base-scenario path."""
    where = str(source) if source is not None else "<sweep>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    for key in doc:
        if key not in SWEEP_TABLES:
            close = difflib.get_close_matches(key, SWEEP_TABLES, n=1, cutoff=0.5)
            hint = f"did you mean [{close[0]}]?" if close else (
                "a sweep file holds " + ", ".join(f"[{t}]" for t in SWEEP_TABLES))
            raise ScenarioError(f"{where}: unknown table [{key}]; {hint}")
    if "sweep" not in doc:
        raise ScenarioError(f"{where}: missing table [sweep] (with scenario = \"NAME\")")
    head = parse_table(SweepTable, doc["sweep"], "sweep", where)
    base_dir = Path(source).parent if source is not None else Path.cwd()
    scenario = _load_base(head.scenario, base_dir, where)

    fixed = _leaves(_table(doc, "set", where), "set", where)
    grid = []
    for key, values in _leaves(_table(doc, "grid", where), "grid", where):
        if not isinstance(values, list) or not values:
            raise ScenarioError(
                f"{where}: [grid].{key} must be a non-empty list of values, found "
                f"{values!r:.40}; write {key} = [A, B] (or put one value in [set])")
        grid.append((key, tuple(values)))
    variants = []
    raw = doc.get("variants", [])
    if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
        raise ScenarioError(f"{where}: variants must be an array of tables ([[variants]])")
    for i, entry in enumerate(raw):
        entry = dict(entry)
        label = entry.pop("label", None)
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ScenarioError(f"{where}: [[variants]][{i}].label must be a non-empty string")
        items = _leaves(entry, f"variants[{i}]", where)
        if not items:
            raise ScenarioError(f"{where}: [[variants]][{i}] sets no key; give TABLE.KEY = "
                                "VALUE pairs")
        variants.append((label, tuple(items)))

    _check_overlaps(fixed, grid, variants, where)
    cfg = SweepConfig(
        name=head.name or (Path(source).stem if source is not None else "sweep"),
        scenario=scenario, scenario_spec=head.scenario,
        seeds=head.seeds or (scenario.run.seed,),
        epochs=head.epochs or (scenario.run.epoch,),
        fixed=tuple(fixed), grid=tuple(grid), variants=tuple(variants),
        metrics=head.metrics or DEFAULT_METRICS, datasets=head.datasets, plots=head.plots,
        source=Path(source) if source is not None else None, text=text)
    return cfg


def _table(doc, name, where):
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: [{name}] must be a table of TABLE.KEY = VALUE")
    return value


def _leaves(table: dict, name: str, where: str, prefix: str = "") -> list:
    """``{"routing": {"policy": x}}`` (TOML dotted keys) -> ``[("routing.policy", x)]``."""
    out = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _leaves(value, name, where, prefix=f"{dotted}.")
            continue
        if "." not in dotted:
            raise ScenarioError(f"{where}: [{name}].{dotted} is not TABLE.KEY; write e.g. "
                                f"routing.policy or scenario.duration_s")
        if dotted in _RESERVED:
            raise ScenarioError(f"{where}: [{name}].{dotted}: set it with "
                                f"[sweep].{_RESERVED[dotted]} instead")
        out.append((dotted, value))
    return out


def _check_overlaps(fixed, grid, variants, where) -> None:
    """A key is varied in one place only (else which value wins would be a guess)."""
    places = {}
    for key, _ in fixed:
        places.setdefault(key, set()).add("[set]")
    for key, _ in grid:
        places.setdefault(key, set()).add("[grid]")
    for _, items in variants:
        for key, _ in items:
            places.setdefault(key, set()).add("[[variants]]")
    for key, where_set in places.items():
        if len(where_set) > 1:
            raise ScenarioError(f"{where}: {key} is set in both {' and '.join(sorted(where_set))}"
                                "; set each key in one place")


def _load_base(spec: str, base_dir: Path, where: str):
    from ..scenario import load_scenario

    candidate = Path(spec).expanduser()
    if not candidate.is_absolute() and (base_dir / candidate).exists():
        candidate = base_dir / candidate
        spec = str(candidate)
    try:
        return load_scenario(spec)
    except MeshnetError as exc:
        raise ScenarioError(f"{where}: [sweep].scenario: {exc}") from None


# --- overrides -------------------------------------------------------------------------------

def scenario_tables() -> dict:
    """Scenario table name -> (Scenario attribute, dataclass)."""
    from ..scenario import _tables

    return {name: ("run" if name == "scenario" else name, cls)
            for name, cls in _tables().items()}


def apply_keys(scenario, overrides, where: str):
    """A copy of ``scenario`` with ``(TABLE.KEY, value)`` pairs applied and re-validated.

    Like :func:`meshnet.scenario.apply_overrides`, plus numbered entries of arrays of tables
    (``traffic.jobs.0.model_params``). Errors name ``where`` and the key.

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> sc = apply_keys(load_scenario("starlink_550_training"),
    ...                 [("traffic.jobs.0.compute_s", 3)], "demo.toml")
    >>> sc.traffic.jobs[0].compute_s
    3.0
    """
    tables = scenario_tables()
    docs: dict = {}
    for key, value in overrides:
        path = key.split(".")
        table = path[0]
        if table not in tables:
            close = difflib.get_close_matches(table, list(tables), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else "tables: " + ", ".join(tables)
            raise ScenarioError(f"{where}: {key}: unknown scenario table '{table}'; {hint}")
        attr = tables[table][0]
        doc = docs.setdefault(table, _mutable(dataclasses.asdict(getattr(scenario, attr))))
        node = doc
        for depth, part in enumerate(path[1:], start=1):
            last = depth == len(path) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ScenarioError(
                        f"{where}: {key}: [{'.'.join(path[:depth])}] is an array of "
                        f"{len(node)} tables; index it with 0..{len(node) - 1}")
                part = int(part)
            elif not isinstance(node, dict):
                raise ScenarioError(f"{where}: {key}: [{'.'.join(path[:depth])}] is not a "
                                    "table")
            elif not last and not isinstance(node.get(part), dict | list):
                if part in node and node[part] is not None:
                    raise ScenarioError(f"{where}: {key}: {'.'.join(path[:depth + 1])} is a "
                                        "value, not a table")
                node[part] = {}
            if last:
                node[part] = value
            else:
                node = node[part]
    changed = {}
    for table, doc in docs.items():
        attr, cls = tables[table]
        changed[attr] = parse_table(cls, doc, table, where)
    if not changed:
        return scenario
    # The run's outputs carry the scenario text in their metadata: note what the sweep set.
    note = "\n".join(f"# sweep: {key} = {json.dumps(value, default=str)}"
                     for key, value in overrides)
    return dataclasses.replace(scenario, **changed, text=f"{scenario.text.rstrip()}\n{note}\n")


def _mutable(obj):
    if isinstance(obj, dict):
        return {k: _mutable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_mutable(v) for v in obj]
    return obj


def value_at(scenario, key: str):
    """The value of ``TABLE.KEY`` in ``scenario`` (lists of tables indexed by number).

    Examples
    --------
    >>> from meshnet.scenario import load_scenario
    >>> value_at(load_scenario("starlink_550_training"), "traffic.jobs.0.name")
    'llm-7b'
    """
    path = key.split(".")
    node = dataclasses.asdict(getattr(scenario, scenario_tables()[path[0]][0]))
    for part in path[1:]:
        if isinstance(node, list | tuple):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


