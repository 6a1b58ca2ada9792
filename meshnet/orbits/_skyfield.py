"""Cached skyfield objects loaded from skyfield-data (never downloaded at run time)."""

from __future__ import annotations

import warnings
from functools import lru_cache


def _loader():
    import skyfield_data
    from skyfield.api import Loader

    return Loader(skyfield_data.get_skyfield_data_path(), expire=False, verbose=False)


@lru_cache(maxsize=1)
def timescale():
    """skyfield Timescale with UT1 and polar motion from skyfield-data's finals2000A.all.

    skyfield applies polar motion only once a table is installed on the timescale
    (``skyfield.data.iers.install_polar_motion_table``); without it ITRS positions are off by
    the pole's wander, 10-15 m at LEO in 2024-2026.
    """
    from skyfield.data import iers

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has expired.*", category=RuntimeWarning)
        loader = _loader()
        ts = loader.timescale(builtin=False)
        with loader.open("finals2000A.all") as fh:
            iers.install_polar_motion_table(ts, iers.parse_x_y_dut1_from_finals_all(fh))
        return ts


@lru_cache(maxsize=1)
def ephemeris():
    """The de421 planetary ephemeris shipped by skyfield-data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has expired.*", category=RuntimeWarning)
        return _loader()("de421.bsp")
