import pytest
import torch

from estm_core import features
from estm_core.device import choose_device, devices_seen, seed_everything
from estm_core.errors import EstmError


def test_auto_picks_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert choose_device("auto").type == expected
    assert choose_device("CPU") == torch.device("cpu")
    assert devices_seen()[0]["device"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(EstmError, match="no CUDA GPU"):
        choose_device("cuda:0")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(EstmError, match="unknown device 'gpu'"):
        choose_device("gpu")


def test_the_same_seed_gives_the_same_weights_and_samples():
    seed_everything(7)
    first = (torch.nn.Linear(3, 3).weight.clone(), torch.randn(4))
    seed_everything(7)
    second = (torch.nn.Linear(3, 3).weight.clone(), torch.randn(4))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_log_mel_on_cuda_matches_cpu_also_under_autocast():
    audio = torch.randn(2, 22050)
    on_cpu = features.log_mel(audio)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        on_gpu = features.log_mel(audio.cuda())
    assert on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-2, rtol=0)
