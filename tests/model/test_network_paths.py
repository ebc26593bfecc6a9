"""The member networks as ``predict_features`` runs them (rebuilt once, outside TorchScript) give
the model file's own forward bit for bit, and the bfloat16 check reads the right CPU flags."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import xanesnet
from xanesnet import WACSF
from xanesnet.model import NetworkConfig, SpectrumEnsemble, SpectrumMLP, load_model, save_model
from xanesnet.model import precision as precision_module
from xanesnet.model.network import (
    Int8StoredLinear,
    blend_members,
    store_weights_as_float16,
    store_weights_as_int8,
)

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 40)

# /proc/cpuinfo "flags" lines, abridged to the vector extensions (the test reads no more)
ZEN4_FLAGS = (
    "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512ifma avx512cd "
    "avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 gfni vaes avx512_vnni avx512_bitalg"
)
SAPPHIRE_RAPIDS_FLAGS = (
    "fpu sse sse2 fma avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 "
    "avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8"
)
ICE_LAKE_FLAGS = "fpu sse sse2 fma avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni"
ZEN3_FLAGS = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 vaes vpclmulqdq"


def _cpuinfo(vendor: str, model: str, flags: str) -> str:
    core = f"vendor_id\t: {vendor}\nmodel name\t: {model}\nflags\t\t: {flags}\n"
    return "processor\t: 0\n" + core + "\nprocessor\t: 1\n" + core


@pytest.mark.parametrize(
    ("vendor", "model", "flags", "native"),
    [
        ("AuthenticAMD", "AMD EPYC 9654 96-Core Processor", ZEN4_FLAGS, True),
        ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+", SAPPHIRE_RAPIDS_FLAGS, True),
        ("GenuineIntel", "Intel(R) Xeon(R) Gold 6338", ICE_LAKE_FLAGS, False),
        ("AuthenticAMD", "AMD EPYC 7763 64-Core Processor", ZEN3_FLAGS, False),
    ],
)
def test_native_bfloat16_from_cpu_flags(vendor, model, flags, native):
    """Zen 4 has AVX-512 BF16 and no AMX: native, like Sapphire Rapids; Ice Lake and Zen 3 not."""
    text = _cpuinfo(vendor, model, flags)
    assert precision_module.native_bfloat16_from_cpuinfo(text) is native


def test_cpuinfo_without_flags_line_is_unknown():
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\n"
    assert precision_module.native_bfloat16_from_cpuinfo(arm) is None


def _ensemble(x: np.ndarray, activation: str, n_members: int, shared: bool) -> SpectrumEnsemble:
    torch.manual_seed(1)
    config = NetworkConfig(hidden=(32, 24), activation=activation, dropout=0.1)
    members = []
    for i in range(n_members):
        shift = 0.0 if shared else 0.01 * i  # members standardising alike, or not
        members.append(
            SpectrumMLP(
                x.shape[1],
                len(ENERGIES),
                config,
                x_mean=x.mean(0) + shift,
                x_inv_scale=1.0 / (x.std(0) + 1e-12),
                y_mean=np.full(len(ENERGIES), 1.0),
                y_scale=np.linspace(0.1, 0.3, len(ENERGIES)),
            )
        )
    return SpectrumEnsemble(members).eval()


@pytest.fixture(scope="module")
def features(example_structures):
    return WACSF().compute(example_structures, n_threads=1)[0]


@pytest.fixture(autouse=True)
def _fresh_cpu_flag_cache():
    precision_module.cpu_has_native_bfloat16.cache_clear()
    yield
    precision_module.cpu_has_native_bfloat16.cache_clear()


def test_no_emulation_warning_on_zen4(features, tmp_path, monkeypatch):
    """The warning reads the CPU's flags: a Zen 4 (AVX-512 BF16, no AMX) gets none, a Zen 3 one."""
    path = tmp_path / "m.pt"
    ensemble = _ensemble(features, "silu", 1, shared=True)
    save_model(ensemble, path, descriptor=WACSF(), energies=ENERGIES, e0=7112.0, element="Fe")
    monkeypatch.setattr(precision_module.sys, "platform", "linux")
    for flags, warns in ((ZEN4_FLAGS, False), (ZEN3_FLAGS, True)):
        text = _cpuinfo("AuthenticAMD", "AMD EPYC", flags)
        monkeypatch.setattr(precision_module.Path, "read_text", lambda self, t=text: t)
        precision_module.cpu_has_native_bfloat16.cache_clear()
        model = load_model(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.predict_features(features[:3], precision="bfloat16")
        emulated = [w for w in caught if "no bfloat16 matrix instructions" in str(w.message)]
        assert bool(emulated) is warns


@pytest.mark.parametrize("activation", ["relu", "silu", "gelu", "tanh", "elu"])
@pytest.mark.parametrize(("n_members", "shared"), [(1, True), (3, True), (2, False)])
@pytest.mark.parametrize("stored", ["float32", "float16", "int8"])
def test_rebuilt_float32_members_equal_the_file_forward(
    features, tmp_path, activation, n_members, shared, stored
):
    """float32 predict_features (weights converted once, activations in place, one
    standardisation shared by the members) equals the TorchScript forward bit for bit, for
    weights stored as float32, float16 or int8."""
    ensemble = _ensemble(features, activation, n_members, shared)
    if stored == "float16":
        ensemble = store_weights_as_float16(ensemble)
    elif stored == "int8":
        ensemble = store_weights_as_int8(ensemble)
    path = tmp_path / "m.pt"
    save_model(ensemble, path, descriptor=WACSF(), energies=ENERGIES, e0=7112.0, element="Fe")
    model = load_model(path)
    x = np.repeat(features, 40, axis=0)  # rows enough for the threaded kernels
    mean, spread = model.predict_features(x, batch_size=97)
    _assert_file_forward(model, x[:97], mean[:97], spread[:97])
    # the input is left as it was (the shared standardisation is not modified in place)
    again = model.predict_features(x[:97], batch_size=97)
    np.testing.assert_array_equal(again[0], mean[:97])


def _assert_file_forward(model, x: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> None:
    """The mean equals the file's TorchScript forward; the spread equals the package's blend
    formula on the file's scripted members (the compiled blend of a TorchScript file may round
    its spread differently, which predict_features has never used for several networks)."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.inference_mode():
        file_mean = model.module(xt)[0]
        members = dict(model.module.members.named_children())
        outputs = torch.stack([members[str(i)](xt) for i in range(len(members))])
        blended = blend_members(outputs, None, 0.0)
    np.testing.assert_array_equal(mean, file_mean.numpy().astype(np.float64))
    np.testing.assert_array_equal(mean, blended[0].numpy().astype(np.float64))
    np.testing.assert_array_equal(spread, blended[1].numpy().astype(np.float64))


def test_shipped_default_model_float32_equals_its_file_forward(example_structures):
    model = xanesnet.default_model("Fe", "K")
    x = np.repeat(model.descriptor.compute(example_structures, n_threads=1)[0], 20, axis=0)
    mean, spread = model.predict_features(x)
    _assert_file_forward(model, x, mean, spread)


@pytest.mark.parametrize("activation", ["relu", "silu", "gelu"])
def test_onednn_float32_matmul_is_opt_in_and_close(features, tmp_path, activation):
    """float32_matmul="onednn": oneDNN's matmul (activation fused where it can be), float32
    rounding away from the default, the same from call to call; unknown values refused."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch without oneDNN")
    path = tmp_path / "m.pt"
    ensemble = store_weights_as_float16(_ensemble(features, activation, 2, shared=True))
    save_model(ensemble, path, descriptor=WACSF(), energies=ENERGIES, e0=7112.0, element="Fe")
    model = load_model(path)
    x = np.repeat(features, 40, axis=0)
    default = model.predict_features(x)
    fused = model.predict_features(x, float32_matmul="onednn")
    scale = np.abs(default[0]).max()
    # float32 sums of a few hundred products in another order: a few ulp of the largest terms
    np.testing.assert_allclose(fused[0], default[0], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(fused[1], default[1], rtol=0, atol=1e-5 * scale)
    np.testing.assert_array_equal(model.predict_features(x, float32_matmul="onednn")[0], fused[0])
    np.testing.assert_array_equal(model.predict_features(x)[0], default[0])  # back to torch's
    with pytest.raises(ValueError, match="float32_matmul: expected one of"):
        model.predict_features(x[:2], float32_matmul="mkl")


def test_int8_weights_within_half_a_step_of_the_original(features):
    """Each weight is kept to within half a quantisation step of its row (largest |w| / 127);
    an all-zero row stays zero; float16-stored layers convert too."""
    ensemble = _ensemble(features, "silu", 1, shared=True)
    linear = ensemble.members[0].layers[0]
    with torch.no_grad():
        linear.weight[3] = 0.0
    for source in (ensemble, store_weights_as_float16(ensemble)):
        compact = store_weights_as_int8(source)
        layer = compact.members[0].layers[0]
        assert isinstance(layer, Int8StoredLinear) and layer.weight_q.dtype == torch.int8
        original = source.members[0].layers[0].weight.to(torch.float32)
        restored = layer.weight_q.to(torch.float32) * layer.weight_scale.unsqueeze(1)
        step = original.abs().amax(dim=1, keepdim=True) / 127.0
        assert torch.all((restored - original).abs() <= step / 2 + 1e-7 * step)
        assert torch.all(restored[3] == 0)
        torch.testing.assert_close(layer.bias, source.members[0].layers[0].bias.float())
