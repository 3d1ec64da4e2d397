"""The vLLM plugin against a real vLLM from PyPI (run by tests/run.sh in the venv
$SMTEST_VLLM_VENV when it exists; skipped where vLLM is not installed). No GPU: only the
loader registry and the weight iterators, which import without one; the engine-level run
needs a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

vllm = pytest.importorskip("vllm")

import safetensors.torch  # noqa: E402
import torch  # noqa: E402

import secure_model.vllm as sm_vllm  # noqa: E402
from conftest import pack  # noqa: E402


def small_model(d):
    """Two safetensors shards of a small transformer-like model (fp16, bf16, f32)."""
    d.mkdir()
    g = torch.Generator().manual_seed(7)
    a = {
        "model.embed_tokens.weight": torch.randn(320, 64, generator=g).half(),
        "model.layers.0.self_attn.qkv_proj.weight": torch.randn(192, 64, generator=g).bfloat16(),
        "model.layers.0.mlp.down_proj.weight": torch.randn(64, 256, generator=g).half(),
    }
    b = {
        "model.layers.1.self_attn.qkv_proj.weight": torch.randn(192, 64, generator=g).bfloat16(),
        "model.norm.weight": torch.ones(64),
        "lm_head.weight": torch.randn(320, 64, generator=g).half(),
    }
    safetensors.torch.save_file(a, d / "model-00001-of-00002.safetensors")
    safetensors.torch.save_file(b, d / "model-00002-of-00002.safetensors")
    (d / "config.json").write_text('{"model_type": "llama"}')
    return d


def test_plugin_registers_the_load_format_and_streams_what_vllm_streams(tmp_path, keys, other_keys):
    from vllm.config import LoadConfig
    from vllm.model_executor.model_loader import get_model_loader
    from vllm.model_executor.model_loader.weight_utils import safetensors_weights_iterator
    from vllm.plugins import load_general_plugins

    model = small_model(tmp_path / "m")
    pkg = pack(model, tmp_path / "pkg", keys)
    load_general_plugins()  # runs our entry point, as every vLLM process does
    extra = {"source": str(pkg), "keys": [keys.spec], "trusted_keys": [str(keys.public)]}
    loader = get_model_loader(LoadConfig(load_format="secure-model", model_loader_extra_config=extra))
    assert type(loader) is sm_vllm.loader_class()

    files = sorted(str(p) for p in model.glob("*.safetensors"))
    theirs = list(safetensors_weights_iterator(files, use_tqdm_on_load=False))
    ours = list(loader.get_weights_iterator(SimpleNamespace(model="/unused")))
    assert sorted(n for n, _ in ours) == sorted(n for n, _ in theirs)
    theirs_d = dict(theirs)
    for name, t in ours:
        assert t.dtype == theirs_d[name].dtype and torch.equal(t, theirs_d[name]), name

    # download_model verifies the package up front: an untrusted signer fails there.
    import secure_model

    bad = dict(extra, trusted_keys=[str(other_keys.public)])
    bad_loader = get_model_loader(LoadConfig(load_format="secure-model", model_loader_extra_config=bad))
    with pytest.raises(secure_model.IntegrityError):
        bad_loader.download_model(SimpleNamespace(model="/unused"))

