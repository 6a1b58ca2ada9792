"""A trivial parallel kernel so ``meshnet info`` can report Numba's threading layer."""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _sum_parallel(x):
    total = 0.0
    for i in prange(x.shape[0]):
        total += x[i]
    return total


def touch_parallel() -> float:
    return float(_sum_parallel(np.ones(16)))
