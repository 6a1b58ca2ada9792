"""`meshnet compare`: variants x seeds x epochs into one table and plots."""

from __future__ import annotations

import csv
import json

from research_scenario import write_small

from meshnet.cli import main
from meshnet.routing.compare import COLUMNS


def test_compare_table_and_plots(tmp_path, capsys):
    scen = write_small(tmp_path, routing="[routing.linkstate]\nenabled = false",
                       extra='\n[compare]\nrouting = ["shortest_delay", "periodic"]\n')
    out = tmp_path / "cmp"
    code = main(["compare", str(scen), "--seeds", "1", "2", "--epochs",
                 "2026-02-23T00:00:00Z", "2026-02-23T03:00:00Z", "--duration", "20",
                 "--optimum", "--out", str(out), "-q"])
    text = capsys.readouterr().out
    assert code == 0
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert len(rows) == 2 * 2 * 2 and list(rows[0]) == COLUMNS
    assert {r["variant"] for r in rows} == {"routing-shortest_delay", "routing-periodic"}
    assert {r["seed"] for r in rows} == {"1", "2"}
    assert all(0 < float(r["throughput_fraction"]) <= 1 + 1e-6 for r in rows)
    assert all(float(r["rtt_stretch_median"]) >= 1.0 for r in rows)
    md = (out / "compare.md").read_text()
    assert "| routing-periodic | 4 |" in md and "| routing-periodic | 4 |" in text
    assert (out / "compare.png").stat().st_size > 20_000
    summaries = json.loads((out / "comparison.json").read_text())
    assert len(summaries) == 8
    assert (out / "1-seed2" / "routing-periodic" / "summary.json").is_file()


def test_compare_bad_epoch_is_one_line(tmp_path, capsys):
    scen = write_small(tmp_path)
    code = main(["compare", str(scen), "--epochs", "yesterday", "--out",
                 str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "--epochs: 'yesterday' is not an ISO 8601" in err
    assert not (tmp_path / "c").exists()


def test_compare_seeds_and_epochs_from_the_scenario(tmp_path, capsys):
    scen = write_small(tmp_path, extra='\n[compare]\nrouting = ["min_hop"]\nseeds = [3, 4]\n'
                                       'epochs = [2026-02-23T01:00:00Z]\n')
    out = tmp_path / "cmp"
    assert main(["compare", str(scen), "--duration", "10", "--out", str(out), "-q"]) == 0
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [(r["seed"], r["epoch"]) for r in rows] == [
        ("3", "2026-02-23T01:00:00+00:00"), ("4", "2026-02-23T01:00:00+00:00")]
    bad = write_small(tmp_path, extra="\n[compare]\nseeds = [-1]\n")
    assert main(["compare", str(bad), "--out", str(tmp_path / "c2")]) == 2
    assert "[compare].seeds[0] must be >= 0" in capsys.readouterr().err
