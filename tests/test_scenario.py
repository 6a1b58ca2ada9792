"""Scenario files: built-ins load, and every bad input gets one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshnet.errors import ScenarioError
from meshnet.scenario import builtin_scenarios, load_scenario, parse_scenario

GOOD = """
[scenario]
name = "t"
epoch = 2026-02-23T00:00:00Z
duration_s = 10
step_s = 0.5
seed = 3

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 4
sats_per_plane = 5
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_every_builtin_scenario_validates():
    names = builtin_scenarios()
    for required in ("starlink_gen1", "starlink_550", "kuiper_630", "telesat_1015", "oneweb",
                     "starlink_550_hypatia", "kuiper_630_hypatia", "telesat_1015_hypatia",
                     "suncatcher_81", "three_body_12", "starlink_550_training",
                     "suncatcher_81_training", "starlink_gen1_training",
                     "starlink_550_routing_compare"):
        assert required in names
    for name in names:
        sc = load_scenario(name)
        assert sc.run.name
        assert sc.run.epoch.tzinfo is not None


def test_grid_follows_hypatia_convention(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    grid = sc.grid()
    assert len(grid) == 20
    assert grid.t_s[-1] == pytest.approx(9.5)
    assert len(sc.grid(duration_s=200, step_s=0.1)) == 2000


def test_defaults_fill_missing_tables(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.links.topology == "plus_grid"
    assert sc.routing.policy == "shortest_delay"
    assert sc.allocation.method == "maxmin"
    assert sc.ground.min_elevation_deg == 25.0


@pytest.mark.parametrize(("edit", "needle"), [
    (("duration_s = 10", "duraton_s = 10"), "unknown key [scenario].duraton_s; did you mean "
                                            "'duration_s'?"),
    (("step_s = 0.5", 'step_s = "fast"'), "[scenario].step_s expected a number, found 'fast'"),
    (("step_s = 0.5", "step_s = -1"), "[scenario].step_s must be > 0.0, found -1"),
    (("seed = 3", "seed = 1.5"), "[scenario].seed expected an integer"),
    (("epoch = 2026-02-23T00:00:00Z", 'epoch = "yesterday"'), "expected an ISO 8601"),
    (("[scenario]", "[scenaro]"), "unknown table [scenaro]; did you mean [scenario]?"),
    (("planes = 4", "planes = 0"), "[constellation.shells[0]].planes must be >= 1"),
    (("seed = 3", "seed = 3\n[links]\ntopology = \"plusgrid\""),
     "[links].topology = 'plusgrid' is not known; did you mean 'plus_grid'?"),
    (("seed = 3", "seed = 3\n[links]\nterminals = 0"), "[links].terminals"),
    (("seed = 3", "seed = 3\n[links]\nmax_range_km = -5"), "[links].max_range_km must be"),
    (("seed = 3", "seed = 3\n[routing]\npolicy = \"fastest\""), "[routing].policy"),
])
def test_bad_values_name_file_key_and_fix(tmp_path, edit, needle):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert needle in msg
    assert "\n" not in msg


def test_missing_table_and_invalid_toml(tmp_path):
    with pytest.raises(ScenarioError, match="missing table \\[constellation\\]"):
        parse_scenario(GOOD.split("[[constellation")[0])
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[scenario\nname="))


def test_unknown_scenario_suggests_builtin():
    with pytest.raises(ScenarioError, match="did you mean 'starlink_550'"):
        load_scenario("starlink_55")
    with pytest.raises(ScenarioError, match="neither a file"):
        load_scenario("no_such_scenario")


def test_relative_paths_resolve_against_the_scenario_file(tmp_path):
    (tmp_path / "st.csv").write_text("name,lat_deg,lon_deg\nA,10,20\nB,-5,100\n")
    text = GOOD + '\n[ground]\nstations = "st.csv"\n'
    sc = load_scenario(write(tmp_path, text))
    assert sc.base_dir == tmp_path.resolve()
    from meshnet.world import build_world

    world = build_world(sc)
    assert list(world.ground.names) == ["A", "B"]
    assert world.n_nodes == 20 + 2


def test_scenario_reference_is_up_to_date():
    from meshnet.scenario_docs import scenario_reference

    committed = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
    assert committed.read_text() == scenario_reference(), (
        "docs/scenarios.md is stale: run python -m meshnet.scenario_docs > docs/scenarios.md")


def test_errors_inside_optional_tables_are_their_own(tmp_path):
    text = GOOD.split("[[constellation")[0] + "[constellation.cluster]\nn_sat = 5\n"
    with pytest.raises(ScenarioError, match=r"unknown key \[constellation.cluster\].n_sat; "
                                            r"did you mean 'n_sats'\?"):
        load_scenario(write(tmp_path, text))


def test_readme_example_scenario_is_valid():
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    sc = parse_scenario(example)
    assert sc.traffic.jobs[0].model_params == 7e9


def test_overrides_apply_and_revalidate(tmp_path):
    from meshnet.scenario import apply_overrides

    sc = load_scenario(write(tmp_path, GOOD))
    sc2 = apply_overrides(sc, ["links.acquisition_s=10", "routing.policy=predictive",
                               "scenario.seed=9", "traffic.background.enabled=false"])
    assert sc2.links.acquisition_s == 10.0
    assert sc2.routing.policy == "predictive"
    assert sc2.run.seed == 9
    assert sc2.traffic.background.enabled is False
    assert sc.links.acquisition_s == 30.0  # the original is untouched
    assert "# --set routing.policy=predictive" in sc2.text
    for bad, needle in (("links.acquisiton_s=1", "did you mean 'acquisition_s'"),
                        ("lnks.x=1", "did you mean 'links'"),
                        ("links.max_range_km=-1", "must be > 0"),
                        ("links", "expected TABLE.KEY=VALUE")):
        with pytest.raises(ScenarioError, match=needle):
            apply_overrides(sc, [bad])
