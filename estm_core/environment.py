"""What `estm info` reports: versions, devices, threads, audio formats, the WaveNet CPU kernel and the model store."""

from __future__ import annotations

import platform


def describe() -> dict:
    import soundfile
    import soxr
    import torch

    from . import __version__
    from .audio import WRITE_FORMATS
    from .device import choose_device, devices_seen
    from .models import wavenet_kernel
    from .store import list_models, models_dir

    return {
        "estm": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
        "devices": devices_seen(),
        "auto_device": str(choose_device("auto")),
        "threads": torch.get_num_threads(),
        "readable_formats": sorted(soundfile.available_formats()),
        "writable_extensions": sorted(WRITE_FORMATS),
        "wavenet_kernel": dict(zip(("available", "detail"), wavenet_kernel.status())),
        "store": str(models_dir()),
        "models": [
            {"name": model.name, "family": model.family, "path": str(model.path)} for model in list_models()
        ],
    }
