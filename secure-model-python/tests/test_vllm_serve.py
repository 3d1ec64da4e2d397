"""`python -m secure_model.vllm serve SOURCE [vllm args]`: vLLM reads config.json and the
tokenizer from the model path before any load format runs, so `serve` writes the package's
verified non-weight files into a private directory and execs `vllm serve` on it. Run here
against a stand-in `vllm` executable that records what it was given (real vLLM: test_vllm.py,
in its own venv; the engine needs a GPU)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import secure_model
import secure_model.vllm as sm_vllm

FAKE_VLLM = """#!{python}
import hashlib, json, os, sys
d = sys.argv[2]
files = {{}}
for root, _, names in os.walk(d):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, d)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
out = {{"argv": sys.argv[1:], "pid": os.getpid(), "mode": os.stat(d).st_mode & 0o777, "files": files}}
json.dump(out, open(os.environ["FAKE_VLLM_OUT"], "w"))
"""


@pytest.fixture
def fake_vllm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(0o755)
    return bin_dir


def run_serve(args, fake_vllm, tmp_path, env_extra):
    out = tmp_path / "fake-vllm.json"
    env = dict(os.environ, PATH=f"{fake_vllm}{os.pathsep}{os.environ['PATH']}", FAKE_VLLM_OUT=str(out), **env_extra)
    p = subprocess.Popen([sys.executable, "-m", "secure_model.vllm", "serve", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = p.communicate(timeout=300)
    got = json.loads(out.read_text()) if out.exists() else None
    return p, stderr, got


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_serve_writes_verified_config_privately_and_execs_vllm(tmp_path, packages, keys, minilm_dir, fake_vllm):
    pkg = str(packages["sha256-shards"])
    env = {"SECURE_MODEL_KEYS": keys.spec, "SECURE_MODEL_TRUSTED_KEYS": str(keys.public)}
    cfg = tmp_path / "cfg"
    p, stderr, got = run_serve(["--config-dir", str(cfg), pkg, "--port", "8000", "--max-model-len", "256"],
                               fake_vllm, tmp_path, env)
    assert p.returncode == 0, stderr
    assert got is not None, stderr
    assert got["pid"] == p.pid, "vllm replaced the process (exec), no child left behind"
    extra = json.dumps({"source": pkg})
    assert got["argv"] == ["serve", str(cfg), "--port", "8000", "--max-model-len", "256",
                           "--load-format", "secure-model", "--model-loader-extra-config", extra,
                           "--served-model-name", pkg]
    assert got["mode"] == 0o700
    # `pack` leaves out what model_signing ignores (.gitattributes...).
    ignored = {".gitattributes", ".gitignore", ".github", ".git"}
    want = {str(f.relative_to(minilm_dir)): sha(f) for f in minilm_dir.rglob("*")
            if f.is_file() and not f.name.endswith(sm_vllm.WEIGHT_SUFFIXES)
            and not ignored & set(f.relative_to(minilm_dir).parts)}
    assert want and "config.json" in want
    assert got["files"] == want, "exactly the non-weight files, byte for byte"
    assert not any(n.endswith(".safetensors") for n in got["files"])

    # Default directory: a new 0700 one under /dev/shm; the loader's settings from the extra
    # config reach prepare too (no SECURE_MODEL_* variable here).
    mine = json.dumps({"keys": [keys.spec], "trusted_keys": [str(keys.public)]})
    p, stderr, got = run_serve([pkg, "--model-loader-extra-config", mine, "--served-model-name", "minilm"],
                               fake_vllm, tmp_path, {})
    assert p.returncode == 0, stderr
    d = Path(got["argv"][1])
    try:
        assert d.parent == Path("/dev/shm") and d.name.startswith("secure-model-config-")
        assert got["mode"] == 0o700 and got["files"] == want
        assert got["argv"][2:] == ["--served-model-name", "minilm", "--load-format", "secure-model",
                                   "--model-loader-extra-config",
                                   json.dumps({"keys": [keys.spec], "trusted_keys": [str(keys.public)], "source": pkg})]
    finally:
        for f in sorted(d.rglob("*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
        d.rmdir()


def test_serve_refuses_before_vllm_runs(tmp_path, packages, keys, other_keys, fake_vllm):
    pkg = str(packages["sha256"])
    cfg = tmp_path / "cfg"
    # An untrusted signer: the CLI's exit code, vLLM never started, nothing written.
    env = {"SECURE_MODEL_KEYS": keys.spec, "SECURE_MODEL_TRUSTED_KEYS": str(other_keys.public)}
    p, stderr, got = run_serve(["--config-dir", str(cfg), pkg], fake_vllm, tmp_path, env)
    assert p.returncode == secure_model.IntegrityError.exit_code, stderr
    assert got is None and list(cfg.iterdir()) == []
    env = {"SECURE_MODEL_KEYS": keys.spec, "SECURE_MODEL_TRUSTED_KEYS": str(keys.public)}
    for bad, says in [
        (["--load-format", "safetensors"], "not 'safetensors'"),
        (["--model-loader-extra-config", "[1]"], "not a JSON object"),
        (["--model-loader-extra-config", json.dumps({"source": "secure+s3://other/pkg"})], "another source"),
        (["--model-loader-extra-config", json.dumps({"colour": "blue"})], "unknown --model-loader-extra-config keys"),
    ]:
        p, stderr, got = run_serve([pkg, *bad], fake_vllm, tmp_path, env)
        assert p.returncode == 2 and says in stderr and got is None, (bad, stderr)
    # A config directory with something in it is refused (no stale config mixed in).
    (cfg / "config.json").write_text("{}")
    p, stderr, got = run_serve(["--config-dir", str(cfg), pkg], fake_vllm, tmp_path, env)
    assert p.returncode == 2 and "not an empty directory" in stderr and got is None, stderr


def test_serve_args_merge_what_the_user_gave():
    src = "secure+s3://models/qwen/v1"
    assert sm_vllm.serve_args(src, "/c", ["--load-format=secure-model", "--served-model-name=q"]) == [
        "serve", "/c", "--load-format=secure-model", "--served-model-name=q",
        "--model-loader-extra-config", json.dumps({"source": src}),
    ]
    extra = json.dumps({"source": src, "keys": ["kbs:///default/k/kek"]})
    assert sm_vllm.serve_args(src, "/c", [f"--model-loader-extra-config={extra}", "--port", "1"]) == [
        "serve", "/c", "--port", "1", "--load-format", "secure-model",
        "--model-loader-extra-config", json.dumps({"source": src, "keys": ["kbs:///default/k/kek"]}),
        "--served-model-name", src,
    ]
    with pytest.raises(secure_model.UsageError):
        sm_vllm.serve_args(src, "/c", ["--load-format"])


def test_prepare_never_writes_outside_its_directory(tmp_path, monkeypatch):
    class Pkg:
        def files(self):
            return {"config.json": 2, "../escape.json": 2}

        def read_file(self, path):
            return b"{}"

    monkeypatch.setattr(secure_model, "open_package", lambda *a, **k: Pkg())
    with pytest.raises(secure_model.UsageError, match="outside"):
        sm_vllm.prepare("x", tmp_path / "cfg")
    assert not (tmp_path / "escape.json").exists()
    assert stat.S_ISDIR((tmp_path / "cfg").stat().st_mode)
