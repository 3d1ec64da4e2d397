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

vLLM reads ``config.json`` and the tokenizer from the model path before any load format runs
(it fetches them itself only for RunAI's ``s3://``/``gs://`` URIs), so ``vllm serve
secure+s3://…`` cannot work on its own. ``serve`` does both steps in one command: it writes
the non-weight files into a new private directory (mode 0700, under ``/dev/shm`` when there
is one) and then ``exec``\ s ``vllm serve`` on it with the load format, the source and, unless
given, ``--served-model-name`` set to the source::

    python -m secure_model.vllm serve secure+s3://bucket/pkg --port 8000 --max-model-len 4096

Importing this module imports nothing from vLLM: ``register`` does, when vLLM calls it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

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


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def prepare(source: str, dest: os.PathLike, **settings: Any) -> Path:
    """Writes the package's verified non-weight files (config, tokenizer...) into ``dest``, for
    vLLM's config and tokenizer loading. Weights (``*.safetensors``, ``*.bin``, ``*.pt``) are
    never written."""
    from . import open_package
    from ._errors import UsageError

    pkg = open_package(source, **settings)
    out = Path(dest)
    root = out.resolve()
    for path in pkg.files():
        if path.endswith(WEIGHT_SUFFIXES):
            continue
        target = out / path
        # The verified manifest holds only relative, normal paths; checked again here since
        # this writes to a filesystem.
        if Path(path).is_absolute() or root not in (root / path).resolve().parents:
            raise UsageError(f"refusing to write {path!r} outside {out}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pkg.read_file(path))
    return out


def _flag(args: List[str], names: Tuple[str, ...]) -> Tuple[Optional[int], Optional[str]]:
    """The index and value of the last ``--name value`` / ``--name=value`` among ``args``."""
    found: Tuple[Optional[int], Optional[str]] = (None, None)
    for i, a in enumerate(args):
        for n in names:
            if a == n:
                found = (i, args[i + 1] if i + 1 < len(args) else None)
            elif a.startswith(n + "="):
                found = (i, a[len(n) + 1 :])
    return found


LOAD_FORMAT_FLAGS = ("--load-format", "--load_format")
EXTRA_CONFIG_FLAGS = ("--model-loader-extra-config", "--model_loader_extra_config")
SERVED_NAME_FLAGS = ("--served-model-name", "--served_model_name")


def _merge(source: str, vllm_args: List[str]) -> Tuple[List[str], Dict[str, Any]]:
    """``vllm_args`` with the load format, the merged extra config and the served name; and
    that extra config."""
    import json

    from ._errors import UsageError

    args = list(vllm_args)
    i, fmt = _flag(args, LOAD_FORMAT_FLAGS)
    if i is None:
        args += ["--load-format", LOAD_FORMAT]
    elif fmt != LOAD_FORMAT:
        raise UsageError(f"serve loads with --load-format {LOAD_FORMAT}, not {fmt!r}")
    i, text = _flag(args, EXTRA_CONFIG_FLAGS)
    extra: Any = {}
    if i is not None:
        try:
            extra = json.loads(text or "")
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise UsageError("--model-loader-extra-config is not a JSON object")
        _settings({k: v for k, v in extra.items() if k != "source"})
        if extra.get("source", source) != source:
            raise UsageError(f"--model-loader-extra-config names another source ({extra['source']!r})")
        # Drop the flag (and its separate value); the merged one is appended.
        del args[i : i + (1 if "=" in args[i] else 2)]
    extra["source"] = source
    args += ["--model-loader-extra-config", json.dumps(extra)]
    if _flag(args, SERVED_NAME_FLAGS)[0] is None:
        args += ["--served-model-name", source]
    return args, extra


def serve_args(source: str, config_dir: os.PathLike, vllm_args: List[str]) -> List[str]:
    """The ``vllm serve`` arguments that serve the package at ``source`` from the config
    directory ``config_dir``: ``vllm_args`` plus the load format, the source in
    ``--model-loader-extra-config`` (merged into the one given) and ``--served-model-name``
    (the source, unless given). A conflicting load format or source is a ``UsageError``."""
    return ["serve", os.fspath(config_dir), *_merge(source, vllm_args)[0]]


def _private_dir(config_dir: Optional[str]) -> Path:
    """A new directory only this user can read: ``config_dir`` (created; an existing one must
    be empty), else a fresh one under ``/dev/shm`` when it is a writable directory, else under
    the temporary directory."""
    import tempfile

    from ._errors import UsageError

    if config_dir is not None:
        d = Path(config_dir)
        if d.exists() and (not d.is_dir() or any(d.iterdir())):
            raise UsageError(f"--config-dir {d} exists and is not an empty directory")
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d.chmod(0o700)
        return d
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="secure-model-config-", dir=base))


def serve(source: str, vllm_args: List[str], config_dir: Optional[str] = None, vllm: str = "vllm") -> None:
    """Writes the package's verified config and tokenizer files into a private directory and
    replaces this process with ``vllm serve`` on it (``serve_args``). Settings come from the
    ``SECURE_MODEL_*`` variables, or from ``--model-loader-extra-config`` (``keys``,
    ``trusted_keys``...), which vLLM's loader reads again."""
    import shutil

    from ._errors import ConfigError

    args, extra = _merge(source, vllm_args)
    exe = shutil.which(vllm)
    if exe is None:
        raise ConfigError(f"no {vllm!r} on PATH: install vLLM (pip install vllm) in this environment")
    d = _private_dir(config_dir)
    try:
        prepare(source, d, **_settings(extra))
    except BaseException:
        # Nothing of a package that failed stays behind (the directory was new or empty).
        for child in d.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if config_dir is None:
            d.rmdir()
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, [exe, "serve", os.fspath(d), *args])


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m secure_model.vllm")
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="write the package's verified config and tokenizer files")
    pr.add_argument("source")
    pr.add_argument("dest")
    sv = sub.add_parser(
        "serve",
        help="write the config and tokenizer files into a private directory, then exec vllm serve on it",
        description="python -m secure_model.vllm serve [--config-dir DIR] SOURCE [VLLM SERVE ARGUMENTS...]",
    )
    sv.add_argument("--config-dir", help="where to write config and tokenizer (new or empty; default: a new 0700 directory under /dev/shm)")
    sv.add_argument("source")
    sv.add_argument("vllm_args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    from ._errors import SecureModelError

    try:
        if a.cmd == "serve":
            serve(a.source, a.vllm_args, a.config_dir)
        else:
            print(prepare(a.source, a.dest))
    except SecureModelError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
