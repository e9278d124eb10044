import json

import pytest
import torch
from torch import nn

from estm_core import store
from estm_core.errors import FileError
from estm_core.store import StoreError


@store.register("tiny-test")
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
    assert store.model_class("tiny-test") is Tiny


def test_round_trip_rebuilds_the_model_with_bit_identical_weights(store_home, tmp_path):
    model = make_tiny(width=6, classes=3)
    path = store.save_model(model, store.model_path("tiny-test", "first"), labels=["a", "b", "c"],
                            audio={"sample_rate": 22050}, training={"epochs": 2, "loss": 0.5})
    assert path == store.models_dir() / "tiny-test" / "first.safetensors"
    loaded, info = store.load_model("first")
    assert isinstance(loaded, Tiny) and not loaded.training
    assert loaded.config == {"width": 6, "classes": 3, "note": "default"}
    for (name, original), (_, restored) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(original, restored), name
    assert info.family == "tiny-test" and info.labels == ["a", "b", "c"]
    assert info.audio == {"sample_rate": 22050} and info.training["loss"] == 0.5
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
        store.read_info(bare)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a safetensors model file"):
        store.read_info(text)


def test_a_safetensors_file_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(StoreError, match="without estm metadata"):
        store.read_info(path)


def test_weights_that_do_not_fit_their_config_are_refused(store_home):
    path = store.save_model(make_tiny(), store.model_path("tiny-test", "bent"))
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
    older = store.save_model(make_tiny(), store.model_path("tiny-test", "older"))
    newer = store.save_model(make_tiny(1), store.model_path("tiny-test", "newer"))
    import os

    os.utime(older, (1_000_000, 1_000_000))
    assert store.find_model("tiny-test") == newer
    assert store.find_model("tiny-test", "older") == older
    assert store.resolve("tiny-test/older") == older
    assert [model.name for model in store.list_models()] == ["newer", "older"]
    with pytest.raises(FileError, match="already exists"):
        store.save_model(make_tiny(), store.model_path("tiny-test", "older"))

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


def test_unknown_family_is_a_clear_error():
    with pytest.raises(StoreError, match="family 'nope' is not available"):
        store.model_class("nope")
