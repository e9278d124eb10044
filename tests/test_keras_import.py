"""Importing the original project's Keras 2 `.h5` models: fixtures written here in Keras' own layout (weights-only
and full-model saves), small configs, layer counters that run on from earlier models."""

import hashlib
import json
import sys

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from estm_core import keras_h5, keras_import, model_file, store  # noqa: E402
from estm_core.errors import EstmError  # noqa: E402

LEVELS = ("bottom", "middle", "top")
DEPTHS = {"bottom": 3, "middle": 5, "top": 7}
# The counters a grid's later model gets: they cross a digit boundary (99 -> 100, 9 -> 10), so a sort by name fails.
CONV_START, TRANSPOSE_START = 95, 5


def hierarchy_shapes(latent, upsampler_in, inter, c1):
    """The original's layers in creation order: (Keras kind, our module, Keras kernel shape). Conv1D kernels are
    (k, in, out), Conv1DTranspose kernels (k, out, in)."""
    layers = []
    for level in LEVELS:
        for index in range(DEPTHS[level]):
            channels_in = 1 if index == 0 else latent
            layers.append(("conv1d", f"hierarchy.encoders.{level}.{2 * index}", (3, channels_in, latent)))
    joined = 3 * inter
    for index, (channels_in, channels_out) in enumerate([(joined, joined // 2), (joined // 2, joined // 4),
                                                          (joined // 4, 1)]):
        layers.append(("conv1d_transpose", f"hierarchy.decoder.{2 * index}", (3, channels_out, channels_in)))
    chains = {"bottom": [upsampler_in, inter], "middle": [upsampler_in, c1, inter],
              "top": [upsampler_in, c1, c1, c1, inter]}
    for level in LEVELS:
        chain = chains[level]
        for index in range(len(chain) - 1):
            layers.append(("conv1d_transpose", f"hierarchy.upsamplers.{level}.{2 * index}",
                           (3, chain[index + 1], chain[index])))
    return layers


FAMILY_SHAPES = {  # family -> (constructor arguments, latent, upsampler_in, inter, c1), small
    "estm2": ({"d": 8, "codebook_size": 16}, 8, 8, 4, 4),
    "estm1": ({"d": 8, "codebook_size": 16}, 4, 8, 4, 4),
    "hvqvae": ({"latent_dim": 8, "codebook_size": 16}, 8, 8, 4, 8),
}


def write_keras(path, layers, codebooks=(), *, full_model=False, scale=0.05, seed=0, change=None):
    """Write a Keras 2 `.h5` save of one nested model `vq_vae` holding `layers` [(kind, our name, kernel shape)]
    (numbered per kind from the counters above) and `codebooks` [(D, K)] named embeddings_vqvae_{level}. Returns
    {Keras weight name: array}. `change(weights)` may edit the arrays before writing."""
    rng = np.random.default_rng(seed)
    counters = {"conv1d": CONV_START, "conv1d_transpose": TRANSPOSE_START, "conv2d": 16, "dense": 7}
    weights = {}
    for kind, _, shape in layers:
        name = f"{kind}_{counters[kind]}"
        counters[kind] += 1
        weights[f"{name}/kernel:0"] = (rng.standard_normal(shape) * scale).astype(np.float32)
        weights[f"{name}/bias:0"] = (rng.standard_normal(shape[-2] if kind == "conv1d_transpose" else shape[-1])
                                     * scale).astype(np.float32)
    for level, shape in enumerate(codebooks):
        weights[f"embeddings_vqvae_{level}:0"] = (rng.standard_normal(shape) * scale).astype(np.float32)
    if change:
        change(weights)
    with h5py.File(path, "w") as file:
        file.attrs["backend"] = "tensorflow"
        file.attrs["keras_version"] = "2.11.0"
        if full_model:
            file.attrs["model_config"] = json.dumps({"class_name": "Functional"})
            root = file.create_group("model_weights")
            root.attrs["keras_version"] = "2.11.0"
            file.create_group("optimizer_weights")
        else:
            root = file
            file.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], dtype="S1")
        root.attrs["layer_names"] = np.array([b"vq_vae"]) if full_model else ["vq_vae"]
        group = root.create_group("vq_vae")
        for name, value in weights.items():
            group.create_dataset(name, data=value)
        # Keras lists weights in graph order, not creation order: reversed here, so nothing may lean on it
        group.attrs["weight_names"] = [name.encode() for name in reversed(list(weights))]
    return weights


def write_family(path, family="estm2", **options):
    config, latent, upsampler_in, inter, c1 = FAMILY_SHAPES[family]
    layers = hierarchy_shapes(latent, upsampler_in, inter, c1)
    return layers, write_keras(path, layers, [(latent, config["codebook_size"])] * 3, **options)


def audible(weights):
    """The decoder's last layer outputs about 1 whatever comes in: a model that is surely not collapsed."""
    last = f"conv1d_transpose_{TRANSPOSE_START + 2}"
    weights[f"{last}/bias:0"][:] = 1.0


def silent(weights):
    """The decoder's last layer outputs exactly 0: a collapsed model."""
    last = f"conv1d_transpose_{TRANSPOSE_START + 2}"
    weights[f"{last}/kernel:0"][:] = 0.0
    weights[f"{last}/bias:0"][:] = 0.0


def keras_names(layers):
    """Our module name -> Keras layer name, by the counters write_keras gives."""
    counters = {"conv1d": CONV_START, "conv1d_transpose": TRANSPOSE_START, "conv2d": 16, "dense": 7}
    names = {}
    for kind, ours, _ in layers:
        names[ours] = f"{kind}_{counters[kind]}"
        counters[kind] += 1
    return names


def refusal(path) -> str:
    with pytest.raises(EstmError) as caught:
        keras_h5.read_keras(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


# ------------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("full_model", [False, True], ids=["weights-only", "model_weights"])
@pytest.mark.parametrize("family", ["estm2", "estm1", "hvqvae"])
def test_every_tensor_arrives_bit_exact_in_our_layout(tmp_path, family, full_model):
    path = tmp_path / f"{family}_model_2023_03_21_v10.h5"
    layers, weights = write_family(path, family, full_model=full_model)
    imported = keras_h5.read_keras(path)
    config = FAMILY_SHAPES[family][0]
    assert imported.family == family and {key: imported.config[key] for key in config} == config
    assert imported.from_name == {}
    state = imported.state_dict
    for ours, keras in keras_names(layers).items():
        # (k, in, out) -> (out, in, k) and (k, out, in) -> (in, out, k): both reverse the axes
        assert torch.equal(state[f"{ours}.weight"], torch.from_numpy(weights[f"{keras}/kernel:0"].transpose(2, 1, 0)))
        assert torch.equal(state[f"{ours}.bias"], torch.from_numpy(weights[f"{keras}/bias:0"]))
    for index, level in enumerate(LEVELS):
        assert torch.equal(state[f"hierarchy.quantizers.{level}.codebook"],
                           torch.from_numpy(weights[f"embeddings_vqvae_{index}:0"].T))
    assert all(tensor.dtype == torch.float32 for tensor in state.values())
    loaded = imported.model.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[key], state[key]) for key in state)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert imported.provenance == {"source": str(path.resolve()), "sha256": digest, "keras_version": "2.11.0"}
    assert imported.labels == ([] if family == "hvqvae" else ["Q1", "Q2", "Q3", "Q4"])


def test_a_convolution_and_a_transposed_one_compute_what_keras_defines(tmp_path):
    path = tmp_path / "estm2.h5"
    layers, weights = write_family(path, "estm2", scale=0.3)
    model = keras_h5.read_keras(path).model
    names = keras_names(layers)
    rng = np.random.default_rng(1)

    # Keras Conv1D, stride 2, 'valid': y[t, o] = b[o] + sum_j sum_i x[2t + j, i] * K[j, i, o]
    kernel, bias = (weights[f"{names['hierarchy.encoders.middle.2']}/{part}:0"].astype(np.float64)
                    for part in ("kernel", "bias"))
    x = rng.standard_normal((kernel.shape[1], 41))
    steps = (x.shape[1] - 3) // 2 + 1
    expected = np.array([[bias[o] + sum(x[i, 2 * t + j] * kernel[j, i, o] for j in range(3) for i in range(x.shape[0]))
                          for t in range(steps)] for o in range(kernel.shape[2])])
    with torch.no_grad():
        got = model.hierarchy.encoders["middle"][2](torch.from_numpy(x).float()[None])[0].double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)

    # Keras Conv1DTranspose, stride 2, 'valid': every input step t adds K[j, o, i] * x[t, i] at output step 2t + j
    kernel, bias = (weights[f"{names['hierarchy.decoder.0']}/{part}:0"].astype(np.float64)
                    for part in ("kernel", "bias"))
    x = rng.standard_normal((kernel.shape[2], 17))
    expected = np.zeros((kernel.shape[1], 2 * (x.shape[1] - 1) + 3)) + bias[:, None]
    for t in range(x.shape[1]):
        for j in range(3):
            expected[:, 2 * t + j] += kernel[j] @ x[:, t]
    with torch.no_grad():
        got = model.hierarchy.decoder[0](torch.from_numpy(x).float()[None])[0].double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_mer_cnn_imports_with_its_width_and_layouts(tmp_path):
    widths = [8, 8, 8, 8, 16, 32, 32, 32]  # the paper's 64, 64, 64, 64, 128, 256, 256, 256 at width 1/8
    layers = [("conv2d", f"features.{index}", (3, 3, channels_in, channels_out))
              for index, channels_in, channels_out in zip([0, 2, 5, 7, 10, 14, 18, 22], [1] + widths[:-1], widths)]
    layers += [("dense", "hidden.0", (32, 16)), ("dense", "hidden.1", (16, 16)), ("dense", "output", (16, 4))]
    path = tmp_path / "mer_model.h5"
    weights = write_keras(path, layers, full_model=True)
    imported = keras_h5.read_keras(path)
    assert imported.family == "mer" and imported.labels == ["Q1", "Q2", "Q3", "Q4"]
    assert {key: imported.config[key] for key in ("classes", "hidden", "width")} == {"classes": 4, "hidden": 16,
                                                                                     "width": 0.125}
    # the feature indices above are where Conv2d sits in MER's Sequential (between activations, pools, dropouts)
    for ours, keras in keras_names(layers).items():
        kernel = weights[f"{keras}/kernel:0"]
        layout = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        assert torch.equal(imported.state_dict[f"{ours}.weight"], torch.from_numpy(np.ascontiguousarray(layout)))
    assert sum(tensor.numel() for tensor in imported.state_dict.values()) == sum(
        value.size for value in weights.values())


def test_beta_and_beta_e_come_from_a_grid_files_name(tmp_path):
    path = tmp_path / "estm2_1.25_8_0.5.h5"
    write_family(path, "estm2")
    imported = keras_h5.read_keras(path)
    assert imported.config == {"d": 8, "codebook_size": 16, "beta": 0.5, "beta_e": 1.25}
    assert imported.from_name == {"beta": 0.5, "beta_e": 1.25}
    assert (imported.model.hierarchy.quantizers["top"].beta, imported.model.beta_e) == (0.5, 1.25)

    wrong = tmp_path / "estm2_0.25_24_0.75.h5"
    write_family(wrong, "estm2")
    assert "its name says an ESTM-2 grid model with d = 24, but its weights are d = 8" in refusal(wrong)


# ------------------------------------------------------------------------------------------------ refusals


def test_nan_weights_are_refused_as_a_diverged_run(tmp_path):
    everywhere = tmp_path / "estm2_0.75_8_0.25.h5"
    write_family(everywhere, change=lambda weights: [value.fill(np.nan) for value in weights.values()])
    assert refusal(everywhere).endswith(": weights are NaN (a diverged run); not imported")

    one = tmp_path / "one.h5"
    write_family(one, change=lambda weights: weights[f"conv1d_{CONV_START + 4}/kernel:0"].__setitem__(0, np.inf))
    message = refusal(one)
    assert "weights are NaN or infinite in 1 of 53 tensors" in message and f"conv1d_{CONV_START + 4}/kernel" in message


def test_shapes_that_fit_no_family_are_refused_naming_the_mismatch(tmp_path):
    # the earlier ESTM-2 variant: its upsamplers take 4 (there: 8) input channels and C1 = d
    variant = tmp_path / "estm_model_2023_03_29_v0.h5"
    write_keras(variant, hierarchy_shapes(latent=8, upsampler_in=4, inter=4, c1=8), [(8, 16)] * 3)
    message = refusal(variant)
    assert "fit no family" in message and "the upsamplers take 4 input channels" in message

    # one upsampler layer of the wrong width: the shapes are checked layer by layer
    layers = hierarchy_shapes(latent=8, upsampler_in=8, inter=4, c1=4)
    kind, ours, shape = layers[-1]
    layers[-1] = (kind, ours, (3, 5, shape[2]))
    odd = tmp_path / "odd.h5"
    write_keras(odd, layers, [(8, 16)] * 3)
    message = refusal(odd)
    assert f"layer conv1d_transpose_{TRANSPOSE_START + 9} is (3, 5, 4)" in message and "estm2" in message

    fewer = tmp_path / "fewer.h5"
    write_keras(fewer, hierarchy_shapes(8, 8, 4, 4)[1:], [(8, 16)] * 3)
    assert "it has 14 conv1d, 10 conv1d_transpose, 3 codebook layers" in refusal(fewer)


def test_files_that_are_not_keras_saves_are_refused(tmp_path):
    empty = tmp_path / "empty.h5"
    empty.touch()
    assert "an empty file" in refusal(empty)

    text = tmp_path / "notes.h5"
    text.write_text("not a model\n" * 40)
    assert "not an HDF5 file" in refusal(text)

    whole = tmp_path / "whole.h5"
    write_family(whole)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "truncated or damaged HDF5 file" in refusal(cut)

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as file:
        file.create_dataset("x", data=np.zeros(3))
    assert "not a Keras 2 model or weights save" in refusal(other)

    assert refusal(tmp_path / "absent.h5").endswith("absent.h5: no such file")


def test_without_h5py_the_message_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "estm2.h5"
    write_family(path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(EstmError, match=r"needs h5py: pip install 'estm\[keras\]'"):
        keras_h5.read_keras(path)


# -------------------------------------------------------------------------------------------------- collapse


class Scaled(torch.nn.Module):
    """A stand-in transfer model whose output is its input times `gain`."""

    family = "hvqvae"

    def __init__(self, gain):
        super().__init__()
        self.gain = gain

    def forward(self, audio, emotion=None):
        return {"output": audio * self.gain}


def test_collapsed_means_a_near_silent_reconstruction():
    signal = keras_import.test_signal()
    assert signal.shape == (keras_import.SEGMENT_LENGTH,) and signal.dtype == np.float32
    assert np.abs(signal).max() == pytest.approx(1.0) and 0.1 < np.sqrt(np.mean(signal**2)) < 0.7
    np.testing.assert_array_equal(signal, keras_import.test_signal())  # deterministic
    assert keras_import.output_level(Scaled(0.5)) == pytest.approx(0.5, rel=1e-5)
    assert not keras_import.collapsed(Scaled(0.5)) and keras_import.collapsed(Scaled(0.001))


# ---------------------------------------------------------------------------------------------- the store


def write_history(path, style=True):
    rows = ["{},{},{},{}".format(epoch, 1.5 - epoch / 10, 1.0 - epoch / 10, 0.01) + (",1.386" if style else "")
            for epoch in range(4)]
    header = ",loss,reconstruction_loss,vqvae_loss" + (",style_loss" if style else "")
    path.write_text("\n".join([header, *rows]) + "\n")


def test_an_import_lands_in_the_store_with_its_history_and_reloads(tmp_path, store_home):
    source = tmp_path / "estm2_0.25_8_0.75.h5"
    write_family(source, "estm2", change=audible)
    write_history(tmp_path / "estm2_history_0.25_8_0.75.csv")

    target, status = keras_import.import_file(source)
    assert (target, status) == (store.model_path("estm2", "estm2_0.25_8_0.75"), "ok")
    reloaded = store.load_model("estm2_0.25_8_0.75").model
    imported = keras_h5.read_keras(source)
    assert all(torch.equal(value, imported.state_dict[key]) for key, value in reloaded.state_dict().items())

    info = model_file.read_info(target)
    assert info.family == "estm2" and info.labels == ["Q1", "Q2", "Q3", "Q4"]
    assert info.config == {"d": 8, "codebook_size": 16, "beta": 0.75, "beta_e": 0.25}
    assert info.audio == model_file.AudioSettings(22050, 222264)
    training = info.training
    assert (training.train_variance, training.status, training.collapsed, training.epochs_run) \
        == (0.0438, "imported", False, 4)
    assert training.source["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    history = store.read_history(store.history_path(target))
    assert list(history.columns) == ["epoch", "loss", "reconstruction", "vq", "style_loss"]
    assert list(history["epoch"]) == [1, 2, 3, 4] and history["loss"].iloc[0] == pytest.approx(1.5)

    with pytest.raises(EstmError, match="already exists"):
        keras_import.import_file(source)
    assert keras_import.import_file(source, "again")[0] == store.model_path("estm2", "again")
    assert keras_import.import_file(source, force=True)[1] == "ok"


def test_a_collapsed_model_imports_flagged(tmp_path, store_home):
    source = tmp_path / "hvqvae_model_2023_03_24_v0.h5"
    write_family(source, "hvqvae", change=silent)
    write_history(tmp_path / "hier_history_2023_03_24_v0.csv", style=False)
    target, status = keras_import.import_file(source)
    assert status == "collapsed" and target.parent.name == "hvqvae"
    info = model_file.read_info(target)
    assert info.training.collapsed is True and info.labels == []
    assert "vq" in store.read_history(store.history_path(target)).columns


def test_a_mer_import_records_its_features(tmp_path, store_home):
    widths = [8, 8, 8, 8, 16, 32, 32, 32]
    layers = [("conv2d", "", (3, 3, channels_in, channels_out)) for channels_in, channels_out in
              zip([1] + widths[:-1], widths)]
    layers += [("dense", "", (32, 16)), ("dense", "", (16, 16)), ("dense", "", (16, 4))]
    source = tmp_path / "mer.h5"
    write_keras(source, layers)
    target, status = keras_import.import_file(source)
    info = model_file.read_info(target)
    assert target.parent.name == "mer" and status == "ok" and info.training.collapsed is None
    assert info.audio.features["n_mels"] == 128 and info.audio.sample_rate == 22050


def test_a_folder_imports_file_by_file_and_says_which_were_refused(tmp_path, store_home):
    folder = tmp_path / "models"
    folder.mkdir()
    write_family(folder / "estm2_0.25_8_0.75.h5", change=audible)
    write_family(folder / "estm2_0.75_8_0.25.h5", change=lambda weights: [value.fill(np.nan)
                                                                          for value in weights.values()])
    (folder / "notes.h5").write_text("these are notes\n")
    (folder / "readme.txt").write_text("not looked at\n")
    seen = []
    rows = keras_import.import_paths([folder, tmp_path / "absent"], on_file=seen.append)
    assert seen == rows
    summary = [(row["name"], row["family"], row["status"]) for row in rows]
    assert summary == [("estm2_0.25_8_0.75", "estm2", "ok"), ("estm2_0.75_8_0.25", None, "refused"),
                       ("notes", None, "refused"), ("absent", None, "refused")]
    assert rows[0]["model"] == str(store.model_path("estm2", "estm2_0.25_8_0.75")) and rows[0]["cause"] == ""
    assert "weights are NaN (a diverged run)" in rows[1]["cause"] and "not an HDF5 file" in rows[2]["cause"]
    assert rows[3]["cause"] == "no such file or folder"
    assert all("\n" not in row["cause"] for row in rows)
    assert [model.name for model in store.list_models()] == ["estm2_0.25_8_0.75"]


def test_the_import_command_prints_a_summary_and_lists_the_refused(tmp_path, store_home, estm):
    folder = tmp_path / "estm_v2_grid"
    folder.mkdir()
    write_family(folder / "estm2_0.25_8_0.75.h5", change=audible)
    write_family(folder / "estm2_1.25_8_0.5.h5", change=silent)
    (folder / "estm2_0.75_8_0.25.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)  # a truncated HDF5 file
    result = estm("models", "import", folder)
    assert result.code == 3, result.err  # some refused
    for name, status in (("estm2_0.25_8_0.75", "ok"), ("estm2_1.25_8_0.5", "collapsed"),
                         ("estm2_0.75_8_0.25", "refused")):
        assert any(name in line and status in line for line in result.out.splitlines()), (name, result.out)
    refused = [line for line in result.err.splitlines() if "estm2_0.75_8_0.25.h5:" in line]
    assert len(refused) == 1 and "Traceback" not in result.err
    assert "1 collapsed (decoding near-silence): estm2_1.25_8_0.5" in result.err
    assert "collapsed" in estm("models", "show", "estm2_1.25_8_0.5").out
    assert "collapsed" not in estm("models", "show", "estm2_0.25_8_0.75").out.split("\n")[1]
    again = estm("models", "import", folder / "estm2_0.25_8_0.75.h5", "--json")
    assert again.code == 1 and "exists" in json.loads(again.out)["error"]  # nothing replaced without --force
    assert estm("models", "import", folder / "estm2_0.25_8_0.75.h5", "--force", "-q").code == 0
