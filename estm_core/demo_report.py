"""The demo's report: what `estm demo` made, trained and measured, as report blocks (report.write_report writes them as
report.html and report.md), with the figures drawn from the demo's models in the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import store
from .demo import MODELS, SOURCES
from .report import write_report

if TYPE_CHECKING:
    from .demo import Demo

# What the original paper reported (test; chance 0.25), for the report's comparison table.
PAPER = {"estm1": {"mse_c": "0.15-0.45", "pea": "0.24-0.28", "aea": "0.26-0.31"},
         "estm2": {"mse_c": "0.14-0.36", "pea": "0.24-0.29", "aea": "0.24-0.29"}}


def write_demo_report(demo: Demo) -> list[Path]:
    """The figures, then report.html and report.md in the demo's folder; returns the two reports' paths."""
    return write_report(document(demo, figures(demo)), demo.out / "report", title="estm demo report")


def figures(demo: Demo) -> dict[str, Path]:
    """Each model's training curves, the generated clips' spectrograms and demo-estm2's codebook use."""
    from . import audio, plots
    from .datasets.segment import cache_segments
    from .models.codebook_usage import codebook_usage

    drawn = {}
    for name in MODELS:
        path = store.find_model(MODELS[name][0], name)
        history = store.read_history(store.history_path(path))
        drawn[f"history:{name}"] = plots.history_png(history, demo.media / f"{name}-history.png",
                                                     title=f"{name} ({MODELS[name][0]})", force=True)
    clips = [audio.load_clip(file) for file in demo.state["done"]["generation"]["files"]]
    for clip in clips:
        clip.name = f"WaveNet, asked for {clip.name.removesuffix('.wav').split('-')[-1]}"
    drawn["generated"] = plots.spectrogram_png(clips, demo.media / "generated.png", force=True)
    estm2 = store.load_model(store.find_model("estm2", "demo-estm2"), "estm2", demo.device)
    _, batches = cache_segments(demo.cache, estm2, part="test")
    drawn["codebook"] = plots.codebook_png(codebook_usage(estm2.model, batches), demo.media / "codebook.png",
                                           title="demo-estm2: codebook use on held-out segments", force=True)
    return drawn


def document(demo: Demo, figures: dict[str, Path]) -> list[tuple]:
    """The report's blocks: the corpus and the models, recognition, emotion transfer, generation, what next."""
    return [*_corpus_and_models(demo), *_recognition(demo), *_transfer(demo, figures), *_generation(demo, figures),
            ("h2", "Next"),
            ("p", "The demo's models are in the store, so these work now:"),
            ("code", "estm transfer content.wav emotion.wav -o out.wav\nestm classify song.mp3\n"
                     "estm generate --emotion Q1 -o q1.wav")]


def _corpus_and_models(demo: Demo) -> list[tuple]:
    done, plan = demo.state["done"], demo.plan
    seconds = demo.state.get("seconds", {})
    segments = done["segments"]
    source = SOURCES[plan.source]
    return [
        ("h1", "estm demo"),
        ("p", f"Plan **{plan.name}** on {source.name}: {source.description}. {plan.count} "
              f"{source.unit}s, each rendered in the four Russell quadrants ({plan.count * 4} files of "
              f"10.08 s); split by {source.unit} into {segments['train']} training, {segments['validation']} validation and {segments['test']} held-out "
              f"segments. Every model below was trained here, on {demo.device}, in "
              f"{sum(seconds.values()) / 60:.1f} minutes of stage time; all of them are in the model store as "
              f"`demo-*`."),
        ("p", "How each quadrant is played (means over the corpus's table; brightness is the spectral centroid "
              "measured from the audio):"),
        ("table", _cue_table(demo)),
        ("h2", "Models"),
        ("table", pd.DataFrame([
            {"model": name, "family": family, "what": what,
             "epochs": done[f"train:{name}"]["epochs"], "status": done[f"train:{name}"]["status"],
             "seconds": seconds.get(f"train:{name}", "")}
            for name, (family, what) in MODELS.items()])),
    ]


def _recognition(demo: Demo) -> list[tuple]:
    done = demo.state["done"]
    source = SOURCES[demo.plan.source]
    classified = done["classified"][:8]
    shown = f"the {len(classified)}" if len(classified) == len(done["classified"]) else \
        f"{len(classified)} of the {len(done['classified'])}"
    labeller = "demo-mer"
    return [
        ("h2", "Recognition"),
        ("p", f"Accuracy on the held-out segments ({source.unit}s never seen in training). Chance is the largest "
              "class's share."),
        ("table", pd.DataFrame([{"model": name, "accuracy": r["accuracy"], "macro F1": r["macro_f1"],
                                 "chance": r["chance"], "segments": r["count"]}
                                for name, r in done["recognition"].items()])),
        ("img", demo.media / f"{labeller}-confusion.png",
         f"Confusion matrix of {labeller} ({MODELS[labeller][1].split(':')[0]}) on the held-out segments"),
        ("p", f"`estm classify` on {shown} held-out files:"),
        ("table", pd.DataFrame(classified)),
    ]


def _transfer(demo: Demo, figures: dict[str, Path]) -> list[tuple]:
    from .transfer_evaluation import summary_rows

    source = SOURCES[demo.plan.source]
    judged = demo.state["done"]["judged"]
    judged_pairs = judged["corpora"]["development"]["pairs"]
    example = {role: path for role, path in judged["example"].items() if role != "figure"}
    return [
        ("h2", "Emotion transfer"),
        ("p", f"The paper's metrics on held-out pairs (a content segment, an emotion segment of another {source.unit}), "
              "judged by `demo-judge`, a MER model trained apart from the labeller whose labels the transfer "
              "models learned. PEA: the judge hears the emotion segment's MER label; AEA: its true quadrant; "
              "MSE_C: distance to the content over the training variance; CD: how much the four emotions change "
              f"one content (x 1e5). The corpus knows what a perfect transfer sounds like (the same {source.unit} "
              "rendered in the target quadrant): LSD is the log-spectral distance to it, beside the content's "
              "own distance (what doing nothing scores). PEA means only as much as the judge's own accuracy "
              "(above): a judge that always hears one quadrant scores every transfer PEA 1."),
        ("table", _transfer_table(demo)),
        ("p", f"Does a transfer transfer? `estm evaluate transfer` on {judged_pairs} held-out pairs: the "
              f"{source.unit} in one quadrant, another {source.unit} in a second quadrant as the emotion "
              f"reference, and the first {source.unit} rendered in the second quadrant as the true target. The "
              "cue method (no model: tempo, register, loudness, dynamics, brightness, articulation and mode "
              "moved toward the reference's) and demo-estm2 stand beside copy-content (doing nothing), "
              "copy-reference (all emotion, no content) and the target (the ceiling). Judges: demo-judge and "
              "the cue judge (logistic regression on the cue meter, fitted on the training files); chance is "
              "0.25 for the quadrant and 0.5 for an arousal or valence flip. The mel distance to the target and "
              "the chroma correlation with the content are taken after aligning tempo; the last column is the "
              "share of the pairs asked to flip arousal whose loudness moved the asked way."),
        ("table", pd.DataFrame(summary_rows(judged))),
        ("img", Path(judged["example"]["figure"]),
         f"One held-out pair ({Path(next(iter(example.values()))).stem}): " + ", ".join(example)),
        ("audio", list(example.items())),
        ("img", figures["codebook"], "VQ codebook usage of demo-estm2"),
    ]


def _generation(demo: Demo, figures: dict[str, Path]) -> list[tuple]:
    done = demo.state["done"]
    generated = [Path(file).stem.removeprefix("generated-") for file in done["generation"]["files"]]
    return [
        ("h2", "Generation"),
        ("p", _generation_text(demo)),
        ("table", _generation_table(done["generation"])),
        ("img", figures["generated"], "Spectrograms of demo-wavenet's clips, asked by cue curves for "
                                      + ", ".join(generated)),
        ("audio", [(Path(file).stem, file) for file in done["generation"]["files"]]),
        ("h2", "Training curves"),
        ("grid", [(figures[f"history:{name}"], f"Training history of {name}") for name in MODELS]),
    ]


def _generation_table(summary: dict) -> pd.DataFrame:
    """A row per system (the training audio, then each WaveNet): what each judge heard of its clips, and how many
    follow the tempo and level of the curves asked."""
    def share(figure: dict | None) -> float | None:
        return None if figure is None else figure["share"]

    rows = []
    for system, figures in summary["systems"].items():
        overall = figures["overall"]
        heard, mer = overall["cue_judge"], overall.get("judge", {})
        rows.append({"system": system, "asked by": figures["asked_by"] or "-",
                     "cue judge: quadrant": share(heard["accuracy"]), "arousal": share(heard["arousal"]),
                     "valence": share(heard["valence"]), f"{summary['judge']}: quadrant": share(mer.get("accuracy")),
                     "tempo as asked": share(overall.get("tempo_within")),
                     "level as asked": share(overall.get("level_within"))})
    return pd.DataFrame(rows)


def _cue_table(demo: Demo) -> pd.DataFrame:
    """One row per quadrant: each cue's mean over the corpus (the share in major for the mode), and the
    spectral centroid measured from a few files."""
    from . import audio
    from .datasets.synth import MANIFEST_NAME
    from .evaluate import rms_and_centroid

    table = pd.read_csv(demo.corpus / MANIFEST_NAME, keep_default_na=False)
    columns = [column for column in SOURCES[demo.plan.source].cue_columns if column in table.columns]
    table["mode"] = (table["mode"] == "major").astype(float)
    rows = table.groupby("label")[columns].mean().rename(columns={"mode": "share in major"})
    centroids = {}
    for label, paths in table.groupby("label")["path"]:
        values = []
        for path in paths.iloc[:8]:
            samples, rate = audio.load(demo.corpus / path, mono=True)
            values.append(rms_and_centroid(samples, rate)[1])
        centroids[label] = np.mean(values)
    rows["brightness (Hz)"] = pd.Series(centroids)
    return rows.rename_axis("quadrant").reset_index()


def _transfer_table(demo: Demo) -> pd.DataFrame:
    rows = []
    for name, summary in demo.state["done"]["transfer"].items():
        paper = PAPER[summary["family"]]
        rows.append({"model": name, "MSE_C": summary["mse_c"], "PEA": summary["pea"], "AEA": summary["aea"],
                     "CD x1e5": summary["cd_x1e5"], "LSD to target (dB)": summary.get("lsd_target_db"),
                     "content's LSD (dB)": summary.get("lsd_content_target_db"),
                     "paper MSE_C": paper["mse_c"], "paper PEA": paper["pea"], "paper AEA": paper["aea"]})
    return pd.DataFrame(rows)


def _generation_text(demo: Demo) -> str:
    summary = demo.state["done"]["generation"]
    return (f"Three WaveNets of the same size, trained for the same steps on the corpus, each generated "
            f"{summary['per_label']} clips of {summary['seconds']:g} s per quadrant: demo-wavenet asked by cue curves "
            "(a sketch played in the quadrant's cue profile, as `estm generate --emotion` draws them), "
            "demo-wavenet-label by the quadrant's label, demo-wavenet-none by nothing (the floor). Each clip was "
            f"judged by {summary['judge']} and by the cue judge ({summary['cue_judge']}); the training audio's own "
            f"held-out files, in clips as long, are the ceiling; chance is {summary['chance']:.0%}. Tempo and level "
            "as asked: the share of clips within 15 % of the onsets per second and 2 dB of the level of the curves "
            "asked (for every model the same curves: those not given them show where chance lands).")
