"""Peak memory of the commands that read whole files, on a 6- and a 60-minute input, and its ratio 60/6 (bounded
memory: about 1; issue 14 asks for at most 1.5): `estm classify FILE`, `estm transfer CONTENT EMOTION --model M`
(a learned model) and `estm transfer CONTENT EMOTION` (the cue method).

    .venv/bin/python benchmarks/memory.py [--minutes 6 60] [--commands classify model cues]

The models are tiny and untrained, for the memory depends on the lengths, not on the weights: a genre ResNet and an
ESTM-2 at 22.05 kHz on the paper's 10.08 s segments, saved into a temporary ESTM_HOME store. The inputs are
cue_transfer.py's generated piece at 22.05 kHz mono, looped block by block into FLACs in a temporary folder; the
emotion file is a minute of its A-minor piece. Every run is a process of its own that runs the `estm` command in it;
its memory is that process's ru_maxrss (RUSAGE_SELF) and the largest of its children's (RUSAGE_CHILDREN: the cue
method's workers), and a run's peak is the larger of the two. About 6 minutes on two busy cores.

What still grows a little with the length (classify: 421 -> 463 MB) is glibc's heap, not our buffers: glibc raises its
mmap threshold as large blocks are freed, and then keeps freed blocks in a fragmented heap; with
MALLOC_MMAP_THRESHOLD_=131072 in the environment classify holds 402 MB at 6, 30 and 60 minutes alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cue_transfer import RATE as PIECE_RATE, looped, piece  # noqa: E402

from estm_core import audio, families, model_file, store  # noqa: E402

RATE = 22050
SEGMENT = 222264  # 10.08 s at 22.05 kHz, the paper's segment

# Runs the estm command in this process, then reports the peak memory of the process and of its children, in MB.
MEASURED_RUN = """
import json, resource, sys
from estm_cli.app import main
if __name__ == "__main__":
    sys.argv = ["estm", *sys.argv[1:]]
    try:
        main()
    except SystemExit as exit_:
        if exit_.code:
            raise
    print(json.dumps([resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF,
                                                                           resource.RUSAGE_CHILDREN)]))
"""

COMMANDS = {  # name -> its estm arguments, given the content, the emotion file and the output
    "classify": lambda content, emotion, output: ["classify", content, "--device", "cpu", "--json", "-q"],
    "model": lambda content, emotion, output: ["transfer", content, emotion, "-o", output, "--model", "tiny-estm2",
                                               "--device", "cpu", "--force", "-q"],
    "cues": lambda content, emotion, output: ["transfer", content, emotion, "-o", output, "--force", "-q"],
}
TITLES = {"classify": "estm classify", "model": "estm transfer --model", "cues": "estm transfer (cues)"}


def save_tiny_models() -> None:
    """A tiny untrained genre ResNet and ESTM-2 in the store at $ESTM_HOME."""
    import torch

    from estm_core.features import FeatureSettings

    torch.manual_seed(0)
    genre = families.model_class("genre")(classes=2, blocks=(1, 1), widths=(8, 16))
    model_file.save_model(genre, store.model_path("genre", "tiny-genre"), labels=["high", "low"],
                          audio={"sample_rate": RATE, "segment_length": SEGMENT, "features": asdict(FeatureSettings())})
    model_file.save_model(families.model_class("estm2")(d=8, codebook_size=32), store.model_path("estm2", "tiny-estm2"),
                          audio={"sample_rate": RATE, "segment_length": SEGMENT})


def mono_flac(samples: np.ndarray, destination: Path) -> Path:
    """A piece of cue_transfer.py (stereo at its rate) as a mono FLAC at RATE."""
    sf.write(destination, audio.resample(audio.to_mono(samples), PIECE_RATE, RATE), RATE, subtype="PCM_16")
    return destination


def measured(arguments: list) -> tuple[float, float, float]:
    """(MB of the process, MB of its largest child, seconds) of one `estm` run in a process of its own."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED_RUN, *map(str, arguments)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"estm {' '.join(map(str, arguments))} failed:\n{done.stderr}")
    own, children = json.loads(done.stdout.strip().splitlines()[-1])
    return own, children, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs=2, default=(6.0, 60.0), help="the two input lengths")
    parser.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS),
                        help="classify, model (transfer --model) and cues (transfer with the cue method)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        os.environ["ESTM_HOME"] = str(Path(folder) / "home")  # the runs inherit the store
        measure(Path(folder), *arguments.minutes, arguments.commands)


def measure(folder: Path, short: float, long: float, commands: list[str]) -> None:
    """Make the models and the inputs in `folder`, run `commands` on both inputs and print the table."""
    save_tiny_models()
    seed = mono_flac(piece(60.0), folder / "seed.flac")
    emotion = mono_flac(piece(60.0, minor=True, seed=1), folder / "emotion.flac")
    inputs = [looped(seed, minutes, folder / f"content-{minutes:g}.flac") for minutes in (short, long)]
    print(f"inputs: {short:g} and {long:g} min at {RATE} Hz mono (FLAC); emotion {sf.info(emotion).duration:.0f} s; "
          f"{len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<24}{f'{short:g} min MB':>12}{'children':>10}{f'{long:g} min MB':>12}{'children':>10}"
          f"{f'{long:g}/{short:g}':>7}{'seconds':>16}")
    for name in commands:
        runs = [measured(COMMANDS[name](content, emotion, folder / "out.wav")) for content in inputs]
        (own_short, children_short, seconds_short), (own_long, children_long, seconds_long) = runs
        ratio = max(own_long, children_long) / max(own_short, children_short)
        print(f"{TITLES[name]:<24}{own_short:>12.0f}{children_short:>10.0f}{own_long:>12.0f}{children_long:>10.0f}"
              f"{ratio:>7.2f}{seconds_short:>8.0f}{seconds_long:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
