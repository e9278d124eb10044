import json
import subprocess
import sys

import torch

from conftest import tone, write


def test_version_and_help_run_as_a_module_without_importing_torch():
    code = (
        "import sys, runpy; sys.argv = ['estm', '--help']\n"
        "try: runpy.run_module('estm_cli', run_name='__main__')\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'estm --help imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    version = subprocess.run([sys.executable, "-m", "estm_cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("estm ")


def test_info_json(estm, store_home):
    result = estm("info", "--json")
    assert result.code == 0
    facts = json.loads(result.out)
    assert facts["torch"] == torch.__version__ and facts["auto_device"] == "cpu"
    assert "MP3" in facts["readable_formats"] and ".flac" in facts["writable_extensions"]
    assert facts["store"].startswith(str(store_home)) and facts["models"] == []


def test_inspect_a_folder_of_good_and_bad_files_exits_3_with_one_line_per_bad_file(estm, tmp_path, bad_files):
    folder = bad_files["empty"].parent
    write(folder / "surround.wav", tone(0.5, 96000, channels=8), 96000)
    write(folder / "blip.wav", tone(0.001, 44100), 44100)
    write(folder / "song.ogg", tone(1.0, 44100, channels=2), 44100)
    result = estm("inspect", folder, "--json")
    assert result.code == 3
    records = {record["path"].split("/")[-1]: record for record in map(json.loads, result.out.splitlines())}
    assert records["surround.wav"]["channels"] == 8 and records["surround.wav"]["sample_rate"] == 96000
    assert records["blip.wav"]["frames"] == 44 and "error" not in records["blip.wav"]
    assert records["song.ogg"]["duration"] == 1.0
    assert records["cut.mp3"]["complete"] is False and records["cut.mp3"]["error"].startswith("truncated")
    bad_names = ["empty.wav", "notes.wav", "cut.mp3", "cut.wav", "stub.mp3", "nan.wav"]
    error_lines = [line for line in result.err.splitlines() if line.startswith("  ")]
    assert sorted(line.split(":")[0].split("/")[-1] for line in error_lines) == sorted(bad_names)
    assert "6 of 9 failed" in result.err and "Traceback" not in result.err


def test_inspect_exit_codes_and_table(estm, tmp_path, bad_files):
    good = write(tmp_path / "good.flac", tone(2.0, 22050), 22050)
    table = estm("inspect", good)
    assert table.code == 0 and "good.flac" in table.out and "22050" in table.out
    assert estm("inspect", bad_files["not_audio"]).code == 1  # nothing processed
    missing = estm("inspect", good, tmp_path / "nope.wav")
    assert missing.code == 3 and "nope.wav: no such file" in missing.err
    assert estm("inspect", "--json", "--csv", good).code == 1  # a usage error


def test_inspect_csv_globs_stdin_and_recursion(estm, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    deep = write(tmp_path / "a" / "b" / "deep.wav", tone(0.2, 8000), 8000)
    top = write(tmp_path / "a" / "top.wav", tone(0.1, 8000), 8000)
    flat = estm("inspect", tmp_path / "a", "--csv")
    assert flat.code == 0 and flat.out.splitlines()[0].startswith("path,format,duration")
    assert [line.split(",")[0] for line in flat.out.splitlines()[1:]] == [str(top)]
    deep_run = estm("inspect", tmp_path / "a", "--recursive", "--csv")
    assert len(deep_run.out.splitlines()) == 3
    globbed = estm("inspect", str(tmp_path / "a" / "**" / "*.wav"), "--json")
    assert {json.loads(line)["path"] for line in globbed.out.splitlines()} == {str(deep), str(top)}
    piped = estm("inspect", "-", "--json", stdin=f"{deep}\n\n{top}\n")
    assert [json.loads(line)["path"] for line in piped.out.splitlines()] == [str(deep), str(top)]
    assert estm("inspect", tmp_path / "a" / "b" / "*.mp3").code == 1


def test_models_list_show_remove(estm, store_home):
    from estm_core import model_file, store
    from test_store import make_tiny

    assert estm("models", "list", "--json").out == ""
    model_file.save_model(make_tiny(), store.model_path("tiny-test", "demo-tiny"), labels=["x", "y"])
    listed = [json.loads(line) for line in estm("models", "list", "--json").out.splitlines()]
    assert [(m["name"], m["family"], m["labels"]) for m in listed] == [("demo-tiny", "tiny-test", ["x", "y"])]
    assert "demo-tiny" in estm("models", "list").out
    shown = json.loads(estm("models", "show", "demo-tiny", "--json").out)
    assert shown["family"] == "tiny-test" and shown["config"]["width"] == 3
    assert estm("models", "remove", "demo-tiny").code == 0
    gone = estm("models", "show", "demo-tiny")
    assert gone.code == 1 and "no models named 'demo-tiny'" in gone.err and "Traceback" not in gone.err


def test_a_pickled_model_is_one_clear_line(estm, tmp_path):
    pickled = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(1)}, pickled)
    result = estm("models", "show", pickled)
    assert result.code == 1 and "pickled PyTorch checkpoint" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_debug_shows_the_traceback_instead_of_one_line(estm, tmp_path):
    import pytest

    from estm_core.errors import StoreError

    missing = tmp_path / "absent.safetensors"
    with pytest.raises(StoreError):
        estm("models", "show", missing, "--debug")
    assert estm("models", "show", missing).code == 1


def _every_command():
    """(path, click command) of every leaf command of `estm`."""
    import typer.main

    from estm_cli.app import app

    def walk(command, path):
        if hasattr(command, "commands"):  # a group
            for name, child in command.commands.items():
                yield from walk(child, [*path, name])
        else:
            yield " ".join(path), command

    return list(walk(typer.main.get_command(app), []))


def test_every_flag_means_one_thing_in_every_command():
    commands = _every_command()
    assert len(commands) > 20
    for path, command in commands:
        options = {name: parameter for parameter in command.params if parameter.param_type_name == "option"
                   for name in parameter.opts}
        # the old spellings: samples in flags, caches named otherwise, counts under other names
        assert not {"--segment-length", "--cache", "--n", "--max-segments", "--per-label"} & set(options), path
        for name in ("--hop", "--seconds", "--overlap"):
            if name in options:
                assert options[name].type_descriptor.annotation is float, f"{path} {name} is not in seconds"
        if "-o" in options:
            assert "file" in options["-o"].help.lower() or "folder" in options["-o"].help.lower(), path
        if "-n" in options:
            assert "--count" in options["-n"].opts, path
        if "-j" in options:
            assert "--jobs" in options["-j"].opts, path


def test_each_training_command_offers_only_its_own_options():
    commands = dict(_every_command())
    offered = {family: {name for parameter in commands[f"train {family}"].params for name in parameter.opts}
               for family in ("hvqvae", "estm1", "estm2", "mer", "genre", "gems")}
    assert not {"--beta-e", "--style-labels"} & offered["hvqvae"] and "--d" in offered["hvqvae"]
    assert "--latent-dim" not in offered["estm1"] | offered["estm2"] and "--beta-e" not in offered["estm1"]
    assert {"--d", "--beta-e", "--style-labels"} <= offered["estm2"]
    assert "--width" in offered["mer"] and "--width" not in offered["genre"] | offered["gems"]


def test_train_mer_builds_the_network_at_the_width_asked(estm, tmp_path, monkeypatch):
    from estm_core.errors import EstmError
    from estm_core.training import classifier

    asked = []

    def recorded(family, data, name, config, **options):
        asked.append((family, options["model_options"]))
        raise EstmError("recorded")

    monkeypatch.setattr(classifier, "train_classifier", recorded)
    for family, width in (("mer", ()), ("mer", ("--width", "0.25")), ("genre", ())):
        assert estm("train", family, "--data", tmp_path, *width, "-q").code == 1
    assert asked == [("mer", {"width": 1.0}), ("mer", {"width": 0.25}), ("genre", None)]


def test_training_defaults_are_the_core_s():
    from estm_core.families import FAMILIES
    from estm_core.training.config import TrainConfig

    commands = dict(_every_command())
    for family in FAMILIES:
        defaults = {parameter.name: parameter.default for parameter in commands[f"train {family}"].params}
        expected = TrainConfig(**FAMILIES[family].training)
        for option in ("epochs", "batch_size", "lr", "monitor", "patience", "seed"):
            assert defaults[option] == getattr(expected, option), (family, option)
        for option, value in FAMILIES[family].options.items():
            assert defaults[option] == value, (family, option)
    assert TrainConfig(**FAMILIES["estm2"].training).patience == 3  # the paper's early stopping
