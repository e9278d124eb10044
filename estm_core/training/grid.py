"""Hyperparameter grids: the paper's (data/grids/FAMILY.csv) or one's own CSV — a `name` column and one column per
model option. Points run in order or in parallel; a rerun skips finished points; a summary CSV lists every point's
final losses and status; `slurm_script` writes the job-array script the original ran on its cluster."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from .. import model_file, store
from ..errors import EstmError
from ..resources import data_file
from .estm import run_status


def read_grid(family: str, grid_file: str | Path | None = None) -> pd.DataFrame:
    """The grid's points, in order: `name` plus the model options of each."""
    path = Path(grid_file) if grid_file else data_file("grids", f"{family}.csv")
    if not path.is_file():
        raise EstmError(f"{path}: no such grid file")
    grid = pd.read_csv(path, comment="#")
    if "name" not in grid.columns or len(grid.columns) < 2:
        raise EstmError(f"{path}: a grid needs a name column and at least one option column")
    if grid["name"].duplicated().any():
        raise EstmError(f"{path}: point names repeat: {', '.join(grid['name'][grid['name'].duplicated()])}")
    return grid


def point(grid: pd.DataFrame, index: int) -> tuple[str, dict]:
    """(model name, model options) of point `index`; options keep ints as ints."""
    if not 0 <= index < len(grid):
        raise EstmError(f"grid point {index} does not exist (the grid has points 0-{len(grid) - 1})")
    options = {key: (int(grid[key].iloc[index]) if pd.api.types.is_integer_dtype(grid[key])
                     else float(grid[key].iloc[index]))
               for key in grid.columns if key != "name"}
    return str(grid["name"].iloc[index]), options


def is_finished(family: str, name: str) -> bool:
    path = store.model_path(family, name)
    return path.exists() and run_status(model_file.read_info(path)) != "running"


def pending(family: str, grid: pd.DataFrame, prefix: str = "", force: bool = False) -> list[int]:
    """The points a grid run trains: every one with `force`, else those not yet finished."""
    return [index for index in range(len(grid))
            if force or not is_finished(family, prefix + point(grid, index)[0])]


def resumes(family: str, name: str, force: bool = False) -> bool:
    """Whether a point's run continues where it stopped: whenever it left a resume checkpoint, unless `force`."""
    return not force and store.resume_path(store.model_path(family, name)).exists()


def summary(family: str, grid: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """One row per point: its options, status (ok / NaN / collapsed / running / missing), epochs and final terms."""
    rows = []
    for index in range(len(grid)):
        name, options = point(grid, index)
        path = store.model_path(family, prefix + name)
        row = {"point": index, "name": prefix + name, **options}
        if path.exists():
            info = model_file.read_info(path)
            training = info.training
            row.update({"status": run_status(info), "epochs": training.epochs_run, "best_epoch": training.best_epoch,
                        **{key: value for key, value in training.final.items()
                           if key not in ("epoch", "lr", "seconds")}})
        else:
            row["status"] = "missing"
        rows.append(row)
    return pd.DataFrame(rows)


def slurm_script(family: str, grid: pd.DataFrame, point_command: list[str], hours: int = 14) -> str:
    """An sbatch job-array script: array task I trains point I (`point_command` ends with `--grid-point`).
    One GPU per task, as the original (up to 14 h per model); the logs are JOB-TASK.out in the submit folder."""
    command = " ".join(shlex.quote(part) for part in point_command)
    return f"""#!/bin/bash
# {family} grid: {len(grid)} points, one array task each. Submit with: sbatch THIS_FILE
#SBATCH --job-name=estm-{family}-grid
#SBATCH --array=0-{len(grid) - 1}
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time={hours}:00:00
#SBATCH --output=%x-%a.out
set -euo pipefail
{command} "$SLURM_ARRAY_TASK_ID"
"""
