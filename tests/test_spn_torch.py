"""The optional torch batch path equals the CPU path (run on CPU here, small images)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skdata = pytest.importorskip("skimage.data")

import spn_reference as ref  # noqa: E402
from spnrestore.errors import BadImageError  # noqa: E402
from spnrestore.spn import extract_residual  # noqa: E402
from spnrestore.spn.torch_residual import TorchResidual, extract_residuals  # noqa: E402


def _batch(shape=(201, 263), n=3, seed=0):
    rng = np.random.default_rng(seed)
    srcs = [skdata.astronaut(), skdata.coffee(), skdata.chelsea()]
    out = []
    for i in range(n):
        s = srcs[i % 3][: shape[0], : shape[1]].astype(np.float64)
        out.append(np.clip(s + rng.normal(0, 2, s.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("shape", [(201, 263), (128, 160)])
def test_torch_equals_cpu_path(shape):
    batch = _batch(shape)
    got = extract_residuals(batch, device="cpu")
    assert got.dtype == torch.float32 and tuple(got.shape) == (3,) + shape
    for i in range(batch.shape[0]):
        cpu = extract_residual(batch[i])
        value = ref.ncc(got[i].numpy(), cpu)
        assert value >= 0.999, value
        assert np.abs(got[i].numpy() - cpu).max() < 1e-3 * np.abs(cpu).max()


def test_torch_gray_and_reuse():
    batch = _batch((150, 170))[:, :, :, 1]
    tr = TorchResidual("cpu")
    got = tr(batch)
    for i in range(batch.shape[0]):
        assert ref.ncc(got[i].numpy(), extract_residual(batch[i])) >= 0.999


def test_torch_bad_inputs():
    with pytest.raises(BadImageError, match="constant"):
        extract_residuals(np.zeros((2, 130, 130, 3), np.uint8))
    with pytest.raises(BadImageError, match="at least 128"):
        extract_residuals(np.ones((1, 100, 130, 3), np.uint8))
    with pytest.raises(BadImageError, match="uint8"):
        extract_residuals(np.ones((1, 130, 130, 3), np.float32))
