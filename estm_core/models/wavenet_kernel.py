"""The C loop behind FastWaveNet's gated layers on the CPU (`wavenet_layers.c`), compiled on first use.

Torch's cost per operation is larger than the arithmetic of a generation step's tiny per-layer products, so on the
CPU they run in one C call. The library is built once per machine and compiler into the store's cache; where it
cannot be (no C compiler, a failed build), `status()` says why and FastWaveNet runs the same step in torch.
No -ffast-math: it lets the compiler reorder sums and assume there is no NaN, and the loop must give what the torch
path gives.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ..store import store_root

SOURCE = Path(__file__).with_name("wavenet_layers.c")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared"]
MAX_CHANNELS = 1024  # the C loop's per-stream buffer (MAX_CHANNELS in wavenet_layers.c)


@functools.cache
def _load() -> tuple[ctypes._CFuncPtr | None, str]:
    """(the compiled function, where it is) or (None, why there is none)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None, "no C compiler found (install cc, or set CC)"
    source = SOURCE.read_bytes()
    # -march=native code must not be loaded on another kind of CPU (a cluster's nodes share the cache)
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(),
                                      platform.machine().encode(), _cpu_model().encode()])).hexdigest()[:16]
    library = store_root() / "cache" / "kernels" / f"wavenet_layers-{key}.so"
    try:
        if not library.exists():
            library.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
                built = Path(scratch) / library.name
                subprocess.run([compiler, *FLAGS, "-o", str(built), str(SOURCE), "-lm"], check=True,
                               capture_output=True, timeout=120)
                os.replace(built, library)  # atomic: concurrent jobs never load a half-written library
        function = ctypes.CDLL(str(library)).wavenet_layers
    except subprocess.CalledProcessError as error:
        message = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        return None, f"{compiler} failed to build {SOURCE.name}: {message[0] if message else error}"
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"cannot build or load {SOURCE.name}: {error}"
    function.argtypes = [ctypes.c_int] * 4 + [ctypes.c_void_p] * 12
    function.restype = None
    return function, str(library)


def status() -> tuple[bool, str]:
    """(whether the C loop is available, the library's path or why not): for `estm info` and the benchmark."""
    function, where = _load()
    return function is not None, where


def unusable(tensors: list[torch.Tensor], channels: int) -> str | None:
    """Why the C loop cannot take these tensors (it reads raw float32 memory), or None where it can."""
    if channels > MAX_CHANNELS:
        return f"{channels} residual channels (the C loop holds {MAX_CHANNELS})"
    for tensor in tensors:
        if tensor.device.type != "cpu":
            return f"the model is on {tensor.device}"
        if tensor.dtype != torch.float32:
            return f"the model is {tensor.dtype} (the C loop takes float32)"
        if not tensor.is_contiguous():
            return "a non-contiguous tensor"
    return None


def layers_function(tensors: list[torch.Tensor], sizes: list[int]):
    """A callable (codes, slots) -> None that runs the C loop on `tensors` (checked by `unusable` first; updated in
    place, so their addresses stay fixed), or (None, why not)."""
    function, where = _load()
    if function is None:
        return None, where
    pointers = [tensor.data_ptr() for tensor in tensors]

    def run(codes: torch.Tensor, slots: torch.Tensor) -> None:
        if codes.dtype != torch.int64 or slots.dtype != torch.int64 or not codes.is_contiguous():
            raise TypeError("the C loop takes contiguous int64 codes and slots")
        function(*sizes, codes.data_ptr(), slots.data_ptr(), *pointers)

    return run, None


def _cpu_model() -> str:
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                    "")
    except OSError:
        return platform.processor()
