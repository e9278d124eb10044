"""Where `estm evaluate transfer --keep-audio` keeps each system's output, so that people can hear them later
(`estm listen make`): AUDIO_FOLDER inside the report folder, one folder per pair, one file per judged system.

A pair's folder is named from the pair itself (its excerpt, its quadrants and a digest of its content and
reference files), so that pairs.csv alone finds every output again; nothing else records the mapping.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

AUDIO_FOLDER = "audio"
AUDIO_SUFFIX = ".flac"  # lossless, half a WAV's size, played by every current browser


def slug(name: str) -> str:
    """`name` as a file name: runs of anything but letters, digits, '.' and '-' become one '_'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", str(name)).strip("_") or "_"


def kept_path(folder: str | Path, system: str, excerpt: str, content_quadrant: str, target_quadrant: str,
              content: str, reference: str) -> Path:
    """The file in `folder` (the report's AUDIO_FOLDER) that keeps `system`'s output for one pair."""
    digest = hashlib.sha1(f"{content}\0{reference}".encode()).hexdigest()[:10]
    pair = f"{slug(excerpt)}-{content_quadrant}-{target_quadrant}-{digest}"
    return Path(folder) / pair / f"{slug(system)}{AUDIO_SUFFIX}"


def check_kept_folder(report_folder: str | Path, force: bool) -> Path:
    """The audio folder of `report_folder`, refused (one line) if it exists already, unless `force`."""
    from .errors import FileError

    folder = Path(report_folder) / AUDIO_FOLDER
    if folder.exists() and not force:
        raise FileError(folder, "already exists (use --force to overwrite)")
    return folder


def keeping(methods: dict, folder: str | Path, force: bool = False) -> dict:
    """`methods` (name -> transfer_evaluation.Method), each also saving what it returns under `folder` (kept_path)
    the first time it is asked for a pair."""
    return {name: _keeper(name, method, Path(folder), force) for name, method in methods.items()}


def _keeper(name: str, method, folder: Path, force: bool):
    written: set[Path] = set()

    def run(pair):
        from . import audio

        samples, rate = method(pair)
        path = kept_path(folder, name, pair.excerpt, pair.content_quadrant, pair.target_quadrant, pair.content,
                         pair.reference)
        if path not in written:  # the example figure asks for one pair again
            audio.save(path, samples, rate, force=force)
            written.add(path)
        return samples, rate

    return run
