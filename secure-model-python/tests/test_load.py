"""secure_model against the reference `safetensors` reader on the plaintext: the real
all-MiniLM-L6-v2 packed by the CLI in every hash and shard mode."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

import secure_model
from conftest import MODES

FILE = "model.safetensors"


def assert_same(ours: dict, ref: dict, framework: str) -> None:
    assert sorted(ours) == sorted(ref)
    assert len(ref) > 50
    for name, r in ref.items():
        o = ours[name]
        assert o.dtype == r.dtype, name
        assert tuple(o.shape) == tuple(r.shape), name
        if framework == "numpy":
            assert isinstance(o, np.ndarray)
            assert np.array_equal(o, r), name
        else:
            assert isinstance(o, torch.Tensor)
            assert torch.equal(o, r), name


@pytest.mark.parametrize("mode", sorted(MODES))
def test_numpy_equals_safetensors_in_every_mode(mode, packages, keys, minilm_dir):
    ours = secure_model.load_file(packages[mode], FILE, framework="numpy", **keys.settings())
    assert_same(ours, safetensors.numpy.load_file(minilm_dir / FILE), "numpy")
    # Writable, as safetensors' arrays are.
    assert all(a.flags.writeable for a in ours.values())


@pytest.mark.parametrize("mode", sorted(MODES))
def test_torch_equals_safetensors_in_every_mode(mode, packages, keys, minilm_dir):
    ours = secure_model.load_file(packages[mode], FILE, framework="pt", **keys.settings())
    assert_same(ours, safetensors.torch.load_file(minilm_dir / FILE), "pt")


def test_tensors_are_views_of_the_file_they_were_decrypted_into(packages, keys, minilm_dir):
    """No second whole-file buffer: every tensor is a view of the one Buffer its file was
    decrypted into, and that Buffer is the verified file, byte for byte."""

    def owner(a):
        while isinstance(a, (np.ndarray, memoryview)):
            a = a.base if isinstance(a, np.ndarray) else a.obj
        return a

    ours = secure_model.load_file(packages["sha256-shards"], FILE, framework="numpy", **keys.settings())
    owners = {id(owner(a)) for a in ours.values()}
    assert len(owners) == 1
    buf = owner(next(iter(ours.values())))
    assert isinstance(buf, secure_model._native.Buffer)
    assert bytes(buf) == (minilm_dir / FILE).read_bytes()
    assert len(buf) == (minilm_dir / FILE).stat().st_size
    # Its repr names a size, never bytes (a bytearray's would print the plaintext).
    assert repr(buf) == f"<secure_model Buffer of {len(buf)} verified bytes>"
    whole = np.frombuffer(buf, dtype=np.uint8)
    assert all(np.shares_memory(a, whole) for a in ours.values() if a.size)
    # Torch too (stream_tensors): each tensor sits at its header offset in one buffer.
    raw = (minilm_dir / FILE).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = {k: v for k, v in json.loads(raw[8 : 8 + n]).items() if k != "__metadata__"}
    streamed = dict(secure_model.stream_tensors(packages["sha256"], framework="pt", **keys.settings()))
    first = min(header, key=lambda k: header[k]["data_offsets"][0])
    for k, h in header.items():
        delta = h["data_offsets"][0] - header[first]["data_offsets"][0]
        assert streamed[k].data_ptr() - streamed[first].data_ptr() == delta, k


def _read_freed(addr: int, n: int):
    """The n bytes at addr, read through /proc/self/mem (an unmapped range is an OSError there,
    not a crash), or None when the memory went back to the kernel. Read 256 bytes at a time:
    pieces that small come from Python's own arenas, never from the freed block itself."""
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        pieces = [os.pread(fd, min(256, n - off), addr + off) for off in range(0, n, 256)]
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(pieces)


def test_freed_tensor_memory_is_wiped(packages, keys):
    """A tensor's verified bytes do not outlive it: when the last view of its Buffer is freed,
    the memory is wiped before the allocator gets it back (a bytearray left the plaintext in
    the heap). Checked on a copy from safe_open, small enough to stay in the heap after free;
    the first 64 bytes are skipped (the allocator's own bookkeeping may land there)."""
    with secure_model.safe_open(packages["sha256"], FILE, framework="numpy", **keys.settings()) as f:
        sizes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        name = next(k for k, s in sizes.items() if 4096 <= int(np.prod(s)) * 4 <= 65536)
        t = f.get_tensor(name)
    plain = t.tobytes()
    assert any(plain[64:]), name
    addr = t.ctypes.data
    assert _read_freed(addr, len(plain)) == plain
    del t
    region = _read_freed(addr, len(plain))
    assert region is None or plain[64:] not in region, name


def test_filename_none_loads_every_safetensors_file(packages, keys, minilm_dir):
    pkg = secure_model.open_package(packages["sha256"], **keys.settings())
    assert pkg.safetensors_files() == [FILE]
    assert FILE in pkg.files() and "config.json" in pkg.files()
    assert pkg.info["model_name"]
    assert_same(pkg.load_file(framework="pt"), safetensors.torch.load_file(minilm_dir / FILE), "pt")


def test_safe_open_like_safetensors(packages, keys, minilm_dir):
    with safetensors.safe_open(minilm_dir / FILE, framework="pt") as ref:
        with secure_model.safe_open(packages["blake3"], FILE, framework="pt", **keys.settings()) as f:
            assert f.keys() == sorted(ref.keys())
            assert f.metadata() == ref.metadata()
            for name in ref.keys():
                assert torch.equal(f.get_tensor(name), ref.get_tensor(name))
            name = "embeddings.word_embeddings.weight"
            s, rs = f.get_slice(name), ref.get_slice(name)
            assert s.get_shape() == rs.get_shape()
            assert s.get_dtype() == rs.get_dtype()
            assert torch.equal(s[10:20, :7], rs[10:20, :7])
            with pytest.raises(secure_model.UsageError):
                f.get_tensor("no.such.tensor")
        with pytest.raises(secure_model.UsageError):
            f.get_tensor(name)  # closed: the bytes are gone


# Indices `safetensors`' get_slice accepts (0.8.0): slices with a positive step, integers
# (negative too), one ellipsis, fewer indices than dimensions.
SLICE_INDICES = [
    (slice(0, 2), slice(None)),
    (slice(None), slice(1, 3)),
    slice(1, 2),
    1,
    -1,
    (1, 2),
    (slice(None), 1),
    Ellipsis,
    (Ellipsis, 1),
    (0, Ellipsis, slice(1, 3)),
    (slice(None, None, 2),),
    (slice(None), slice(0, 3, 2)),
    (0, slice(1, 3, 5)),
    (slice(1, 1),),
    (),
    np.int64(1),
]


def _slice_model(tmp_path, keys):
    from conftest import pack

    d = tmp_path / "m"
    d.mkdir()
    g = torch.Generator().manual_seed(3)
    tensors = {
        "f32": torch.randn(2, 3, 4, generator=g),
        "bf16": torch.randn(5, 6, generator=g).bfloat16(),
        "i64": torch.arange(4 * 3 * 2 * 5, dtype=torch.int64).reshape(4, 3, 2, 5),
        "u8": torch.arange(7, dtype=torch.uint8),
        "scalar": torch.tensor(5, dtype=torch.int32),
        "f16": torch.randn(3, 5, generator=g).half(),
    }
    safetensors.torch.save_file(tensors, d / "s.safetensors")
    return d, pack(d, tmp_path / "pkg", keys)


@pytest.mark.parametrize("framework", ["numpy", "pt"])
def test_get_slice_equals_safetensors(tmp_path, keys, minilm_dir, packages, framework):
    model, pkg = _slice_model(tmp_path, keys)
    cases = 0
    with safetensors.safe_open(model / "s.safetensors", framework=framework) as ref, \
            secure_model.safe_open(pkg, "s.safetensors", framework=framework, **keys.settings()) as f:
        for name in ref.keys():
            if framework == "numpy" and name == "bf16":
                continue
            s, rs = f.get_slice(name), ref.get_slice(name)
            assert s.get_shape() == rs.get_shape() and s.get_dtype() == rs.get_dtype(), name
            for index in SLICE_INDICES:
                try:
                    r = rs[index]
                except Exception:
                    continue  # safetensors refuses it (e.g. an integer past a 1-d tensor)
                o = s[index]
                cases += 1
                assert tuple(o.shape) == tuple(r.shape), (name, index)
                assert o.dtype == r.dtype, (name, index)
                if framework == "numpy":
                    assert isinstance(o, np.ndarray) and np.array_equal(o, r), (name, index)
                    assert o.flags.c_contiguous and o.flags.writeable
                else:
                    assert isinstance(o, torch.Tensor) and torch.equal(o, r), (name, index)
                    assert o.is_contiguous()
    assert cases > 50
    # The real model too, on its largest tensor.
    with safetensors.safe_open(minilm_dir / FILE, framework=framework) as ref, \
            secure_model.safe_open(packages["sha256-shards"], FILE, framework=framework, **keys.settings()) as f:
        name = "embeddings.word_embeddings.weight"
        for index in [(slice(100, 164), slice(None)), (slice(None), slice(0, 384, 7)), 30521, (Ellipsis, 5)]:
            o, r = f.get_slice(name)[index], ref.get_slice(name)[index]
            same = np.array_equal(o, r) if framework == "numpy" else torch.equal(o, r)
            assert same and tuple(o.shape) == tuple(r.shape), index


def test_get_slice_refuses_what_safetensors_refuses(tmp_path, keys):
    model, pkg = _slice_model(tmp_path, keys)
    with secure_model.safe_open(pkg, "s.safetensors", framework="numpy", **keys.settings()) as f:
        s = f.get_slice("f32")
        for index, says in [
            ((slice(None), slice(None, None, -1)), "positive"),
            ((Ellipsis, Ellipsis), "one ellipsis"),
            ((0, 0, 0, 0), "4 indices for a tensor of 3"),
            (2, "index 2 out of range for dimension 0 of size 2"),
            (-3, "out of range"),
            ((slice(None), None), "unsupported slice index None"),
            ([0, 1], "unsupported slice index"),
            (True, "boolean"),
        ]:
            with pytest.raises(secure_model.UsageError, match=says):
                s[index]
        # Python's slice bounds past a dimension are clipped (safetensors refuses them).
        with safetensors.safe_open(model / "s.safetensors", framework="numpy") as r:
            ref = r.get_tensor("f32")
        assert np.array_equal(s[0:9], ref[0:9]) and s[5:9].shape == (0, 3, 4)
        assert np.array_equal(s[-1:], ref[-1:])
        with pytest.raises(secure_model.UsageError):
            f.get_slice("bf16")[0]  # numpy has no bfloat16
    with pytest.raises(secure_model.UsageError):
        s[0]  # closed: the bytes are gone


def test_stream_tensors_yields_every_tensor_once(packages, keys, minilm_dir):
    ref = safetensors.torch.load_file(minilm_dir / FILE)
    seen = {}
    for name, t in secure_model.stream_tensors(packages["sha256-shards"], **keys.settings()):
        assert name not in seen
        seen[name] = t
    assert_same(seen, ref, "pt")


def test_read_file_returns_verified_small_files(packages, keys, minilm_dir):
    for path in ("config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json"):
        got = secure_model.read_file(packages["blake2b"], path, **keys.settings())
        assert got == (minilm_dir / path).read_bytes(), path
    with pytest.raises(secure_model.UsageError):
        secure_model.open_package(packages["blake2b"], **keys.settings()).load_file("nope.safetensors")


def test_sentence_transformers_embeddings_from_our_state_dict(packages, keys, minilm_dir):
    from sentence_transformers import SentenceTransformer

    sentences = ["A signed, encrypted model.", "The quick brown fox jumps over the lazy dog."]
    model = SentenceTransformer(str(minilm_dir), device="cpu")
    expected = model.encode(sentences)
    bert = model[0].auto_model
    # Forget the plaintext weights, then take ours: every parameter must come from the package.
    with torch.no_grad():
        for p in bert.parameters():
            p.zero_()
    assert not np.allclose(model.encode(sentences), expected)
    state = secure_model.load_file(packages["blake3"], framework="pt", **keys.settings())
    missing, unexpected = bert.load_state_dict(state, strict=False)
    # The checkpoint carries the position_ids buffer this transformers version does not persist.
    assert [u for u in unexpected if not u.endswith("position_ids")] == []
    assert [m for m in missing if not m.endswith("position_ids")] == []
    got = model.encode(sentences)
    assert np.array_equal(got, expected)


def test_transformers_from_config_and_state_dict_in_the_package(packages, keys, minilm_dir):
    import transformers

    pkg = secure_model.open_package(packages["sha256"], **keys.settings())
    config = transformers.AutoConfig.for_model(**json.loads(pkg.read_file("config.json")))
    # The documented form: config from the package, weights from the package, no filesystem.
    ours = transformers.AutoModel.from_config(config)
    missing, unexpected = ours.load_state_dict(pkg.load_file(framework="pt"), strict=False)
    assert [m for m in missing + unexpected if not m.endswith("position_ids")] == []
    ref = transformers.AutoModel.from_pretrained(str(minilm_dir))
    ids = torch.tensor([[101, 7592, 2088, 102]])
    ours.eval()
    ref.eval()
    with torch.no_grad():
        assert torch.equal(ours(ids).last_hidden_state, ref(ids).last_hidden_state)


def test_every_dtype_and_empty_tensors(tmp_path, keys):
    from conftest import pack

    model = tmp_path / "m"
    model.mkdir()
    tensors = {
        "bool": torch.tensor([True, False, True]),
        "u8": torch.arange(7, dtype=torch.uint8),
        "i8": torch.arange(-3, 4, dtype=torch.int8),
        "i16": torch.arange(-5, 5, dtype=torch.int16).reshape(2, 5),
        "u16": torch.arange(9, dtype=torch.int32).to(torch.uint16),
        "f16": torch.randn(3, 4).half(),
        "bf16": torch.randn(5, 2).bfloat16(),
        "i32": torch.arange(12, dtype=torch.int32).reshape(3, 2, 2),
        "f32": torch.randn(17),
        "f64": torch.randn(2, 3, dtype=torch.float64),
        "i64": torch.arange(4, dtype=torch.int64),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.5),
    }
    safetensors.torch.save_file(tensors, model / "a.safetensors", metadata={"format": "pt"})
    safetensors.torch.save_file({"second.w": torch.randn(4, 4)}, model / "b.safetensors")
    pkg = pack(model, tmp_path / "pkg", keys)
    ours = secure_model.load_file(pkg, framework="pt", **keys.settings())
    ref = {**safetensors.torch.load_file(model / "a.safetensors"),
           **safetensors.torch.load_file(model / "b.safetensors")}
    assert sorted(ours) == sorted(ref)
    for k, v in ref.items():
        assert ours[k].dtype == v.dtype and torch.equal(ours[k], v), k
    # numpy has no bfloat16: a clear usage error, no tensors.
    with pytest.raises(secure_model.UsageError, match="BF16"):
        secure_model.load_file(pkg, "a.safetensors", framework="numpy", **keys.settings())
    ours = secure_model.load_file(pkg, "b.safetensors", framework="numpy", **keys.settings())
    assert np.array_equal(ours["second.w"], safetensors.numpy.load_file(model / "b.safetensors")["second.w"])
    with pytest.raises(secure_model.UsageError):
        secure_model.load_file(pkg, framework="tensorflow", **keys.settings())


def test_vllm_prepare_writes_config_but_no_weights(tmp_path, packages, keys, minilm_dir):
    """`python -m secure_model.vllm prepare`: the verified non-weight files only (no vLLM
    needed: the module imports vLLM only when vLLM calls `register`)."""
    import secure_model.vllm as sm_vllm

    out = sm_vllm.prepare(str(packages["sha256"]), tmp_path / "cfg", **keys.settings())
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "model.safetensors" not in written and "config.json" in written
    for w in written:
        assert (out / w).read_bytes() == (minilm_dir / w).read_bytes()
