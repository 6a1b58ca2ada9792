"""TLE reading (checksums, line numbers in messages) and plane inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meshnet.errors import TLEError
from meshnet.orbits.config import ShellConfig
from meshnet.orbits.tle import (
    infer_planes,
    plane_report,
    read_tle,
    records_to_satrecs,
    tle_checksum,
    tle_constellation,
)
from meshnet.orbits.walker import format_tle_line2, shell_elements

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CATALOGUE = DATA / "starlink_2026-02-23.tle"

L1 = "1 44714U 19074B   26053.95338319  .00001514  00000+0  61711-4 0  9998"
L2 = "2 44714  53.1565 247.2957 0001251  94.4223 265.6921 15.31035506346616"
M1 = "1 44718U 19074F   26053.79510367 -.00003638  00000+0 -11084-3 0  9997"
M2 = "2 44718  53.1591 247.9884 0000544  91.4546 268.6517 15.30185387346586"


def _write(tmp_path, text, name="sats.tle"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_three_line_and_two_line(tmp_path):
    three = _write(tmp_path, f"STARLINK-1008\n{L1}\n{L2}\n0 STARLINK-1012\n{M1}\n{M2}\n")
    recs = read_tle(three)
    assert [r.name for r in recs] == ["STARLINK-1008", "STARLINK-1012"]
    assert [r.lineno for r in recs] == [2, 5]
    two = _write(tmp_path, f"{L1}\n{L2}\n\n{M1}\n{M2}\n", "two.tle")
    recs2 = read_tle(two)
    assert [r.name for r in recs2] == ["SAT-44714", "SAT-44718"]
    sats = records_to_satrecs(recs2)
    assert sats[0].satnum == 44714
    assert tle_checksum(L1) == 8 and tle_checksum(L2) == 6


def test_bad_checksum_names_file_and_line(tmp_path):
    bad = L2[:-1] + "0"
    p = _write(tmp_path, f"STARLINK-1008\n{L1}\n{bad}\n")
    with pytest.raises(TLEError) as exc:
        read_tle(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:3: bad checksum on TLE line 2")
    assert "column 69 says 0, the line sums to 6" in msg


def test_corrupted_digit_caught_by_checksum(tmp_path):
    corrupt = L1.replace("26053.95338319", "26053.95338419")
    p = _write(tmp_path, f"A\n{L1}\n{L2}\nB\n{corrupt}\n{M2}\n")
    with pytest.raises(TLEError, match=r":5: bad checksum on TLE line 1"):
        read_tle(p)


def test_truncated_line(tmp_path):
    p = _write(tmp_path, f"STARLINK-1008\n{L1}\n{L2}\nSTARLINK-1012\n{M1[:50]}\n{M2}\n")
    with pytest.raises(TLEError) as exc:
        read_tle(p)
    assert str(exc.value) == (f"{p}:5: TLE line 1 truncated: 50 characters, expected 69 "
                              "(re-download the file or restore the missing columns)")


def test_truncated_file_and_missing_lines(tmp_path):
    p = _write(tmp_path, f"STARLINK-1008\n{L1}\n")
    with pytest.raises(TLEError, match=r":2: TLE line 1 at the end of the file has no line 2"):
        read_tle(p)
    p = _write(tmp_path, f"STARLINK-1008\n{L2}\n", "b.tle")
    with pytest.raises(TLEError, match=r"b.tle:2: TLE line 2 without a line 1"):
        read_tle(p)
    p = _write(tmp_path, f"{L1}\n{M2}\n", "c.tle")
    with pytest.raises(TLEError, match=r"c.tle:2: catalogue number '44718' on line 2 differs"):
        read_tle(p)
    p = _write(tmp_path, "", "d.tle")
    with pytest.raises(TLEError, match="no TLEs found"):
        read_tle(p)
    with pytest.raises(TLEError, match="cannot read TLE file"):
        read_tle(tmp_path / "missing.tle")


def _synthetic_catalogue(tmp_path):
    """A 2-shell Walker catalogue as TLE text plus a few raising / eccentric satellites."""
    rng = np.random.default_rng(3)
    lines = []
    truth = []
    shells = [ShellConfig(altitude_km=550, inclination_deg=53.0, planes=12, sats_per_plane=10,
                          phasing=1),
              ShellConfig(altitude_km=570, inclination_deg=70.0, planes=6, sats_per_plane=12)]
    satnum = 1
    line1 = "1 {:05d}U 20001A   26054.00000000  .00000000  00000+0  00000+0 0  999"
    for s_index, shell in enumerate(shells):
        el = shell_elements(shell)
        n_el = len(el["plane"])
        for k in rng.permutation(n_el):  # catalogue order unrelated to planes
            l1 = line1.format(satnum)
            l1 += str(tle_checksum(l1))
            incl = shell.inclination_deg + rng.normal(0, 0.01)
            l2 = format_tle_line2(satnum, inclination_deg=incl,
                                  raan_deg=el["raan_deg"][k] + rng.normal(0, 0.05),
                                  eccentricity=1e-4, arg_perigee_deg=90.0,
                                  mean_anomaly_deg=el["arg_latitude_deg"][k] - 90.0,
                                  mean_motion_rev_per_day=el["mean_motion_rev_per_day"]
                                  + rng.normal(0, 0.0005))
            lines += [f"SAT-{satnum}", l1, l2]
            truth.append((s_index, int(el["plane"][k]), int(el["slot"][k])))
            satnum += 1
    for extra in range(5):  # raising satellites: 53 deg, spread over mean motion, one eccentric
        l1 = line1.format(satnum)
        l1 += str(tle_checksum(l1))
        l2 = format_tle_line2(satnum, inclination_deg=53.0, raan_deg=77.0 * extra,
                              eccentricity=0.01 if extra == 0 else 2e-4, arg_perigee_deg=0,
                              mean_anomaly_deg=10.0 * extra,
                              mean_motion_rev_per_day=15.3 + 0.1 * extra)
        lines += [f"RAISING-{extra}", l1, l2]
        truth.append((-1, -1, -1))
        satnum += 1
    path = _write(tmp_path, "\n".join(lines) + "\n", "synthetic.tle")
    return path, np.array(truth)


def test_plane_inference_recovers_walker_labels(tmp_path):
    path, truth = _synthetic_catalogue(tmp_path)
    recs = read_tle(path)
    res = infer_planes(recs, min_shell_sats=20)
    assert len(res.shells) == 2
    assert [s.info.n_planes for s in res.shells] == [12, 6]
    assert [s.info.sats_per_plane for s in res.shells] == [10, 12]
    labels = np.stack([res.shell, res.plane, res.slot], axis=1)
    np.testing.assert_array_equal(labels[:, 0], truth[:, 0])
    # planes are numbered by RAAN and slots by argument of latitude: the same as the generator's
    # up to where numbering starts inside each plane
    np.testing.assert_array_equal(labels[:, 1], truth[:, 1])
    for s in range(2):
        for p in range(res.shells[s].info.n_planes):
            m = (truth[:, 0] == s) & (truth[:, 1] == p)
            shift = (labels[m, 2] - truth[m, 2]) % res.shells[s].info.sats_per_plane
            assert len(set(shift.tolist())) == 1
    # the raising satellites are reported with a reason, never dropped
    assert sorted(res.unassigned) == list(range(len(truth) - 5, len(truth)))
    assert "eccentric" in res.unassigned[len(truth) - 5]
    report = plane_report(res)
    assert "2 shells" in report and "5 fit no plane" in report
    assert "RAISING-0" in report


def test_tle_constellation_labels(tmp_path):
    path, truth = _synthetic_catalogue(tmp_path)
    c = tle_constellation(path)
    assert c.n == len(truth) and c.source == "tle"
    assert (c.shell[-5:] == -1).all() and list(c.unassigned) == list(range(c.n - 5, c.n))
    plain = tle_constellation(path, label_planes=False)
    assert (plain.plane == -1).all()


def test_real_catalogue_plane_report():
    if not CATALOGUE.exists():
        pytest.skip(f"real catalogue not found at {CATALOGUE}")
    res = infer_planes(read_tle(CATALOGUE))
    assert res.n == 9543
    assigned = res.shell >= 0
    # every satellite is either in a plane or reported
    assert assigned.sum() + len(res.unassigned) == res.n
    assert set(np.flatnonzero(~assigned).tolist()) == set(res.unassigned)
    assert 0.8 < assigned.mean() < 0.99
    incl = sorted(round(s.info.inclination_deg) for s in res.shells)
    for expected in (43, 53, 70, 98):
        assert expected in incl
    # the Gen1 540 km / 53.2 deg shell: 72 planes
    gen1 = [s for s in res.shells if abs(s.info.inclination_deg - 53.2) < 0.05
            and abs(s.info.altitude_km - 540) < 10]
    assert len(gen1) == 1 and gen1[0].info.n_planes == 72
    text = plane_report(res)
    assert "fit no plane" in text and "raising or deorbiting" in text
