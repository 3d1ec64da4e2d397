#!/usr/bin/env python3
"""Loading a safetensors model into torch in the model server's process, four ways, on one
machine, from a local directory or from a real S3 server (issue 21):

  (a) the init container's way: `secure-model pull` into tmpfs (/dev/shm), then the model
      server's `safetensors.torch.load_file` from there; the pod holds the tmpfs copy for its
      life, so its memory is the server's anonymous memory plus the tmpfs bytes;
  (b) `secure_model.load_file(framework="pt")` in the server process: no tmpfs;
  (c) RunAI's model streamer (`runai-model-streamer`, `-s3` for S3): `SafetensorsStreamer`
      reading the *plaintext* model.safetensors from the same store (no encryption at all);
  (d) Tensorizer (`tensorizer`) with its encryption: `TensorDeserializer(...,
      encryption=DecryptionParams.from_key(key), device="cpu")` of a file written by
      `TensorSerializer(..., encryption=EncryptionParams.random())`.

(a-np)/(b-np) repeat (a)/(b) into numpy. A row whose package is not installed (or does not
work here) is printed as skipped with the reason.

Each load runs in a fresh process; wall and CPU are measured around the load only (imports
excluded), then every tensor is touched (a server uses them all: mapped tensors become
resident). Peak RSS is the loading process's VmHWM. Two pod figures: with the tensors on the
CPU (what a CPU server holds), and after every tensor was replaced by `t.to("meta")` and
collected, which emulates a GPU server once it copied the weights to the device (there is no
GPU here: the device copy itself is not made, only the CPU side of it is measured). The pod
is the tmpfs copy (for (a): the emptyDir stays for the pod's life) plus the server's RssAnon
(plus its RssShmem for the rows without tmpfs).

With `--store s3` the bench starts s3rver (npm) on 127.0.0.1 on a free port with its data
directory under the work directory, uploads the package (`secure-model mirror`), the plaintext
model.safetensors and the Tensorizer file, points every client at it with the usual variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID...), and stops it by its PID at the end.

  python benches/python_load_bench.py --cli target/release/secure-model \\
      --size-mib 1024,4096 --store local,s3 --work target/pybench

One markdown table per (size, store), then the ratios issue 21 names, each with its target.
Optional packages: benches/requirements-python-bench.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
BUCKET = "bench"
REPO = Path(__file__).resolve().parent.parent
S3RVER_DEFAULT = REPO / "target" / "node" / "node_modules" / ".bin" / "s3rver"


# -- the model ---------------------------------------------------------------------------------

def layer_shapes(size_mib: int) -> list:
    """A decoder-only transformer's tensors (Llama-2-7B's shapes: hidden 4096, MLP 11008,
    vocabulary 32000, tied embeddings; a quarter of the width and vocabulary below 1 GiB), in
    file order, until the next one would pass size_mib."""
    h = 4096 if size_mib >= 1024 else 1024
    inter, vocab = h * 11008 // 4096, h * 32000 // 4096
    out = [("model.embed_tokens.weight", (vocab, h))]
    total = vocab * h * 2
    budget = size_mib * MIB
    i = 0
    while True:
        p = f"model.layers.{i}."
        layer = [(p + "input_layernorm.weight", (h,)),
                 (p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (h, h)),
                 (p + "self_attn.v_proj.weight", (h, h)), (p + "self_attn.o_proj.weight", (h, h)),
                 (p + "post_attention_layernorm.weight", (h,)),
                 (p + "mlp.gate_proj.weight", (inter, h)), (p + "mlp.up_proj.weight", (inter, h)),
                 (p + "mlp.down_proj.weight", (h, inter))]
        for name, shape in layer:
            n = 2
            for d in shape:
                n *= d
            if total + n > budget:
                out.append(("model.norm.weight", (h,)))
                return out
            out.append((name, shape))
            total += n
        i += 1


def make_model(d: Path, size_mib: int) -> None:
    """fp16 tensors of layer_shapes(size_mib), normal values (incompressible)."""
    import numpy as np
    from safetensors.numpy import save_file

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    tensors = {name: rng.standard_normal(shape, dtype=np.float32).astype(np.float16)
               for name, shape in layer_shapes(size_mib)}
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text('{"model_type": "llama"}')


def make_tensorizer(model: Path, out: Path, key_file: Path) -> None:
    """Tensorizer's encrypted form of the model (random key, written next to it, 0600)."""
    import safetensors.torch
    from tensorizer import EncryptionParams, TensorSerializer

    sd = safetensors.torch.load_file(str(model / "model.safetensors"))
    enc = EncryptionParams.random()
    tmp = out.with_suffix(".tmp")
    ser = TensorSerializer(str(tmp), encryption=enc)
    ser.write_state_dict(sd)
    ser.close()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(enc.key)
    tmp.rename(out)


def s3_upload(endpoint: str, pairs: list) -> None:
    """Uploads (local file, key) pairs into BUCKET with boto3 (multipart, its defaults)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1")
    for path, key in pairs:
        s3.upload_file(path, BUCKET, key)


# -- child processes -----------------------------------------------------------------------------

def run_child(code: str, env: dict) -> dict:
    """Runs `code` in a fresh interpreter, which prints one JSON line last."""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    out, err = p.communicate()
    if p.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-6:])
        raise RuntimeError(f"child failed ({p.returncode}): {tail}")
    return json.loads(out.strip().splitlines()[-1])


# `{setup}` runs before the clock (imports, opening a package is part of the load); `{load}`
# is the timed statement(s), leaving the tensors in `sd`; `{close}` drops what the loader
# kept (a deserializer, a streamer) before the device-copy emulation.
CHILD = r"""
import gc, json, os, resource, time
import torch  # the server has torch loaded before it loads weights
{setup}
def status():
    st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    return lambda k: int(st[k].split()[0]) * 1024
def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss_now()
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
{load}
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
import numpy as np
n = sum(t.nbytes if isinstance(t, np.ndarray) else t.numel() * t.element_size() for t in sd.values())
# Touch every tensor (a server uses them all): mapped tensors become resident here.
# (numpy's max over the bytes: torch's uint8 max is several times slower and would hide the faults)
u8 = lambda t: t.reshape(-1).view(np.uint8) if isinstance(t, np.ndarray) else t.reshape(-1).view(torch.uint8).numpy()
t1 = time.perf_counter()
chk = sum(int(u8(t).max()) for t in sd.values() if u8(t).shape[0] > 0)
touch = time.perf_counter() - t1
kib = status()
res = {{"wall": wall, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "sys": r1.ru_stime - r0.ru_stime, "touch": touch, "minflt": r1.ru_minflt - r0.ru_minflt,
        "peak_rss": kib("VmHWM"), "base_rss": base, "bytes": n, "count": len(sd),
        "anon": kib("RssAnon"), "shmem": kib("RssShmem"), "file": kib("RssFile")}}
# Emulated device copy (no GPU here): the weights leave the CPU, nothing else of them stays.
{close}
sd = {{k: (t.to("meta") if isinstance(t, torch.Tensor) else None) for k, t in sd.items()}}
t = None
gc.collect()
kib = status()
res.update(dev_anon=kib("RssAnon"), dev_shmem=kib("RssShmem"))
print(json.dumps(res))
"""

PROBE = r"""
import importlib, json
out = {}
for m in ("torch", "safetensors", "numpy", "secure_model", "runai_model_streamer",
          "runai_model_streamer_s3", "tensorizer", "boto3"):
    try:
        mod = importlib.import_module(m)
        out[m] = getattr(mod, "__version__", None) or "installed"
    except Exception as e:
        out[m] = "missing: " + f"{type(e).__name__}: {e}".splitlines()[0]
if not out["tensorizer"].startswith("missing"):
    try:
        from tensorizer import EncryptionParams
        EncryptionParams.random()
    except Exception as e:
        out["tensorizer"] = "missing: encryption unavailable: " + f"{type(e).__name__}: {e}".splitlines()[0]
print(json.dumps(out))
"""


def timed_cmd(cmd: list, env: dict) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "sys": ru.ru_stime, "minflt": ru.ru_minflt,
            "peak_rss": ru.ru_maxrss * 1024}


# -- s3rver --------------------------------------------------------------------------------------

def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class S3rver:
    """s3rver on 127.0.0.1:<free port>, data under `directory`; stop() ends it by its PID."""

    def __init__(self, binary: Path, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.proc = subprocess.Popen(
            [str(binary), "--address", "127.0.0.1", "--port", str(port), "--silent",
             "--directory", str(self.dir), "--configure-bucket", BUCKET],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"s3rver exited during start-up ({self.proc.returncode})")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"s3rver did not listen on {port}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- one (size, store) ---------------------------------------------------------------------------

def tensor_loop(var: str) -> str:
    return f"sd = {{}}\nfor name, t in {var}:\n    sd[name] = t"


def bench(a, size_mib: int, store: str, s3: S3rver | None, versions: dict) -> None:
    work = Path(a.work)
    keys = work / "keys"
    model = work / f"llama-{size_mib}"
    if not (model / "model.safetensors").exists():
        # In a child: the bench process itself stays small (no numpy/torch in it).
        subprocess.run([sys.executable, __file__, "--make-model", str(model), "--size-mib", str(size_mib),
                        "--cli", a.cli], check=True)
    pkg = work / f"pkg-llama-{size_mib}-{a.hash}"
    if not pkg.exists():
        tmp = pkg.with_name(pkg.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([a.cli, "pack", str(model), str(tmp), "--signing-key", str(keys / "signing-key.pem"),
                        "--recipient", f"local:{keys / 'kek.bin'}", "--hash", a.hash],
                       check=True, stdout=subprocess.DEVNULL)
        tmp.rename(pkg)
    tz_ok = not versions["tensorizer"].startswith("missing")
    tz_file = work / f"llama-{size_mib}.tensors"
    tz_key = work / f"llama-{size_mib}.tensors.key"
    if tz_ok and not tz_file.exists():
        subprocess.run([sys.executable, __file__, "--make-tensorizer", str(model), "--size-mib", str(size_mib),
                        "--cli", a.cli, "--work", str(work)], check=True)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SECURE_MODEL_", "AWS_", "S3_", "RUNAI_STREAMER_"))}
    env["SECURE_MODEL_TRUSTED_KEYS"] = str(keys / "signing-key.pub.pem")
    env["SECURE_MODEL_KEYS"] = f"local:{keys / 'kek.bin'}"
    env["SECURE_MODEL_LOG"] = "error"
    env["RUNAI_STREAMER_LOG_LEVEL"] = "WARNING"
    skipped = {}
    if store == "local":
        pkg_src, plain_src, tz_src = str(pkg), str(model / "model.safetensors"), str(tz_file)
        where = "local disk (page cache)"
    else:
        assert s3 is not None
        tag = f"llama-{size_mib}-{a.hash}"
        env.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER", AWS_ENDPOINT_URL=s3.endpoint,
                   AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING="0")
        pkg_src = f"s3://{BUCKET}/{tag}/pkg"
        plain_src = f"s3://{BUCKET}/{tag}/plain/model.safetensors"
        tz_src = f"s3://{BUCKET}/{tag}/tensorizer/model.tensors"
        log(f"uploading {size_mib} MiB ×{2 + tz_ok} to s3rver ({s3.endpoint})")
        subprocess.run([a.cli, "mirror", str(pkg), pkg_src, "--trusted-key", env["SECURE_MODEL_TRUSTED_KEYS"]],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        pairs = [(plain_src.split(f"{BUCKET}/", 1)[1], str(model / "model.safetensors"))]
        if tz_ok:
            pairs.append((tz_src.split(f"{BUCKET}/", 1)[1], str(tz_file)))
        subprocess.run([sys.executable, __file__, "--s3-upload", s3.endpoint, "--cli", a.cli,
                        *[x for key, path in pairs for x in (path, key)]], check=True)
        where = f"s3rver 3.7.1 on 127.0.0.1 (data dir on local disk, page cache), {s3.endpoint}"

    results = {}

    def row(rid: str, setup: str, load: str, close: str = "pass") -> None:
        try:
            results[rid] = run_child(CHILD.format(setup=setup, load=load, close=close), env)
            log(f"{rid}: {results[rid]['wall']:.2f} s")
        except RuntimeError as e:
            skipped[rid] = f"failed: {e}"
            log(f"{rid}: {skipped[rid]}")

    # (a) pull into tmpfs, then safetensors.torch.load_file from there.
    dest = Path(tempfile.mkdtemp(prefix="sm-pybench-", dir="/dev/shm"))
    try:
        pull = timed_cmd([a.cli, "pull", pkg_src, str(dest / "m"), "--trusted-key", env["SECURE_MODEL_TRUSTED_KEYS"],
                          "--key", env["SECURE_MODEL_KEYS"]], env)
        tmpfs = sum(p.stat().st_size for p in (dest / "m").rglob("*") if p.is_file())
        mf = str(dest / "m" / "model.safetensors")
        row("a", "import safetensors.torch", f"sd = safetensors.torch.load_file({mf!r})")
        if not a.skip_numpy:
            row("a-np", "import safetensors.numpy", f"sd = safetensors.numpy.load_file({mf!r})")
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    # (b) secure_model.load_file in the server process.
    row("b", "import secure_model", f"sd = secure_model.load_file({pkg_src!r}, framework='pt')")
    # (c) RunAI's streamer on the plaintext.
    need = "runai_model_streamer_s3" if store == "s3" else "runai_model_streamer"
    if versions["runai_model_streamer"].startswith("missing") or versions[need].startswith("missing"):
        skipped["c"] = f"{need} {versions[need]}" if versions[need].startswith("missing") else \
            f"runai_model_streamer {versions['runai_model_streamer']}"
    else:
        row("c", "from runai_model_streamer import SafetensorsStreamer",
            "with SafetensorsStreamer() as streamer:\n"
            f"    streamer.stream_file({plain_src!r}, device='cpu')\n"
            "    " + tensor_loop("streamer.get_tensors()").replace("\n", "\n    "))
    # (d) Tensorizer's encrypted load.
    if not tz_ok:
        skipped["d"] = f"tensorizer {versions['tensorizer']}"
    else:
        key = tz_key.read_bytes().hex()
        if store == "local":
            opener = repr(tz_src)
        else:
            opener = (f"stream_io.open_stream({tz_src!r}, 'rb', s3_access_key_id='S3RVER', "
                      f"s3_secret_access_key='S3RVER', s3_endpoint={s3.endpoint!r}, force_http=True)")
        row("d", "from tensorizer import TensorDeserializer, DecryptionParams, stream_io",
            f"deser = TensorDeserializer({opener}, device='cpu', "
            f"encryption=DecryptionParams.from_key(bytes.fromhex({key!r})))\n"
            + tensor_loop("deser.items()"),
            close="deser.close() if hasattr(deser, 'close') else None\ndel deser")
    if not a.skip_numpy:
        row("b-np", "import secure_model", f"sd = secure_model.load_file({pkg_src!r}, framework='numpy')")

    report(a, size_mib, store, where, pull, tmpfs, results, skipped)


def report(a, size_mib, store, where, pull, tmpfs, R, skipped) -> None:
    f = lambda v: "—" if v is None else f"{v / MIB:.0f}"  # noqa: E731
    nbytes = next((r["bytes"] for r in R.values()), 0)
    count = next((r["count"] for r in R.values()), 0)

    def pod(rid, after_device):
        r = R[rid]
        anon = r["dev_anon"] if after_device else r["anon"]
        shmem = r["dev_shmem"] if after_device else r["shmem"]
        if rid.startswith("a"):
            # The tmpfs pages the server maps are the tmpfs copy: counted once.
            return tmpfs + anon
        return anon + shmem

    names = {
        "a": "(a) safetensors.torch.load_file from tmpfs",
        "a-np": "(a-np) safetensors.numpy.load_file from tmpfs",
        "b": "(b) secure_model.load_file(framework='pt')",
        "b-np": "(b-np) secure_model.load_file(framework='numpy')",
        "c": "(c) RunAI SafetensorsStreamer, plaintext" + (" (runai-model-streamer-s3)" if store == "s3" else ""),
        "d": "(d) Tensorizer TensorDeserializer, encrypted",
    }
    print(f"\n### {size_mib} MiB model, store: {store}\n")
    print(f"model: {nbytes / MIB:.0f} MiB in {count} fp16 tensors (Llama-2-7B shapes), package hash {a.hash}; "
          f"store: {where}; tmpfs /dev/shm\n")
    print("| step | wall s | CPU s | of which sys s | then touching every tensor s | throughput MiB/s | peak RSS MiB | RSS over interpreter+torch MiB "
          "| pod MiB, tensors on the CPU | pod MiB, weights off the CPU (emulated device copy) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| (a) pull to tmpfs | {pull['wall']:.2f} | {pull['cpu']:.2f} | {pull['sys']:.2f} | — | — | {f(pull['peak_rss'])} | — | — | — |")
    a_wall = a_cpu = None
    for rid in ("a", "b", "c", "d", "a-np", "b-np"):
        if rid in skipped:
            print(f"| {names[rid]} | skipped: {skipped[rid]} | | | | | | | | |")
            continue
        if rid not in R:
            continue
        r = R[rid]
        tput = "—" if rid.startswith("a") else f"{nbytes / MIB / r['wall']:.0f}"
        print(f"| {names[rid]} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['sys']:.2f} | {r['touch']:.2f} | {tput} | {f(r['peak_rss'])} | "
              f"{f(r['peak_rss'] - r['base_rss'])} | {f(pod(rid, False))} | {f(pod(rid, True))} |")
        if rid == "a":
            a_wall, a_cpu = pull["wall"] + r["wall"], pull["cpu"] + r["cpu"]
            # During the load the pod held at least the pull's peak on top of nothing, or
            # the tmpfs copy + the server; after it, the tmpfs copy + the server.
            print(f"| (a) total: pull + load | {a_wall:.2f} | {a_cpu:.2f} | {pull['sys'] + r['sys']:.2f} | — | "
                  f"{nbytes / MIB / a_wall:.0f} | — | — | "
                  f"{f(max(pull['peak_rss'], pod('a', False)))} | {f(pod('a', True))} |")

    def tp(rid):
        if rid == "a":
            return None if a_wall is None else nbytes / a_wall
        return nbytes / R[rid]["wall"] if rid in R else None

    def ratio(label, num, den, target, ok):
        if num is None or den is None:
            print(f"- {label}: not measured (a row was skipped); target {target}")
            return
        v = num / den
        print(f"- {label}: **{v:.2f}** (target {target}: {'met' if ok(v) else 'MISSED'})")

    print("\nRatios (issue 21's targets):\n")
    pa = max(pull["peak_rss"], pod("a", False)) if "a" in R else None
    ratio("(b)/(a) pod memory, tensors on the CPU (safetensors maps the tmpfs file: its tensors *are* "
          "the tmpfs pages)", pod("b", False) if "b" in R else None, pa, "≤ 0.55", lambda v: v <= 0.55)
    ratio("(b)/(a) pod memory after the weights left the CPU (emulated device copy: (a) keeps the tmpfs "
          "copy, (b) keeps RssAnon only)", pod("b", True) if "b" in R else None,
          pod("a", True) if "a" in R else None, "≤ 0.55", lambda v: v <= 0.55)
    ratio("(b)/(a) throughput (pull + load)", tp("b"), tp("a"), "≥ 0.9", lambda v: v >= 0.9)
    ratio("(b)/(c) throughput (RunAI's plain streaming)", tp("b"), tp("c"), "≥ 0.8", lambda v: v >= 0.8)
    ratio("(b)/(d) throughput (Tensorizer's encrypted load)", tp("b"), tp("d"), "> 1", lambda v: v > 1)
    if "b" in R and a_cpu:
        print(f"- (b)/(a) CPU: {R['b']['cpu'] / a_cpu:.2f}; "
              f"(b) peak RSS over interpreter+torch = tensor bytes + "
              f"{(R['b']['peak_rss'] - R['b']['base_rss'] - nbytes) / MIB:.0f} MiB; minor page faults: "
              f"(a) pull {pull['minflt']}, (a) load {R['a']['minflt'] if 'a' in R else '—'}, (b) {R['b']['minflt']}")
    if "a" in R:
        r = R["a"]
        print(f"- (a) after load: RssAnon {f(r['anon'])} MiB, RssShmem (tmpfs pages mapped) {f(r['shmem'])} MiB; "
              f"after freeing: RssAnon {f(r['dev_anon'])}, RssShmem {f(r['dev_shmem'])}; tmpfs {f(tmpfs)} MiB")
    for rid in ("b", "c", "d"):
        if rid in R:
            r = R[rid]
            print(f"- ({rid}) after load: RssAnon {f(r['anon'])} MiB, RssShmem {f(r['shmem'])} MiB; "
                  f"after freeing: RssAnon {f(r['dev_anon'])}, RssShmem {f(r['dev_shmem'])}")
    sys.stdout.flush()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cli", required=True, help="the secure-model binary (release build)")
    ap.add_argument("--size-mib", default="1024", help="model size(s) in MiB, comma-separated")
    ap.add_argument("--store", default="local", help="local, s3, or both comma-separated")
    ap.add_argument("--work", default=None, help="work directory on disk (default: a temp dir)")
    ap.add_argument("--hash", default="sha256")
    ap.add_argument("--s3rver", default=os.environ.get("SMTEST_S3RVER", str(S3RVER_DEFAULT)))
    ap.add_argument("--skip-numpy", action="store_true", help="leave out the (a-np)/(b-np) rows")
    ap.add_argument("--make-model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--make-tensorizer", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--s3-upload", default=None, help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make_model:
        make_model(Path(a.make_model), int(a.size_mib))
        return
    if a.make_tensorizer:
        w = Path(a.work)
        make_tensorizer(Path(a.make_tensorizer), w / f"llama-{a.size_mib}.tensors",
                        w / f"llama-{a.size_mib}.tensors.key")
        return
    if a.s3_upload:
        s3_upload(a.s3_upload, list(zip(a.rest[0::2], a.rest[1::2])))
        return

    sizes = [int(s) for s in a.size_mib.split(",") if s]
    stores = [s for s in a.store.split(",") if s]
    if any(s not in ("local", "s3") for s in stores):
        raise SystemExit("--store: local or s3")
    a.work = a.work or tempfile.mkdtemp(prefix="sm-pybench-")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "keys"
    if not (keys / "kek.bin").exists():
        subprocess.run([a.cli, "keygen", "--out", str(keys)], check=True, stdout=subprocess.DEVNULL)
    versions = run_child(PROBE, dict(os.environ))
    print(f"versions: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    print(f"load average at start: {os.getloadavg()}")
    s3 = None
    try:
        if "s3" in stores:
            if versions["boto3"].startswith("missing"):
                raise SystemExit("--store s3 needs boto3 (for the plaintext uploads)")
            s3 = S3rver(Path(a.s3rver), work / f"s3rver.{os.getpid()}")
            log(f"s3rver pid {s3.proc.pid} on {s3.endpoint}")
        for size in sizes:
            for store in stores:
                bench(a, size, store, s3 if store == "s3" else None, versions)
    finally:
        if s3 is not None:
            s3.stop()
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
