#!/usr/bin/env python3
"""Loading a packaged safetensors model into torch, two ways, on one machine:

  (a) the init container's way: `secure-model pull` into tmpfs (/dev/shm), then the model
      server's `safetensors.torch.load_file` from there; the pod holds the tmpfs copy for its
      life, so its memory is the server's RSS plus the tmpfs bytes;
  (b) `secure_model.load_file(framework="pt")` in the server process: no tmpfs.

Each step runs in a fresh process; wall and CPU are measured around the load only (imports
excluded), peak RSS is the process's ru_maxrss, also shown above the process's RSS just before
the load (interpreter + torch). Prints one markdown table with ratios (b)/(a).

  python benches/python_load_bench.py --cli target/release/secure-model --size-mib 1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def make_model(d: Path, size_mib: int) -> int:
    """size_mib of fp16 tensors, 32 MiB each (4096x4096), incompressible; returns bytes."""
    import numpy as np
    from safetensors.numpy import save_file

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    n = max(1, size_mib // 32)
    tensors = {
        f"model.layers.{i}.weight": rng.standard_normal((4096, 4096), dtype=np.float32).astype(np.float16)
        for i in range(n)
    }
    save_file(tensors, str(d / "model.safetensors"))
    (d / "config.json").write_text("{}")
    return n * 4096 * 4096 * 2


def run_child(code: str, env: dict) -> dict:
    """Runs `code` in a fresh interpreter; it prints one JSON line. Adds the child's peak RSS."""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    out, _ = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"child failed ({p.returncode})")
    r = json.loads(out.strip().splitlines()[-1])
    return r


CHILD = r"""
import json, resource, time, os
import torch  # the server has torch loaded before it loads weights
{imports}
def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss_now()
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
sd = {load}
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
import numpy as np
n = sum(t.nbytes if isinstance(t, np.ndarray) else t.numel() * t.element_size() for t in sd.values())
# Touch every tensor (a server uses them all): mmap-backed tensors become resident here.
u8 = lambda t: t.reshape(-1).view(np.uint8) if isinstance(t, np.ndarray) else t.reshape(-1).view(torch.uint8)
chk = sum(int(u8(t).max()) for t in sd.values() if u8(t).shape[0] > 0)
st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
kib = lambda k: int(st[k].split()[0]) * 1024
print(json.dumps({{"wall": wall, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                  "peak_rss": kib("VmHWM"), "base_rss": base, "bytes": n,
                  "anon": kib("RssAnon"), "shmem": kib("RssShmem"), "file": kib("RssFile")}}))
"""


def timed_cmd(cmd: list) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak_rss": ru.ru_maxrss * 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="the secure-model binary (release build)")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--work", default=None, help="work directory on disk (default: a temp dir)")
    ap.add_argument("--hash", default="sha256")
    ap.add_argument("--make-model", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make_model:
        make_model(Path(a.make_model), a.size_mib)
        return

    work = Path(a.work or tempfile.mkdtemp(prefix="sm-pybench-"))
    model = work / f"model-{a.size_mib}"
    if not (model / "model.safetensors").exists():
        # In a child: Linux keeps a process's peak RSS across fork and exec, so the bench
        # process itself must stay small for its children's figures to be theirs.
        subprocess.run([sys.executable, __file__, "--make-model", str(model), "--size-mib", str(a.size_mib),
                        "--cli", a.cli], check=True)
    keys = work / "keys"
    if not (keys / "kek.bin").exists():
        subprocess.run([a.cli, "keygen", "--out", str(keys)], check=True, stdout=subprocess.DEVNULL)
    pkg = work / f"pkg-{a.size_mib}-{a.hash}"
    if not pkg.exists():
        subprocess.run([a.cli, "pack", str(model), str(pkg), "--signing-key", str(keys / "signing-key.pem"),
                        "--recipient", f"local:{keys / 'kek.bin'}", "--hash", a.hash],
                       check=True, stdout=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_MODEL_")}
    env["SECURE_MODEL_TRUSTED_KEYS"] = str(keys / "signing-key.pub.pem")
    env["SECURE_MODEL_KEYS"] = f"local:{keys / 'kek.bin'}"

    # (a) pull into tmpfs, then safetensors.torch.load_file from there.
    dest = Path(tempfile.mkdtemp(prefix="sm-pybench-", dir="/dev/shm"))
    try:
        pull = timed_cmd([a.cli, "pull", str(pkg), str(dest / "m"), "--trusted-key", env["SECURE_MODEL_TRUSTED_KEYS"],
                          "--key", env["SECURE_MODEL_KEYS"]])
        tmpfs = sum(p.stat().st_size for p in (dest / "m").rglob("*") if p.is_file())
        mf = str(dest / "m" / "model.safetensors")
        load_a = run_child(CHILD.format(imports="import safetensors.torch",
                                        load=f"safetensors.torch.load_file({mf!r})"), env)
        load_a_np = run_child(CHILD.format(imports="import safetensors.numpy",
                                           load=f"safetensors.numpy.load_file({mf!r})"), env)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    # (b) secure_model.load_file in the server process.
    load_b = run_child(CHILD.format(imports="import secure_model",
                                    load=f"secure_model.load_file({str(pkg)!r}, framework='pt')"), env)
    load_b_np = run_child(CHILD.format(imports="import secure_model",
                                       load=f"secure_model.load_file({str(pkg)!r}, framework='numpy')"), env)

    tensor_bytes = load_b["bytes"]
    a_wall = pull["wall"] + load_a["wall"]
    a_cpu = pull["cpu"] + load_a["cpu"]
    # The tmpfs pages a server maps (safetensors mmaps the file) are the same pages as the
    # tmpfs copy: the pod holds tmpfs + the server's anonymous memory, not tmpfs + RSS.
    a_total = max(pull["peak_rss"], tmpfs + load_a["anon"])
    b_total = load_b["anon"]
    a_np_total = tmpfs + load_a_np["anon"]
    b_np_total = load_b_np["anon"]
    rows = [
        ("(a) pull to tmpfs", pull["wall"], pull["cpu"], pull["peak_rss"], None, "—"),
        ("(a) safetensors.torch.load_file from tmpfs", load_a["wall"], load_a["cpu"], load_a["peak_rss"],
         load_a["peak_rss"] - load_a["base_rss"], "—"),
        ("(a) total", a_wall, a_cpu, None, None, a_total),
        ("(b) secure_model.load_file(framework='pt')", load_b["wall"], load_b["cpu"], load_b["peak_rss"],
         load_b["peak_rss"] - load_b["base_rss"], b_total),
        ("(a-np) safetensors.numpy.load_file from tmpfs", load_a_np["wall"], load_a_np["cpu"], load_a_np["peak_rss"],
         load_a_np["peak_rss"] - load_a_np["base_rss"], a_np_total),
        ("(b-np) secure_model.load_file(framework='numpy')", load_b_np["wall"], load_b_np["cpu"], load_b_np["peak_rss"],
         load_b_np["peak_rss"] - load_b_np["base_rss"], b_np_total),
    ]
    print(f"\nmodel: {tensor_bytes / MIB:.0f} MiB of fp16 tensors ({tensor_bytes // (32 * MIB)} × 32 MiB), "
          f"hash {a.hash}, package on local disk (page cache), tmpfs /dev/shm\n")
    print("| step | wall s | CPU s | peak RSS MiB | RSS over interpreter+torch MiB | pod MiB after load (tmpfs + RssAnon) |")
    print("|---|---|---|---|---|---|")
    for name, w, c, rss, over, total in rows:
        f = lambda v: "—" if v is None else f"{v / MIB:.0f}"  # noqa: E731
        tot = total if isinstance(total, str) else f"{total / MIB:.0f}"
        print(f"| {name} | {w:.2f} | {c:.2f} | {f(rss)} | {f(over)} | {tot} |")
    print(f"\nratios (b)/(a): wall {load_b['wall'] / a_wall:.2f}, throughput {a_wall / load_b['wall']:.2f}×, "
          f"CPU {load_b['cpu'] / a_cpu:.2f}, pod memory {b_total / a_total:.2f} (target ≤ 0.55); "
          f"numpy: pod memory {b_np_total / a_np_total:.2f}, wall {load_b_np['wall'] / (pull['wall'] + load_a_np['wall']):.2f}")
    over_b = load_b["peak_rss"] - load_b["base_rss"]
    print(f"(a) after load: RssAnon {load_a['anon'] / MIB:.0f} MiB, RssShmem (tmpfs pages mapped) {load_a['shmem'] / MIB:.0f} MiB; "
          f"(b) after load: RssAnon {load_b['anon'] / MIB:.0f} MiB, RssShmem {load_b['shmem'] / MIB:.0f} MiB")
    print(f"(b) peak RSS over interpreter+torch: {over_b / MIB:.0f} MiB = tensor bytes + "
          f"{(over_b - tensor_bytes) / MIB:.0f} MiB (target: + 96 MiB)")


if __name__ == "__main__":
    main()
