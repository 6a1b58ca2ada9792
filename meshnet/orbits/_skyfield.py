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
    """skyfield Timescale with UT1 from skyfield-data's finals2000A.all."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has expired.*", category=RuntimeWarning)
        return _loader().timescale(builtin=False)


@lru_cache(maxsize=1)
def ephemeris():
    """The de421 planetary ephemeris shipped by skyfield-data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has expired.*", category=RuntimeWarning)
        return _loader()("de421.bsp")
