"""Files that ship with estm (the top-level data/ folder): grid definitions, tables."""

from __future__ import annotations

from pathlib import Path

from .errors import EstmError

# An installed wheel has data/ as estm_core/data (see pyproject.toml); a source checkout has it beside estm_core.
_ROOTS = (Path(__file__).parent / "data", Path(__file__).parent.parent / "data")


def data_file(*parts: str) -> Path:
    for root in _ROOTS:
        path = root.joinpath(*parts)
        if path.exists():
            return path
    raise EstmError(f"estm's data file {'/'.join(parts)} is missing from this installation")
