"""A report as a list of blocks, written as HTML and Markdown side by side (the demo's report.html and report.md); and
an evaluation's summary as JSON (write_json).

A block is a tuple: ("h1" | "h2" | "p" | "code", text); ("table", DataFrame); ("img", path, caption);
("grid", [(path, caption), ...]) for figures two to a row; ("audio", [(label, path), ...]) for players. Text may
hold **bold** and `code`. Paths are written relative to the report's folder where they lie inside it.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np

from .files import atomic_write


def write_report(document: list[tuple], stem: Path, *, title: str) -> list[Path]:
    """`stem`.html and `stem`.md, written atomically; returns their paths."""
    written = []
    for suffix, text in ((".html", _html(document, stem.parent, title)), (".md", _markdown(document, stem.parent))):
        path = stem.with_suffix(suffix)
        with atomic_write(path, force=True) as temporary:
            Path(temporary).write_text(text, encoding="utf-8")
        written.append(path)
    return written


def json_ready(value):
    """`value` as JSON can hold it: NaN and infinities (a figure with nothing to count) become null, paths strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def write_json(value, path: str | Path, force: bool = False) -> Path:
    """`value` (json_ready) as indented JSON, written atomically; an existing file is kept unless `force`."""
    with atomic_write(path, force) as temporary:
        Path(temporary).write_text(json.dumps(json_ready(value), indent=2))
    return Path(path)


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return "" if value is None else str(value)


def _relative(path, root: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_uri()


def _markdown(document: list[tuple], root: Path) -> str:
    lines = []
    for kind, *content in document:
        if kind in ("h1", "h2"):
            lines += ["#" * int(kind[1]) + " " + content[0], ""]
        elif kind == "p":
            lines += [content[0], ""]
        elif kind == "code":
            lines += ["```", content[0], "```", ""]
        elif kind == "table":
            table = content[0]
            lines.append("| " + " | ".join(table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
            lines.append("")
        elif kind == "img":
            lines += [f"![{content[1]}]({_relative(content[0], root)})", ""]
        elif kind == "grid":
            lines += [" ".join(f"![{alt}]({_relative(path, root)})" for path, alt in content[0]), ""]
        elif kind == "audio":
            lines += [" · ".join(f"[{label}]({_relative(path, root)})" for label, path in content[0]), ""]
    return "\n".join(lines)


def _figure(link: str, caption: str) -> str:
    """An image that opens at full size when clicked, with its caption."""
    return (f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(caption)}"></a>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _html(document: list[tuple], root: Path, title: str) -> str:
    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

    body = []
    for kind, *content in document:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{inline(content[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{inline(content[0])}</p>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(content[0])}</pre>")
        elif kind == "table":
            table = content[0]
            head = "".join(f"<th>{html.escape(str(column))}</th>" for column in table.columns)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(value))}</td>" for value in row) + "</tr>"
                           for row in table.itertuples(index=False))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(_figure(_relative(content[0], root), content[1]))
        elif kind == "grid":
            body.append('<div class="grid">' + "".join(_figure(_relative(path, root), alt) for path, alt in content[0])
                        + "</div>")
        elif kind == "audio":
            body.append('<div class="audio">' + "".join(
                f'<label>{html.escape(label)}<audio controls preload="none" src="{_relative(path, root)}"></audio>'
                f"</label>" for label, path in content[0]) + "</div>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; }} th {{ background: #f4f4f4; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #666; font-size: 13px; }}
.grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; }}
.audio {{ display: flex; flex-wrap: wrap; gap: 1em; }} .audio label {{ display: flex; flex-direction: column; }}
pre {{ background: #f6f6f6; padding: 0.8em; }} code {{ background: #f6f6f6; padding: 0 3px; }}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""
