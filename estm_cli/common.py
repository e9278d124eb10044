"""What every command shares: options, input expansion, output modes, progress, errors and exit codes.

Imports nothing heavy at module level so that `estm --help` stays fast; estm_core is imported inside commands.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table



class _Console(Console):
    def on_broken_pipe(self) -> None:
        """rich's own exits 1, which reads as a failure: raise, for handles_errors to end quietly as SIGPIPE would."""
        self.quiet = True
        raise BrokenPipeError


# Tables piped to a file or another program should not wrap at rich's 80-column fallback.
stdout = _Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
stderr = _Console(stderr=True, soft_wrap=True)  # one error, one line, however long

EXIT_OK, EXIT_FAILED, EXIT_SOME_FAILED = 0, 1, 3

# ----------------------------------------------------------------------------------------------------- options

Files = Annotated[list[str], typer.Argument(help="Audio files, folders, globs, or - to read paths from stdin.")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Search folders and their subfolders.")]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout, nothing else.")]
Csv = Annotated[bool, typer.Option("--csv", help="CSV with a header row on stdout, nothing else.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors: no progress bars or notes.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]

MAX_JOBS = 64  # processes: more than that only share the same cores, each with its own copy of the libraries
MAX_SEED = 2**32 - 1  # what numpy's and torch's generators both take


def bounded(low: float | None = None, high: float | None = None, *, above: float | None = None) -> Callable:
    """A typer callback for a numeric option: refuses NaN and infinity (which typer's FloatRange lets through) and
    values below `low` (or not above `above`) or beyond `high`, as a usage error on one line. None passes."""

    def check(value):
        if value is None:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, not {value}")
        if (low is not None and value < low) or (above is not None and value <= above) or \
                (high is not None and value > high):
            floor = f"above {above:g}" if above is not None else f"at least {low:g}" if low is not None else ""
            ceiling = f"at most {high:g}" if high is not None else ""
            raise typer.BadParameter(f"must be {' and '.join(filter(None, (floor, ceiling)))}, not {value:g}")
        return value

    return check



def renamed(old: str, new: str) -> Any:
    """A hidden option `old` that refuses itself in one line naming `new`, the option it became."""
    def refuse(value: str | None) -> None:
        if value is not None:
            raise typer.BadParameter(f"{old} is now {new}")

    return Annotated[Optional[str], typer.Option(old, hidden=True, callback=refuse)]


def cache_folder(path: Path | None) -> Path | None:
    """A segment cache folder, given as the folder or as its manifest.csv."""
    return path.parent if path is not None and path.name == "manifest.csv" else path


def segment_cache(purpose: str = "") -> Any:
    """The --data option of a command that reads a segment cache; `purpose` ends its help."""
    return Annotated[Optional[Path], typer.Option(
        "--data", callback=cache_folder,
        help=f"A segment cache folder from `estm data segment` (or its manifest.csv){purpose}.")]


SegmentCache = segment_cache()


def error_line(message: str) -> None:
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def note(message: str, quiet: bool = False) -> None:
    """An informational line on stderr (never stdout, which belongs to --json/--csv)."""
    if not quiet:
        stderr.print(escape(message), style="dim", highlight=False)


def handles_errors(command: Callable) -> Callable:
    """Run a command so that user errors print one line and exit 1, with a traceback only under --debug."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        from estm_core.errors import EstmError

        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`estm info | head -1`): end quietly with 141 (128 + SIGPIPE), the status a shell
            # reports for cat or grep killed by SIGPIPE there, so `set -o pipefail` scripts see what they expect; 0
            # would claim output that was never read. Later writes (Python's own flush at exit) go to /dev/null.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except Exception as error:
            if kwargs.get("debug"):
                raise
            if isinstance(error, EstmError):
                error_line(str(error))
            else:
                error_line(f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)")
            raise typer.Exit(EXIT_FAILED) from None

    return run


# ----------------------------------------------------------------------------------------------------- inputs


def expand_inputs(items: list[str], recursive: bool, quiet: bool = False) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders, globs and '-' (paths on stdin) -> (audio files in order, each real file once, as first spelled;
    [(item, why it gave nothing)]). Folders yield files with an audio extension, found as estm_core.finding finds
    them (hidden files skipped, no loops); a file named explicitly is always kept. Files reached more than once (two
    spellings, a file and its folder) are counted in a note: "N duplicates skipped"."""
    from estm_core.errors import EstmError

    if "-" in items:
        stdin_paths = [line.strip() for line in sys.stdin if line.strip()]
        if not stdin_paths:
            raise EstmError("no file names on stdin (`-` reads one path per line)")
        items = [path for item in items for path in (stdin_paths if item == "-" else [item])]

    found: dict[str, Path] = {}  # real path -> the first spelling of it
    problems: list[tuple[str, str]] = []
    duplicates = 0
    for item in items:
        try:
            files, problem = _expand(item, recursive)
            real = [os.path.realpath(file) for file in files]
        except OSError as error:  # a name too long, a link that loops: this item's one line
            files, real, problem = [], [], f"cannot read ({(error.strerror or str(error)).lower()})"
        if problem:
            problems.append((item, problem))
        for file, key in zip(files, real):
            duplicates += key in found
            found.setdefault(key, file)
    if duplicates:
        note(f"{duplicates} duplicate{'s' if duplicates > 1 else ''} skipped (the same file given more than once)",
             quiet)
    return list(found.values()), problems


def _expand(item: str, recursive: bool) -> tuple[list[Path], str | None]:
    """One input item -> (its files, why it gave none or None)."""
    from estm_core.finding import audio_files, glob_paths, is_pattern, visible

    path = Path(item).expanduser()
    if path.is_dir():
        files = audio_files(path, recursive)
        hint = "" if recursive else " (add --recursive to search subfolders)"
        return files, None if files else f"folder holds no audio files{hint}"
    if path.exists():
        return [path], None
    if is_pattern(item):
        matches = [Path(match) for match in glob_paths(str(path)) if visible(Path(match).name)]
        files = [match for match in matches if match.is_file()]
        files += [file for match in matches if match.is_dir() for file in audio_files(match, recursive)]
        return files, None if files else "no file matches"
    if path.is_symlink():
        return [], "a symbolic link to nothing (it loops, or its target is gone)"
    return [], "no such file"


def file_failure(error: Exception, debug: bool) -> str:
    """The cause to list for a file a batch could not process: an EstmError's own words; anything else is an
    internal error, listed as that file's line so that the batch goes on (raised under --debug, for the traceback)."""
    from estm_core.errors import EstmError, FileError

    if isinstance(error, FileError):
        return error.cause
    if isinstance(error, EstmError):
        return str(error)
    if debug:
        raise error
    return f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)"


def readable(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The paths whose headers read as audio (checked before any model loads), and (path, cause) for the rest."""
    from estm_core.audio import probe
    from estm_core.errors import AudioError

    good, bad = [], []
    for path in paths:
        try:
            probe(path)
            good.append(path)
        except AudioError as error:
            bad.append((str(path), error.cause))
    return good, bad


# ---------------------------------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    format: Callable[[Any], str] = str
    justify: str = "left"
    hidden: bool = False  # in --csv only, not in the table


def report_skipped(problems: list[tuple[str, str]], what: str) -> int:
    """List skipped files (`what`: "files", "songs", ...), one line each; the exit code for the batch."""
    if not problems:
        return EXIT_OK
    stderr.print(f"[bold red]{len(problems)} {what} skipped:[/]", highlight=False)
    for path, cause in problems:
        stderr.print(f"  {escape(str(path))}: {escape(cause)}", highlight=False)
    return EXIT_SOME_FAILED


def output_mode(json_: bool, csv_: bool) -> str:
    from estm_core.errors import EstmError

    if json_ and csv_:
        raise EstmError("choose one of --json and --csv")
    return "json" if json_ else "csv" if csv_ else "table"




class Batch:
    """The per-file results of a batch command.

    Table mode gathers rows and prints them at the end; --json prints one object per file as it comes; --csv a header
    then rows. Failed files appear in --json/--csv with an "error" field, and as one line each on stderr at the end.
    `finish()` returns the exit code: 0 all ok, 1 nothing processed, 3 some failed.
    """

    def __init__(self, columns: list[Column], mode: str, title: str | None = None):
        self.columns, self.mode, self.title = columns, mode, title
        self.rows: list[dict] = []  # what the table shows: every file that yielded a record
        self.succeeded = 0
        self.failures: list[tuple[str, str]] = []
        self._csv_writer = None

    def ok(self, record: dict) -> None:
        self._emit(record)
        self.rows.append(record)
        self.succeeded += 1

    def extra(self, record: dict) -> None:
        """A further row about a file already counted (e.g. one of its segments)."""
        self._emit(record)
        self.rows.append(record)

    def failed(self, path, cause: str, record: dict | None = None) -> None:
        """A bad file; `record` is what could still be measured (shown, but not counted as a success)."""
        self.failures.append((str(path), cause))
        self._emit({**(record or {"path": str(path)}), "error": cause})
        if record:
            self.rows.append(record)

    def _emit(self, record: dict) -> None:
        if self.mode == "json":
            print(json.dumps(plain(record)), flush=True)
        elif self.mode == "csv":
            if self._csv_writer is None:
                keys = [column.key for column in self.columns] + ["error"]
                self._csv_writer = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore")
                self._csv_writer.writeheader()
            self._csv_writer.writerow({key: "" if value is None else value for key, value in plain(record).items()})
            sys.stdout.flush()

    def finish(self) -> int:
        if self.mode == "table" and self.rows:
            table = Table(title=self.title, title_justify="left", show_edge=False)
            shown = [column for column in self.columns if not column.hidden]
            for column in shown:
                table.add_column(column.header, justify=column.justify, overflow="fold")
            for row in self.rows:
                table.add_row(*(escape(column.format(row.get(column.key))) for column in shown))
            stdout.print(table)
        if self.failures:
            total = self.succeeded + len(self.failures)
            stderr.print(f"[bold red]{len(self.failures)} of {total} failed:[/]", highlight=False)
            for path, cause in self.failures:
                stderr.print(f"  {escape(path)}: {escape(cause)}", highlight=False)
        if not self.succeeded:
            return EXIT_FAILED
        return EXIT_SOME_FAILED if self.failures else EXIT_OK


# --------------------------------------------------------------------------------------------------- progress


class ProgressBar:
    """A rich bar on stderr with count, rate and ETA; silent under --quiet or when stdout is not a terminal.

    Use `advance()` from a CLI loop, or pass the bar itself to estm_core as an `on_progress(done, total)` callback.
    """

    def __init__(self, description: str, total: int | None, unit: str = "files", quiet: bool = False):
        self.enabled = not quiet and sys.stdout.isatty()
        self._progress = None
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
            )
            self._unit = unit
            self._task = self._progress.add_task(description, total=total, rate="")

    def __enter__(self) -> "ProgressBar":
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress:
            self._progress.stop()

    def _refresh_rate(self) -> None:
        speed = self._progress.tasks[0].speed
        rate = f"{speed:.1f} {self._unit}/s" if speed else ""
        self._progress.update(self._task, rate=rate)

    def describe(self, description: str) -> None:
        if self._progress:
            self._progress.update(self._task, description=description)

    def advance(self, count: int = 1) -> None:
        if self._progress:
            self._progress.advance(self._task, count)
            self._refresh_rate()

    def __call__(self, done: int, total: int | None = None) -> None:
        if self._progress:
            self._progress.update(self._task, completed=done, total=total)
            self._refresh_rate()


def plain(value: Any) -> Any:
    """JSON-safe (report.json_ready: non-finite floats null, paths strings), imported when used so that --help
    stays free of numpy."""
    from estm_core.report import json_ready

    return json_ready(value)
