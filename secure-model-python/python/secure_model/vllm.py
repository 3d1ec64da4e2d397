"""vLLM plugin: the ``secure-model`` load format.

Installed with the package, the entry point ``vllm.general_plugins`` → ``secure_model.vllm:register``
runs in every vLLM process and registers the load format through vLLM's public
``register_model_loader``. Weights then stream from the package, each file's tensors once that
file verified; nothing is written to any filesystem::

    python -m secure_model.vllm prepare secure+s3://bucket/pkg /dev/shm/pkg-config
    vllm serve /dev/shm/pkg-config --load-format secure-model \\
        --model-loader-extra-config '{"source": "secure+s3://bucket/pkg"}'

``prepare`` writes the package's verified non-weight files (config, tokenizer) for vLLM's
config and tokenizer loading; without ``source`` in the extra config the model path itself is
the package. The extra config also takes ``trusted_keys``, ``trust_policy``, ``keys`` and
``manifest_digest`` (over the ``SECURE_MODEL_*`` variables).

Importing this module imports nothing from vLLM: ``register`` does, when vLLM calls it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

LOAD_FORMAT = "secure-model"
SETTINGS = ("trusted_keys", "trust_policy", "keys", "manifest_digest")

_LOADER: Optional[type] = None


def _settings(extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    extra = dict(extra or {})
    unknown = set(extra) - set(SETTINGS) - {"source"}
    if unknown:
        from ._errors import UsageError

        raise UsageError(f"unknown --model-loader-extra-config keys for {LOAD_FORMAT}: {sorted(unknown)}")
    return {k: extra[k] for k in SETTINGS if extra.get(k) is not None}


def source_of(model: str, extra: Optional[Dict[str, Any]]) -> str:
    """The package location: ``source`` of the extra config, else the model path."""
    return str((extra or {}).get("source") or model)


def weights_iterator(source: str, **settings: Any) -> Iterator[Tuple[str, Any]]:
    """``(name, torch.Tensor)`` of every ``*.safetensors`` file of the package, each file's
    tensors once it verified (what vLLM's ``model.load_weights`` consumes)."""
    from . import open_package

    return open_package(source, **settings).stream_tensors(framework="pt")


def loader_class() -> type:
    """The ``BaseModelLoader`` subclass of the load format (defined on first use)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    from vllm.model_executor.model_loader.base_loader import BaseModelLoader

    class SecureModelLoader(BaseModelLoader):
        """Loads weights from a signed, encrypted secure-model package."""

        def _extra(self) -> Dict[str, Any]:
            return dict(getattr(self.load_config, "model_loader_extra_config", None) or {})

        def _source(self, model_config: Any) -> str:
            return source_of(model_config.model, self._extra())

        def get_weights_iterator(self, model_config: Any) -> Iterator[Tuple[str, Any]]:
            return weights_iterator(self._source(model_config), **_settings(self._extra()))

        def download_model(self, model_config: Any) -> None:
            # Nothing to download: the manifest is verified and the key released here so
            # that a bad package fails before the model is built.
            from . import open_package

            open_package(self._source(model_config), **_settings(self._extra()))

        def load_weights(self, model: Any, model_config: Any) -> None:
            loaded = model.load_weights(self.get_weights_iterator(model_config))
            if loaded is not None and getattr(model_config, "quantization", None) is None:
                missing = {n for n, _ in model.named_parameters()} - set(loaded)
                if missing:
                    raise ValueError(
                        f"weights not in the package: {sorted(missing)[:5]} ({len(missing)} in all)"
                    )

    _LOADER = SecureModelLoader
    return SecureModelLoader


def register() -> None:
    """The ``vllm.general_plugins`` entry point: registers the ``secure-model`` load format."""
    from vllm.model_executor.model_loader import register_model_loader

    register_model_loader(LOAD_FORMAT)(loader_class())


def prepare(source: str, dest: os.PathLike, **settings: Any) -> Path:
    """Writes the package's verified non-weight files (config, tokenizer...) into ``dest``, for
    vLLM's config and tokenizer loading. Weights (``*.safetensors``, ``*.bin``, ``*.pt``) are
    never written."""
    from . import open_package

    pkg = open_package(source, **settings)
    out = Path(dest)
    for path in pkg.files():
        if path.endswith((".safetensors", ".bin", ".pt", ".pth", ".gguf")):
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pkg.read_file(path))
    return out


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m secure_model.vllm")
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="write the package's verified config and tokenizer files")
    pr.add_argument("source")
    pr.add_argument("dest")
    a = p.parse_args(argv)
    from ._errors import SecureModelError

    try:
        print(prepare(a.source, a.dest))
    except SecureModelError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
