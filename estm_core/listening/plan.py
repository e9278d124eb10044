"""A listening test's plan (plan.json): its stimuli, its trials and each listener's order.

Trials are of two kinds. An emotion trial plays one stimulus and asks which quadrant it expresses. A quality trial
(MUSHRA, ITU-R BS.1534) plays the original (the reference) and several versions of it to rate 0-100: among them the
original itself (the hidden reference) and a 3.5 kHz low-passed copy (the anchor). Some emotion trials come twice
(hidden duplicates): a listener who answers them differently is not listening.

Each listener has an order of their own, seeded: the emotion trials first, then the quality trials, each block
shuffled with the duplicates kept apart from their originals, and a quality trial's versions shuffled. Every second
listener hears the one before in reverse, so over the listeners every trial stands on average in the middle of its
block and order effects cancel. The plan is written once and never changes; the orders are listed for as many
listeners as were asked for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import FileError
from .sources import Item

PLAN_FILE = "plan.json"
AUDIO_FOLDER, AUDIO_SUFFIX = "audio", ".flac"  # lossless, and every current browser plays it
_TOKEN = re.compile(r"[0-9a-f]{8}")
FORMAT, VERSION = "estm listening test", 1
EMOTION, QUALITY = "emotion", "quality"
HIDDEN_REFERENCE, ANCHOR = "hidden reference", "anchor"
ORIGINAL, LOW_PASSED = "original", "anchor"  # how a stimulus is made from its source file


class Stimuli:
    """Each (source file, treatment) once, under an opaque id that says nothing of its system."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.ids: dict[tuple[str, str], str] = {}

    def id(self, path: str, treatment: str = ORIGINAL) -> str:
        key = (str(path), treatment)
        if key not in self.ids:
            taken = set(self.ids.values())
            while (token := f"{int(self.rng.integers(16 ** 8)):08x}") in taken:
                pass
            self.ids[key] = token
        return self.ids[key]

    def sources(self) -> dict[str, dict]:
        return {token: {"source": path, "treatment": treatment} for (path, treatment), token in self.ids.items()}


def emotion_trials(items: list[Item], stimuli: Stimuli) -> list[dict]:
    """One trial per item asked for a quadrant and per system's version of it."""
    trials = []
    for item in items:
        if item.asked is None:
            continue
        for system, path in item.files.items():
            trials.append({"id": f"e{len(trials) + 1:03d}", "kind": EMOTION, "item": item.key, "system": system,
                           "asked": item.asked, "stimulus": stimuli.id(path)})
    return trials


def with_duplicates(trials: list[dict], count: int, rng: np.random.Generator) -> list[dict]:
    """`trials` and `count` hidden duplicates of them, the systems taken in turn (each drawn at random)."""
    by_system: dict[str, list[dict]] = {}
    for trial in trials:
        by_system.setdefault(trial["system"], []).append(trial)
    queues = [[group[i] for i in rng.permutation(len(group))] for group in by_system.values()]
    repeated: list[dict] = []
    while len(repeated) < min(count, len(trials)):
        for queue in queues:
            if queue and len(repeated) < count:
                repeated.append(queue.pop(0))
    number = len(trials)
    duplicates = [{**trial, "id": f"e{number + k + 1:03d}", "duplicate_of": trial["id"]}
                  for k, trial in enumerate(repeated)]
    return trials + duplicates


def quality_trials(items: list[Item], stimuli: Stimuli) -> list[dict]:
    """One MUSHRA trial per item with an original: the hidden reference, the anchor and each rated system."""
    trials = []
    for item in items:
        if item.reference is None or not item.rated:
            continue
        versions = [{"system": HIDDEN_REFERENCE, "stimulus": stimuli.id(item.reference)},
                    {"system": ANCHOR, "stimulus": stimuli.id(item.reference, LOW_PASSED)}]
        versions += [{"system": system, "stimulus": stimuli.id(item.files[system])} for system in item.rated]
        trials.append({"id": f"q{len(trials) + 1:03d}", "kind": QUALITY, "item": item.key, "asked": item.asked,
                       "reference": stimuli.id(item.reference), "versions": versions})
    return trials


# -------------------------------------------------------------------------------------------------- orders


def listener_orders(trials: list[dict], listeners: int, seed: int) -> list[list[dict]]:
    """Each listener's order: [{"trial": id}, or for a quality trial {"trial": id, "versions": the plan's version
    shown in each place}]; listener 2k + 1 hears listener 2k's blocks in reverse."""
    rng = np.random.default_rng([seed, 1])  # apart from the stream that chose the items and the stimuli's ids
    emotion = [trial for trial in trials if trial["kind"] == EMOTION]
    quality = [trial for trial in trials if trial["kind"] == QUALITY]
    orders: list[list[dict]] = []
    for listener in range(listeners):
        if listener % 2:
            shown, rated = orders[-1][:len(emotion)][::-1], orders[-1][len(emotion):][::-1]
            rated = [{**entry, "versions": [int(i) for i in rng.permutation(len(entry["versions"]))]}
                     for entry in rated]
        else:
            shown = [{"trial": trial["id"]} for trial in _apart(emotion, rng)]
            rated = [{"trial": quality[i]["id"],
                      "versions": [int(k) for k in rng.permutation(len(quality[i]["versions"]))]}
                     for i in rng.permutation(len(quality))]
        orders.append(shown + rated)
    return orders


def _apart(trials: list[dict], rng: np.random.Generator, tries: int = 2000) -> list[dict]:
    """`trials` shuffled so that each duplicate stands far from its original: at least a third of the block (and
    never next to it) where a shuffle can manage that, else the shuffle that kept them furthest apart."""
    wanted = max(2, len(trials) // 3)
    best, best_gap = trials, -1
    for _ in range(tries):
        order = [trials[i] for i in rng.permutation(len(trials))]
        gap = duplicate_gap(order)
        if gap >= wanted:
            return order
        if gap > best_gap:
            best, best_gap = order, gap
    return best


def duplicate_gap(order: list[dict]) -> int:
    """The fewest places between a duplicate and its original in `order` (trials), len(order) where none."""
    place = {trial["id"]: i for i, trial in enumerate(order)}
    gaps = [abs(place[trial["id"]] - place[trial["duplicate_of"]]) for trial in order if trial.get("duplicate_of")]
    return min(gaps, default=len(order))


# ------------------------------------------------------------------------------------------------ the file


def stimulus_file(folder: str | Path, token: str) -> Path:
    """Where the test folder `folder` keeps stimulus `token`'s audio (a token is 8 hex digits: never a path)."""
    return Path(folder) / AUDIO_FOLDER / f"{token}{AUDIO_SUFFIX}"


def read_plan(folder: str | Path) -> dict:
    """The plan of the test folder `folder`, checked; one line (FileError) where the folder is not a test."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileError(folder, "not a folder" if folder.exists() else "no such folder")
    path = folder / PLAN_FILE
    if not path.is_file():
        raise FileError(folder, f"not a listening test (it has no {PLAN_FILE}; `estm listen make` makes one)")
    try:
        plan = json.loads(path.read_text())
    except (OSError, UnicodeError, ValueError) as error:
        raise FileError(path, f"cannot read it as JSON ({error})") from None
    try:
        problem = plan_problem(plan, folder)
    except (AttributeError, TypeError, KeyError, IndexError) as error:
        problem = f"its structure is broken ({type(error).__name__}: {error})"
    if problem:
        raise FileError(path, f"not a listening test's plan: {problem}")
    return plan


def plan_problem(plan, folder: Path) -> str | None:
    """What is wrong with `plan` (the JSON of a test folder's plan), or None."""
    if not isinstance(plan, dict) or plan.get("format") != FORMAT:
        return f"its format is not {FORMAT!r}"
    if plan.get("version") != VERSION:
        return f"version {plan.get('version')!r}; this estm reads version {VERSION}"
    stimuli, trials, orders = plan.get("stimuli"), plan.get("trials"), plan.get("orders")
    if not isinstance(stimuli, dict) or not isinstance(trials, list) or not isinstance(orders, list) or not orders:
        return "it needs stimuli, trials and at least one listener's order"
    for token in stimuli:
        if not _TOKEN.fullmatch(token) or not stimulus_file(folder, token).is_file():
            return f"stimulus {token}'s audio is missing"
    ids = {trial.get("id"): trial for trial in trials if isinstance(trial, dict)}
    if len(ids) != len(trials) or not trials:
        return "its trials need unique ids"
    for trial in trials:
        used = [trial.get("stimulus")] if trial.get("kind") == EMOTION else \
            [version.get("stimulus") for version in trial.get("versions", [])] + [trial.get("reference")]
        if trial.get("kind") not in (EMOTION, QUALITY) or not all(token in stimuli for token in used):
            return f"trial {trial.get('id')} is of an unknown kind or plays a stimulus it does not list"
    for number, order in enumerate(orders):
        if sorted(entry.get("trial") for entry in order) != sorted(ids):
            return f"listener order {number + 1} does not hold every trial once"
        for entry in order:
            if ids[entry["trial"]]["kind"] == QUALITY and \
                    sorted(entry.get("versions", [])) != list(range(len(ids[entry["trial"]]["versions"]))):
                return f"listener order {number + 1} shows trial {entry['trial']}'s versions wrongly"
    return None
