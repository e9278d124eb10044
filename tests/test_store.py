import json

import pytest
import torch
from torch import nn

from estm_core import families, model_file, store
from estm_core.errors import EstmError, FileError, StoreError


@families.register("tiny-test")
class Tiny(nn.Module):
    def __init__(self, width: int = 3, classes: int = 2, note: str = "default"):
        super().__init__()
        self.hidden = nn.Linear(4, width)
        self.out = nn.Linear(width, classes)
        self.register_buffer("calls", torch.zeros(1, dtype=torch.int64))

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def make_tiny(seed=0, **config):
    torch.manual_seed(seed)
    model = Tiny(**config)
    model.calls += 7
    return model


def test_register_records_the_constructor_arguments_with_defaults():
    assert Tiny(5).config == {"width": 5, "classes": 2, "note": "default"}
    assert families.model_class("tiny-test") is Tiny


def test_round_trip_rebuilds_the_model_with_bit_identical_weights(store_home, tmp_path):
    model = make_tiny(width=6, classes=3)
    path = model_file.save_model(model, store.model_path("tiny-test", "first"), labels=["a", "b", "c"],
                                 audio=model_file.AudioSettings(22050),
                                 training=model_file.TrainingSummary(status="finished", other={"loss": 0.5}))
    assert path == store.models_dir() / "tiny-test" / "first.safetensors"
    first = store.load_model("first")
    loaded, info = first.model, first.info
    assert first.name == "first" and isinstance(loaded, Tiny) and not loaded.training
    assert loaded.config == {"width": 6, "classes": 3, "note": "default"}
    for (name, original), (_, restored) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(original, restored), name
    assert info.family == "tiny-test" and info.labels == ["a", "b", "c"]
    assert info.audio == model_file.AudioSettings(22050) and info.training.status == "finished"
    assert info.training.other == {"loss": 0.5}
    assert info.estm_version and info.created
    x = torch.randn(5, 4)
    assert torch.equal(model(x), loaded(x))


def test_refuses_a_pickle_and_other_files(store_home, tmp_path):
    pickled = tmp_path / "model.safetensors"
    torch.save(make_tiny().state_dict(), pickled)
    with pytest.raises(StoreError, match="pickled PyTorch checkpoint"):
        store.load_model(pickled)
    import pickle

    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    with pytest.raises(StoreError, match="pickled PyTorch checkpoint"):
        model_file.read_info(bare)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a safetensors model file"):
        model_file.read_info(text)


def test_a_safetensors_file_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(StoreError, match="without estm metadata"):
        model_file.read_info(path)


def test_weights_that_do_not_fit_their_config_are_refused(store_home):
    path = model_file.save_model(make_tiny(), store.model_path("tiny-test", "bent"))
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as file:
        metadata = file.metadata()
    info = json.loads(metadata["estm"])
    info["config"]["width"] = 9
    save_file(make_tiny().state_dict(), str(path), metadata={"estm": json.dumps(info)})
    with pytest.raises(StoreError, match="do not fit"):
        store.load_model(path)


def test_lookup_newest_ambiguity_and_removal(store_home):
    with pytest.raises(StoreError, match="make one with `estm train tiny-test`"):
        store.find_model("tiny-test")
    older = model_file.save_model(make_tiny(), store.model_path("tiny-test", "older"))
    newer = model_file.save_model(make_tiny(1), store.model_path("tiny-test", "newer"))
    import os

    os.utime(older, (1_000_000, 1_000_000))
    assert store.find_model("tiny-test") == newer
    assert store.find_model("tiny-test", "older") == older
    assert store.resolve("tiny-test/older") == older
    assert [model.name for model in store.list_models()] == ["newer", "older"]
    with pytest.raises(FileError, match="already exists"):
        model_file.save_model(make_tiny(), store.model_path("tiny-test", "older"))

    (store.models_dir() / "other").mkdir()
    (store.models_dir() / "other" / "older.safetensors").write_bytes(older.read_bytes())
    with pytest.raises(StoreError, match="ambiguous"):
        store.resolve("older")
    with pytest.raises(StoreError, match="a tiny-test model, but this needs a mer model"):
        store.load_model("tiny-test/older", family="mer")

    store.history_path(newer).write_text("epoch,loss\n1,0.5\n")
    removed = store.remove("newer")
    assert sorted(p.name for p in removed) == ["newer.history.csv", "newer.safetensors"]
    with pytest.raises(StoreError, match="no models named 'newer'"):
        store.resolve("newer")


def test_a_task_served_by_several_families_takes_the_newest_of_them(store_home):
    import os

    with pytest.raises(StoreError, match="no tiny-test or tiny-other model"):
        store.find_model(("tiny-test", "tiny-other"))
    first = model_file.save_model(make_tiny(), store.model_path("tiny-test", "first"))
    second = model_file.save_model(make_tiny(1), store.model_path("tiny-other", "second"))
    os.utime(first, (1_000_000, 1_000_000))
    assert store.find_model(("tiny-test", "tiny-other")) == second
    os.utime(second, (500_000, 500_000))
    assert store.find_model(("tiny-test", "tiny-other")) == first
    assert store.find_model(("tiny-test", "tiny-other"), "second") == second


def test_unknown_family_is_a_clear_error():
    with pytest.raises(StoreError, match="family 'nope' is not available"):
        families.model_class("nope")


# ------------------------------------------------------------------------------------- faults (issue 14)


def test_names_are_literal_and_plain(store_home, estm):
    model_file.save_model(make_tiny(), store.model_path("tiny-test", "kept"))
    result = estm("models", "remove", "tiny-test/*")  # once a wildcard that removed every model
    assert result.code == 1 and "no tiny-test models named '*'" in result.err
    assert store.model_path("tiny-test", "kept").exists()
    for name in ("../../escaped", ".hidden", "a/b", ""):
        with pytest.raises(StoreError, match="not a valid model name"):
            store.model_path("tiny-test", name)
    assert not (store_home.parent / "escaped.safetensors").exists()


def test_removing_several_models_needs_force(store_home, estm):
    for name in ("one", "two"):
        model_file.save_model(make_tiny(), store.model_path("tiny-test", name))
    result = estm("models", "remove", "one", "two")  # stdin is no terminal here: nobody to ask
    assert result.code == 1 and "needs --force" in result.err
    assert store.model_path("tiny-test", "one").exists() and store.model_path("tiny-test", "two").exists()
    assert estm("models", "remove", "one", "nothing", "--force").code == 1  # every name checked first
    assert store.model_path("tiny-test", "one").exists()
    assert estm("models", "remove", "one", "two", "--force").code == 0
    assert not store.list_models()


def test_a_name_in_training_cannot_be_taken_or_removed_by_another_process(store_home, tmp_path):
    import subprocess
    import sys
    import time

    path = model_file.save_model(make_tiny(), store.model_path("tiny-test", "busy"))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from estm_core import store\n"
        "with store.model_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); time.sleep(60)"), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"being trained \\(pid {holder.pid}\\)"):
            with store.model_lock(path):
                pass
        with pytest.raises(StoreError, match="being trained.*to remove it"):
            store.remove("busy")
        assert path.exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert store.remove("busy") == [path.resolve()]  # the lock went with its holder
    assert not list(path.parent.iterdir())  # the lock file too


def test_a_lock_refuses_a_second_holder_in_one_line_and_goes_when_released(tmp_path):
    import os

    lock_file = tmp_path / ".cache.lock"
    with store.lock(lock_file, busy="C is busy", then="wait"):
        assert lock_file.read_text() == str(os.getpid())
        with pytest.raises(StoreError, match=f"^C is busy \\(pid {os.getpid()}\\); wait$"):
            with store.lock(lock_file, busy="C is busy", then="wait"):
                pass
        assert lock_file.read_text() == str(os.getpid())  # the refused one left the holder's pid
    assert not lock_file.exists()
    with store.lock(lock_file, busy="C is busy", then="wait"):  # free again
        pass


def test_non_finite_or_mistyped_weights_are_neither_saved_nor_loaded(store_home):
    from safetensors.torch import save_file

    broken = make_tiny()
    with torch.no_grad():
        broken.out.weight[0, 0] = float("nan")
    with pytest.raises(StoreError, match="NaN or infinite"):
        model_file.save_model(broken, store.model_path("tiny-test", "nan"))
    assert not store.model_path("tiny-test", "nan").exists()

    good = model_file.save_model(make_tiny(), store.model_path("tiny-test", "good"))
    metadata = {model_file.METADATA_KEY: json.dumps(json.loads(_metadata(good)))}
    tensors = {key: value.clone() for key, value in make_tiny().state_dict().items()}
    tensors["hidden.bias"][1] = float("inf")
    save_file(tensors, str(store.model_path("tiny-test", "inf")), metadata=metadata)
    with pytest.raises(StoreError, match="hidden.bias holds NaN or infinite"):
        store.load_model("inf")
    integers = {key: value.to(torch.int32) if value.is_floating_point() else value
                for key, value in make_tiny().state_dict().items()}
    save_file(integers, str(store.model_path("tiny-test", "int32")), metadata=metadata)
    with pytest.raises(StoreError, match="torch.int32, the model takes torch.float32"):
        store.load_model("int32")


def _metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        return file.metadata()[model_file.METADATA_KEY]


def test_a_config_is_checked_against_the_weights_before_anything_is_built(store_home, monkeypatch):
    from safetensors.torch import save_file

    good = model_file.save_model(make_tiny(), store.model_path("tiny-test", "good"))
    fields = json.loads(_metadata(good))
    fields["config"]["width"] = 2**28  # a real build would ask for 4 GB
    save_file(make_tiny().state_dict(), str(store.model_path("tiny-test", "huge")),
              metadata={model_file.METADATA_KEY: json.dumps(fields)})
    built = []
    real_init = nn.Linear.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs.get("device") or torch.get_default_device())
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(nn.Linear, "__init__", counting)
    with pytest.raises(StoreError, match=r"hidden.weight is \(3, 4\), the config makes \(268435456, 4\)"):
        store.load_model("huge")
    assert all(device.type == "meta" for device in built)  # nothing was allocated for real


def test_leftovers_of_killed_writes_are_never_models_and_go_on_the_next_write(store_home):
    from estm_core.files import OWNER, atomic_write

    path = model_file.save_model(make_tiny(), store.model_path("tiny-test", "kept"))
    host = OWNER.rsplit("-", 1)[0]
    dead = path.with_name(f".kept.{host}-999999999.abcd.tmp.safetensors")  # no such process
    dead.write_bytes(b"")
    alive = path.with_name(f".kept.{OWNER}.efgh.tmp.safetensors")  # a write under way (this process)
    alive.write_bytes(path.read_bytes())
    assert [model.name for model in store.list_models()] == ["kept"]
    assert store.newest("tiny-test") == path
    with atomic_write(path, force=True) as temporary:
        temporary.write_bytes(path.read_bytes())
    assert not dead.exists() and alive.exists()


def test_models_list_names_each_bad_entry_and_lists_the_rest(store_home, estm):
    model_file.save_model(make_tiny(), store.model_path("tiny-test", "fine"))
    folder = store.models_dir() / "tiny-test"
    (folder / "folder.safetensors").mkdir()
    (folder / "dangling.safetensors").symlink_to(folder / "absent.safetensors")
    (folder / "loop.safetensors").symlink_to(folder / "loop.safetensors")
    listed = {model.name: model.problem for model in store.list_models()}
    assert listed["fine"] is None and set(listed) == {"fine", "folder", "dangling", "loop"}
    assert all("unreadable" in listed[name] for name in ("folder", "dangling", "loop"))
    result = estm("models", "list", "--json")
    assert result.code == 0 and len(result.out.splitlines()) == 4
    removed = estm("models", "remove", "dangling", "loop", "--force")
    assert removed.code == 0, removed.err  # the links go, nothing else
    assert "a folder, not a model file" in estm("models", "remove", "folder").err
    assert {model.name for model in store.list_models()} == {"fine", "folder"}


def test_every_family_of_the_table_is_registered_by_its_module():
    from estm_core.families import FAMILIES, trained_by

    for name, family in FAMILIES.items():
        cls = families.model_class(name)
        assert cls.family == name and cls.__module__ == f"estm_core.models.{family.module}"
    assert set(trained_by("classifier")) | set(trained_by("vqvae")) | set(trained_by("wavenet")) == set(FAMILIES)


def test_a_model_saved_under_a_former_family_name_loads_as_today_s(store_home):
    from estm_core.models.resnet import GemsResNet

    model = GemsResNet(classes=3, blocks=(1,), widths=(4,))
    features = {"n_fft": 256, "hop_length": 64, "n_mels": 32, "standardize": True}  # a task needs them (issue 24)
    path = model_file.save_model(model, store.model_path("gems", "old"), labels=["a", "b", "c"],
                                 audio=model_file.AudioSettings(8000, 4000, features=features))
    old = store.models_dir() / "emotion" / "old.safetensors"  # as estm wrote a GEMS model before the rename
    old.parent.mkdir()
    fields = json.loads(_metadata(path))
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(old),
              metadata={model_file.METADATA_KEY: json.dumps({**fields, "family": "emotion"})})
    path.unlink()
    assert store.newest("gems") == old and store.resolve("gems/old") == old
    loaded = store.load_model("old", "gems")
    assert isinstance(loaded.model, GemsResNet) and loaded.family == "gems"
    assert [(entry.name, entry.family) for entry in store.list_models()] == [("old", "gems")]


def test_metadata_from_before_the_typed_fields_reads_and_keeps_keys_it_does_not_know(store_home):
    """A file written as dicts (estm before the typed metadata, or a newer estm with more keys) reads into the
    typed fields; keys this version does not know are kept through a rewrite."""
    from safetensors.torch import save_file

    model = make_tiny()
    path = store.model_path("tiny-test", "dicts")
    path.parent.mkdir(parents=True)
    written = {"family": "tiny-test", "config": model.config, "labels": ["a", "b"],
               "audio": {"sample_rate": 8000, "segment_length": 4096, "channels": 2},
               "training": {"data": "/cache", "status": "finished", "best": {"epoch": 3}, "curriculum": [1, 2]}}
    save_file(model.state_dict(), str(path), metadata={model_file.METADATA_KEY: json.dumps(written)})
    info = model_file.read_info(path)
    assert info.audio == model_file.AudioSettings(8000, 4096, other={"channels": 2})
    assert (info.training.data, info.training.status, info.training.best) == ("/cache", "finished", {"epoch": 3})
    assert info.training.other == {"curriculum": [1, 2]} and info.training.label_column == "label"
    model_file.save_model(model, path, labels=info.labels, audio=info.audio, training=info.training, force=True)
    assert model_file.read_info(path).training.other == {"curriculum": [1, 2]}
    assert model_file.read_info(path).audio.other == {"channels": 2}


def test_a_cache_that_does_not_fit_the_model_is_named_with_both_settings(store_home, tmp_path):
    from dataclasses import asdict

    from estm_core.datasets.segment import SegmentSettings, check_fits

    settings = SegmentSettings(sample_rate=8000, segment_length=4000)
    (tmp_path / "segments.json").write_text(json.dumps({"settings": asdict(settings), "complete": True}))
    info = model_file.ModelInfo("tiny-test", {}, audio=model_file.AudioSettings(8000, 4000))
    model = model_file.LoadedModel("judge", make_tiny(), info)
    assert check_fits(tmp_path, model).segment_length == 4000
    model.info.audio.segment_length = 4096
    with pytest.raises(EstmError, match=f"judge takes 4096 samples at 8000 Hz, but {tmp_path} holds 4000 at 8000 Hz"):
        check_fits(tmp_path, model)
