"""The rate-ladder capacity model: link budget against hand calculations, presets, config."""

from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from meshnet.config import parse_table  # noqa: E402
from meshnet.errors import ScenarioError  # noqa: E402
from meshnet.links import LinkModel, LinksConfig  # noqa: E402
from meshnet.links.capacity import BUDGET_PRESETS, LinkBudget, capacity_bps  # noqa: E402
from meshnet.links.config import BudgetConfig  # noqa: E402
from meshnet.links.feasibility import FeasibilityLimits  # noqa: E402
from meshnet.links.reasons import ACQUIRING, DOWN, OUT_OF_RANGE, UP  # noqa: E402

STARLINK = BUDGET_PRESETS["starlink_100g"]
SUNCATCHER = BUDGET_PRESETS["suncatcher_dwdm"]


def hand_far_field_dbm(p_t_w, lam_m, d_t_m, d_r_m, loss_db, d_m):
    """P_r = P_t eta D_r^2 / (2 theta^2 d^2), theta = lambda / (pi D_t / 2), written out."""
    theta = lam_m / (math.pi * d_t_m / 2.0)
    p_r_w = p_t_w * 10 ** (-loss_db / 10) * d_r_m**2 / (2 * theta**2 * d_m**2)
    return 10 * math.log10(p_r_w / 1e-3)


@pytest.mark.parametrize("d_km", [1000.0, 3000.0, 5400.0])
def test_starlink_received_power_matches_far_field_hand_calculation(d_km):
    want = hand_far_field_dbm(2.0, 1550e-9, 0.08, 0.08, 1.0 + 2.0, d_km * 1e3)
    got = float(STARLINK.received_power_dbm(d_km))
    assert abs(got - want) < 0.01
    # The figures quoted in docs/links.md (worked example).
    assert round(got, 2) == {1000.0: -16.76, 3000.0: -26.30, 5400.0: -31.41}[d_km]


def test_rate_ladder_against_hand_thresholds():
    # A custom budget: 1 W, 100 mm, theta = 20 urad given, 4 dB of losses, -30 dBm at 10 Gbps,
    # 3 dB margin, ladder 10/25/50/100 Gbps. The rung for each range by hand:
    b = LinkBudget(tx_power_w=1.0, wavelength_nm=1550.0, tx_aperture_mm=100.0,
                   rx_aperture_mm=100.0, divergence_urad=20.0, pointing_loss_db=2.0,
                   optics_loss_db=2.0, sensitivity_dbm=-30.0, sensitivity_ref_bps=10e9,
                   margin_db=3.0, rates_bps=(10e9, 25e9, 50e9, 100e9))
    need = {r: -30.0 + 10 * math.log10(r / 10e9) + 3.0 for r in b.rates_bps}
    # Closing ranges by hand: 10G 1,578 km, 25G 995 km, 50G 705 km, 100G 499 km.
    d = np.array([300.0, 600.0, 800.0, 1200.0, 2500.0, 9000.0])
    got = b.rate_bps(d)
    for dk, rate in zip(d, got, strict=True):
        p = 30.0 - 4.0 + 10 * math.log10(0.1**2 / (2 * (20e-6) ** 2 * (dk * 1e3) ** 2))
        assert abs(float(b.received_power_dbm(dk)) - p) < 0.01
        closing = [r for r in b.rates_bps if p >= need[r]]
        assert rate == (max(closing) if closing else 0.0)
    assert sorted(set(got.tolist())) == [0.0, 10e9, 25e9, 50e9, 100e9]  # every rung seen
    # Each rung's closing range is where the power meets its threshold exactly.
    for r, dk in zip(b.rates_bps, b.closing_ranges_km(), strict=True):
        assert abs(float(b.received_power_dbm(dk)) - need[r]) < 1e-6
        assert b.rate_bps(dk * 0.999)[0] >= r and b.rate_bps(dk * 1.001)[0] < r


def test_near_field_saturates_below_transmit_power():
    # 200 m, beam waist w0 = D_t / 2 = 50 mm hardly grown: the 100 mm aperture collects
    # 1 - exp(-D_r^2 / (2 w0^2)) = 1 - exp(-2) of the beam, never more than P_t eta.
    w0, theta, d = 0.05, 1550e-9 / (math.pi * 0.05), 200.0
    w2 = w0**2 + (theta * d) ** 2
    want = 10 * math.log10(24.0) - 3.0 + 10 * math.log10(1 - math.exp(-0.1**2 / (2 * w2)))
    assert abs(float(SUNCATCHER.received_power_dbm(0.2)) - want) < 0.01
    p = SUNCATCHER.received_power_dbm(np.array([1e-6, 1e-3, 0.1, 0.2]))
    assert np.all(p <= SUNCATCHER.tx_power_dbm - 3.0 + 1e-9)


def test_rate_is_monotone_non_increasing_with_range():
    d = np.linspace(0.01, 40000.0, 20001)
    for b in BUDGET_PRESETS.values():
        p = b.received_power_dbm(d)
        rate = b.rate_bps(d)
        assert np.all(np.diff(p) < 0)
        assert np.all(np.diff(rate) <= 0)
        assert rate[0] == b.rates_bps[-1] and rate[-1] == 0.0


def test_preset_documented_figures():
    # Starlink-class: 100 Gbps closes at the 5,400 km cap, 200 Gbps at 3,000 km, and 200 only
    # on shorter links (SpaceX: "100 Gbps sustained, up to 200").
    assert STARLINK.rate_bps(np.array([1000.0, 3000.0, 5400.0])).tolist() == [
        200e9, 200e9, 100e9]
    reach = STARLINK.closing_ranges_km()
    assert 4000.0 < reach[-1] < 5400.0 < reach[-2]
    # Suncatcher: 9.6 Tbps (24 x 400G) across 100-200 m of spacing and well beyond the 1 km
    # cluster.
    assert SUNCATCHER.rate_bps(np.array([0.1, 0.2, 1.0])).tolist() == [9.6e12] * 3
    assert SUNCATCHER.rates_bps[-1] == 24 * 400e9


def test_capacity_bps_rate_ladder_only_up_links():
    d = np.array([1000.0, 5400.0, 5400.0, 30000.0])
    st = np.array([UP, UP, ACQUIRING, UP])
    got = capacity_bps(d, st, "rate_ladder", 100e9, 3000.0, STARLINK)
    assert got.tolist() == [200e9, 100e9, 0.0, 0.0]
    assert capacity_bps(d, np.full(4, DOWN), "rate_ladder", 1.0, 1.0, STARLINK).tolist() == [
        0.0] * 4


def test_reach_caps_the_feasible_range():
    # A weak terminal (50 mW) whose lowest rung closes at 3,243 km: links beyond its reach
    # are DOWN (out_of_range), so no UP link has rate 0.
    cfg = parse_table(LinksConfig, {"capacity_model": "rate_ladder",
                                    "budget": {"tx_power_w": 0.05}}, "links", "demo.toml")
    reach = cfg.link_budget.reach_km()
    assert reach == pytest.approx(STARLINK.reach_km() / math.sqrt(40.0), rel=1e-6)
    assert FeasibilityLimits.from_config(cfg).range_cap_km == pytest.approx(reach)
    assert FeasibilityLimits.from_config(dataclasses.replace(
        cfg, capacity_model="fixed", budget=None)).range_cap_km == 5400.0
    from test_links import NO_SUN, walker

    r, v, const = walker(12, 12, 550.0, 53.0)  # links 2,500 to 3,800 km long
    model = LinkModel(dataclasses.replace(cfg, **NO_SUN), None, const, None, 1.0)
    t = model.step(0, r, v, [1.0, 0, 0])
    long = t.length_km > reach
    assert long.any() and (~long).any()
    assert np.all(t.state[long] == DOWN) and np.all(t.reason[long] == OUT_OF_RANGE)
    up = t.state == UP
    assert up.any() and np.all(t.capacity_bps[up] > 0)
    assert np.array_equal(t.capacity_bps[up], cfg.link_budget.rate_bps(t.length_km[up]))


def test_config_overrides_and_validation():
    cfg = parse_table(LinksConfig, {"capacity_model": "rate_ladder",
                                    "budget": {"preset": "suncatcher_dwdm", "margin_db": 6.0,
                                               "rates_bps": [1e12, 2e12]}},
                      "links", "demo.toml")
    b = cfg.link_budget
    assert b.margin_db == 6.0 and b.rates_bps == (1e12, 2e12)
    assert b.tx_power_w == SUNCATCHER.tx_power_w  # unset keys keep the preset's value
    assert parse_table(LinksConfig, {"capacity_model": "rate_ladder"}, "links",
                       "demo.toml").link_budget == STARLINK
    # A config built in code (nested table as a dataclass) is re-checked by the model.
    from test_links import walker

    r, v, const = walker(4, 4, 550.0, 53.0)
    LinkModel(LinksConfig(capacity_model="rate_ladder", budget=BudgetConfig(margin_db=1.0)),
              None, const, None, 1.0)
    with pytest.raises(ScenarioError, match="strictly increasing"):
        LinkModel(LinksConfig(capacity_model="rate_ladder",
                              budget=BudgetConfig(rates_bps=(2e9, 1e9))), None, const, None, 1.0)


@pytest.mark.parametrize("budget, match", [
    ({"preset": "starlink"}, r"demo.toml: \[links.budget\].preset = 'starlink' is not known; "
                             r"did you mean 'starlink_100g'\?"),
    ({"preset": "laser"}, r"is not known; choose one of: starlink_100g, suncatcher_dwdm"),
    ({"rates_bps": [25e9, 10e9]}, r"\[links.budget\].rates_bps must be strictly increasing"),
    ({"rates_bps": [10e9, 10e9]}, r"rates_bps must be strictly increasing"),
    ({"rates_bps": [0.0, 10e9]}, r"\[links.budget\].rates_bps must be > 0"),
    ({"rates_bps": []}, r"rates_bps is empty"),
    ({"tx_power_w": 0.0}, r"\[links.budget\].tx_power_w must be > 0.0"),
    ({"pointing_loss_db": -1.0}, r"pointing_loss_db must be >= 0.0"),
    ({"tx_power": 1.0}, r"unknown key \[links.budget\].tx_power; did you mean 'tx_power_w'\?"),
])
def test_bad_budget_gives_clear_errors(budget, match):
    with pytest.raises(ScenarioError, match=match):
        parse_table(LinksConfig, {"capacity_model": "rate_ladder", "budget": budget},
                    "links", "demo.toml")


def test_budget_table_needs_the_rate_ladder_model():
    with pytest.raises(ScenarioError, match=r"\[links.budget\] is only used by "
                                            r"capacity_model = 'rate_ladder'"):
        parse_table(LinksConfig, {"budget": {"margin_db": 1.0}}, "links", "demo.toml")


def test_scenario_set_line_and_builtin_scenario():
    from meshnet.scenario import apply_overrides, load_scenario

    sc = apply_overrides(load_scenario("starlink_550"), [
        "links.capacity_model=rate_ladder", "links.budget.preset=starlink_100g"])
    assert sc.links.link_budget == STARLINK
    sc = load_scenario("suncatcher_81_training")
    assert sc.links.capacity_model == "rate_ladder"
    assert sc.links.link_budget == SUNCATCHER
