"""Scenario files: TOML in, one validated, frozen :class:`Scenario` out.

A scenario is named by a path to a ``.toml`` file, by the bare name of a built-in file
(``starlink_550``; see ``meshnet info``), or by the path of a Hypatia satellite-network
directory, which is routed with Hypatia's semantics.

Tables
------
``[scenario]`` name, epoch, duration_s, step_s, seed; ``[constellation]``; ``[ground]``;
``[links]``; ``[routing]``; ``[traffic]``; ``[allocation]``; ``[power]`` (docs/power.md);
``[faults]`` (docs/faults.md). Every table but ``[scenario]`` and ``[constellation]`` may be
left out to take its defaults.

Examples
--------
>>> sc = load_scenario("starlink_550")
>>> sc.run.name, len(sc.grid(duration_s=10, step_s=1))
('starlink_550', 10)
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from .config import check_input_file, check_text, option, parse_table
from .errors import MeshnetError, ScenarioError
from .timegrid import TimeGrid


@dataclass(frozen=True)
class RunConfig:
    """The ``[scenario]`` table."""

    name: str = option(doc="scenario name, used in outputs")
    epoch: datetime = option(doc="time zero, ISO 8601 UTC")
    duration_s: float = option(600.0, min=0.0, min_inclusive=False, doc="length of the run")
    step_s: float = option(1.0, min=0.0, min_inclusive=False, doc="time step")
    seed: int = option(0, min=0, doc="seed of every random choice")

    def validate(self, name: str, where: str) -> None:
        from .timegrid import TimeGrid, check_time_range

        try:
            check_time_range(self.epoch, self.duration_s, f"{where}: [{name}]")
            TimeGrid.from_duration(self.epoch, self.duration_s, self.step_s)
        except ScenarioError:
            raise
        except MeshnetError as exc:
            msg = str(exc)
            if not msg.startswith(where):
                msg = f"{where}: [{name}].step_s/duration_s: {msg}"
            raise ScenarioError(msg) from None


@dataclass(frozen=True)
class CompareConfig:
    """The ``[compare]`` table: run the same scenario under several policies, side by side.

    ``meshnet run`` runs one variant per listed routing policy (with the scenario's allocation
    method) and per listed allocation method (with the scenario's routing policy), each into
    its own sub-directory, and prints one table comparing them. ``ground_reference_bps`` adds
    each job's step time on a terrestrial cluster where every accelerator has a NIC of that
    rate (an ideal non-blocking fabric, no propagation delay).
    """

    routing: tuple[str, ...] = option((), doc="routing policies to compare")
    allocation: tuple[str, ...] = option((), doc="allocation methods to compare")
    ground_reference_bps: float | None = option(
        None, min=0.0, min_inclusive=False,
        doc="per-accelerator NIC rate of a ground cluster to compare step times with")
    seeds: tuple[int, ...] = option(
        (), doc="meshnet compare: seeds to run every variant with (default: [scenario].seed)")
    epochs: tuple[datetime, ...] = option(
        (), doc="meshnet compare: epochs (ISO 8601 UTC) to run every variant from "
                "(default: [scenario].epoch)")

    def validate(self, name: str, where: str) -> None:
        from .allocation import ALLOCATION_METHODS
        from .routing.policies import ROUTING_POLICIES as POLICIES

        for key, registry, values in (("routing", POLICIES, self.routing),
                                      ("allocation", ALLOCATION_METHODS, self.allocation)):
            from .routing.plugins import absolute_spec

            for i, seed in enumerate(self.seeds):
                if seed < 0:
                    raise ScenarioError(f"{where}: [{name}].seeds[{i}] must be >= 0, found "
                                        f"{seed}")

            base = None if where.startswith("<") else Path(where).parent
            values = tuple(absolute_spec(v, base) for v in values)  # plugin files
            object.__setattr__(self, key, values)
            for i, value in enumerate(values):
                if value not in registry:
                    close = difflib.get_close_matches(value, registry.names(), n=1)
                    hint = f"did you mean '{close[0]}'?" if close else (
                        "choose from " + ", ".join(registry.names()))
                    raise ScenarioError(
                        f"{where}: [{name}].{key}[{i}] = '{value}' is not known; {hint}")


def _tables():
    """Table name -> dataclass. Imported lazily: loading config pulls in no kernels."""
    from .allocation.config import AllocationConfig
    from .faults.config import FaultsConfig
    from .links.config import LinksConfig
    from .orbits.config import ConstellationConfig, GroundConfig
    from .power.config import PowerConfig
    from .routing.config import RoutingConfig
    from .traffic.config import TrafficConfig

    return {
        "scenario": RunConfig,
        "constellation": ConstellationConfig,
        "ground": GroundConfig,
        "links": LinksConfig,
        "routing": RoutingConfig,
        "traffic": TrafficConfig,
        "allocation": AllocationConfig,
        "compare": CompareConfig,
        "power": PowerConfig,
        "faults": FaultsConfig,
    }


_REQUIRED = ("scenario", "constellation")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build it with :func:`load_scenario`."""

    run: RunConfig
    constellation: object
    ground: object
    links: object
    routing: object
    traffic: object
    allocation: object
    compare: CompareConfig = field(default_factory=CompareConfig)
    power: object = field(default_factory=lambda: _tables()["power"]())
    faults: object = field(default_factory=lambda: _tables()["faults"]())
    source: Path | None = None
    text: str = ""
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def name(self) -> str:
        return self.run.name

    def grid(self, duration_s: float | None = None, step_s: float | None = None) -> TimeGrid:
        """The run's time grid, optionally with the duration or step overridden."""
        from .timegrid import check_time_range

        duration_s = self.run.duration_s if duration_s is None else duration_s
        grid = TimeGrid.from_duration(
            self.run.epoch, duration_s, self.run.step_s if step_s is None else step_s)
        check_time_range(self.run.epoch, duration_s, self.name)
        return grid

    def replace(self, **tables) -> Scenario:
        """A copy with whole tables replaced (``links=...``)."""
        return dataclasses.replace(self, **tables)


def _topologies_root():
    """Where the built-in scenario files are.

    An installed wheel carries them as the package ``meshnet.topologies``; an editable install
    reads the repository's ``topologies/`` folder next to ``meshnet/``.
    """
    try:
        return resources.files("meshnet.topologies")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "topologies"


def parse_override(text: str) -> tuple[list[str], object]:
    """``"links.acquisition_s=10"`` -> ``(["links", "acquisition_s"], 10)``.

    The value is read as a TOML value (numbers, booleans, quoted strings, arrays); anything
    that is not valid TOML is taken as a plain string, so ``routing.policy=predictive`` works.

    Examples
    --------
    >>> parse_override("links.acquisition_s=10")
    (['links', 'acquisition_s'], 10)
    >>> parse_override("routing.policy=predictive")
    (['routing', 'policy'], 'predictive')
    """
    key, sep, raw = text.partition("=")
    path = [p.strip() for p in key.strip().split(".")]
    if not sep or len(path) < 2 or not all(path):
        raise ScenarioError(f"--set {text}: expected TABLE.KEY=VALUE, e.g. "
                            "links.acquisition_s=10 or routing.policy=predictive")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(scenario: Scenario, overrides) -> Scenario:
    """A copy of ``scenario`` with ``TABLE.KEY=VALUE`` overrides applied and re-validated.

    Examples
    --------
    >>> sc = apply_overrides(load_scenario("starlink_550"), ["links.acquisition_s=10"])
    >>> sc.links.acquisition_s
    10.0
    """
    if not overrides:
        return scenario
    tables = dict(_tables())
    field_of = {"scenario": "run"}
    values = {}
    for text in overrides:
        path, value = parse_override(text)
        table = path[0]
        if table not in tables:
            close = difflib.get_close_matches(table, list(tables), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else "tables: " + ", ".join(tables)
            raise ScenarioError(f"--set {text}: unknown table '{table}'; {hint}")
        attr = field_of.get(table, table)
        doc = values.setdefault(table, dataclasses.asdict(getattr(scenario, attr)))
        node = doc
        for part in path[1:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    changed = {}
    for table, doc in values.items():
        changed[field_of.get(table, table)] = parse_table(tables[table], doc, table, "--set")
    note = "\n".join(f"# --set {o}" for o in overrides)
    return dataclasses.replace(scenario, **changed, text=f"{scenario.text.rstrip()}\n{note}\n")


def builtin_scenarios() -> list[str]:
    """Names of the scenario files shipped with meshnet."""
    root = _topologies_root()
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _builtin_path(name: str):
    return _topologies_root().joinpath(f"{name}.toml")


def load_scenario(spec: str | Path) -> Scenario:
    """Load and validate a scenario.

    Parameters
    ----------
    spec : str or Path
        A ``.toml`` path, a built-in scenario name, or a Hypatia satellite-network directory.

    Raises
    ------
    ScenarioError
        With one line naming the file, the key and what to change.
    """
    text_spec = str(spec)
    path = Path(text_spec).expanduser()
    if path.is_dir():
        if (path / "tles.txt").exists():
            return hypatia_scenario(path)
        raise ScenarioError(
            f"{path}: a directory is only a scenario if it is a Hypatia satellite-network "
            "directory (with tles.txt, isls.txt, ground_stations.txt)")
    if path.exists() and not path.is_dir():
        # Stat before open: a FIFO or device must not block; binary data is refused.
        try:
            check_input_file(path, "scenario file (.toml)")
            text = check_text(path.read_bytes(), path, "scenario file (.toml)")
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read scenario file ({exc})") from None
        except MeshnetError as exc:
            raise ScenarioError(str(exc)) from None
        return parse_scenario(text, source=path.resolve(), base_dir=path.resolve().parent)
    if "/" not in text_spec and not text_spec.endswith(".toml"):
        res = _builtin_path(text_spec)
        if res.is_file():
            with resources.as_file(res) as p:
                return parse_scenario(res.read_text(encoding="utf-8"), source=Path(p),
                                      base_dir=Path(p).parent)
    if "/" in text_spec or text_spec.endswith(".toml"):
        raise ScenarioError(f"{text_spec}: no such scenario file or Hypatia directory")
    names = builtin_scenarios()
    close = difflib.get_close_matches(text_spec, names, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "built-in: " + ", ".join(names)
    raise ScenarioError(
        f"scenario '{text_spec}' is neither a file, a Hypatia directory nor a built-in "
        f"scenario; {hint}")


def parse_scenario(text: str, source: Path | None = None, base_dir: Path | None = None
                   ) -> Scenario:
    """Validate scenario TOML ``text`` (``source`` is only used in messages and outputs)."""
    where = str(source) if source is not None else "<scenario>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    tables = _tables()
    for key in doc:
        if key not in tables:
            close = difflib.get_close_matches(key, list(tables), n=1, cutoff=0.5)
            hint = f"did you mean [{close[0]}]?" if close else (
                "valid tables: " + ", ".join(f"[{t}]" for t in tables))
            raise ScenarioError(f"{where}: unknown table [{key}]; {hint}")
    for key in _REQUIRED:
        if key not in doc:
            raise ScenarioError(f"{where}: missing table [{key}]")
    values = {key: parse_table(cls, doc.get(key, {}), key, where) for key, cls in tables.items()}
    values["run"] = values.pop("scenario")
    return Scenario(**values, source=source, text=text,
                    base_dir=base_dir if base_dir is not None else Path.cwd())


def hypatia_scenario(path: Path, duration_s: float = 200.0, step_s: float = 0.1) -> Scenario:
    """A scenario that routes a Hypatia directory with Hypatia's semantics.

    ISLs are the static ``isls.txt`` links with no terminal physics (no range cap, Sun or
    acquisition), a station attaches to every satellite within ``max_gsl_length_m``, stations
    never relay, and paths are shortest by length. Time zero is the TLE epoch.
    """
    from .orbits.hypatia import load_hypatia_dir

    path = Path(path).resolve()
    net = load_hypatia_dir(path)
    tables = _tables()
    epoch = _hypatia_epoch(net)
    run = RunConfig(name=path.name, epoch=epoch, duration_s=duration_s, step_s=step_s, seed=0)
    ground = tables["ground"](stations="none", min_elevation_deg=0.0,
                              max_gsl_length_km=net.max_gsl_length_km)
    links = tables["links"](topology="static", capacity_bps=10e9, max_range_km=1e9,
                            sun_exclusion_deg=0.0, acquisition_s=0.0, polar_cutoff_deg=None,
                            max_angular_rate_deg_s=1e9, grazing_altitude_km=0.0)
    routing = tables["routing"](policy="shortest_delay", ground_relay=False)
    text = f'# Hypatia satellite-network directory\nhypatia_dir = "{path}"\n'
    return Scenario(
        run=run,
        constellation=tables["constellation"](hypatia_dir=str(path)),
        ground=ground,
        links=links,
        routing=routing,
        traffic=tables["traffic"](),
        allocation=tables["allocation"](),
        source=path,
        text=text,
        base_dir=path.parent,
    )


def _hypatia_epoch(net) -> datetime:
    from sgp4.conveniences import sat_epoch_datetime

    return sat_epoch_datetime(net.constellation.satrecs[0])
