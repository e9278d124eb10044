"""Does a transfer transfer? Judged on a paired corpus (`estm data synth`: every excerpt rendered in all four
quadrants), where the true target of each transfer exists.

A pair takes an excerpt rendered in one quadrant (the content), another excerpt rendered in a second quadrant (the
emotion reference) and asks for the first excerpt in the second quadrant; its own rendering there is the true target.
Every method is scored beside the field's two baselines and the ceiling, measured in the same run:

    copy-content    return the content untouched (doing nothing)
    copy-reference  return the emotion reference (all emotion, none of the content)
    METHOD          the method under test: the cue method, or a learned estm1/estm2 model
    target          the true target (what a perfect transfer would return)

Each output is judged by two judges that had no part in making it: a mer model (trained on other music than the
test excerpts, and never the one that labelled a learned model's training data) and a cue judge (`cues/judge.py`,
logistic regression on the cue meter, fitted on the training part of the split). Beside the judges
(transfer_measures.py): the log-mel distance to the true target and the chroma correlation with the content, each
after aligning tempo (the best uniform time scale), and the cues each output moved against those asked.

Two corpora can be judged in one run: the development corpus (whose train part teaches the cue judge, and on which a
method's settings are chosen) and a held-out corpus (other works, another SoundFont) that no setting and no judge
learned from; every figure is given per corpus, so that the two stand side by side.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import audio
from .cues.meter import Cues, analyze_files
from .errors import EstmError
from .labels import QUADRANTS
from .transfer_measures import CUE_CHANGES, Heard, chroma_correlation, cue_changes, hear, mel_distance

BASELINES = ("copy-content", "copy-reference")
CEILING = "target"
HIGH_AROUSAL, POSITIVE_VALENCE = {"Q1", "Q2"}, {"Q1", "Q4"}
DEVELOPMENT, HELD_OUT = "development", "held-out"  # the corpora, as pairs.csv's `corpus` column names them
JUDGES = ("mer", "cue_judge")

INTERVAL_BELOW = 300  # a share of fewer items than this ("a few hundred", DESIGN) comes with its 95 % interval
Z95 = 1.959964  # the standard normal quantile of a two-sided 95 % interval


@dataclass(frozen=True)
class Pair:
    excerpt: str
    content: str  # the excerpt in content_quadrant (a path)
    reference: str  # another excerpt in target_quadrant
    target: str  # the excerpt in target_quadrant
    content_quadrant: str
    target_quadrant: str


Method = Callable[[Pair], tuple[np.ndarray, int]]  # a pair -> the output audio (frames[, channels]) and its rate


def corpus_pairs(split: pd.DataFrame, part: str, *, count: int | None = None, seed: int = 0) -> list[Pair]:
    """Every (content quadrant, target quadrant) of every excerpt of `part` with all four renderings (a split of
    `estm data synth`'s corpus), its reference taken from another excerpt of the part; `count` of them drawn at
    random if given."""
    rows = split[split["part"] == part]  # a paired corpus's group is its excerpt (its content), rendered 4 times
    files = rows.pivot_table(index="group", columns="label", values="path", aggfunc="first")
    complete = files.dropna(subset=[q for q in QUADRANTS.labels if q in files.columns])
    if len(complete) < 2 or not set(QUADRANTS.labels) <= set(files.columns):
        raise EstmError(f"the {part} part needs at least 2 excerpts rendered in all four quadrants "
                        f"(it has {len(complete)})")
    rng = np.random.default_rng(seed)
    excerpts = list(complete.index)
    order = rng.permutation(excerpts)
    partner = dict(zip(order, np.roll(order, 1)))  # a reference from another excerpt, each used as often
    pairs = [Pair(excerpt, complete.at[excerpt, source], complete.at[partner[excerpt], target],
                  complete.at[excerpt, target], source, target)
             for excerpt in excerpts for source in QUADRANTS.labels for target in QUADRANTS.labels if source != target]
    if count is not None and count < len(pairs):
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), count, replace=False))]
    return pairs


# -------------------------------------------------------------------------------------------------- methods


def model_method(name: str, device="cpu") -> tuple[Method, str, str | None]:
    """A learned estm1/estm2 model as the evaluation calls it; returns (run, model name, its style labeller).
    ESTM-2 hears the reference audio; ESTM-1 is told the reference's true quadrant (its best case)."""
    from .transfer import load_transfer_model, transfer_audio

    model = load_transfer_model(name, device)

    def run(pair: Pair) -> tuple[np.ndarray, int]:
        content, _ = audio.load(pair.content, sample_rate=model.sample_rate, mono=True)
        if model.family == "estm1":
            emotion = pair.target_quadrant
        else:
            emotion, _ = audio.load(pair.reference, sample_rate=model.sample_rate, mono=True)
        return transfer_audio(model, content, emotion), model.sample_rate

    return run, model.name, model.info.training.style_labeller


# ------------------------------------------------------------------------------------------------ evaluation


def evaluate(methods: dict[str, Method], split: pd.DataFrame, *, part: str = "test",
             held_out: pd.DataFrame | None = None, judge: str | None = None, labellers: tuple[str, ...] = (),
             count: int | None = None, seed: int = 0, jobs: int = 1, device="cpu",
             on_progress=None) -> tuple[dict, pd.DataFrame]:
    """Score each of `methods` (name -> method) beside the baselines and the ceiling on the pairs of `part` of a
    paired corpus's split (the development corpus) and, given `held_out` (another paired corpus's split), on the
    pairs of its test part too; `count` pairs of each. Both judges learn from the development corpus alone: the cue
    judge from its train part, and the mer judge may not be any of `labellers` (the models that made a method's
    training labels). Returns the summary (per corpus) and one row per corpus, pair and system."""
    from .cues.judge import CueJudge

    corpora = {DEVELOPMENT: corpus_pairs(split, part, count=count, seed=seed)}
    if held_out is not None:
        corpora[HELD_OUT] = _held_out_pairs(held_out, split, count=count, seed=seed)
    classifier = _mer_judge(judge, labellers, device)
    training = _training_files(split)
    files = sorted({path for pairs in corpora.values() for pair in pairs
                    for path in (pair.content, pair.reference, pair.target)})
    measured = _analysed(list(training["path"]) + files, jobs)  # each file once, the judge's and the pairs'
    cue_judge = CueJudge.fit([measured[path] for path in training["path"]], list(training["label"]))
    ears = _Ears(classifier, cue_judge, measured)
    rows, total, done = [], sum(map(len, corpora.values())), 0
    with tempfile.TemporaryDirectory() as scratch:
        for corpus, pairs in corpora.items():
            for number, pair in enumerate(pairs):
                rows += _pair_rows(corpus, number, pair, methods, ears, Path(scratch) / "output.wav")
                done += 1
                if on_progress:
                    on_progress(done, total)
    table = pd.DataFrame(rows)
    summary = {"methods": list(methods), "chance": {"target_accuracy": 0.25, "flips": 0.5},
               "intervals": f"95 % Wilson score intervals, given for shares of fewer than {INTERVAL_BELOW} items",
               "judges": {"mer": classifier.name if classifier else None,
                          "cue_judge": f"logistic regression on the cues of {len(training)} development training "
                                       "files"},
               "style_labellers": list(labellers), "corpora": {}}
    for corpus, pairs in corpora.items():
        summary["corpora"][corpus] = {
            "part": part if corpus == DEVELOPMENT else "test", "pairs": len(pairs),
            "excerpts": len({pair.excerpt for pair in pairs}),
            **summarise(table[table["corpus"] == corpus], list(methods))}
    return summary, table


def _held_out_pairs(held_out: pd.DataFrame, development: pd.DataFrame, *, count: int | None,
                    seed: int) -> list[Pair]:
    """The pairs of the held-out split's test part (check_held_out)."""
    check_held_out(held_out, development)
    try:
        return corpus_pairs(held_out, "test", count=count, seed=seed)
    except EstmError as error:
        raise EstmError(f"the held-out corpus: {error}") from None


def check_held_out(held_out: pd.DataFrame, development: pd.DataFrame) -> None:
    """An EstmError if the held-out split's test part shares a file with the development split (whose train part
    the cue judge learns from)."""
    shared = set(held_out.loc[held_out["part"] == "test", "path"]) & set(development["path"])
    if shared:
        raise EstmError(f"the held-out corpus shares {len(shared)} files with the development corpus (first: "
                        f"{min(shared)}): a held-out corpus is music that development never saw")


def _training_files(split: pd.DataFrame) -> pd.DataFrame:
    """The quadrant-labelled files of the split's train part, which the cue judge learns from."""
    training = split[split["part"] == "train"]
    training = training[training["label"].isin(QUADRANTS.labels)]
    if training["label"].nunique() < 2:
        raise EstmError("the split's train part has no quadrant-labelled audio for the cue judge to learn from")
    return training


def _analysed(paths: list[str], jobs: int) -> dict[str, Cues]:
    """The cues of every file of `paths`; one EstmError if any could not be analysed."""
    measured, failed = {}, []
    for path, result in analyze_files(paths, jobs=jobs):
        if isinstance(result, Cues):
            measured[path] = result
        else:
            failed.append(str(result))
    if failed:
        raise EstmError(f"{len(failed)} corpus files could not be analysed (first: {failed[0]})")
    return measured


class _Ears:
    """Hears and judges sounds for the evaluation: each corpus file once (its cues already measured), each output as
    it comes."""

    def __init__(self, classifier, cue_judge, measured: dict[str, Cues]):
        self.classifier, self.cue_judge, self.measured = classifier, cue_judge, measured
        self.files: dict[str, Heard] = {}

    def judged(self, heard: Heard, path: str) -> Heard:
        from .classify import classify_file

        heard.cue_judge = self.cue_judge.predict([heard.cues])[0]
        if self.classifier is not None:
            heard.mer = classify_file(path, [self.classifier]).decisions["mer"]["label"]
        return heard

    def file(self, path: str) -> Heard:
        if path not in self.files:
            self.files[path] = self.judged(hear(*audio.load(path), self.measured[path]), path)
        return self.files[path]

    def output(self, samples: np.ndarray, rate: int, scratch_file: Path) -> Heard:
        """An output, written to `scratch_file` for the mer judge (repeated to its segment's length if shorter)."""
        audio.save(scratch_file, at_least(samples, judge_frames(self.classifier, rate)), rate, force=True)
        return self.judged(hear(samples, rate), str(scratch_file))


def _pair_rows(corpus: str, number: int, pair: Pair, methods: dict[str, Method], ears: _Ears,
               scratch_file: Path) -> list[dict]:
    """One row per system (the baselines, each method, the ceiling) of one pair: what the judges heard, the
    distances, and each cue's asked and achieved change."""
    systems = {"copy-content": ears.file(pair.content), "copy-reference": ears.file(pair.reference)}
    for name, method in methods.items():
        systems[name] = ears.output(*method(pair), scratch_file)
    systems[CEILING] = ears.file(pair.target)
    content, reference, target = systems["copy-content"], systems["copy-reference"], systems[CEILING]
    asked = cue_changes(content.cues, reference.cues)
    rows = []
    for system, heard in systems.items():
        achieved = cue_changes(content.cues, heard.cues, asked=reference.cues)
        rows.append({
            "corpus": corpus, "pair": number, "system": system, "excerpt": pair.excerpt, "content": pair.content,
            "reference": pair.reference, "target": pair.target, "content_quadrant": pair.content_quadrant,
            "target_quadrant": pair.target_quadrant, "mer": heard.mer, "cue_judge": heard.cue_judge,
            "mel_distance_db": mel_distance(target.mel, heard.mel),
            "chroma_correlation": chroma_correlation(content.chroma, heard.chroma),
            "mode": heard.cues.mode, "mode_asked": reference.cues.mode, "loudness_lufs": heard.cues.loudness_lufs,
            **{f"{name}_asked": asked[name] for name in asked},
            **{f"{name}_moved": achieved[name] for name in achieved},  # loudness_moved: LUFS out - LUFS of content
        })
    return rows


def judge_frames(classifier, rate: int) -> int:
    """Frames at `rate` of the mer judge's segment: what it needs to hear one whole decision's worth."""
    return 0 if classifier is None else math.ceil(classifier.segment_length * rate / classifier.sample_rate)


def at_least(samples: np.ndarray, frames: int) -> np.ndarray:
    """`samples` repeated to at least `frames`: an output made shorter than the judge's segment (a content sped up)
    is heard as a passage played again, as the corpus repeats a short passage, not padded with silence (which a
    judge hears as quiet, low-arousal music)."""
    return np.concatenate([samples] * math.ceil(frames / len(samples))) if 0 < len(samples) < frames else samples


def _mer_judge(name: str | None, labellers: tuple[str, ...], device):
    """The mer model that judges (default: the newest); None when the store has none."""
    from . import store

    try:
        path = store.find_model("mer", name)
    except EstmError:
        if name is not None:
            raise
        return None
    judge = store.model_name(path)
    if judge in labellers:
        raise EstmError(f"the judge {judge} made the model's training labels; judge with another mer model, so that "
                        "a model cannot pass by fitting its own teacher")
    return store.load_model(path, "mer", device)


# -------------------------------------------------------------------------------------------------- figures


def wilson_interval(hits: int, items: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of the share `hits` / `items` (NaN, NaN for no items): unlike the normal
    approximation's, it stays within 0..1 and keeps its width at a share of 0 or 1 and on few items."""
    if items == 0:
        return math.nan, math.nan
    share, z2 = hits / items, Z95 ** 2
    centre = (share + z2 / (2 * items)) / (1 + z2 / items)
    half = Z95 / (1 + z2 / items) * math.sqrt(share * (1 - share) / items + z2 / (4 * items ** 2))
    return max(0.0, centre - half), min(1.0, centre + half)


def share_of(hits: pd.Series) -> dict:
    """The share of True in `hits`, its number of items, and under INTERVAL_BELOW items its 95 % interval."""
    items, count = int(len(hits)), int(hits.sum())
    return {"share": count / items if items else math.nan, "items": items,
            "interval": list(wilson_interval(count, items)) if 0 < items < INTERVAL_BELOW else None}


def _with_share(figures: dict, name: str, hits: pd.Series) -> None:
    """figures[name] = the share of True in `hits`; its items and interval go to figures["items"][name] and
    figures["intervals"][name]."""
    share = share_of(hits)
    figures[name] = share["share"]
    figures.setdefault("items", {})[name] = share["items"]
    figures.setdefault("intervals", {})[name] = share["interval"]


def confusion(asked: pd.Series, heard: pd.Series) -> pd.DataFrame:
    """Counts of each (asked quadrant, heard quadrant), a row per asked and a column per heard quadrant; a heard
    label that is no quadrant (an unjudged output) is not counted."""
    labels = list(QUADRANTS.labels)
    counts = pd.DataFrame(0, index=pd.Index(labels, name="asked"), columns=pd.Index(labels, name="heard"))
    for asked_quadrant, heard_quadrant in zip(asked, heard):
        if asked_quadrant in labels and heard_quadrant in labels:
            counts.at[asked_quadrant, heard_quadrant] += 1
    return counts


def per_quadrant(asked: pd.Series, heard: pd.Series) -> dict[str, dict]:
    """Per asked quadrant: the share of its asks heard in it, with the items and (under INTERVAL_BELOW) interval."""
    return {quadrant: share_of(heard[asked == quadrant] == quadrant) for quadrant in QUADRANTS.labels}


def loudness_direction(rows: pd.DataFrame) -> pd.Series:
    """On the pairs whose target flips arousal, whether the output's loudness moved the asked way from the
    content's (`loudness_moved` = LUFS of the output - LUFS of the content: up for Q1/Q2, down for Q3/Q4). An
    unchanged or unmeasured loudness counts as not moved."""
    arousal_flip, _ = _flips(rows)
    asked = np.where(rows["target_quadrant"].isin(HIGH_AROUSAL), 1.0, -1.0)
    return (np.sign(rows["loudness_moved"]) == asked)[arousal_flip]


def _flips(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row, whether its target is asked to flip arousal and whether to flip valence."""
    target, content = rows["target_quadrant"], rows["content_quadrant"]
    return (target.isin(HIGH_AROUSAL) != content.isin(HIGH_AROUSAL),
            target.isin(POSITIVE_VALENCE) != content.isin(POSITIVE_VALENCE))


def _judge_figures(rows: pd.DataFrame, judge: str) -> dict | None:
    """What one judge heard of one system's outputs: target accuracy, arousal and valence flips (each with its items
    and interval), accuracy per asked quadrant and the confusion matrix; None for a judge that did not judge."""
    heard, target = rows[judge], rows["target_quadrant"]
    if heard.isna().all():
        return None
    arousal_flip, valence_flip = _flips(rows)
    figures: dict = {}
    _with_share(figures, "target_accuracy", heard == target)
    _with_share(figures, "arousal_flips", (heard.isin(HIGH_AROUSAL) == target.isin(HIGH_AROUSAL))[arousal_flip])
    _with_share(figures, "valence_flips",
                (heard.isin(POSITIVE_VALENCE) == target.isin(POSITIVE_VALENCE))[valence_flip])
    figures["per_quadrant"] = per_quadrant(target, heard)
    counts = confusion(target, heard)
    figures["confusion"] = {asked: {label: int(counts.at[asked, label]) for label in counts.columns}
                            for asked in counts.index}
    return figures


def _cue_directions(rows: pd.DataFrame, content: pd.DataFrame) -> dict[str, float | None]:
    """For each cue, the share of the pairs asking it to move (by at least its threshold) on which it moved that
    way; for the mode, the share of pairs asking another mode than the content's that came out in it."""
    directions = {}
    for name, _, threshold in CUE_CHANGES:
        asked, moved = rows[f"{name}_asked"], rows[f"{name}_moved"]
        counted = asked.abs() >= threshold
        directions[name] = float((np.sign(moved[counted]) == np.sign(asked[counted])).mean()) \
            if counted.any() else None
    mode_asked = rows["mode_asked"] != content["mode"]
    directions["mode"] = float((rows["mode"] == rows["mode_asked"])[mode_asked].mean()) if mode_asked.any() else None
    return directions


def summarise(table: pd.DataFrame, methods: list[str]) -> dict:
    """The figures of one corpus's rows. Per system: each judge's figures (_judge_figures); the share of pairs on
    which it is closer to the target than the content is; its distances; the share of arousal-flipping pairs on
    which its loudness moved the asked way (loudness_direction); and for each cue, how often it moved the way the
    reference asked. Per judge, its ceiling: the true target's accuracy (a goal may be set relative to it). Chance is
    0.25 for the target and 0.5 for each flip."""
    by_pair = table[table["system"] == "copy-content"].set_index("pair")
    systems = {}
    for system in (*BASELINES, *methods, CEILING):
        rows = table[table["system"] == system].set_index("pair")
        _, valence_flip = _flips(rows)
        judged = {judge: _judge_figures(rows, judge) for judge in JUDGES}
        scores = {
            "judges": {judge: figures for judge, figures in judged.items() if figures is not None},
            "mel_distance_db": float(rows["mel_distance_db"].mean()),
            "closer_than_content": float((rows["mel_distance_db"] < by_pair["mel_distance_db"]).mean()),
            "chroma_correlation": float(rows["chroma_correlation"].mean()),
            "chroma_correlation_same_mode": float(rows["chroma_correlation"][~valence_flip].mean()),
            "loudness_change_lu": float(rows["loudness_moved"].replace([np.inf, -np.inf], np.nan).mean()),
            "cue_directions": _cue_directions(rows, by_pair),
        }
        _with_share(scores, "loudness_direction", loudness_direction(rows))
        systems[system] = scores
    ceiling = {judge: figures["target_accuracy"] for judge, figures in systems[CEILING]["judges"].items()}
    return {"ceiling": ceiling, "systems": systems}


def summary_rows(summary: dict, corpus: str = DEVELOPMENT) -> list[dict]:
    """One row per system (baselines, the methods, the ceiling) of `corpus` with the headline numbers, for tables."""
    rows = []
    for system, scores in summary["corpora"][corpus]["systems"].items():
        row = {"system": system}
        for judge in JUDGES:
            figures = scores["judges"].get(judge, {})
            for key in ("target_accuracy", "arousal_flips", "valence_flips"):
                if key in figures:
                    row[f"{judge} {key.replace('_', ' ')}"] = figures[key]
        row.update({"mel distance dB": scores["mel_distance_db"], "closer than content": scores["closer_than_content"],
                    "chroma with content": scores["chroma_correlation"],
                    "loudness moved the asked way": scores["loudness_direction"]})
        rows.append(row)
    return rows


def example_pair(table: pd.DataFrame) -> Pair:
    """The first pair of the table's first corpus whose target flips both arousal and valence (Q1<->Q3, Q2<->Q4),
    else its first pair."""
    rows = table[table["corpus"] == table["corpus"].iloc[0]].drop_duplicates("pair")
    arousal_flip, valence_flip = _flips(rows)
    both = rows[arousal_flip & valence_flip]
    row = (both if len(both) else rows).iloc[0]
    return Pair(row["excerpt"], row["content"], row["reference"], row["target"], row["content_quadrant"],
                row["target_quadrant"])


def example_png(methods: dict[str, Method], table: pd.DataFrame, path: str | Path, *,
                audio_folder: str | Path | None = None, force: bool = False) -> dict[str, str]:
    """The figure of one pair (example_pair): content, emotion reference, each method's output and the true target,
    side by side, as waveforms over log-mel spectrograms. With `audio_folder`, each output is written there too
    (METHOD.wav). Returns the figure and the audio files shown, as {role: path}."""
    from .audio import Clip, load_clip
    from .plots import spectrogram_png

    pair = example_pair(table)
    shown = {f"content ({pair.content_quadrant})": load_clip(pair.content, None),
             f"reference ({pair.target_quadrant})": load_clip(pair.reference, None)}
    files = {role: path for role, path in zip(shown, (pair.content, pair.reference))}
    for name, method in methods.items():
        output, rate = method(pair)
        shown[name] = Clip("output", audio.to_mono(output), rate)
        if audio_folder is not None:
            files[name] = str(audio.save(Path(audio_folder) / f"{name}.wav", output, rate, force=force))
    target = f"target ({pair.target_quadrant})"
    shown[target], files[target] = load_clip(pair.target, None), pair.target
    for role, clip in shown.items():
        clip.name = f"{role}: {clip.name}"
    files["figure"] = str(spectrogram_png(list(shown.values()), path, force=force,
                                          title=f"{pair.excerpt}: {pair.content_quadrant} -> {pair.target_quadrant}"))
    return files
