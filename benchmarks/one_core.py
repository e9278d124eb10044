"""Imported first by the benchmark scripts: pin the process to one core and keep every numerical library from
starting threads of its own, so that "x real time" means per core. It must run before numpy or torch is imported."""

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
