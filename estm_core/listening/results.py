"""`estm listen results`: what the listeners heard, per system.

Per system: how often the asked quadrant was identified (and the asked arousal and valence), the confusion matrix,
the mean valence and arousal of the optional sliders, and the mean quality rating; each with its 95 % interval.
Listeners are excluded by BS.1534-3's post-screening (the hidden reference rated below 90 in more than 15 % of their
quality trials) and by their hidden duplicates (the same answer to fewer than half of them); agreement between the
listeners kept is Fleiss' kappa over the emotion trials. A hidden duplicate's answer serves the consistency check
only, so that each stimulus counts once per listener.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FileError
from ..labels import QUADRANTS
from ..transfer_evaluation import HIGH_AROUSAL, POSITIVE_VALENCE
from . import statistics
from .answers import read_answers
from .plan import EMOTION, HIDDEN_REFERENCE, QUALITY, read_plan

RESULTS_FOLDER = "results"
CHANCE = {"identified": 0.25, "arousal": 0.5, "valence": 0.5}


def results_files(out_dir: str | Path) -> list[Path]:
    return [Path(out_dir) / name for name in ("results.json", "results.csv", "answers.csv", "results.png")]


def answer_tables(plan: dict, answers: dict[str, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per emotion answer, one row per quality rating), each with its trial's item and system."""
    trials = {trial["id"]: trial for trial in plan["trials"]}
    emotion, quality = [], []
    for listener, records in answers.items():
        for record in records[1:]:
            trial = trials.get(record.get("trial"))
            if record.get("kind") != "answer" or trial is None:
                continue
            where = {"listener": listener, "position": record["position"], "trial": trial["id"],
                     "item": trial["item"]}
            if trial["kind"] == EMOTION:
                emotion.append({**where, "system": trial["system"], "asked": trial["asked"],
                                "duplicate_of": trial.get("duplicate_of") or "", "answer": record["quadrant"],
                                "valence": record.get("valence"), "arousal": record.get("arousal")})
            else:
                for version, rating in zip(trial["versions"], record["ratings"]):
                    quality.append({**where, "system": version["system"], "rating": rating})
    emotion_columns = ["listener", "position", "trial", "item", "system", "asked", "duplicate_of", "answer",
                       "valence", "arousal"]
    quality_columns = ["listener", "position", "trial", "item", "system", "rating"]
    return pd.DataFrame(emotion, columns=emotion_columns), pd.DataFrame(quality, columns=quality_columns)


def listener_checks(emotion: pd.DataFrame, quality: pd.DataFrame, listeners: list[str]) -> dict[str, dict]:
    """Per listener: answers given, the post-screening and the duplicates' consistency, and whether excluded."""
    checks = {}
    for listener in listeners:
        mine = emotion[emotion["listener"] == listener]
        first = dict(zip(mine["trial"], mine["answer"]))
        pairs = [(first[original], answer) for original, answer in zip(mine["duplicate_of"], mine["answer"])
                 if original and original in first]
        screened = statistics.post_screening(
            quality[(quality["listener"] == listener) & (quality["system"] == HIDDEN_REFERENCE)]["rating"])
        agreed = statistics.consistency(pairs)
        reasons = (["hidden reference below 90 in more than 15 % of trials"] if screened["excluded"] else []) + \
                  (["different answers to half or more of the hidden duplicates"] if agreed["excluded"] else [])
        checks[listener] = {"emotion_answers": len(mine), "quality_trials": screened["trials"],
                            "post_screening": screened, "duplicates": agreed, "excluded": bool(reasons),
                            "reasons": reasons}
    return checks


def system_figures(answers: pd.DataFrame, ratings: pd.DataFrame) -> dict:
    """One system's figures from its emotion answers (duplicates left out) and its quality ratings."""
    figures: dict = {}
    if len(answers):
        asked, answered = answers["asked"], answers["answer"]
        figures["identified"] = statistics.share(int((asked == answered).sum()), len(answers))
        figures["arousal"] = statistics.share(int((asked.isin(HIGH_AROUSAL) == answered.isin(HIGH_AROUSAL)).sum()),
                                              len(answers))
        figures["valence"] = statistics.share(
            int((asked.isin(POSITIVE_VALENCE) == answered.isin(POSITIVE_VALENCE)).sum()), len(answers))
        figures["confusion"] = {quadrant: {heard: int(((asked == quadrant) & (answered == heard)).sum())
                                           for heard in QUADRANTS.labels} for quadrant in QUADRANTS.labels}
        for scale in ("valence", "arousal"):
            figures[f"{scale}_slider"] = statistics.mean_interval(answers[scale].dropna())
        figures["fleiss_kappa"] = agreement(answers)["fleiss_kappa"]
    if len(ratings):
        figures["quality"] = statistics.mean_interval(ratings["rating"])
    return figures


def agreement(answers: pd.DataFrame) -> dict:
    """Fleiss' kappa of the listeners' quadrants over the emotion trials of `answers` (duplicates left out)."""
    if not len(answers):
        return {"fleiss_kappa": float("nan"), "trials": 0, "ratings": 0}
    counts = pd.crosstab(answers["trial"], answers["answer"]).reindex(columns=list(QUADRANTS.labels), fill_value=0)
    rated = counts[counts.sum(axis=1) >= 2]
    return {"fleiss_kappa": statistics.fleiss_kappa(counts.to_numpy()), "trials": len(rated),
            "ratings": int(rated.to_numpy().sum())}


def summarise(folder: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The results of the test folder `folder`: (summary, emotion answers, quality ratings)."""
    plan, answers = read_plan(folder), read_answers(folder)
    emotion, quality = answer_tables(plan, answers)
    if not len(emotion) and not len(quality):
        raise FileError(folder, "no answers yet (`estm listen serve` collects them)")
    total = len(plan["orders"][0])
    checks = listener_checks(emotion, quality, list(answers))
    kept = [listener for listener, check in checks.items() if not check["excluded"]]
    heard = emotion[emotion["listener"].isin(kept) & (emotion["duplicate_of"] == "")]
    rated = quality[quality["listener"].isin(kept)]
    systems = list(dict.fromkeys([trial["system"] for trial in plan["trials"] if trial["kind"] == EMOTION] +
                                 [version["system"] for trial in plan["trials"] if trial["kind"] == QUALITY
                                  for version in trial["versions"]]))
    summary = {
        "test": str(folder), "chance": CHANCE,
        "listeners": {"started": len(answers), "finished": sum(len(records) - 1 >= total for records in
                                                               answers.values()),
                      "kept": len(kept), "excluded": {listener: check["reasons"] for listener, check in
                                                      checks.items() if check["excluded"]}},
        "rules": {"post_screening": f"hidden reference below {statistics.HIDDEN_REFERENCE_FLOOR} in more than "
                                    f"{statistics.HIDDEN_REFERENCE_SHARE:.0%} of a listener's quality trials (BS.1534-3)",
                  "duplicates": f"the same answer to fewer than {statistics.DUPLICATE_AGREEMENT:.0%} of a "
                                "listener's hidden duplicates",
                  "intervals": "95 %: Wilson for shares, Student's t for means"},
        "agreement": agreement(heard), "per_listener": checks,
        "systems": {system: system_figures(heard[heard["system"] == system], rated[rated["system"] == system])
                    for system in systems},
    }
    return summary, emotion, quality


def summary_rows(summary: dict) -> pd.DataFrame:
    """One row per system: the table that results.csv holds and the command prints."""
    rows = []
    for system, figures in summary["systems"].items():
        row = {"system": system}
        for name in ("identified", "arousal", "valence"):
            if name in figures:
                row.update({f"{name}_n": figures[name]["items"], name: figures[name]["share"],
                            f"{name}_low": figures[name]["interval"][0], f"{name}_high": figures[name]["interval"][1]})
        if "quality" in figures:
            row.update({"quality_n": figures["quality"]["items"], "quality": figures["quality"]["mean"],
                        "quality_low": figures["quality"]["interval"][0],
                        "quality_high": figures["quality"]["interval"][1]})
        if "fleiss_kappa" in figures:
            row["fleiss_kappa"] = figures["fleiss_kappa"]
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(summary: dict, emotion: pd.DataFrame, quality: pd.DataFrame, out_dir: str | Path,
                  force: bool = False) -> list[Path]:
    """results.json, results.csv (a row per system), answers.csv (every answer) and results.png in `out_dir`."""
    from ..files import write_csv
    from ..report import write_json
    from .figure import results_png

    files = results_files(out_dir)
    write_json(summary, files[0], force)
    write_csv(summary_rows(summary), files[1], force)
    every = pd.concat([emotion.assign(kind=EMOTION), quality.assign(kind=QUALITY)], ignore_index=True)
    write_csv(every.replace({np.nan: None}), files[2], force)
    results_png(summary, files[3], force=force)
    return files
