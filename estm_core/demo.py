"""`estm demo`: the whole mission end to end on a paired emotion corpus, small enough for a laptop's CPU.

Makes the corpus (by default the scores corpus: excerpts of real works played by SoundFont instruments; or SynthEmo's
tones), splits and segments it, trains one small model of every family into the store (named `demo-*`),
then classifies held-out files, transfers emotions between held-out pairs, generates per emotion, evaluates each,
and writes a report (`report.html`, `report.md`) with its figures and audio beside it. Every stage's result is kept:
a rerun skips what is done (unless `force`), so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from . import store
from .errors import EstmError
from .labels import GEMS_OF_QUADRANT
from .files import atomic_write

MODELS = {  # store name -> (family, what it is)
    "demo-judge": ("mer", "MER judge: scores transfers and generated clips (trained apart from the labeller)"),
    "demo-mer": ("mer", "MER labeller: the quadrant labels ESTM-1 and ESTM-2 train on"),
    "demo-gems": ("gems", "GEMS ResNet, on the GEMS category nearest each quadrant (four of the nine)"),
    "demo-genre": ("genre", "genre ResNet, on the corpus's mode (major/minor) as the 'genre'"),
    "demo-estm1": ("estm1", "ESTM-1: emotion one-hot appended to the latents"),
    "demo-estm2": ("estm2", "ESTM-2: emotion channels inside the latents, with a style loss"),
    "demo-wavenet-none": ("wavenet", "WaveNet on nothing: the floor its music is judged against"),
    "demo-wavenet-label": ("wavenet", "WaveNet conditioned on the quadrant label (the seed's conditioning)"),
    "demo-wavenet": ("wavenet", "WaveNet conditioned on cue curves (what estm generate --emotion and --like use)"),
}
WAVENETS = {"demo-wavenet-none": {"conditioned": False}, "demo-wavenet-label": {"conditioned": True},
            "demo-wavenet": {"conditioned": False, "curves": True}}  # trained in this order: the newest is the default


@dataclass(frozen=True)
class Plan:
    """The demo's sizes. `full` is meant for at most 10 minutes of a 2-core CPU, `fast` for ~2 (a smoke test)."""

    name: str
    count: int  # excerpts (scores) or contents (tones), each rendered in Q1-Q4 (10.08 s per rendering)
    mer_width: float  # channels of the paper's MER CNN, scaled
    mer_epochs: int
    resnet_widths: tuple[int, ...]
    resnet_epochs: int
    estm_d: int
    estm_codebook: int
    estm_epochs: int
    wavenet: dict = field(default_factory=dict)
    wavenet_steps: int = 100
    generate_seconds: float = 4.0
    generated_per_quadrant: int = 8  # clips each WaveNet generates per quadrant for the judges
    pairs: int = 16
    source: str = "scores"  # the corpus: "scores" or "tones" (SynthEmo)


PLANS = {
    "full": Plan("full", count=24, mer_width=0.25, mer_epochs=20, resnet_widths=(8, 16, 32, 64), resnet_epochs=10,
                 estm_d=16, estm_codebook=256, estm_epochs=2,
                 wavenet=dict(blocks=2, layers=8, residual_channels=24, dilation_channels=24, skip_channels=128,
                              end_channels=128), wavenet_steps=300, generate_seconds=4.0, generated_per_quadrant=6,
                 pairs=16),
    "fast": Plan("fast", count=8, mer_width=0.125, mer_epochs=2, resnet_widths=(4, 8, 16, 32), resnet_epochs=2,
                 estm_d=12, estm_codebook=64, estm_epochs=1,
                 wavenet=dict(blocks=1, layers=6, residual_channels=8, dilation_channels=8, skip_channels=16,
                              end_channels=16), wavenet_steps=10, generate_seconds=1.0, generated_per_quadrant=1,
                 pairs=8),
}


@dataclass(frozen=True)
class Source:
    """A corpus the demo can run on, as the report describes it."""

    name: str
    description: str
    unit: str  # what is rendered in the four quadrants, and what a split holds out
    cue_columns: tuple[str, ...]  # the columns of its table that are cues


SOURCES = {
    "scores": Source("the scores corpus", "excerpts of real works from music21's corpus (chorales, fiddle tunes, "
                     "masses, madrigals, quartets) played by General MIDI SoundFont instruments", "work",
                     ("mode", "notes_per_second", "tempo_qpm", "velocity", "level_db", "articulation",
                      "register_octaves", "mean_pitch")),
    "tones": Source("SynthEmo", "seeded melodies, chords and rhythms rendered by additive synthesis", "content",
                    ("mode", "tempo_bpm", "loudness_db", "rolloff_db_per_octave", "articulation", "register_octaves",
                     "dissonance", "percussion")),
}

Progress = Callable[[str, "int | None", str], object]  # (description, total, unit) -> context manager f(done, total)


def _no_progress(description: str, total: int | None, unit: str):
    return nullcontext(lambda done, total=None: None)


class Demo:
    def __init__(self, out_dir: str | Path, plan: Plan, *, force: bool = False, device: str = "cpu",
                 progress: Progress = _no_progress, say: Callable[[str], None] = lambda line: None):
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise EstmError(f"{self.out}: not a folder (the demo writes a folder of files)")
        self.plan = plan
        self.force = force
        self.device = device
        self.progress = progress
        self.say = say
        self.state_path = self.out / "demo.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.is_file() and not force else {}
        # results of another plan's run are not this run's (the plan compared as it reads back from JSON)
        plan_json = json.loads(json.dumps(asdict(plan)))
        self.state = state if state.get("plan") == plan_json else {"plan": plan_json}
        self.state.setdefault("done", {})

    # ------------------------------------------------------------------------------------------ bookkeeping

    def _save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.state_path, force=True) as temporary:
            Path(temporary).write_text(json.dumps(self.state, indent=1, default=str))

    def stage(self, key: str, run: Callable[[], object]):
        """Run a stage once: its result (JSON-able) is kept in demo.json and reused by a rerun."""
        if key in self.state["done"]:
            return self.state["done"][key]
        started = time.perf_counter()
        result = run()
        self.state["done"][key] = result
        self.state.setdefault("seconds", {})[key] = round(time.perf_counter() - started, 1)
        self._save_state()
        return result

    # ------------------------------------------------------------------------------------------ data

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    @property
    def cache(self) -> Path:
        return self.out / "segments"

    def make_data(self) -> None:
        from .datasets import scores, synth
        from .datasets.layouts import read_dataset
        from .datasets.segment import SegmentSettings, segment_split
        from .datasets.split import split_table

        def corpus():
            if self.plan.source == "scores":
                with self.progress("scores corpus", self.plan.count, "excerpts") as bar:
                    scores.generate(self.corpus, count=self.plan.count, jobs=min(2, os.cpu_count() or 1), force=True,
                                    on_progress=bar)
            else:
                with self.progress("SynthEmo corpus", self.plan.count * 4, "files") as bar:
                    synth.generate(self.corpus, contents=self.plan.count, force=True, on_progress=bar)
            return str(self.corpus)

        def segments():
            table = read_dataset(self.corpus).table
            table["gems"] = table["label"].map(GEMS_OF_QUADRANT)  # the corpora are rendered in quadrants
            split = split_table(table, test=0.25, validation=0.125, seed=0)
            split.to_csv(self.out / "split.csv", index=False)
            with self.progress("segments", len(split), "songs") as bar:
                result = segment_split(split, self.cache, SegmentSettings(), force=True, on_progress=bar)
            return {part: int((result.manifest["part"] == part).sum()) for part in ("train", "validation", "test")}

        source = SOURCES[self.plan.source]
        self.say(f"data: {source.name}, split by {source.unit}, cut into 10.08 s segments")
        self.stage("corpus", corpus)
        self.stage("segments", segments)

    # ------------------------------------------------------------------------------------------ training

    def _config(self, epochs: int, batch_size: int, seed: int = 0, **options):
        from .training.config import TrainConfig

        return TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, device=self.device, **options)

    def _train(self, name: str, train: Callable) -> None:
        family = MODELS[name][0]

        def run():
            with self.progress(f"{name} ({family})", None, "steps") as bar:
                def on_step(epoch: int, step: int, steps: int) -> None:
                    bar(step, steps)

                result = train(on_step)
            return {"path": str(result.path), "status": result.status, "best_epoch": result.best_epoch,
                    "epochs": len(result.history)}

        if f"train:{name}" in self.state["done"] and not Path(self.state["done"][f"train:{name}"]["path"]).is_file():
            del self.state["done"][f"train:{name}"]  # removed from the store since: train again
        self.stage(f"train:{name}", run)

    def train_models(self) -> None:
        from .training.classifier import train_classifier
        from .training.estm import train_vqvae
        from .training.wavenet import train_wavenet

        plan = self.plan
        self.say("training: two MER models, two ResNets, ESTM-1 and ESTM-2, three WaveNets (into the store as demo-*)")
        for name, seed in (("demo-judge", 1), ("demo-mer", 0)):
            self._train(name, lambda on_step, seed=seed, name=name: train_classifier(
                "mer", self.cache, name, self._config(plan.mer_epochs, 8, seed, monitor="val_accuracy"),
                model_options={"width": plan.mer_width}, force=True, on_step=on_step))
        for name, column in (("demo-gems", "gems"), ("demo-genre", "mode")):
            self._train(name, lambda on_step, name=name, column=column: train_classifier(
                MODELS[name][0], self.cache, name, self._config(plan.resnet_epochs, 16, monitor="val_accuracy"),
                label_column=column, model_options={"widths": plan.resnet_widths}, force=True, on_step=on_step))

        labels = self.out / "style-labels.csv"

        def label():  # the paper's recipe: the transfer models learn the MER labeller's quadrants
            from .classify import label_segments

            with self.progress("labelling segments", None, "segments") as bar:
                table = label_segments("demo-mer", self.cache, device=self.device, on_progress=bar)
            with atomic_write(labels, force=True) as temporary:
                table.to_csv(temporary, index=False)
            return str(labels)

        self.stage("style-labels", label)
        for name in ("demo-estm1", "demo-estm2"):
            family = MODELS[name][0]
            options = {"d": plan.estm_d, "codebook_size": plan.estm_codebook}
            # small batches at a higher rate: a few minutes of CPU give enough steps to leave the near-silent
            # start (the original's batch 128 needs hours); the best epoch by held-out reconstruction is kept
            self._train(name, lambda on_step, name=name, family=family, options=options: train_vqvae(
                family, self.cache, name, self._config(plan.estm_epochs, 2, lr=2e-3, monitor="val_reconstruction"),
                style_labels=labels, model_options=options, force=True, on_step=on_step))
        for name, conditioning in WAVENETS.items():  # the same steps each: the conditioning is all that differs
            self._train(name, lambda on_step, name=name, conditioning=conditioning: train_wavenet(
                self.corpus, name, self._config(1000, 8, lr=3e-3, max_steps=plan.wavenet_steps),
                model_options=plan.wavenet, output_length=1024, windows_per_epoch=8 * 25, force=True,
                on_step=on_step, **conditioning)[0])

    # ------------------------------------------------------------------------------------------ evaluation

    @property
    def media(self) -> Path:
        return self.out / "media"

    def evaluate(self) -> None:
        self.say("evaluation: classify held-out files, transfer held-out pairs, generate per emotion")
        self.media.mkdir(parents=True, exist_ok=True)
        self.stage("recognition", self._recognition)
        self.stage("classified", self._classify_files)
        self.stage("transfer", self._transfer)
        if "corpora" not in self.state["done"].get("judged", {"corpora": None}):
            del self.state["done"]["judged"]  # judged before the summary gave its figures per corpus: judge again
        self.stage("judged", self._judged_transfer)
        self.stage("generation", self._generation)

    def _recognition(self) -> dict:
        from .evaluate import evaluate_classifier
        from .plots import evaluation_confusion_png

        results = {}
        for name in ("demo-mer", "demo-judge", "demo-gems", "demo-genre"):
            summary, _ = evaluate_classifier(name, self.cache, part="test", device=self.device)
            evaluation_confusion_png(summary, self.media / f"{name}-confusion.png", force=True)
            results[name] = {key: summary[key] for key in ("accuracy", "macro_f1", "chance", "count")}
        return results

    def _classify_files(self) -> list[dict]:
        from .classify import TASKS, classify_file, load_classifiers

        split = pd.read_csv(self.out / "split.csv")
        held_out = split[split["part"] == "test"]
        classifiers = load_classifiers(list(TASKS), {task: f"demo-{task}" for task in TASKS}, device=self.device)
        rows = []
        with self.progress("classifying held-out files", len(held_out), "files") as bar:
            for number, song in enumerate(held_out.itertuples(index=False)):
                result = classify_file(song.path, classifiers)
                rows.append({"file": Path(song.path).name, "quadrant": song.label,
                             "MER": result.decisions["mer"]["label"],
                             "GEMS ResNet": result.decisions["gems"]["label"],
                             "mode": song.mode, "genre ResNet (mode)": result.decisions["genre"]["label"]})
                bar(number + 1, len(held_out))
        return rows

    def _transfer(self) -> dict:
        from .datasets.pairs import make_pairs
        from .datasets.segment import read_manifest
        from .evaluate import evaluate_transfer

        pairs = make_pairs(read_manifest(self.cache), part="test", n=self.plan.pairs, content_dev=8, seed=0)
        results = {}
        for name in ("demo-estm1", "demo-estm2"):
            with self.progress(f"transfer metrics, {name}", len(pairs), "pairs") as bar:
                summary, _ = evaluate_transfer(name, pairs, self.cache, "demo-judge", device=self.device,
                                               on_progress=bar)
            results[name] = summary
        return results

    def _judged_transfer(self) -> dict:
        """The cue method and demo-estm2 on held-out pairs beside the baselines and the true targets, judged by
        demo-judge and the cue judge (estm evaluate transfer), and the figure of one pair."""
        from . import transfer_evaluation as evaluation
        from .datasets.split import read_split
        from .families import method_module

        methods = {"cue method": method_module("cues").evaluation_method(),
                   "demo-estm2": evaluation.model_method("demo-estm2", self.device)[0]}
        with self.progress("judging transfers", None, "pairs") as bar:
            summary, table = evaluation.evaluate(methods, read_split(self.out / "split.csv"), judge="demo-judge",
                                                 labellers=("demo-mer",), count=self.plan.pairs, seed=0,
                                                 device=self.device, on_progress=bar)
        table.to_csv(self.out / "judged-pairs.csv", index=False)
        summary["example"] = evaluation.example_png(methods, table, self.media / "transfer.png",
                                                    audio_folder=self.media, force=True)
        return summary

    def _generation(self) -> dict:
        """The three WaveNets' clips judged per asked quadrant (generation_evaluation), and one clip per quadrant of
        the WaveNet on cue curves, kept for the report."""
        from . import audio
        from .generate import asked_curves, generate
        from .generation_evaluation import evaluate_generation

        with self.progress("judging generated clips", None, "samples") as bar:
            summary, clips = evaluate_generation(list(WAVENETS), judge="demo-judge",
                                                 per_label=self.plan.generated_per_quadrant,
                                                 seconds=self.plan.generate_seconds, device=self.device,
                                                 jobs=min(2, os.cpu_count() or 1), on_progress=bar)
        clips.to_csv(self.out / "generated-clips.csv", index=False)
        wavenet = store.load_model(store.find_model("wavenet", "demo-wavenet"), "wavenet", self.device)
        quadrants = ["Q1", "Q2", "Q3", "Q4"]
        examples = generate(wavenet, [None] * 4, seconds=self.plan.generate_seconds, seed=0,
                            curves=asked_curves(wavenet.info, quadrants, seconds=self.plan.generate_seconds))
        summary["files"] = [str(audio.save(self.media / f"generated-{quadrant}.wav", clip,
                                           wavenet.info.audio.sample_rate, force=True))
                            for quadrant, clip in zip(quadrants, examples)]
        return summary

    # ------------------------------------------------------------------------------------------ report

    def report(self) -> list[Path]:
        from .demo_report import write_demo_report

        self.say("report: figures, report.html and report.md")
        return write_demo_report(self)

    def run(self) -> list[Path]:
        self.make_data()
        self.train_models()
        self.evaluate()
        return self.report()
