"""``meshnet info``: what a bug report needs to say about this installation."""

from __future__ import annotations

import os
import platform


def info_text() -> str:
    """Versions, Numba threading layer and thread count, cache directory, built-in scenarios."""
    import numba
    import numpy
    import pyarrow
    import scipy
    import sgp4
    import skyfield
    import skyfield_data

    from . import __version__
    from .scenario import builtin_scenarios

    try:
        from numba.core.config import CACHE_DIR
    except ImportError:  # pragma: no cover
        CACHE_DIR = ""
    layer = _threading_layer()
    cache = os.environ.get("NUMBA_CACHE_DIR") or CACHE_DIR or "(next to the installed modules)"
    lines = [
        f"meshnet        {__version__}",
        f"python         {platform.python_version()} ({platform.platform()})",
        f"numpy          {numpy.__version__}",
        f"numba          {numba.__version__}",
        f"scipy          {scipy.__version__}",
        f"sgp4           {sgp4.__version__} (C++ accelerated: {_sgp4_accelerated()})",
        f"skyfield       {skyfield.__version__}",
        f"skyfield-data  {_version('skyfield-data')} "
        f"({skyfield_data.get_skyfield_data_path()})",
        f"pyarrow        {pyarrow.__version__}",
        f"numba threads  {numba.get_num_threads()} (threading layer: {layer})",
        f"numba cache    {cache}",
        "scenarios      " + ", ".join(builtin_scenarios()),
    ]
    return "\n".join(lines)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def _sgp4_accelerated() -> bool:
    from sgp4.api import accelerated

    return bool(accelerated)


def _threading_layer() -> str:
    """The layer Numba picks, found by running a tiny parallel kernel (compiled once, cached)."""
    import numba

    try:
        from .kernels._info import touch_parallel

        touch_parallel()
        return numba.threading_layer()
    except Exception as exc:  # noqa: BLE001 - report, do not fail, on exotic installs
        return f"unavailable ({type(exc).__name__})"
