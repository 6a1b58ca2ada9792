"""Link-availability datasets: one row per (step, link), written in parts, plus a summary.

Files written into ``out_dir`` (each under a temporary name first, renamed when complete, so
a killed run never leaves a file that looks finished):

``links.parquet`` (or ``links.csv``)
    Columns ``t`` (timestamp[ns, UTC]), ``t_s``, ``a``, ``b`` (int32 node ids), ``a_name``,
    ``b_name``, ``kind`` (isl/gsl), ``state`` (down/acquiring/up), ``reason``, ``length_km``,
    ``delay_ms``, ``capacity_gbps``. Strings are dictionary-encoded. Rows are ordered by step,
    then ISLs by (a, b), then GSLs by (a, b); the same scenario and grid give the same data.
    The Parquet file metadata holds the scenario text, meshnet's version and the creation time.
``links_summary.parquet`` (or ``.csv``)
    One row per link ever reported: availability, acquisitions, mean time up.
``links_summary.json``
    The whole-mesh figures (mean degree, % of link-time up, acquisitions per terminal per
    day, ground links per station, ground handovers per station per hour, ...).

Examples
--------
>>> from meshnet.scenario import load_scenario                      # doctest: +SKIP
>>> sc = load_scenario("starlink_550")                              # doctest: +SKIP
>>> summary = write_links_dataset(sc, sc.grid(60, 1), "out/links")  # doctest: +SKIP
>>> print(summary.text())                                           # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..errors import MeshnetError
from ..links.reasons import ACQUIRING, GSL, ISL, KIND_NAMES, REASON_NAMES, STATE_NAMES, UP
from ..units import NS_PER_S, SECONDS_PER_DAY
from .datasets import atomic_write, dumps_strict, output_folder, temp_name

#: Plain columns also dictionary-encoded in Parquet (few distinct values per row group).
DICT_ALSO = ("t", "t_s", "a", "b", "capacity_gbps")


def links_schema(tz: str = "UTC"):
    """The Arrow schema of the link-availability dataset."""
    import pyarrow as pa

    names = pa.dictionary(pa.int32(), pa.string())
    small = pa.dictionary(pa.int8(), pa.string())
    return pa.schema([
        ("t", pa.timestamp("ns", tz=tz)),
        ("t_s", pa.float64()),
        ("a", pa.int32()),
        ("b", pa.int32()),
        ("a_name", names),
        ("b_name", names),
        ("kind", small),
        ("state", small),
        ("reason", small),
        ("length_km", pa.float64()),
        ("delay_ms", pa.float64()),
        ("capacity_gbps", pa.float64()),
    ])


@dataclass
class LinksSummary:
    """What a links run produced: the per-link table, the mesh figures and the files."""

    mesh: dict
    per_link: object  # pyarrow.Table
    files: dict = field(default_factory=dict)

    def text(self) -> str:
        """A short human-readable report."""
        m = self.mesh
        lines = [
            f"links: {m['scenario']} ({m['topology']}), {m['n_steps']:,} steps of "
            f"{m['step_s']:g} s, {m['n_sats']:,} satellites, {m['n_ground']:,} ground stations",
            f"  ISL rows {m['isl_rows']:,}, GSL rows {m['gsl_rows']:,}",
            f"  mean ISL degree (up)          {m['mean_isl_degree']:.3f}",
            f"  ISL link-time up              {m['isl_link_time_up_pct']:.3f} %",
        ]
        if m.get("terminal_time_up_pct") is not None:
            lines.append(f"  terminal-time up              {m['terminal_time_up_pct']:.3f} % "
                         f"({m['terminals']} terminals per satellite)")
        lines.append(f"  ISL acquisitions              {m['isl_acquisitions']:,}")
        if m.get("acquisitions_per_terminal_per_day") is not None:
            lines.append(f"  acquisitions/terminal/day     "
                         f"{m['acquisitions_per_terminal_per_day']:.2f}")
        lines.append(f"  mean ISL time up              {m['mean_isl_time_up_s']:.1f} s")
        down = m.get("isl_down_rows_by_reason", {})
        if down:
            lines.append("  ISL down rows by reason       " + ", ".join(
                f"{k} {v:,}" for k, v in down.items()))
        lines.append(f"  mean GSLs per station         {m['mean_gsl_per_station']:.2f}")
        if m.get("gsl_handovers") is not None:
            rate = m.get("gsl_handovers_per_station_per_hour")
            lines.append(f"  ground handovers              {m['gsl_handovers']:,}"
                         + (f" ({rate:.1f} per station per hour)" if rate is not None else ""))
        gdown = m.get("gsl_down_rows_by_reason", {})
        if gdown:
            lines.append("  GSL down rows by reason       " + ", ".join(
                f"{k} {v:,}" for k, v in gdown.items()))
        if m.get("faults"):
            from ..faults.output import summary_lines

            lines += summary_lines(m["faults"], indent="  ", width=30)
        for key, path in self.files.items():
            lines.append(f"  {key:<29} {path}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


class LinkAccumulator:
    """Per-link and whole-mesh statistics, accumulated step by step in bounded memory.

    An acquisition is a link entering ``ACQUIRING`` (or ``UP`` directly, when the acquisition
    time is 0) from ``DOWN`` or from not being reported; links up at the first step of a
    warm-started run were there before the run and are not counted.
    """

    def __init__(self, n_sats: int, n_ground: int, terminals: int | None, step_s: float):
        self.n_sats = int(n_sats)
        self.n_ground = int(n_ground)
        self.n_nodes = self.n_sats + self.n_ground
        self.terminals = terminals
        self.step_s = float(step_s)
        self.keys = np.empty(0, np.int64)
        self._cols = ("prev", "listed", "up", "acq", "down", "acquisitions", "up_runs")
        self.arr = {c: np.empty(0, np.int64) for c in self._cols}
        self.n_steps = 0
        self.isl_rows = 0
        self.gsl_rows = 0
        self.isl_up_rows = 0
        self.isl_acquisitions = 0
        self.gsl_up_rows = 0
        self.down_by_reason = np.zeros(len(REASON_NAMES), np.int64)
        self.gsl_down_by_reason = np.zeros(len(REASON_NAMES), np.int64)
        #: Set by :meth:`prime`: the run began before this accumulator's first step.
        self.primed = False

    _SCALARS = ("n_steps", "isl_rows", "gsl_rows", "isl_up_rows", "isl_acquisitions",
                "gsl_up_rows")

    def prime(self, table) -> None:
        """Take a warm-up step's states as the previous step's, without counting it.

        A window of a split run primes with the steps before it (which the single-process
        run counted elsewhere), so its first step's acquisitions are judged as there.
        """
        keys = table.a.astype(np.int64) * self.n_nodes + table.b
        idx = self._ensure(keys)
        cur = np.full(self.keys.shape[0], -1, np.int64)
        cur[idx] = table.state
        self.arr["prev"] = cur
        self.primed = True

    @classmethod
    def merged(cls, parts: list) -> LinkAccumulator:
        """The accumulator of consecutive windows ``parts`` run one after another.

        Identical to one accumulator fed every step: links seen only in a warm-up (never
        listed in their window) are dropped, counts are summed, ``prev`` is the last one's.
        """
        first = parts[0]
        out = cls(first.n_sats, first.n_ground, first.terminals, first.step_s)
        kept = [p.arr["listed"] > 0 for p in parts]
        out.keys = np.unique(np.concatenate([p.keys[k] for p, k in zip(parts, kept,
                                                                         strict=True)]))
        for c in out._cols:
            out.arr[c] = np.full(out.keys.shape[0], -1 if c == "prev" else 0, np.int64)
        for p, k in zip(parts, kept, strict=True):
            pos = np.searchsorted(out.keys, p.keys[k])
            for c in out._cols:
                if c != "prev":
                    out.arr[c][pos] += p.arr[c][k]
            for name in cls._SCALARS:
                setattr(out, name, getattr(out, name) + getattr(p, name))
            out.down_by_reason += p.down_by_reason
            out.gsl_down_by_reason += p.gsl_down_by_reason
        last = parts[-1]
        pos = np.searchsorted(out.keys, last.keys)
        inside = pos < out.keys.shape[0]
        inside[inside] = out.keys[pos[inside]] == last.keys[inside]
        out.arr["prev"][pos[inside]] = last.arr["prev"][inside]
        return out

    def _ensure(self, keys: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.keys, keys)
        found = idx < self.keys.shape[0]
        found[found] = self.keys[idx[found]] == keys[found]
        if not found.all():
            new_keys = np.union1d(self.keys, keys[~found])
            pos = np.searchsorted(new_keys, self.keys)
            for c in self._cols:
                grown = np.full(new_keys.shape[0], -1 if c == "prev" else 0, np.int64)
                grown[pos] = self.arr[c]
                self.arr[c] = grown
            self.keys = new_keys
            idx = np.searchsorted(self.keys, keys)
        return idx

    def add(self, table) -> None:
        first = self.n_steps == 0 and not self.primed
        keys = table.a.astype(np.int64) * self.n_nodes + table.b
        idx = self._ensure(keys)
        state = table.state.astype(np.int64)
        cur = np.full(self.keys.shape[0], -1, np.int64)
        cur[idx] = state
        prev = self.arr["prev"]
        was_live = (prev == ACQUIRING) | (prev == UP)
        live = (cur == ACQUIRING) | (cur == UP)
        entered = live & ~was_live
        if first:
            entered &= cur != UP
        a = self.arr
        a["acquisitions"] += entered
        a["up_runs"] += (cur == UP) & (prev != UP)
        a["listed"][idx] += 1
        a["up"][idx] += state == UP
        a["acq"][idx] += state == ACQUIRING
        a["down"][idx] += state == 0
        a["prev"] = cur
        isl = table.kind == ISL
        self.isl_rows += int(isl.sum())
        self.gsl_rows += int((~isl).sum())
        self.isl_up_rows += int((isl & (table.state == UP)).sum())
        self.gsl_up_rows += int(((~isl) & (table.state == UP)).sum())
        self.isl_acquisitions += int(entered[idx[isl]].sum())
        down = isl & (table.state == 0)
        self.down_by_reason += np.bincount(table.reason[down], minlength=len(REASON_NAMES))
        # A DOWN ground row is an antenna leaving its satellite: one handover.
        gdown = (~isl) & (table.state == 0)
        self.gsl_down_by_reason += np.bincount(table.reason[gdown],
                                               minlength=len(REASON_NAMES))
        self.n_steps += 1

    def _gsl_handovers(self) -> int:
        from ..links.reasons import FAULT_REASONS

        # Releases for faults (a failed satellite or station) are not handovers.
        return int(self.gsl_down_by_reason.sum()
                   - self.gsl_down_by_reason[list(FAULT_REASONS)].sum())

    def fault_link_s(self) -> dict:
        """Link-seconds reported DOWN with each fault reason (ISL and GSL rows x step)."""
        from ..links.reasons import FAULT_REASONS

        rows = self.down_by_reason + self.gsl_down_by_reason
        return {REASON_NAMES[i]: float(rows[i] * self.step_s) for i in FAULT_REASONS
                if rows[i]}

    def mesh(self, **info) -> dict:
        steps = max(self.n_steps, 1)
        duration_s = self.n_steps * self.step_s
        isl = (self.keys % self.n_nodes) < self.n_sats
        up_runs_isl = self.arr["up_runs"][isl]
        up_isl = self.arr["up"][isl]
        out = dict(info)
        out.update(
            n_steps=self.n_steps,
            step_s=self.step_s,
            duration_s=duration_s,
            n_sats=self.n_sats,
            n_ground=self.n_ground,
            terminals=self.terminals,
            isl_rows=self.isl_rows,
            gsl_rows=self.gsl_rows,
            distinct_isls=int(up_isl.shape[0]),
            mean_isl_degree=2.0 * self.isl_up_rows / steps / max(self.n_sats, 1),
            isl_link_time_up_pct=100.0 * self.isl_up_rows / max(self.isl_rows, 1),
            terminal_time_up_pct=(
                100.0 * 2 * self.isl_up_rows / (steps * self.n_sats * self.terminals)
                if self.terminals else None),
            isl_acquisitions=self.isl_acquisitions,
            acquisitions_per_terminal_per_day=(
                self.isl_acquisitions / (self.n_sats * self.terminals)
                / (duration_s / SECONDS_PER_DAY)
                if self.terminals and duration_s > 0 and self.n_sats else None),
            mean_isl_time_up_s=(float(up_isl.sum() * self.step_s / up_runs_isl.sum())
                                if up_runs_isl.sum() else float("nan")),
            isl_down_rows_by_reason={REASON_NAMES[i]: int(c) for i, c in
                                     enumerate(self.down_by_reason) if c},
            mean_gsl_per_station=(self.gsl_up_rows / steps / self.n_ground
                                  if self.n_ground else 0.0),
            gsl_handovers=int(self._gsl_handovers()),
            gsl_handovers_per_station_per_hour=(
                float(self._gsl_handovers()) / self.n_ground / (duration_s / 3600.0)
                if self.n_ground and duration_s > 0 else None),
            gsl_down_rows_by_reason={REASON_NAMES[i]: int(c) for i, c in
                                     enumerate(self.gsl_down_by_reason) if c},
        )
        return out

    def per_link(self, node_names):
        """The per-link summary as a pyarrow Table, ordered by (kind, a, b)."""
        import pyarrow as pa

        a = (self.keys // self.n_nodes).astype(np.int32)
        b = (self.keys % self.n_nodes).astype(np.int32)
        kind = np.where(b >= self.n_sats, GSL, ISL).astype(np.int8)
        order = np.lexsort((b, a, kind))
        s = self.step_s
        arr = {c: v[order] for c, v in self.arr.items()}
        up_s = arr["up"] * s
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_up = np.where(arr["up_runs"] > 0, up_s / arr["up_runs"], np.nan)
        run_s = max(self.n_steps * s, s)
        names = np.asarray(node_names, dtype=object)
        return pa.table({
            "a": a[order], "b": b[order],
            "a_name": pa.array(names[a[order]].tolist(), pa.string()).dictionary_encode(),
            "b_name": pa.array(names[b[order]].tolist(), pa.string()).dictionary_encode(),
            "kind": _dict(kind[order], KIND_NAMES),
            "availability_pct": 100.0 * up_s / run_s,
            "listed_pct": 100.0 * arr["listed"] * s / run_s,
            "time_up_s": up_s,
            "time_acquiring_s": arr["acq"] * s,
            "time_down_s": arr["down"] * s,
            "acquisitions": arr["acquisitions"],
            "up_periods": arr["up_runs"],
            "mean_time_up_s": mean_up,
        })


def _dict(codes, names):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, np.int8), pa.int8()),
                                          pa.array(list(names), pa.string()))


def link_dictionaries(node_names) -> dict:
    """The dictionaries of the dataset's string columns, built once per run.

    Node names are the dictionary of ``a_name`` and ``b_name`` (codes are node ids); kinds,
    states and reasons are the fixed code tables of :mod:`meshnet.links.reasons`.
    """
    import pyarrow as pa

    names = pa.array([str(x) for x in node_names], pa.string())
    return {"a_name": names, "b_name": names,
            "kind": pa.array(list(KIND_NAMES), pa.string()),
            "state": pa.array(list(STATE_NAMES), pa.string()),
            "reason": pa.array(list(REASON_NAMES), pa.string())}


class LinkRowsWriter:
    """The rows of ``links.parquet`` (or ``.csv``), step by step, in large row groups.

    Rows are copied into the bounded buffers of a
    :class:`~meshnet.io.rowgroups.RowGroupBuffer` (no Python work per row) and written under a
    temporary name; :meth:`close` renames the file into place, :meth:`abort` removes it.

    Parameters
    ----------
    path : Path
        Final file name.
    fmt : {"parquet", "csv"}
    schema : pyarrow.Schema
        :func:`links_schema` with the run's metadata.
    dictionaries : dict
        :func:`link_dictionaries` of the run (the same in every part of a split run).
    epoch_ns : int
        The grid's epoch (ns since 1970); ``t`` is ``epoch_ns + t_ns``.
    header : bool
        CSV only: write the header line (the first part of a split run does).
    rows_per_group : int, optional
        Rows per row group (default from :data:`meshnet.io.rowgroups.ROW_GROUP_BYTES`).
    temporary : bool
        Write under a temporary name renamed on :meth:`close` (default), or straight to
        ``path`` (a worker's part file in a private folder).
    """

    def __init__(self, path: Path, fmt: str, schema, dictionaries: dict, epoch_ns: int,
                 header: bool = True, rows_per_group: int | None = None,
                 temporary: bool = True):
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        from .rowgroups import RowGroupBuffer, dictionary_columns, statistics_columns

        self.path = Path(path)
        self.tmp = temp_name(self.path) if temporary else self.path
        self.fmt = fmt
        self.schema = schema
        self.epoch_ns = int(epoch_ns)
        if fmt == "parquet":
            self.w = pq.ParquetWriter(self.tmp, schema, compression="zstd",
                                      use_dictionary=dictionary_columns(schema, DICT_ALSO),
                                      write_statistics=statistics_columns(schema))
            write = self._write_parquet
        else:
            self.w = pacsv.CSVWriter(self.tmp, self._csv_schema(),
                                     write_options=pacsv.WriteOptions(include_header=header))
            write = self._write_csv
        self.buf = RowGroupBuffer(schema, write, dictionaries, rows_per_group)

    def _csv_schema(self):
        import pyarrow as pa

        return pa.schema([(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                          for f in self.schema])

    def _write_parquet(self, batch) -> None:
        self.w.write_batch(batch, row_group_size=batch.num_rows)

    def _write_csv(self, batch) -> None:
        import pyarrow as pa

        self.w.write_table(pa.Table.from_batches([batch]).cast(self._csv_schema()))

    def append(self, t_ns: int, table) -> None:
        """Append one step's link table (vectorised: a slice copy per column)."""
        self.buf.append(
            len(table), t=self.epoch_ns + int(t_ns), t_s=t_ns / NS_PER_S, a=table.a, b=table.b,
            a_name=table.a, b_name=table.b, kind=table.kind, state=table.state,
            reason=table.reason, length_km=table.length_km, delay_ms=table.delay_s * 1e3,
            capacity_gbps=table.capacity_bps / 1e9)

    def close(self) -> None:
        self.buf.close()
        self.w.close()
        if self.tmp != self.path:
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.w.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def run_metadata(scenario, grid, model, created: str) -> dict:
    """The key/value metadata of ``links.parquet`` and ``links_summary.parquet``."""
    from .. import __version__

    return {
        "meshnet.version": __version__,
        "meshnet.created_utc": created,
        "meshnet.scenario_name": str(scenario.run.name),
        "meshnet.scenario": getattr(scenario, "text", "") or "",
        "meshnet.epoch_utc": grid.epoch.isoformat(),
        "meshnet.step_s": repr(grid.step_ns / NS_PER_S),
        "meshnet.n_steps": str(len(grid)),
        "meshnet.n_sats": str(model.n_sats),
        "meshnet.n_ground": str(model.n_ground),
    }


def grid_epoch_ns(grid) -> int:
    return int(np.datetime64(grid.epoch.replace(tzinfo=None), "ns").astype(np.int64))


def run_step_s(scenario, grid) -> float:
    return grid.step_ns / NS_PER_S if len(grid) > 1 else float(scenario.run.step_s)


def _concat_parts(path: Path, fmt: str, parts, model, step_s: float):
    """Join the parts of a split run into ``path``; return the merged statistics."""
    from .rowgroups import ParquetConcat, append_file

    accs = []
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as out:
            cat = ParquetConcat(out) if fmt == "parquet" else None
            for part, part_acc in parts:
                try:
                    if cat is not None:
                        cat.add(part)
                    else:
                        append_file(part, out)
                finally:
                    if isinstance(part, (str, Path)):
                        Path(part).unlink(missing_ok=True)
                accs.append(part_acc)
            if cat is not None:
                if cat.footer is None:
                    raise MeshnetError("a split links run produced no parts")
                cat.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not accs:
        return LinkAccumulator(model.n_sats, model.n_ground, model.n_terminals, step_s)
    return LinkAccumulator.merged(accs)


def write_links_dataset(scenario, grid, out_dir, fmt: str = "parquet", progress: bool = True,
                        world=None, tables=None, parts=None,
                        created: str | None = None) -> LinksSummary:
    """Write the link-availability dataset into ``out_dir``, which holds exactly one run.

    Everything is written into a temporary sibling folder that replaces ``out_dir`` only
    once complete (:func:`meshnet.io.datasets.output_folder`); the parameters and result are
    those of :func:`_write_links_into`.
    """
    if fmt not in ("parquet", "csv"):
        raise MeshnetError(f"unknown dataset format {fmt!r}; use 'parquet' or 'csv'")
    with output_folder(out_dir, ("links_summary.json", "links.parquet", "links.csv")) as tmp:
        return _write_links_into(scenario, grid, tmp, fmt, progress, world, tables,
                                 shown_dir=Path(out_dir), parts=parts, created=created)


def _write_links_into(scenario, grid, out_dir, fmt: str = "parquet", progress: bool = True,
                      world=None, tables=None, shown_dir=None, parts=None,
                      created: str | None = None) -> LinksSummary:
    """Run the link model over ``grid`` and write the link-availability dataset.

    Parameters
    ----------
    scenario : Scenario
    grid : TimeGrid
    out_dir : path
        Directory to write into (created if missing).
    fmt : {"parquet", "csv"}
    progress : bool
        A progress bar on stderr.
    world : World, optional
        Already loaded satellites and stations.
    tables : iterable of (t_ns, LinkTable), optional
        Link tables computed elsewhere, in step order (see
        :func:`meshnet.distributed.windowed_link_tables`); default: run the link model here.
    parts : iterable of (part, LinkAccumulator), optional
        The dataset already written in parts, in step order, with each part's statistics
        (:func:`meshnet.distributed.window_parts`): a part is a file path or the bytes of a
        file; they are concatenated without decoding (Parquet row groups are copied).
    created : str, optional
        The creation time written into the metadata (a split run gives its workers the
        same one, so that every part carries the same metadata).

    Returns
    -------
    LinksSummary
        ``.text()`` prints the report; the summary is also saved in ``out_dir``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .. import __version__
    from ..links.model import link_model, model_tables
    from ..world import build_world

    if fmt not in ("parquet", "csv"):
        raise MeshnetError(f"unknown dataset format {fmt!r}; use 'parquet' or 'csv'")
    out_dir = Path(out_dir)
    shown = Path(shown_dir) if shown_dir is not None else out_dir
    if world is None:
        world = build_world(scenario)
    model = link_model(scenario, grid, world)
    created = created or datetime.now(UTC).isoformat(timespec="seconds")
    meta = run_metadata(scenario, grid, model, created)
    schema = links_schema().with_metadata(meta)
    step_s = run_step_s(scenario, grid)
    path = out_dir / f"links.{fmt}"
    if parts is not None:
        acc = _concat_parts(path, fmt, parts, model, step_s)
    else:
        acc = LinkAccumulator(model.n_sats, model.n_ground, model.n_terminals, step_s)
        writer = LinkRowsWriter(path, fmt, schema, link_dictionaries(model.node_names),
                                grid_epoch_ns(grid))
        try:
            if tables is None:
                tables = model_tables(model, world.constellation, grid, progress)
            for t_ns, table in tables:
                acc.add(table)
                writer.append(t_ns, table)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    mesh = acc.mesh(scenario=str(scenario.run.name), topology=model.cfg.topology,
                    epoch_utc=grid.epoch.isoformat(), meshnet_version=__version__,
                    created_utc=created)
    files = {}
    if model.faults is not None:
        from ..faults.output import fault_summary, write_faults

        t0 = int(grid.t_ns[0]) if len(grid) else 0
        mesh["faults"] = fault_summary(model.faults, t0, t0 + int(len(grid) * step_s * NS_PER_S),
                                       acc.fault_link_s(), model.n_terminals)
        write_faults(out_dir / "faults.parquet", model.faults,
                     {k.encode(): v.encode() for k, v in meta.items()})
        files["faults"] = str(shown / "faults.parquet")
    per_link = acc.per_link(model.node_names)
    summary_path = out_dir / f"links_summary.{fmt}"
    if fmt == "parquet":
        atomic_write(summary_path, lambda p: pq.write_table(
            per_link.replace_schema_metadata({k: v for k, v in meta.items()}), p,
            compression="zstd"))
    else:
        atomic_write(summary_path, lambda p: pacsv.write_csv(
            per_link.cast(pa.schema([(f.name, pa.string()) if pa.types.is_dictionary(f.type)
                                     else f for f in per_link.schema])), p))
    json_path = out_dir / "links_summary.json"
    files = {"dataset": str(shown / path.name), "per-link summary": str(shown / summary_path.name),
             "mesh summary": str(shown / json_path.name), **files}

    def dump(p):
        p.write_text(dumps_strict({"mesh": mesh, "files": files}, indent=2)
                     + "\n", encoding="utf-8")

    atomic_write(json_path, dump)
    return LinksSummary(mesh=mesh, per_link=per_link, files=files)
