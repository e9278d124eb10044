"""What a non-editable install ships: every package of the source tree, so that `pip install .` runs as the tree does."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_tree_is_installed():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    for top in ("estm_core", "estm_cli"):
        for init in (ROOT / top).rglob("__init__.py"):
            package = ".".join(init.parent.relative_to(ROOT).parts)
            assert package in listed, f"{package} is missing from pyproject.toml's packages"
    assert settings["package-dir"]["estm_core.data"] == "data"
