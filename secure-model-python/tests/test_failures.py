"""Failures raise the exception of the CLI's class, with its exit code, and hand out no tensor:
tampered packages, a wrong key, an untrusted signer, missing settings."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import json
from pathlib import Path

import pytest

import secure_model

FILE = "model.safetensors"


def largest_object(pkg: Path) -> Path:
    """The package object holding the model's ciphertext (its largest file)."""
    files = [p for p in pkg.rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def expect(exc, fn, *, error_class: str, exit_code: int):
    with pytest.raises(exc) as e:
        fn()
    assert isinstance(e.value, secure_model.SecureModelError)
    assert e.value.error_class == error_class
    assert e.value.exit_code == exit_code
    return e.value


def stream_all(pkg, settings):
    """Consumes stream_tensors, recording what it yields before failing."""
    got = []

    def run():
        for item in secure_model.stream_tensors(pkg, **settings):
            got.append(item)

    return got, run


@pytest.mark.parametrize("mode", ["sha256", "sha256-shards", "blake3"])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tampered_ciphertext_is_an_integrity_error_and_no_tensor(mode, where, packages, keys, copy_of):
    pkg = copy_of(packages[mode])
    obj = largest_object(pkg)
    size = obj.stat().st_size
    flip(obj, {"start": 100, "middle": size // 2, "end": size - 5}[where])
    expect(secure_model.IntegrityError,
           lambda: secure_model.load_file(pkg, FILE, framework="pt", **keys.settings()),
           error_class="integrity", exit_code=4)
    got, run = stream_all(pkg, keys.settings())
    expect(secure_model.IntegrityError, run, error_class="integrity", exit_code=4)
    assert got == []


def test_truncated_ciphertext(packages, keys, copy_of):
    pkg = copy_of(packages["blake2b"])
    obj = largest_object(pkg)
    with open(obj, "r+b") as f:
        f.truncate(obj.stat().st_size - 1)
    expect(secure_model.IntegrityError,
           lambda: secure_model.load_file(pkg, FILE, **keys.settings()),
           error_class="integrity", exit_code=4)


def test_tampered_manifest_is_an_integrity_error(packages, keys, copy_of):
    pkg = copy_of(packages["sha256"])
    # A signed size changed inside the DSSE payload; the signature no longer matches.
    manifest = pkg / "manifest.sig"
    bundle = json.loads(manifest.read_text())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    assert b"model.safetensors" in payload
    payload = payload.replace(b"model.safetensors", b"model.safetensorz", 1)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    manifest.write_text(json.dumps(bundle))
    expect(secure_model.IntegrityError,
           lambda: secure_model.open_package(pkg, **keys.settings()),
           error_class="integrity", exit_code=4)


def test_wrong_key_is_a_key_error(packages, keys, other_keys):
    e = expect(secure_model.UnlockError,
               lambda: secure_model.load_file(packages["sha256"], FILE, trusted_keys=[keys.public],
                                              keys=[other_keys.spec]),
               error_class="key", exit_code=5)
    # No key material in the message.
    kek = other_keys.kek.read_bytes()
    assert kek.hex() not in str(e) and kek.hex() not in (e.hint or "")


def test_untrusted_signer_is_an_integrity_error(packages, keys, other_keys):
    expect(secure_model.IntegrityError,
           lambda: secure_model.load_file(packages["sha256"], FILE, trusted_keys=[other_keys.public],
                                          keys=[keys.spec]),
           error_class="integrity", exit_code=4)


def test_pinned_manifest_digest_refuses_another(packages, keys):
    expect(secure_model.IntegrityError,
           lambda: secure_model.open_package(packages["sha256"], manifest_digest="00" * 32, **keys.settings()),
           error_class="integrity", exit_code=4)
    expect(secure_model.ConfigError,
           lambda: secure_model.open_package(packages["sha256"], manifest_digest="xyz", **keys.settings()),
           error_class="config", exit_code=3)


def test_no_key_no_signer_are_config_errors(packages, keys):
    e = expect(secure_model.ConfigError,
               lambda: secure_model.open_package(packages["sha256"], trusted_keys=[keys.public]),
               error_class="config", exit_code=3)
    assert "SECURE_MODEL_KEYS" in str(e)
    expect(secure_model.ConfigError,
           lambda: secure_model.open_package(packages["sha256"], keys=[keys.spec]),
           error_class="config", exit_code=3)


def cli_exit_code(pkg, tmp_path, trusted, key) -> int:
    """The exit code of `secure-model pull` for the same package and settings."""
    from conftest import cli

    dest = Path("/dev/shm") / f"sm-pytest-{os.getpid()}-{tmp_path.name}"
    r = subprocess.run([cli(), "pull", str(pkg), str(dest), "--trusted-key", str(trusted), "--key", key],
                       capture_output=True)
    shutil.rmtree(dest, ignore_errors=True)
    return r.returncode


def test_missing_package_is_the_clis_config_error(tmp_path, keys):
    e = expect(secure_model.ConfigError,
               lambda: secure_model.open_package(tmp_path / "nothing-here", **keys.settings()),
               error_class="config", exit_code=3)
    assert cli_exit_code(tmp_path / "nothing-here", tmp_path, keys.public, keys.spec) == e.exit_code


def test_exit_codes_are_the_clis(packages, keys, other_keys, tmp_path):
    """Wrong key, untrusted signer: the same exit code as `secure-model pull`."""
    pkg = packages["sha256"]
    for trusted, key, exc in [(keys.public, other_keys.spec, secure_model.UnlockError),
                              (other_keys.public, keys.spec, secure_model.IntegrityError)]:
        with pytest.raises(exc) as e:
            secure_model.open_package(pkg, trusted_keys=trusted, keys=key)
        assert cli_exit_code(pkg, tmp_path, trusted, key) == e.value.exit_code


def test_settings_come_from_the_environment_and_arguments_win(packages, keys, other_keys, monkeypatch):
    monkeypatch.setenv("SECURE_MODEL_TRUSTED_KEYS", str(keys.public))
    monkeypatch.setenv("SECURE_MODEL_KEYS", keys.spec)
    assert secure_model.open_package(packages["sha256"]).safetensors_files() == [FILE]
    # The argument overrides the variable: the other key cannot unlock.
    expect(secure_model.UnlockError,
           lambda: secure_model.open_package(packages["sha256"], keys=other_keys.spec),
           error_class="key", exit_code=5)
    monkeypatch.setenv("SECURE_MODEL_KEYS", other_keys.spec)
    assert secure_model.open_package(packages["sha256"], keys=[keys.spec]).files()


ALLOCATION_PROBE = """
import json, resource, sys
import secure_model
pkg = secure_model.open_package(sys.argv[1], trusted_keys=[sys.argv[2]], keys=[sys.argv[3]])
size = dict(pkg.files())["model.safetensors"]
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
# Room for small allocations, not for the file's buffer.
resource.setrlimit(resource.RLIMIT_AS, (vm + size // 2, resource.RLIM_INFINITY))
try:
    pkg.load_file(framework="numpy")
    out = {"raised": None}
except secure_model.SecureModelError as e:
    out = {"raised": type(e).__name__, "class": e.error_class, "exit": e.exit_code, "msg": str(e)}
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print(json.dumps(out))
"""


def test_memory_refused_for_a_file_is_a_destination_error_not_an_abort(packages, keys):
    """The buffer of a file is allocated fallibly: an allocator that refuses it (here an
    address-space limit smaller than the file) raises the CLI's destination error, exit 7,
    naming the file, and the interpreter goes on."""
    r = subprocess.run(
        [sys.executable, "-c", ALLOCATION_PROBE, str(packages["sha256"]), str(keys.public), keys.spec],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["raised"] == "DestinationError", out
    assert (out["class"], out["exit"]) == ("destination", 7)
    assert "cannot allocate" in out["msg"] and FILE in out["msg"], out["msg"]
