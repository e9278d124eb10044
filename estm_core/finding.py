"""Finding audio files: the one rule every command and dataset layout uses. Hidden files and macOS's zip debris are
skipped, and a search follows linked folders but enters each real folder once, so a link to '.' or two folders
linked to each other neither repeat files nor loop."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from .audio import AUDIO_EXTENSIONS


def is_pattern(text: str) -> bool:
    return any(character in text for character in "*?[")


def visible(name: str) -> bool:
    """Whether a folder search or a glob picks up `name`: not hidden, and not macOS's zip debris (._song.mp3 resource
    forks, __MACOSX/)."""
    return not name.startswith(".") and name != "__MACOSX"


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        return list(os.scandir(folder))
    except OSError:  # unreadable or gone: it holds nothing we can use
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link that loops (ELOOP) leads nowhere, like a dangling one
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def folders_below(top: str) -> list[str]:
    """`top` ("" for here) and the listed folders below it, shallowest first, following folder symlinks but entering
    each real folder once (by the shortest spelling)."""
    folders, seen = [top], {os.path.realpath(top or os.curdir)}
    for folder in folders:  # grows as it goes: a breadth-first walk
        for entry in sorted(_scan(folder or os.curdir), key=lambda entry: entry.name):
            if not (visible(entry.name) and _is_dir(entry)):
                continue
            real = os.path.realpath(entry.path)
            if real not in seen:
                seen.add(real)
                folders.append(os.path.join(folder, entry.name))
    return folders


def glob_paths(pattern: str) -> list[str]:
    """glob.glob(pattern, recursive=True), except that each '**' enters every real folder once: glob's own follows
    symlinked folders round and round (a link to '.' repeats every file 40 times; two linked folders never end)."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return sorted(glob.glob(pattern))  # without '**' a pattern has a fixed depth, so it cannot loop
    at = parts.index("**")
    # the fixed part before '**': "" is here (a pattern that starts with '**'), and nothing after a leading / is /
    head, rest = os.sep.join(parts[:at]) or (os.sep if at else ""), parts[at + 1:]
    matches = []
    for top in sorted(glob.glob(head)) if is_pattern(head) else [head]:
        for folder in folders_below(top) if os.path.isdir(top or os.curdir) else []:
            if rest:  # what follows '**' is matched in each folder, and may hold another '**'
                matches += glob_paths(os.path.join(glob.escape(folder), *rest))
            else:
                matches.append(folder)
    return sorted(matches)


def audio_files(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """The audio files (by extension) in `folder`, and with `recursive` in every folder below it: each folder's own
    files by name, then its subfolders' by name (the order of a sorted walk, which dataset splits depend on)."""
    return files_in(folder, AUDIO_EXTENSIONS, recursive)


def files_in(folder: str | os.PathLike, suffixes, recursive: bool = True) -> list[Path]:
    """The files whose extension is one of `suffixes` (".h5", lower case) in `folder` (and below it, as
    audio_files)."""
    folders = folders_below(str(folder)) if recursive else [str(folder)]
    found = [Path(entry.path) for name in folders for entry in _scan(name)
             if visible(entry.name) and _is_file(entry) and Path(entry.name).suffix.lower() in suffixes]
    return sorted(found, key=lambda path: (*((1, part) for part in path.parent.parts), (0, path.name)))
