"""`estm models list|show|remove`: the model store."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import Debug, Json, Quiet, handles_errors, note, plain, stdout

app = typer.Typer(help="List, show and remove models in the model store ($ESTM_HOME).", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="A model name, FAMILY/NAME, or a path to a .safetensors file.")]


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e5 else f"{size_bytes / 1e3:.1f} kB"


@app.command("list")
@handles_errors
def list_(
    family: Annotated[Optional[str], typer.Option("--family", help="Only this family (mer, estm2, wavenet, ...).")] = None,
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
                "modified": model.modified.isoformat(timespec="seconds"),
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
                      model.modified.strftime("%Y-%m-%d %H:%M"), labels)
    stdout.print(table)


@app.command()
@handles_errors
def show(name: Name, json_: Json = False, debug: Debug = False) -> None:
    """A model's metadata: family, constructor config, labels, audio settings, training summary."""
    from estm_core.store import read_info, resolve

    path = resolve(name)
    info = asdict(read_info(path))
    if json_:
        print(json.dumps(plain({"path": path, **info})))
        return
    stdout.print(f"[bold]{escape(str(path))}[/]", highlight=False)
    for key, value in info.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        stdout.print(f"[bold]{key:>13}[/]  {escape(text)}", highlight=False)


@app.command()
@handles_errors
def remove(name: Name, quiet: Quiet = False, debug: Debug = False) -> None:
    """Delete a model from the store, with its training history."""
    from estm_core.store import remove as remove_model

    for path in remove_model(name):
        note(f"removed {path}", quiet)
