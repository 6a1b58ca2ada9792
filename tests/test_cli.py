"""The command line end to end on small scenarios, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from small_scenario import STATIONS, small_toml

from meshnet.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HYPATIA = SHARED / "hypatia_kuiper_630"

SMALL = small_toml(duration_s=40)


@pytest.fixture()
def small(tmp_path):
    (tmp_path / "st.csv").write_text(STATIONS)
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_datasets_summary_and_plots(small, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["run", small, "--out", out_dir, "-q"], capsys)
    assert code == 0, err
    assert "job" in out and "link availability" in out
    for name in ("links.parquet", "flows.parquet", "jobs.parquet", "summary.json",
                 "step_time.png", "link_utilisation.png", "job_throughput.png", "mesh_map.png"):
        assert (out_dir / name).is_file(), name
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["steps"] == 20
    assert summary["satellites"] == 144
    (job,) = summary["jobs"]
    assert job["steps_done"] >= 1
    # Background routes between the 3 stations against the great-circle bound: never below it.
    st = summary["latency_stretch"]
    assert 1 <= st["pairs"] <= 6
    assert st["median_stretch"] >= 1.0 and st["worst"]["stretch"] >= st["median_stretch"] - 0.01
    assert "RTT / great circle" in out
    links = pq.read_table(out_dir / "links.parquet")
    assert b"scenario_toml" in links.schema.metadata
    assert set(links.column("state").to_pylist()) <= {"up", "acquiring", "down"}
    util = links.column("utilisation").to_numpy()
    assert np.all(util <= 1.0 + 1e-9)
    jobs = pq.read_table(out_dir / "jobs.parquet").to_pandas()
    assert (jobs["step_time_s"] >= jobs["compute_s"] - 1e-9).all()
    # No leftovers from the atomic writers.
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def test_same_seed_same_outputs(small, tmp_path, capsys):
    tables = []
    for k in range(2):
        out_dir = tmp_path / f"o{k}"
        code, _, err = run_cli(["run", small, "--out", out_dir, "-q", "--no-plots",
                                "--duration", "20"], capsys)
        assert code == 0, err
        tables.append([pq.read_table(out_dir / f).to_pandas()
                       for f in ("jobs.parquet", "flows.parquet", "links.parquet")])
    for a, b in zip(*tables, strict=True):
        assert a.equals(b)


def test_positions_row_count(small, tmp_path, capsys):
    out = tmp_path / "p.parquet"
    code, _, err = run_cli(["positions", small, "--duration", "10", "--step", "1", "--out",
                            out, "-q"], capsys)
    assert code == 0, err
    table = pq.read_table(out)
    assert table.num_rows == 10 * 144
    assert {"t", "t_s", "sat", "name", "x_km", "lat_deg", "alt_km"} <= set(table.column_names)


def test_links_dataset_and_summary(small, tmp_path, capsys):
    out = tmp_path / "links"
    code, out_text, err = run_cli(["links", small, "--duration", "20", "--out", out, "-q"],
                                  capsys)
    assert code == 0, err
    assert "%" in out_text


@pytest.mark.skipif(not HYPATIA.is_dir(), reason="../shared/data/hypatia_kuiper_630 absent")
def test_paths_on_hypatia_directory(tmp_path, capsys):
    out = tmp_path / "m.csv"
    code, text, err = run_cli(["paths", HYPATIA, "--src", "tokyo", "--dst", "Delhi",
                               "--duration", "1", "--step", "0.5", "--out", out, "-q"], capsys)
    assert code == 0, err
    import pandas as pd

    df = pd.read_csv(out)
    assert list(df.columns) == ["t_s", "rtt_ms", "one_way_ms", "hops", "path", "bound_rtt_ms",
                                "stretch", "flagged"]
    # Hypatia's distance rule bounds the ground links: Tokyo - Delhi (5,850 km) >= 39 ms.
    assert (df["bound_rtt_ms"] > 39.0).all() and (df["bound_rtt_ms"] <= df["rtt_ms"]).all()
    # Hypatia's own value at t = 0 (README of the directory): 49.575241 ms.
    assert df["rtt_ms"].iloc[0] == pytest.approx(49.575241, abs=0.01)
    assert df["path"].iloc[0] == "1156-617-583-549-515-514-513-1157"


@pytest.mark.skipif(not HYPATIA.is_dir(), reason="../shared/data/hypatia_kuiper_630 absent")
def test_export_hypatia_writes_fstate(tmp_path, capsys):
    code, text, err = run_cli(["export-hypatia", HYPATIA, "--duration", "0.3", "--step", "0.1",
                               "--out", tmp_path, "-q"], capsys)
    assert code == 0, err
    folder = tmp_path / "dynamic_state_100ms_for_0s"
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else sorted(
        p.name for p in next(tmp_path.iterdir()).iterdir())
    assert "fstate_0.txt" in names and "fstate_100000000.txt" in names


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "no_such_scenario"], "no_such_scenario"),
    (["run", "starlink_55"], "did you mean 'starlink_550'"),
    (["positions", "starlink_550", "--out", "x.csv"], "expected a file ending in .parquet"),
    (["planes", "/no/such/file.tle"], "no such file"),
])
def test_bad_input_one_line_exit_2(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_unknown_node_name(small, tmp_path, capsys):
    code, _, err = run_cli(["paths", small, "--src", "Atlantis", "--dst", "B", "--out",
                            tmp_path / "x.csv", "-q"], capsys)
    assert code == 2
    assert "Atlantis" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_corrupt_tle_reports_line(tmp_path, capsys):
    tle = tmp_path / "bad.tle"
    tle.write_text(
        "ISS (ZARYA)\n"
        "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n"
        "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563538\n")
    scenario = tmp_path / "s.toml"
    head = SMALL.split("[[constellation")[0]
    scenario.write_text(head + '[constellation]\ntle_file = "bad.tle"\n')
    code, _, err = run_cli(["positions", scenario, "--duration", "2", "--out",
                            tmp_path / "p.parquet", "-q"], capsys)
    assert code == 2
    assert "bad.tle:3:" in err and "checksum" in err  # line 3 of the file is corrupt
    assert not (tmp_path / "p.parquet").exists()


def test_info_lists_scenarios(capsys):
    code, out, _ = run_cli(["info"], capsys)
    assert code == 0
    assert "numba threads" in out and "starlink_550_training" in out


def test_every_routing_policy_runs_end_to_end(small, tmp_path, capsys):
    from meshnet.routing.policies import ROUTING_POLICIES

    policies = ROUTING_POLICIES.names()
    routing = ", ".join(f'"{p}"' for p in policies)
    small.write_text(small.read_text()
                     + f'\n[compare]\nrouting = [{routing}]\nallocation = ["proportional"]\n')
    out_dir = tmp_path / "cmp"
    code, out, err = run_cli(["run", small, "--out", out_dir, "-q", "--no-plots",
                              "--duration", "20"], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "comparison.json").read_text())
    assert set(summary) == {f"routing-{p}" for p in policies} | {"allocation-proportional"}
    for label in summary:
        # every policy carries the job's bytes whole: each finished flow sent exactly its
        # bytes (mean rate x duration), and no training step beats its compute time
        flows = pq.read_table(out_dir / label / "flows.parquet").to_pandas()
        done = flows[flows["finished"]]
        assert len(done) > 0, label
        sent = done["mean_rate_gbps"] * 1e9 * (done["end_s"] - done["start_s"]) / 8.0
        np.testing.assert_allclose(sent, done["bytes"], rtol=1e-6, err_msg=label)
        jobs = pq.read_table(out_dir / label / "jobs.parquet").to_pandas()
        assert len(jobs) > 0, label
        assert (jobs["step_time_s"] >= jobs["compute_s"] - 1e-9).all(), label
        assert (jobs["comm_time_s"] > 0).all(), label
    assert "routing-predictive" in out


def test_pipeline_and_moe_jobs_run_beside_allreduce(small, tmp_path, capsys):
    text = small.read_text().replace("plane_count = 2\nslot_count = 3", "plane_count = 2\n"
                                     "slot_count = 4")
    text += """
[[traffic.jobs]]
name = "pipe"
kind = "pipeline"
stages = 4
activation_bytes = 50e6
micro_batches = 4
compute_s = 0.5

[[traffic.jobs]]
name = "moe"
kind = "moe_alltoall"
tokens_per_step = 4096
hidden_size = 1024
top_k = 2
compute_s = 0.5
"""
    small.write_text(text)
    out_dir = tmp_path / "mixed"
    code, out, err = run_cli(["run", small, "--out", out_dir, "-q", "--no-plots"], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    done = {j["job"]: j["steps_done"] for j in summary["jobs"]}
    assert set(done) == {"job", "pipe", "moe"}
    assert min(done.values()) >= 1
    jobs = pq.read_table(out_dir / "jobs.parquet").to_pandas()
    assert (jobs["comm_time_s"] > 0).all()


def test_default_scenario_runs(tmp_path, capsys):
    """``meshnet run`` with no scenario: the built-in default, briefly."""
    out_dir = tmp_path / "default"
    code, out, err = run_cli(["run", "--duration", "12", "--out", out_dir, "-q", "--no-plots"],
                             capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["scenario"] == "starlink_550_training"
    assert summary["satellites"] == 1584 and summary["ground_stations"] == 100
    (job,) = summary["jobs"]
    assert job["nodes"] == 64 and job["steps_done"] >= 1
    # 7B bf16 ring: 2 x 63/64 x 14 GB per rank at <= 100 Gbps, after 2 s of compute.
    assert job["mean_step_s"] > 2.0 + 2 * 63 / 64 * 14e9 * 8 / 100e9


def test_show_prints_every_table_with_defaults(small, capsys):
    """`meshnet show` lists every table the scenario format knows, defaults filled in."""
    from meshnet.scenario import _tables

    code, out, err = run_cli(["show", small], capsys)
    assert code == 0, err
    headers = [line for line in out.splitlines()
               if line.startswith("[") and not line.startswith("[[") and "." not in line]
    assert headers == [f"[{name}]" for name in _tables()]
    assert "antennas = 2" in out                  # the file's value (printed as TOML)
    assert "satellite_mtbf_days = 60000.0" in out  # a default of a table the file omits
