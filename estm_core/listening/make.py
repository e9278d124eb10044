"""`estm listen make`: a test folder, made whole or not at all.

    TEST/plan.json       the stimuli (their sources: never served), the trials and each listener's order
    TEST/audio/*.flac    the stimuli, named by opaque tokens
    TEST/answers/        one file of JSON lines per listener, appended by `estm listen serve`

The folder is built beside its place under a temporary name and renamed into it when complete. A folder that holds
answers is never replaced, --force or not: answers are the one thing a rerun cannot make again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..errors import EstmError, FileError
from ..files import OWNER
from . import plan as plans
from .sources import Item, choose
from .stimuli import LEVEL_LUFS, prepare

ANSWERS_FOLDER = "answers"
DUPLICATE_SHARE = 0.1  # of the emotion trials, by default (at least 2)


def default_duplicates(emotion_trials: int) -> int:
    return 0 if emotion_trials < 2 else min(emotion_trials, max(2, round(DUPLICATE_SHARE * emotion_trials)))


def design(items: list[Item], *, count: int | None, quality: int | None, duplicates: int | None, listeners: int,
           seed: int) -> tuple[list[dict], list[list[dict]], plans.Stimuli]:
    """The trials of `count` items chosen from `items` (quality trials for the first `quality` of them that have an
    original; None: all), with hidden duplicates, and `listeners` orders; and the stimuli they play."""
    chosen = choose(items, count, seed)
    rng = np.random.default_rng(seed)
    stimuli = plans.Stimuli(rng)
    emotion = plans.emotion_trials(chosen, stimuli)
    repeats = default_duplicates(len(emotion)) if duplicates is None else duplicates
    if repeats > len(emotion):
        raise EstmError(f"--duplicates {repeats}: there are only {len(emotion)} emotion trials to repeat")
    emotion = plans.with_duplicates(emotion, repeats, rng)
    rated = [item for item in chosen if item.reference is not None and item.rated]
    trials = emotion + plans.quality_trials(rated if quality is None else rated[:quality], stimuli)
    if not trials:
        raise EstmError("no trials: no item is asked for a quadrant or has an original to rate against")
    return trials, plans.listener_orders(trials, listeners, seed), stimuli


def make_test(items: list[Item], folder: str | Path, *, made: dict, count: int | None = None,
              quality: int | None = None, duplicates: int | None = None, listeners: int = 20, seed: int = 0,
              match: bool = True, level: float = LEVEL_LUFS, seconds: float | None = None, force: bool = False,
              on_progress=None) -> dict:
    """Make the test folder `folder` from `items`; `made` (what it was made from) goes into the plan as it is.
    Returns the plan."""
    from .. import __version__

    folder = Path(folder)
    check_test_folder(folder, force)
    trials, orders, stimuli = design(items, count=count, quality=quality, duplicates=duplicates,
                                     listeners=listeners, seed=seed)
    partial = folder.with_name(f".{folder.name}.{OWNER}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        (partial / plans.AUDIO_FOLDER).mkdir(parents=True)
        (partial / ANSWERS_FOLDER).mkdir()
        records, level_lufs = prepare(stimuli.sources(), partial, match=match, level=level, seconds=seconds,
                                      on_progress=on_progress)
        plan = {"format": plans.FORMAT, "version": plans.VERSION,
                "made": {"estm": __version__, **made, "seed": seed, "listeners": listeners, "matched": match,
                         "level_lufs": level_lufs, "seconds": seconds},
                "stimuli": records, "trials": trials, "orders": orders}
        from ..report import write_json

        write_json(plan, partial / plans.PLAN_FILE)
        _put_in_place(partial, folder)
    except OSError as error:
        raise FileError(folder, f"cannot write: {(error.strerror or str(error)).lower()}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return plan


def check_test_folder(folder: Path, force: bool) -> None:
    """Refuse a place that holds anything unless `force`, and one that holds answers always."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise FileError(folder, "is a file, not a folder")
    answers = [path for path in (folder / ANSWERS_FOLDER).glob("*.jsonl") if path.stat().st_size]
    if answers:
        raise FileError(folder, f"holds the answers of {len(answers)} listener(s): make the test in another folder "
                                "(or move the answers away yourself)")
    if any(folder.iterdir()) and not force:
        raise FileError(folder, "already exists (use --force to overwrite)")


def _put_in_place(partial: Path, folder: Path) -> None:
    """Rename the finished `partial` folder to `folder`, the one it replaces removed only once it is in place."""
    old = folder.with_name(f".{folder.name}.{OWNER}.old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
