"""Outputs that are whole or absent, safe output paths, quoted excerpts and strict JSON.

The kill tests start ``meshnet run`` / ``meshnet links`` in a subprocess into a folder that
already holds a complete earlier run, SIGKILL it at several instants, and check the folder
still holds exactly one whole run (the earlier one or the new one), never a mix.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from small_scenario import STATIONS, small_toml

from meshnet.cli import main, run_folder
from meshnet.errors import MeshnetError, quote_excerpt
from meshnet.io.datasets import dumps_strict, output_folder, remove_leftovers, write_json_atomic

SCENARIO = small_toml(duration_s=40, name="{name}", background=False)
RUN_FILES = {"links.parquet", "flows.parquet", "jobs.parquet", "summary.json"}
PLOTS = {"step_time.png", "link_utilisation.png", "job_throughput.png", "mesh_map.png"}
LINKS_FILES = {"links.parquet", "links_summary.parquet", "links_summary.json"}


def _scenario(tmp_path, name="small"):
    (tmp_path / "st.csv").write_text(STATIONS)
    path = tmp_path / "small.toml"
    path.write_text(SCENARIO.format(name=name))
    return path


def _strict_load(path):
    def refuse(token):
        raise ValueError(f"{path}: non-strict JSON constant {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def _dead_pid() -> int:
    """The id of a process that has ended (a killed run's)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _check_run(out: Path, plots: bool) -> int:
    """``out`` holds one whole run; returns its step count."""
    names = {p.name for p in out.iterdir()}
    assert names == RUN_FILES | (PLOTS if plots else set()), sorted(names)
    summary = _strict_load(out / "summary.json")
    links = pq.read_table(out / "links.parquet", columns=["t_s"])
    # The summary and the dataset come from the same run.
    assert len(np.unique(links.column("t_s").to_numpy())) == summary["steps"]
    return summary["steps"]


def _check_links(out: Path) -> int:
    names = {p.name for p in out.iterdir()}
    assert names == LINKS_FILES, sorted(names)
    mesh = _strict_load(out / "links_summary.json")["mesh"]
    links = pq.read_table(out / "links.parquet", columns=["t_s"])
    steps = len(np.unique(links.column("t_s").to_numpy()))
    meta = pq.read_schema(out / "links.parquet").metadata
    assert int(meta[b"meshnet.n_steps"]) == steps
    summary_meta = pq.read_schema(out / "links_summary.parquet").metadata
    assert summary_meta[b"meshnet.n_steps"] == meta[b"meshnet.n_steps"]
    assert mesh["scenario"] == "small"
    return steps


def _cli(args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))
    return subprocess.Popen([sys.executable, "-m", "meshnet", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after(proc, delay_s: float, folder: Path) -> bool:
    """SIGKILL ``proc`` ``delay_s`` after its start; True if it was then writing (a hidden
    temporary of its own beside or inside the output existed)."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < delay_s:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    pattern = f".*.{proc.pid}.tmp"
    writing = any(folder.glob(pattern)) or any(folder.glob("*/" + pattern))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return writing


# Kill instants as fractions of an uninterrupted run's wall time (start-up included), so
# they land in the import, the emulation and the writing phases whatever the machine's speed.
FRACTIONS = (0.2, 0.5, 0.7, 0.85, 0.95, 0.99)


@pytest.mark.parametrize("command", ["run", "links"])
def test_kill_leaves_previous_or_whole_new_run(tmp_path, command):
    scenario = _scenario(tmp_path)
    out = tmp_path / "out"
    check = (lambda o: _check_run(o, plots=False)) if command == "run" else _check_links
    extra = ["--no-plots"] if command == "run" else []
    new_run = [command, scenario, "--duration", "120", "-q", *extra]
    # How long an uninterrupted new run takes here.
    t0 = time.monotonic()
    proc = _cli([*new_run, "--out", tmp_path / "calib"], tmp_path)
    assert proc.wait() == 0, proc.stderr.read()
    wall_s = time.monotonic() - t0
    assert check(tmp_path / "calib") == 60
    assert main([command, str(scenario), "--duration", "20", "--out", str(out), "-q",
                 *extra]) == 0
    assert check(out) == 10
    writing = []
    for frac in FRACTIONS:
        # The new run is longer (60 steps against 10), so a mix of the two would show.
        proc = _cli([*new_run, "--out", out], tmp_path)
        writing.append(_kill_after(proc, frac * wall_s, tmp_path))
        assert check(out) in (10, 60)
    # At least one kill landed while the run was writing its outputs.
    assert any(writing), (wall_s, writing)
    # The next run removes what the killed runs left and leaves one run.
    assert main([command, str(scenario), "--duration", "20", "--out", str(out), "-q",
                 *extra]) == 0
    assert check(out) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib", "out", "small.toml", "st.csv"]


def test_next_run_removes_leftovers_of_killed_runs(tmp_path):
    scenario = _scenario(tmp_path)
    out = tmp_path / "out"
    dead = _dead_pid()
    (tmp_path / f".out.{dead}.tmp").mkdir()
    (tmp_path / f".out.{dead}.tmp" / "links.parquet").write_bytes(b"partial")
    (tmp_path / f".out.{dead}.old").mkdir()
    # A concurrent run's temporary folder (a live process) is not touched.
    live = tmp_path / f".out.{os.getppid()}.tmp"
    live.mkdir()
    out.mkdir()
    assert main(["run", str(scenario), "--duration", "6", "--out", str(out), "-q",
                 "--no-plots"]) == 0
    _check_run(out, plots=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [live.name]


def test_leftover_temporary_files_of_single_file_outputs_removed(tmp_path):
    scenario = _scenario(tmp_path)
    dead = _dead_pid()
    stale = tmp_path / f".pos.parquet.{dead}.tmp"
    stale.write_bytes(b"partial")
    assert main(["positions", str(scenario), "--duration", "4", "--out",
                 str(tmp_path / "pos.parquet"), "-q"]) == 0
    assert not stale.exists()
    assert pq.read_table(tmp_path / "pos.parquet").num_rows == 2 * 144


def test_kill_between_the_two_renames_restores_previous(tmp_path):
    """A kill after the previous run moved aside but before the new one moved in."""
    out = tmp_path / "out"
    old = tmp_path / f".out.{_dead_pid()}.old"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    remove_leftovers(out)
    assert (out / "summary.json").read_text() == "{}"
    assert not old.exists()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_output_folder_failure_keeps_previous(tmp_path, exc):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("previous")
    with pytest.raises(exc), output_folder(out) as tmp:
        (tmp / "b.txt").write_text("new")
        raise exc()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with output_folder(out) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_folder_refuses_a_file(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(MeshnetError, match="not a folder"), output_folder(target):
        pass
    assert target.read_text() == "x"


def test_no_plots_after_plots_leaves_no_png(tmp_path):
    scenario = _scenario(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--duration", "6", "--out", str(out), "-q"]) == 0
    _check_run(out, plots=True)
    assert main(["run", str(scenario), "--duration", "6", "--out", str(out), "-q",
                 "--no-plots"]) == 0
    _check_run(out, plots=False)
    assert not list(out.glob("*.png"))


def test_compare_variants_swap_as_one(tmp_path):
    scenario = _scenario(tmp_path)
    scenario.write_text(scenario.read_text()
                        + '\n[compare]\nrouting = ["shortest_delay", "ecmp"]\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "comparison.json").write_text("{}")
    (out / "stale.txt").write_text("from an earlier run")
    assert main(["run", str(scenario), "--duration", "6", "--out", str(out), "-q",
                 "--no-plots"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.json", "routing-ecmp", "routing-shortest_delay"]
    for sub in ("routing-ecmp", "routing-shortest_delay"):
        _check_run(out / sub, plots=False)
    _strict_load(out / "comparison.json")


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../x", "~/x", "..", "  "])
def test_scenario_name_cannot_leave_runs(tmp_path, monkeypatch, capsys, name):
    work = tmp_path / "work"
    work.mkdir()
    scenario = _scenario(work, name=name)
    monkeypatch.chdir(work)
    code = main(["run", str(scenario), "--duration", "4", "-q", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "--out" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert sorted(p.name for p in work.iterdir()) == ["small.toml", "st.csv"]


@pytest.mark.parametrize("name,folder", [
    ("plain", "plain"), ("a/b", "a_b"), ("x\x1by\n", "x_y_"), ("sp ace", "sp_ace"),
    ("...hidden", "hidden"), ("a..b", "a..b")])
def test_run_folder_sanitises(name, folder):
    path = run_folder(name)
    assert path == Path("runs") / folder
    assert path.parent == Path("runs") and path.name not in ("", ".", "..")


def test_default_run_folder_used_by_cli(tmp_path, monkeypatch):
    scenario = _scenario(tmp_path, name="a/b")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(scenario), "--duration", "4", "-q", "--no-plots"]) == 0
    _check_run(tmp_path / "runs" / "a_b", plots=False)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a_b"]


def test_quote_excerpt_escapes_and_shortens():
    assert quote_excerpt("ab\x1b[2J\x00c") == "'ab\\x1b[2J\\x00c'"
    assert quote_excerpt("x" * 1000) == "'" + "x" * 40 + "...'"
    assert quote_excerpt("é ok") == "'é ok'"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_errors_quoting_files_escape_control_characters(tmp_path, capsys):
    scenario = _scenario(tmp_path)
    bad = "\x1b[2J" + "Z" * 5000
    # A ground-station file with a control sequence and a huge field.
    (tmp_path / "st.csv").write_text(f"name,lat_deg,lon_deg\nA,{bad},0\n")
    assert main(["links", str(scenario), "--duration", "2", "--out", str(tmp_path / "l"),
                 "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "\x1b" not in line and "\\x1b" in line and len(line) < 300
    # A TLE file whose line is binary noise.
    tle = tmp_path / "bad.tle"
    tle.write_text("NAME\n1 " + "\x07" * 10 + "\n" + "2 \x1b" + "Q" * 4000 + "\n")
    sc = tmp_path / "tle.toml"
    sc.write_text(f'[scenario]\nname = "t"\nepoch = 2026-02-23T00:00:00Z\n'
                  f'[constellation]\ntle_file = "{tle}"\n')
    assert main(["positions", str(sc), "--duration", "2", "--out",
                 str(tmp_path / "q.parquet"), "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "\x1b" not in line and "\x07" not in line and len(line) < 400


def test_static_links_file_error_is_escaped(tmp_path, capsys):
    from meshnet.errors import ScenarioError
    from meshnet.links.topology import read_links_file

    path = tmp_path / "links.txt"
    path.write_text("0 1\n\x1b]0;pwned\x07 " + "9" * 3000 + "\n")
    with pytest.raises(ScenarioError) as info:
        read_links_file(path, 10)
    msg = str(info.value)
    assert "\x1b" not in msg and "\x07" not in msg and len(msg) < 300


def test_json_is_strict():
    obj = {"a": float("nan"), "b": np.float64(np.inf), "c": [np.nan, 1.5, np.int64(3)],
           "d": {"e": -math.inf, "f": np.array([1.0, np.nan])}, "g": np.float32(2.5)}
    text = dumps_strict(obj)
    back = json.loads(text, parse_constant=lambda t: pytest.fail(f"bare {t}"))
    assert back == {"a": None, "b": None, "c": [None, 1.5, 3], "d": {"e": None, "f": [1.0, None]},
                    "g": 2.5}


def test_written_json_outputs_are_strict(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert _strict_load(tmp_path / "x.json") == {"v": None}
    scenario = _scenario(tmp_path)
    assert main(["run", str(scenario), "--duration", "6", "--out", str(tmp_path / "r"), "-q",
                 "--no-plots"]) == 0
    assert main(["links", str(scenario), "--duration", "6", "--out", str(tmp_path / "l"),
                 "-q"]) == 0
    for path in (tmp_path / "r" / "summary.json", tmp_path / "l" / "links_summary.json"):
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text
        _strict_load(path)


def test_export_hypatia_swaps_whole_folder_and_removes_leftovers(tmp_path):
    scenario = _scenario(tmp_path)
    out = tmp_path / "net"
    dead = _dead_pid()
    (tmp_path / f".net.{dead}.tmp").mkdir()
    assert main(["export-hypatia", str(scenario), "--duration", "4", "--step", "2", "--out",
                 str(out), "-q"]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert "tles.txt" in first and any(n.startswith("dynamic_state_") for n in first)
    # A second export with another step replaces the folder whole: no state of the first.
    assert main(["export-hypatia", str(scenario), "--duration", "4", "--step", "1", "--out",
                 str(out), "-q"]) == 0
    states = [p.name for p in out.iterdir() if p.name.startswith("dynamic_state_")]
    assert states == ["dynamic_state_1000ms_for_4s"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net", "small.toml", "st.csv"]


@pytest.mark.parametrize("command", ["run", "links"])
def test_refuses_to_replace_a_foreign_or_current_folder(tmp_path, monkeypatch, capsys, command):
    scenario = _scenario(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for out in (mine, tmp_path, Path(".")):
        monkeypatch.chdir(tmp_path)
        code = main([command, str(scenario), "--duration", "4", "--out", str(out), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and "--out" in _one_line(err)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "small.toml", "st.csv"]
