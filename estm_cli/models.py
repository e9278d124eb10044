"""`estm models list|show|remove|import`: the model store."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from estm_core.families import FAMILIES

from .common import (
    EXIT_FAILED, Batch, Column, Debug, Force, Json, ProgressBar, Quiet, handles_errors, note, plain, stdout,
)

app = typer.Typer(help="List, show and remove models in the model store ($ESTM_HOME).", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="A model name, FAMILY/NAME, or a path to a .safetensors file.")]


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"


@app.command("list")
@handles_errors
def list_(
    family: Annotated[Optional[str], typer.Option("--family", help=f"Only this family ({', '.join(FAMILIES)}).")] = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Every model in the store, newest first."""
    from estm_core.store import list_models, models_dir

    models = list_models(family)
    if json_:
        for model in models:
            print(json.dumps(plain({
                "name": model.name, "family": model.family, "path": model.path, "size_bytes": model.size_bytes,
                "modified": model.modified.isoformat(timespec="seconds") if model.modified else None,
                "labels": model.info.labels if model.info else None, "error": model.problem,
            })))
        return
    if not models:
        note(f"no models in {models_dir()} yet; `estm train …` makes them", quiet)
        return
    table = Table(title=f"models in {models_dir()}", title_justify="left", show_edge=False)
    for header in ("name", "family", "size", "modified", "labels"):
        table.add_column(header)
    for model in models:
        labels = ", ".join(model.info.labels) if model.info else f"[red]{escape(model.problem or '')}[/]"
        table.add_row(escape(model.name), model.family, _size(model.size_bytes),
                      model.modified.strftime("%Y-%m-%d %H:%M") if model.modified else "-", labels)
    stdout.print(table)


@app.command()
@handles_errors
def show(name: Name, json_: Json = False, debug: Debug = False) -> None:
    """A model's metadata: family, constructor config, labels, audio settings, training summary."""
    from estm_core.model_file import read_info
    from estm_core.store import resolve

    path = resolve(name)
    model_info = read_info(path)
    info = asdict(model_info)
    if json_:
        print(json.dumps(plain({"path": path, **info})))
        return
    stdout.print(f"[bold]{escape(str(path))}[/]", highlight=False)
    if model_info.training.collapsed:
        stdout.print("[bold red]collapsed[/]: it decodes audio to near-silence", highlight=False)
    for key, value in info.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        stdout.print(f"[bold]{key:>13}[/]  {escape(text)}", highlight=False)


@app.command()
@handles_errors
def remove(
    names: Annotated[list[str], typer.Argument(help="Model names (literal: no wildcards), FAMILY/NAME, or paths.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Remove several models without asking.")] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Delete models from the store, with their training histories. Several at once: asks first, or --force."""
    from estm_core.errors import EstmError
    from estm_core.store import remove as remove_model, resolve

    paths = [resolve(name) for name in names]  # every name checked before anything goes
    if len(paths) > 1 and not force:
        if not sys.stdin.isatty():
            raise EstmError(f"removing {len(paths)} models needs --force (or run it in a terminal to be asked)")
        listed = ", ".join(f"{path.parent.name}/{path.name.removesuffix('.safetensors')}" for path in paths)
        if not typer.confirm(f"remove {len(paths)} models ({listed})?", err=True):
            raise typer.Exit(EXIT_FAILED)
    for path in paths:
        for removed in remove_model(str(path)):
            note(f"removed {removed}", quiet)


@app.command("import")
@handles_errors
def import_(
    paths: Annotated[list[str], typer.Argument(
        metavar="PATH", help="The original project's Keras .h5 model files, or folders of them (estm_v2_grid/).")],
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Import the original ESTM project's trained Keras models (HVQ-VAE, ESTM-1, ESTM-2, MER) into the store, each
    named after its file (estm2_0.25_24_0.75.h5 -> estm2_0.25_24_0.75), with the training history beside it.

    The family and its settings come from the weights' shapes (and the grid's beta_e, d and beta from a grid file's
    name). Models that decode to near-silence are imported and marked collapsed; NaN weights, shapes that fit no
    family and files that are not Keras models are refused. Needs h5py: pip install 'estm[keras]'.
    """
    from estm_core.keras_import import import_paths

    batch = Batch([Column("file", "file"), Column("name", "name"), Column("family", "family", lambda v: v or ""),
                   Column("status", "status")], "json" if json_ else "table", title="imported")
    with ProgressBar("importing", None, unit="files", quiet=quiet) as bar:
        def imported(row: dict) -> None:
            if row["status"] == "refused":
                batch.failed(row["file"], row["cause"], {key: row[key] for key in ("file", "name", "status")})
            else:
                batch.ok(row)
            bar.advance()

        import_paths(paths, force=force, on_file=imported)
    code = batch.finish()
    collapsed = [row["name"] for row in batch.rows if row["status"] == "collapsed"]
    if collapsed:
        note(f"{len(collapsed)} collapsed (decoding near-silence): {', '.join(collapsed)}", quiet)
    raise typer.Exit(code)
