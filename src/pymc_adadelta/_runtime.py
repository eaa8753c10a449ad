"""Runtime settings for the package's own numerical loops on few cores.

`lean_runtime` runs a block with one BLAS thread and the cyclic garbage collector
paused, as the full-data fit of a minibatch model and the subsampled log density of
its export do (measurements in its docstring).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["lean_runtime"]


@contextmanager
def lean_runtime() -> Iterator[None]:
    """One BLAS thread, and the cyclic garbage collector paused (then as it was).

    BLAS: the products of the objective are thin (rows x features times features x
    draws) and alternate with the short steps of L-BFGS, between which the thread pools
    of NumPy's and SciPy's OpenBLAS (one each) spin and take the cores from each other.
    Measured on 2 cores, 1e5 rows: a logistic regression with 200 features took 28.7 s
    instead of 6.1 s (its rough fit on 2,000 rows 12.7 s instead of 0.19 s); with 20
    features the L-BFGS phases of a Poisson regression took 1.7 s instead of 0.3 s.
    Collector: the first compile of a process loads PyTensor's C module cache, ~450,000
    objects that live on, and while they pile up CPython runs a full collection each
    time they grow by a quarter (5 of them, 1.2 s, in a fit of 3.6 s); paused, one full
    collection at the end (`_collect_if_due`) takes 0.5 s.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if enabled:
            _collect_if_due()
            gc.enable()


def _collect_if_due() -> None:
    """A full collection if over 100,000 objects were made, and over a quarter of the old.

    That is a first compile in the process: CPython would run a full collection soon
    anyway, after scanning the new objects twice on their way to the old generation
    (paused without this, those scans and that collection fell in the next call,
    ``to_arviz``: 0.5 s more). Later fits make fewer objects (~90,000, most of them
    cycles of the compile's graphs) and leave them to the usual young collections;
    counting the old generation takes ~0.1 s. A fit leaves ~19,000 cyclic objects.
    """
    young = gc.get_count()[0]
    if young > 100_000 and young > len(gc.get_objects(generation=2)) / 4:
        gc.collect()
