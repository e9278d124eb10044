"""The `estm` command. Subcommands live in their own modules; torch is imported only when a command runs."""

from __future__ import annotations

from typing import Annotated

import typer

from . import analyze, classify, data, demo, evaluate, generate, info, listen, models, plot, train, transfer

app = typer.Typer(
    name="estm",
    help="Emotion-aware music machine learning: emotion-style transfer, recognition and generation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from estm_core import __version__

        print(f"estm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_show_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Emotion-aware music machine learning: emotion-style transfer, recognition and generation."""


app.command()(demo.demo)
app.command()(info.info)
app.command()(info.inspect)
app.command()(classify.classify)
app.command()(analyze.analyze)
app.command()(transfer.transfer)
app.command()(generate.generate)
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(plot.app, name="plot")
app.add_typer(listen.app, name="listen")


def main() -> None:
    try:
        app()
    except SystemExit as exit_:
        raise SystemExit(1 if exit_.code == 2 else exit_.code) from None  # usage errors exit 1, as DESIGN.md says
