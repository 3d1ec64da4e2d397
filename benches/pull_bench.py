#!/usr/bin/env python3
"""Pull benchmark driver (ISSUE 3): secure-model pull vs plain object_store download vs KServe.

Run through benches/pull-bench.sh, which builds the release binaries, installs the servers and
picks the Python venv. Everything here runs on 127.0.0.1 and under --work / /dev/shm; every
server and scratch directory it creates is removed on exit (also on Ctrl-C).

Rows (see benches/README.md):
  1a plain_get --mode range   object_store, the pull's request shape, no crypto   (ceiling)
  1b plain_get --mode stream  object_store, one streaming GET per object          (ceiling)
  2  secure-model pull        verify + unwrap + decrypt + hash + publish into tmpfs
  3  KServe Storage.download  plain model, default settings (boto3, 4 processes)
  4  kserve-decrypt           KServe confidential mode: one JWE file, CDH stand-in
  5a plain_put                plain upload (same client, multipart like pack)
  5b secure-model pack        encrypt + sign + upload
  1h/2h                       1a and 2 from nginx over HTTP (a store that costs ~no CPU)
  r  rclone copy              plain model, rclone's defaults (WAN rows)

Every row of 2 and 5b also runs for each --hash-variants package (blake3, blake2b, sha256 in
8 and 64 MiB shards) at both model sizes. The WAN rows put benches/src/bin/wan_proxy (paced
connections, delayed first byte) in front of s3rver, then in front of nginx.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench"
# pull's defaults (--range-segments, --read-ahead, --file-concurrency): caps of the adaptive
# in-flight limit.
DEFAULT_TUNING = (8, 32, 4)
# Hash variants packed besides pack's default (sha256 files): HASH or HASH-shardMIB.
HASH_VARIANTS = "blake3,blake2b,sha256-shard8,sha256-shard64"
TAG = re.compile(r"([mw])(\d+)(?:-(.+))?")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def variant_pack_args(v):
    """pack's flags for a hash variant: sha256, blake2b or blake3, optionally -shardN (MiB)."""
    m = re.fullmatch(r"(sha256|blake2b|blake3)(?:-shard(\d+))?", v)
    if not m:
        raise SystemExit(f"--hash-variants: {v!r} is not HASH or HASH-shardMIB "
                         "(HASH: sha256, blake2b, blake3)")
    args = ["--hash", m[1]]
    if m[2]:
        args += ["--shard-size", str(int(m[2]) * MiB)]
    return args


def log(*a):
    print("pull-bench:", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes and sampling


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                s = f.read()
            fields = s[s.rindex(b")") + 2 :].split()
            # utime, stime, cutime, cstime
            t += sum(int(x) for x in fields[11:15])
        except OSError:
            pass
    return t


class Measured:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def measure(cmd, env, servers, cwd=None):
    """Runs cmd under GNU time; samples the process tree's PSS every 100 ms and the servers'
    CPU time before/after. Raises on failure."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        srv_before = sum(cpu_ticks(tree(s.pid)) for s in servers)
        t0 = time.perf_counter()
        p = subprocess.Popen(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name] + [str(c) for c in cmd],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.1):
                peak[0] = max(peak[0], sum(pss_kib(x) for x in tree(p.pid)))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out, err = p.communicate()
        wall = time.perf_counter() - t0
        done.set()
        th.join()
        srv_after = sum(cpu_ticks(tree(s.pid)) for s in servers)
        if p.returncode != 0:
            raise RuntimeError(
                f"{cmd[0]} failed ({p.returncode}):\n{err.decode(errors='replace')[-3000:]}"
            )
        line = tf.read().strip().splitlines()[-1].split()
        _, user, sys_, maxrss = line
        return Measured(
            wall=wall,
            cpu=float(user) + float(sys_),
            rss_mib=int(maxrss) / 1024,
            tree_pss_mib=peak[0] / 1024,
            server_cpu=(srv_after - srv_before) / TICK,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
        )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited during start-up ({proc.returncode})")
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port}")


class Cleanup:
    def __init__(self):
        self.procs = []
        self.dirs = []

    def proc(self, p):
        self.procs.append(p)
        return p

    def dir(self, d):
        self.dirs.append(Path(d))
        return Path(d)

    def run(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        for d in reversed(self.dirs):
            shutil.rmtree(d, ignore_errors=True)
        self.dirs.clear()


# ------------------------------------------------------------------ model and JWE


def gen_file(path, size, seed):
    """Deterministic incompressible bytes (AES-256-CTR keystream of a seed), fast."""
    key = (seed * 2).ljust(64, "0")[:64]
    with open(path, "wb") as f:
        enc = subprocess.Popen(
            ["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", "0" * 32, "-in", "/dev/zero"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        head = subprocess.Popen(["head", "-c", str(size)], stdin=enc.stdout, stdout=f)
        enc.stdout.close()
        head.wait()
        enc.kill()
        enc.wait()
    if path.stat().st_size != size:
        raise RuntimeError(f"could not generate {path}")


def model_layout(total_mib):
    """Several files, the largest 5/8 of the total (>= 512 MiB for a 1 GiB model)."""
    parts = [
        ("model-00001-of-00003.safetensors", 0.625),
        ("model-00002-of-00003.safetensors", 0.25),
        ("model-00003-of-00003.safetensors", 0.0625),
        ("optimizer/extra.bin", 0.03125),
        ("tokenizer.json", 0.03125),
    ]
    files = [(n, int(total_mib * MiB * f)) for n, f in parts]
    files.append(("config.json", 1234))
    return files


def ensure_model(cache, total_mib):
    d = cache / f"model-{total_mib}"
    stamp = d / ".complete"
    layout = model_layout(total_mib)
    if stamp.exists():
        return d, layout
    shutil.rmtree(d, ignore_errors=True)
    log(f"generating a {total_mib} MiB model in {d}")
    for i, (name, size) in enumerate(layout):
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        gen_file(p, size, f"{total_mib:08x}{i:04x}")
    stamp.write_text("ok\n")
    return d, layout


def model_files(d):
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))


JWE_MAKE = r"""
import os, sys
from jwcrypto import jwe, jwk
from jwcrypto.common import json_encode
n, out, keyout = int(sys.argv[1]), sys.argv[2], sys.argv[3]
k = jwk.JWK.generate(kty="oct", size=256)
payload = os.urandom(n)
t = jwe.JWE(payload, json_encode({"alg": "A256KW", "enc": "A256GCM"}))
del payload
t.add_recipient(k)
s = t.serialize(compact=True)
with open(out + ".tmp", "w") as f:
    f.write(s)
os.rename(out + ".tmp", out)
with open(keyout, "w") as f:
    f.write(k.export())
"""

CDH_STANDIN = r"""
import http.server, sys
key = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/cdh/resource/"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(key)))
            self.end_headers()
            self.wfile.write(key)
        else:
            self.send_response(404)
            self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

KSERVE_DOWNLOAD = r"""
import logging, sys
logging.basicConfig(level=logging.WARNING)
from kserve_storage import Storage
Storage.download(sys.argv[1], sys.argv[2])
"""


def ensure_jwe(py, cache, mib):
    out = cache / f"payload-{mib}.jwe"
    key = cache / f"payload-{mib}.jwk"
    if out.exists() and key.exists():
        return out, key
    log(f"making a {mib} MiB JWE (A256KW + A256GCM, jwcrypto) in {out}")
    subprocess.run([py, "-c", JWE_MAKE, str(mib * MiB), str(out), str(key)], check=True)
    return out, key


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


# ------------------------------------------------------------------ S3 helpers (boto3)


def s3_client(endpoint):
    import boto3
    from botocore.client import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="S3RVER",
        aws_secret_access_key="S3RVER",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def s3_delete_prefix(client, prefix):
    pag = client.get_paginator("list_objects_v2")
    for page in pag.paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=o["Key"])


def s3_largest(client, prefix):
    objs = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        objs += page.get("Contents", [])
    return max(objs, key=lambda o: o["Size"])


# ------------------------------------------------------------------ the benchmark


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = Path(a.bin_dir)
        self.py = a.python
        self.work = Path(a.work)
        self.cache = self.work / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.c = Cleanup()
        self.results = {}  # row id -> list of Measured
        self.meta = {}
        self.notes = []
        self.sweep = []
        self.variants = [v for v in a.hash_variants.split(",") if v]
        for v in self.variants:
            variant_pack_args(v)

    # -- servers
    def start_servers(self):
        s3rver = os.environ.get("SMTEST_S3RVER")
        if not s3rver:
            raise SystemExit("SMTEST_S3RVER is not set (run through benches/pull-bench.sh)")
        self.s3dir = self.c.dir(tempfile.mkdtemp(prefix="s3rver.", dir=self.work))
        port = free_port()
        p = self.c.proc(
            subprocess.Popen(
                [s3rver, "--address", "127.0.0.1", "--port", str(port), "--silent",
                 "--directory", str(self.s3dir), "--configure-bucket", BUCKET],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        wait_port(port, p, "s3rver")
        self.s3rver = p
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="S3RVER",
            AWS_SECRET_ACCESS_KEY="S3RVER",
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_DEFAULT_REGION="us-east-1",
            SECURE_MODEL_LOG="warn",
        )
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "STORAGE_CONFIG", "STORAGE_OVERRIDE_CONFIG"):
            self.env.pop(k, None)
        self.s3 = s3_client(self.endpoint)
        self.servers = [p]
        log(f"s3rver on {self.endpoint}, data in {self.s3dir}")

    def start_nginx(self, root):
        """nginx (sendfile) serving `root` read-only over plain HTTP: a C server with far more
        headroom than s3rver, for the same (1) vs (2) comparison on the HTTP backend."""
        bin_ = os.environ.get("SMTEST_NGINX")
        if not bin_:
            return None
        d = self.c.dir(tempfile.mkdtemp(prefix="nginx.", dir=self.work))
        port = free_port()
        user = "user root;" if os.getuid() == 0 else ""
        (d / "nginx.conf").write_text(
            f"""{user} daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
""")
        p = self.c.proc(subprocess.Popen([bin_, "-p", d, "-c", d / "nginx.conf"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))
        wait_port(port, p, "nginx")
        self.servers.append(p)
        log(f"nginx on 127.0.0.1:{port}, root {root}")
        return f"http://127.0.0.1:{port}"

    def start_cdh(self, keyfile):
        port = free_port()
        p = self.c.proc(
            subprocess.Popen([self.py, "-c", CDH_STANDIN, str(port), str(keyfile)],
                             stdin=subprocess.DEVNULL)
        )
        wait_port(port, p, "CDH stand-in")
        return f"http://127.0.0.1:{port}"

    def measure_server(self, prefix, label, url=None, size=None, name=None):
        """curl of the largest object: one streaming GET, then 4 parallel ranged GETs."""
        if url is None:
            o = s3_largest(self.s3, prefix)
            url = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": o["Key"]}, ExpiresIn=3600
            )
            size, name = o["Size"], o["Key"]
        best1, best4 = 0.0, 0.0
        for _ in range(2):
            m = measure(["curl", "-sf", "-o", "/dev/null", url], self.env, self.servers)
            best1 = max(best1, size / MiB / m.wall)
            q = size // 4
            ranges = [(i * q, size - 1 if i == 3 else (i + 1) * q - 1) for i in range(4)]
            script = " & ".join(
                f"curl -sf -o /dev/null -r {s}-{e} '{url}'" for s, e in ranges
            ) + " & wait"
            m4 = measure(["bash", "-c", script], self.env, self.servers)
            best4 = max(best4, size / MiB / m4.wall)
        self.meta.setdefault("server", []).append(
            f"{label}: GET of {name} ({size / MiB:.0f} MiB) with curl: "
            f"{best1:.0f} MiB/s (1 stream), {best4:.0f} MiB/s (4 parallel ranges); best of 2"
        )
        return best1, best4

    # -- steps
    def keygen(self):
        d = self.c.dir(tempfile.mkdtemp(prefix="keys.", dir=self.work))
        kd = d / "k"
        subprocess.run([self.bin / "secure-model", "keygen", "--out", kd],
                       check=True, stdout=subprocess.DEVNULL)
        self.kek = kd / "kek.bin"
        self.sk = kd / "signing-key.pem"
        self.pk = kd / "signing-key.pub.pem"

    def record(self, row, m):
        self.results.setdefault(row, []).append(m)

    def uploads(self, tag, model, rounds, plain=True, pack_args=()):
        """(5): plain upload and pack, interleaved; round 0 is kept as the download source."""
        size = sum(p.stat().st_size for p in model_files(model))
        for r in range(rounds):
            sfx = "" if r == 0 else f"-scratch{r}"
            if plain:
                m = measure([self.bin / "plain_put", model, f"s3://{BUCKET}/{tag}/plain{sfx}"],
                            self.env, self.servers)
                m.bytes = size
                self.record(f"5a:{tag}", m)
            m = measure(
                [self.bin / "secure-model", "pack", model, f"s3://{BUCKET}/{tag}/pkg{sfx}",
                 "--signing-key", self.sk, "--recipient", f"local:{self.kek}", "--json",
                 *pack_args],
                self.env, self.servers)
            m.bytes = size
            self.record(f"5b:{tag}", m)
            if r > 0:
                s3_delete_prefix(self.s3, f"{tag}/plain{sfx}/")
                s3_delete_prefix(self.s3, f"{tag}/pkg{sfx}/")

    def fresh_out(self, name):
        d = self.shm / name
        shutil.rmtree(d, ignore_errors=True)
        return d

    def check_copy(self, model, out, row):
        for src in model_files(model):
            dst = out / src.relative_to(model)
            if subprocess.run(["cmp", "-s", src, dst]).returncode != 0:
                raise RuntimeError(f"{row}: {dst} differs from {src}")

    def downloads(self, tag, model, rounds, rows, jwe=None):
        size = sum(p.stat().st_size for p in model_files(model))
        for r in range(rounds):
            for spec in rows:
                # "2@blake3": pull of the package packed with that variant, under tag-variant.
                row, _, variant = spec.partition("@")
                rtag = f"{tag}-{variant}" if variant else tag
                out = self.fresh_out(f"{row}-{rtag}")
                if row == "1a":
                    cmd = [self.bin / "plain_get", "--mode", "range",
                           f"s3://{BUCKET}/{tag}/plain", out]
                elif row == "1b":
                    cmd = [self.bin / "plain_get", "--mode", "stream",
                           f"s3://{BUCKET}/{tag}/plain", out]
                elif row == "1h":
                    cmd = [self.bin / "plain_get", "--mode", "range", f"{self.http}/plain", out]
                    for f_ in model_files(model):
                        cmd += ["--key", str(f_.relative_to(model))]
                elif row == "2h":
                    cmd = [self.bin / "secure-model", "pull", f"{self.http}/pkg", out,
                           "--trusted-key", self.pk, "--key", f"local:{self.kek}", "--json"]
                elif row == "2":
                    cmd = [self.bin / "secure-model", "pull", f"s3://{BUCKET}/{rtag}/pkg", out,
                           "--trusted-key", self.pk, "--key", f"local:{self.kek}", "--json"]
                elif row == "3":
                    cmd = [self.py, "-c", KSERVE_DOWNLOAD, f"s3://{BUCKET}/{tag}/plain", out]
                elif row == "r":
                    cmd = ["rclone", "copy", f":s3:{BUCKET}/{tag}/plain", out, "--s3-provider",
                           "Other", "--s3-endpoint", self.env["AWS_ENDPOINT_URL"],
                           "--s3-access-key-id", "S3RVER", "--s3-secret-access-key", "S3RVER",
                           "--s3-region", "us-east-1", "--config", "/dev/null"]
                elif row == "4":
                    jwe_file, cdh = jwe
                    out.mkdir(parents=True)
                    shutil.copyfile(jwe_file, out / "model.jwe")
                    env = dict(self.env, CDH_ADDR=cdh)
                    cmd = [Path(self.py).parent / "kserve-decrypt", "--source-dir", out,
                           "--resource-id", "kbs:///default/model-key/1"]
                if row == "4":
                    m = measure(cmd, env, self.servers)
                    got = (out / "model").stat().st_size
                    if got != self.jwe_bytes:
                        raise RuntimeError(f"kserve-decrypt wrote {got} bytes")
                    m.bytes = self.jwe_bytes
                else:
                    env = self.env
                    if row == "r":
                        # rclone cannot combine AWS_CA_BUNDLE with its own HTTP transport.
                        env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
                    m = measure(cmd, env, self.servers)
                    m.bytes = size
                    if r == 0:
                        self.check_copy(model, out, row)
                self.record(f"{row}:{rtag}", m)
                log(f"round {r + 1} {row}:{rtag} {m.wall:.2f}s {m.bytes / MiB / m.wall:.0f} MiB/s "
                    f"cpu {m.cpu:.2f}s rss {m.rss_mib:.0f} MiB")
                shutil.rmtree(out, ignore_errors=True)

    def start_wan_proxy(self, upstream_port, label):
        a = self.a
        p = self.c.proc(subprocess.Popen(
            [self.bin / "wan_proxy", "--upstream", f"127.0.0.1:{upstream_port}", "--rate-mib",
             str(a.wan_rate_mib), "--first-byte-ms", str(a.wan_first_byte_ms)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True))
        wport = int(p.stdout.readline())
        wait_port(wport, p, "wan_proxy")
        self.servers.append(p)
        self.meta.setdefault("server", []).append(
            f"{label}: wan_proxy on 127.0.0.1:{wport}, "
            f"{a.wan_rate_mib} MiB/s per connection (no burst), {a.wan_first_byte_ms} ms first byte")
        return wport

    def run_wan_nginx(self, model, rounds):
        """(1h)/(2h) through a wan_proxy in front of nginx: the same WAN-like link, but a store
        that costs almost no CPU (s3rver in node shares this machine's 2 cores with the client
        and its proxy, and is the ceiling of the s3rver WAN rows)."""
        tag = f"w{self.a.size_mib}"
        wport = self.start_wan_proxy(self.http.rsplit(":", 1)[1],
                                     f"WAN-like nginx (tag {tag}, the {self.a.size_mib} MiB model)")
        direct = self.http
        self.http = f"http://127.0.0.1:{wport}"
        log(f"WAN-like nginx rounds at {self.a.size_mib} MiB: rows 1h, 2h")
        try:
            self.downloads(tag, model, rounds, ["1h", "2h"])
        finally:
            self.http = direct

    def run_wan(self, rounds):
        """The WAN-like store: benches/src/bin/wan_proxy in front of s3rver paces every
        connection to --wan-rate-mib with no burst and delays each response's first byte by
        --wan-first-byte-ms (the kernel here has no netem)."""
        a = self.a
        model, _ = ensure_model(self.cache, a.wan_mib)
        tag = f"w{a.wan_mib}"
        self.uploads(tag, model, 1)
        wport = self.start_wan_proxy(self.endpoint.rsplit(":", 1)[1],
                                     f"WAN-like store (tag {tag}), in front of s3rver")
        direct = self.env
        self.env = dict(direct, AWS_ENDPOINT_URL=f"http://127.0.0.1:{wport}")
        rows = ["1a", "2", "3"] + (["r"] if shutil.which("rclone") else [])
        if a.skip_kserve:
            rows.remove("3")
        log(f"WAN-like download rounds at {a.wan_mib} MiB: rows {rows}")
        try:
            self.downloads(tag, model, rounds, rows)
        finally:
            self.env = direct
            s3_delete_prefix(self.s3, f"{tag}/")

    def run_sweep(self, tag, model, rounds):
        size = sum(p.stat().st_size for p in model_files(model))
        configs = [DEFAULT_TUNING, (4, 4, 2), (1, 8, 2), (2, 4, 2), (8, 4, 2), (16, 2, 2), (4, 1, 2),
                   (4, 2, 2), (4, 8, 2), (4, 4, 1), (4, 4, 4)]
        if self.a.smoke:
            configs = configs[:2]
        res = {c: [] for c in configs}
        for _ in range(rounds):
            for c in configs:
                out = self.fresh_out(f"sweep-{tag}")
                m = measure([self.bin / "secure-model", "pull", f"s3://{BUCKET}/{tag}/pkg", out,
                             "--trusted-key", self.pk, "--key", f"local:{self.kek}", "--json",
                             "--range-segments", c[0], "--read-ahead", c[1],
                             "--file-concurrency", c[2]], self.env, self.servers)
                m.bytes = size
                res[c].append(m)
                shutil.rmtree(out, ignore_errors=True)
        for c, ms in res.items():
            self.sweep.append((c, ms))

    def run(self):
        a = self.a
        self.meta["started"] = datetime.datetime.now().isoformat(timespec="seconds")
        self.meta["load_start"] = open("/proc/loadavg").read().split()[:3]
        self.shm = self.c.dir(tempfile.mkdtemp(prefix="secure-model-bench.", dir="/dev/shm"))
        self.start_servers()
        self.keygen()

        model, _ = ensure_model(self.cache, a.size_mib)
        tag = f"m{a.size_mib}"
        log("warm-up (not measured): plain upload + download, s3rver JIT, source in page cache")
        subprocess.run([self.bin / "plain_put", model, f"s3://{BUCKET}/warmup"], env=self.env,
                       check=True, stdout=subprocess.DEVNULL)
        warm = self.fresh_out("warmup")
        subprocess.run([self.bin / "plain_get", f"s3://{BUCKET}/warmup", warm], env=self.env,
                       check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(warm)
        s3_delete_prefix(self.s3, "warmup/")
        log(f"(5) upload rounds at {a.size_mib} MiB")
        self.uploads(tag, model, a.rounds)
        for v in self.variants:
            log(f"(5b) pack at {a.size_mib} MiB, {v}")
            self.uploads(f"{tag}-{v}", model, 1, plain=False, pack_args=variant_pack_args(v))
        self.measure_server(f"{tag}/plain/", f"s3rver, {a.size_mib} MiB model")

        rows = ["1a", "1b", "2", "3"]
        self.http = None
        if not a.skip_nginx:
            # The same plain model and the same package (copied out of s3rver) under nginx.
            root = self.c.dir(tempfile.mkdtemp(prefix="www.", dir=self.work))
            (root / "plain").symlink_to(model)
            subprocess.run([self.bin / "plain_get", "--mode", "stream",
                            f"s3://{BUCKET}/{tag}/pkg", root / "pkg"],
                           env=self.env, check=True, stdout=subprocess.DEVNULL)
            self.http = self.start_nginx(root)
            if self.http:
                big = max(model_files(model), key=lambda p: p.stat().st_size)
                rel = big.relative_to(model)
                self.measure_server(None, f"nginx, {a.size_mib} MiB model",
                                    url=f"{self.http}/plain/{rel}", size=big.stat().st_size,
                                    name=f"plain/{rel}")
                self.env["SECURE_MODEL_ALLOW_HTTP"] = "true"
                rows += ["1h", "2h"]
        jwe = None
        if not a.skip_jwe:
            jwe_mib = a.jwe_mib or a.size_mib
            need = jwe_mib * 8 + 2048
            if mem_available_mib() < need:
                scaled = max(64, (mem_available_mib() - 2048) // 8 // 64 * 64)
                self.notes.append(
                    f"(4) JWE payload scaled down from {jwe_mib} MiB to {scaled} MiB: "
                    f"{mem_available_mib()} MiB available, jwcrypto needs about 8x")
                jwe_mib = scaled
            jwe_file, keyfile = ensure_jwe(self.py, self.cache, jwe_mib)
            self.jwe_bytes = jwe_mib * MiB
            jwe = (jwe_file, self.start_cdh(keyfile))
            rows.append("4")
        if a.skip_kserve:
            rows.remove("3")
        rows += [f"2@{v}" for v in self.variants]
        log(f"download rounds at {a.size_mib} MiB: rows {rows}")
        self.downloads(tag, model, a.rounds, rows, jwe)
        for v in self.variants:
            s3_delete_prefix(self.s3, f"{tag}-{v}/")

        if a.wan_mib:
            self.run_wan(a.rounds)
        if a.wan_mib and self.http:
            self.run_wan_nginx(model, a.rounds)

        if a.sweep_rounds:
            log("concurrency sweep of secure-model pull")
            self.run_sweep(tag, model, a.sweep_rounds)

        if a.big_mib:
            # Free the first model's objects before the big one (memory: page cache, tmpfs).
            s3_delete_prefix(self.s3, f"{tag}/")
            big, _ = ensure_model(self.cache, a.big_mib)
            btag = f"m{a.big_mib}"
            log(f"RSS-independence check at {a.big_mib} MiB")
            self.uploads(btag, big, 1, plain=False)
            self.downloads(btag, big, a.rounds, ["2"])
            s3_delete_prefix(self.s3, f"{btag}/")
            for v in self.variants:
                # One variant at a time: each package is as big as the model.
                self.uploads(f"{btag}-{v}", big, 1, plain=False, pack_args=variant_pack_args(v))
                self.downloads(btag, big, a.rounds, [f"2@{v}"])
                s3_delete_prefix(self.s3, f"{btag}-{v}/")
            if not a.keep_cache:
                shutil.rmtree(big, ignore_errors=True)
        self.meta["load_end"] = open("/proc/loadavg").read().split()[:3]

    # -- report
    def report(self):
        a = self.a
        rows_def = [
            ("1a", "plain_get, ranged GETs (object_store; pull's request shape, no crypto)"),
            ("1b", "plain_get, one streaming GET per object (object_store)"),
            ("2", "secure-model pull (verify, unwrap, decrypt, hash, publish to tmpfs)"),
            ("1h", "plain_get, ranged GETs, from nginx over HTTP (no crypto)"),
            ("2h", "secure-model pull from nginx over HTTP (same package)"),
            ("3", "KServe Storage.download, plain model, defaults (boto3)"),
            ("r", "rclone copy, plain model, defaults"),
            ("4", "KServe kserve-decrypt, one JWE file (A256KW+A256GCM), CDH stand-in"),
            ("5a", "plain upload (plain_put: same client, multipart 16 MiB)"),
            ("5b", "secure-model pack to s3:// (encrypt, sign, upload)"),
        ]

        def parse(key):
            row, tag = key.split(":")
            kind, mib, variant = TAG.fullmatch(tag).groups()
            return row, kind, int(mib), variant or ""

        def stats(ms, nbytes=None):
            walls = [m.wall for m in ms]
            b = nbytes if nbytes is not None else getattr(ms[0], "bytes", 0)
            return dict(
                n=len(ms),
                wmin=min(walls),
                wmed=statistics.median(walls),
                tmed=b / MiB / statistics.median(walls),
                tbest=b / MiB / min(walls),
                cpu=statistics.median(m.cpu for m in ms),
                rss=max(m.rss_mib for m in ms),
                pss=max(m.tree_pss_mib for m in ms),
                srv=statistics.median(m.server_cpu for m in ms),
                bytes=b,
            )

        sizes = {}
        for key, ms in self.results.items():
            # Every measurement carries the plaintext bytes it moved (the big model may be
            # deleted by now).
            sizes[key] = stats(ms)

        L = []
        L.append(f"# secure-model pull benchmark ({'smoke' if a.smoke else 'full'})\n")
        cpu = "?"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = open("/proc/meminfo").readline().split()[1]
        L.append(f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
                 f"{cpu}, {int(mem) // 1024} MiB RAM, Linux {platform.release()}")
        L.append(f"- load average (1/5/15 min): start {' '.join(self.meta['load_start'])}, "
                 f"end {' '.join(self.meta.get('load_end', ['?']))} (shared machine)")
        L.append(f"- started {self.meta['started']}; {a.rounds} rounds per row, rows interleaved "
                 f"round-robin; throughput = plaintext model MiB / wall second")
        vers = []
        for pkg in ("kserve-storage", "boto3", "jwcrypto"):
            try:
                vers.append(f"{pkg} {importlib.metadata.version(pkg)}")
            except importlib.metadata.PackageNotFoundError:
                pass
        sv = subprocess.run([self.bin / "secure-model", "--version"], capture_output=True,
                            text=True).stdout.strip()
        L.append(f"- versions: {sv}, {', '.join(vers)}, s3rver 3.7.1 (storage dir on {self.fs(self.s3dir)})")
        for s in self.meta.get("server", []):
            L.append(f"- server check: {s}")
        for n in self.notes:
            L.append(f"- note: {n}")
        L.append("")
        L.append("| row | what | model | n | wall min s | wall median s | MiB/s median | MiB/s best "
                 "| CPU s (user+sys, median) | peak RSS MiB | tree PSS MiB (sampled) | server CPU s |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        order = {r: i for i, (r, _) in enumerate(rows_def)}
        desc = dict(rows_def)
        def sort_key(key):
            row, kind, mib, variant = parse(key)
            return kind, mib, variant, order[row]

        for key in sorted(sizes, key=sort_key):
            row, kind, _, variant = parse(key)
            s = sizes[key]
            where = " WAN" if kind == "w" else ""
            if row in ("2", "5b"):
                where += f", {variant or 'sha256'}"
            L.append(f"| ({row}) | {desc[row]} | {s['bytes'] / MiB:.0f} MiB{where} | {s['n']} | "
                     f"{s['wmin']:.2f} | {s['wmed']:.2f} | {s['tmed']:.0f} | {s['tbest']:.0f} | "
                     f"{s['cpu']:.2f} | {s['rss']:.1f} | {s['pss']:.1f} | {s['srv']:.2f} |")
        L.append("")

        t = f"m{a.size_mib}"
        g = lambda r: sizes.get(f"{r}:{t}")
        L.append("## Ratios (medians) and targets\n")
        L.append("| ratio | value | target | result |")
        L.append("|---|---|---|---|")

        def line(name, val, target, ok):
            L.append(f"| {name} | {val} | {target} | {'met' if ok else 'MISSED'} |")

        ceil = max((x for x in (g("1a"), g("1b")) if x), key=lambda s: s["tmed"], default=None)
        if g("2") and ceil:
            which = "1a" if ceil is g("1a") else "1b"
            v = g("2")["tmed"] / ceil["tmed"]
            line(f"(2)/(1) throughput (ceiling = ({which}))", f"{v:.2f}x", ">= 0.95x", v >= 0.95)
            if g("1a"):
                v = g("2")["tmed"] / g("1a")["tmed"]
                L.append(f"| (2)/(1a) throughput (same request shape) | {v:.2f}x | info | |")
                v = g("2")["cpu"] / g("1a")["cpu"]
                line("(2)/(1a) CPU time (what crypto + hashing add)", f"{v:.2f}x", "<= 1.15x",
                     v <= 1.15)
        if g("2h") and g("1h"):
            v = g("2h")["tmed"] / g("1h")["tmed"]
            line("(2h)/(1h) throughput, nginx", f"{v:.2f}x", ">= 0.95x", v >= 0.95)
        if g("2") and g("3"):
            v = g("2")["tmed"] / g("3")["tmed"]
            line("(2)/(3) throughput", f"{v:.2f}x", "> 1x", v > 1)
            v = g("2")["cpu"] / g("3")["cpu"]
            L.append(f"| (2)/(3) CPU time | {v:.2f}x | info | |")
            L.append(f"| (3)/(2) peak RSS (largest process) | "
                     f"{g('3')['rss'] / g('2')['rss']:.1f}x | info | |")
        if g("2") and g("4"):
            v = g("2")["tmed"] / g("4")["tmed"]
            line("(2)/(4) throughput", f"{v:.1f}x", ">= 15x", v >= 15)
            if ceil:
                v = ceil["tmed"] / g("4")["tmed"]
                L.append(f"| (1)/(4) throughput (what the ceiling allows) | {v:.1f}x | info | |")
            v = g("4")["rss"] / g("2")["rss"]
            line("(4)/(2) peak RSS", f"{v:.0f}x", ">= 100x", v >= 100)
        if g("2"):
            r1 = g("2")["rss"]
            line(f"(2) peak RSS at {a.size_mib} MiB", f"{r1:.1f} MiB", "<= 64 MiB", r1 <= 64)
            big = sizes.get(f"2:m{a.big_mib}") if a.big_mib else None
            if big:
                line(f"(2) peak RSS at {a.big_mib} MiB", f"{big['rss']:.1f} MiB", "<= 64 MiB",
                     big["rss"] <= 64)
                L.append(f"| (2) RSS {a.big_mib} MiB / {a.size_mib} MiB | "
                         f"{big['rss'] / r1:.2f}x | ~1x (independent of size) | |")
        w = lambda r: sizes.get(f"{r}:w{a.wan_mib}")
        if w("2"):
            if w("3"):
                v = w("2")["tmed"] / w("3")["tmed"]
                line("WAN (2)/(3) throughput, pull vs KServe", f"{v:.2f}x", ">= 2x", v >= 2)
            if w("r"):
                v = w("2")["tmed"] / w("r")["tmed"]
                line("WAN (2)/(r) throughput, pull vs rclone", f"{v:.2f}x", ">= 3x", v >= 3)
            if w("1a"):
                v = w("2")["tmed"] / w("1a")["tmed"]
                L.append(f"| WAN (2)/(1a) throughput (plain, pull's request shape) | {v:.2f}x | info | |")
            line("WAN (2) peak RSS", f"{w('2')['rss']:.1f} MiB", "<= 64 MiB", w("2")["rss"] <= 64)
        wh = lambda r: sizes.get(f"{r}:w{a.size_mib}")
        if wh("1h") and wh("2h"):
            v = wh("2h")["tmed"] / wh("1h")["tmed"]
            L.append(f"| WAN nginx (2h)/(1h) throughput, pull vs plain ranged GETs | {v:.2f}x "
                     "| info | |")
            line("WAN nginx (2h) peak RSS", f"{wh('2h')['rss']:.1f} MiB", "<= 64 MiB",
                 wh("2h")["rss"] <= 64)
        if g("5a") and g("5b"):
            v = g("5a")["wmed"] / g("5b")["wmed"]
            line("(5b)/(5a) pack / plain upload throughput", f"{v:.2f}x", ">= 0.9x", v >= 0.9)
        for mib in (a.size_mib, a.big_mib):
            base = sizes.get(f"2:m{mib}")
            for v in self.variants:
                x = sizes.get(f"2:m{mib}-{v}")
                if base and x:
                    L.append(f"| (2) {mib} MiB {v} / sha256: throughput, CPU, peak RSS | "
                             f"{x['tmed'] / base['tmed']:.2f}x, {x['cpu'] / base['cpu']:.2f}x, "
                             f"{x['rss']:.1f} MiB | info | |")
                    line(f"(2) peak RSS at {mib} MiB, {v}", f"{x['rss']:.1f} MiB", "<= 64 MiB",
                         x["rss"] <= 64)
                p5 = sizes.get(f"5b:m{mib}-{v}")
                if g("5a") and p5 and mib == a.size_mib:
                    L.append(f"| (5b) pack {v} / (5a) plain upload throughput | "
                             f"{p5['tmed'] / g('5a')['tmed']:.2f}x | info | |")
        L.append("")

        if self.sweep:
            L.append("## secure-model pull concurrency sweep\n")
            L.append(f"Model {a.size_mib} MiB, {a.sweep_rounds} rounds per setting, interleaved. "
                     "The settings are caps of the adaptive in-flight limit; in-flight "
                     "ciphertext is bounded by --buffer-mib (16 MiB).\n")
            L.append("| --range-segments (MiB) | --read-ahead | --file-concurrency | MiB/s median | "
                     "MiB/s best | CPU s median | peak RSS MiB |")
            L.append("|---|---|---|---|---|---|---|")
            best = None
            for c, ms in self.sweep:
                s = stats(ms)
                tag_ = " (default)" if c == DEFAULT_TUNING else ""
                L.append(f"| {c[0]}{tag_} | {c[1]} | {c[2]} | {s['tmed']:.0f} | {s['tbest']:.0f} | "
                         f"{s['cpu']:.2f} | {s['rss']:.1f} |")
                if best is None or s["tmed"] > best[1]["tmed"]:
                    best = (c, s)
            d = stats(dict(self.sweep)[DEFAULT_TUNING])
            L.append("")
            L.append(f"Best: range {best[0][0]} MiB, read-ahead {best[0][1]}, file-concurrency "
                     f"{best[0][2]}: {best[1]['tmed']:.0f} MiB/s median (default: "
                     f"{d['tmed']:.0f} MiB/s). Differences under ~10% are within this machine's "
                     "noise.")
            L.append("")
        L.append(f"Reproduce: `{self.meta['command']}`")
        text = "\n".join(L) + "\n"
        raw = {k: [m.__dict__ | {"stdout": None, "stderr": None} for m in v]
               for k, v in self.results.items()}
        return text, raw

    @staticmethod
    def fs(p):
        out = subprocess.run(["stat", "-f", "-c", "%T", p], capture_output=True, text=True)
        return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--work", default=str(REPO / "target" / "bench"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--big-mib", type=int, default=4096, help="RSS check size; 0 to skip")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wan-mib", type=int, default=512, help="WAN-like store model; 0 to skip")
    ap.add_argument("--wan-rate-mib", type=float, default=32.0, help="per-connection pace")
    ap.add_argument("--wan-first-byte-ms", type=int, default=20)
    ap.add_argument("--sweep-rounds", type=int, default=2, help="0 to skip the sweep")
    ap.add_argument("--hash-variants", default=HASH_VARIANTS,
                    help="packages besides sha256 files, pulled at both sizes: HASH or "
                    "HASH-shardMIB, comma-separated; '' for none")
    ap.add_argument("--jwe-mib", type=int, default=0, help="JWE payload (default: model size)")
    ap.add_argument("--skip-jwe", action="store_true")
    ap.add_argument("--skip-kserve", action="store_true")
    ap.add_argument("--skip-nginx", action="store_true", help="no HTTP rows (1h), (2h)")
    ap.add_argument("--keep-cache", action="store_true",
                    help="keep the big model in target/bench/cache (deleted after use by default)")
    ap.add_argument("--smoke", action="store_true", help="64 MiB, 1 round, tiny sweep, 128 MiB RSS check")
    ap.add_argument("--out", default=None, help="markdown output (default target/bench/pull-bench.md)")
    a = ap.parse_args()
    if a.smoke:
        a.size_mib, a.rounds, a.sweep_rounds = 64, 1, 1
        a.big_mib = 128 if a.big_mib else 0
        a.wan_mib = 64 if a.wan_mib else 0
    out = Path(a.out) if a.out else Path(a.work) / ("pull-bench-smoke.md" if a.smoke else "pull-bench.md")

    run_and_report(Bench(a), out)


def run_and_report(b, out):
    """Runs bench `b` (its processes and directories cleaned up on exit, SIGTERM and SIGINT),
    prints its markdown report and writes it to `out` (and the raw figures next to it)."""
    b.meta["command"] = os.environ.get("PULL_BENCH_COMMAND", " ".join(sys.argv)).strip()

    def on_signal(signum, _frame):
        b.c.run()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        b.run()
        text, raw = b.report()
    finally:
        b.c.run()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"meta": b.meta, "results": raw}, indent=1))
    print(text)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
