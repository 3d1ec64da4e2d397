"""The node-cache benchmark of issue 22: 4 pods' worth of pulls of one package on one node from
the WAN-like store (benches/src/bin/wan_proxy in front of s3rver), with and without the node
cache: origin bytes and wall time for the first and the later pulls; a pull from a warm cache
vs a plain `cp` of the same ciphertext bytes into tmpfs. Prints one markdown table with the
ratios and the issue's targets (met / MISSED), measured in the same run.

Origin bytes are what the store (s3rver) wrote to its sockets during each pull (`wchar` of
/proc/<pid>/io of its process tree), so they count every response byte: data objects,
manifest, keys file, headers."""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pull_bench as pb  # noqa: E402

MiB = pb.MiB


def wchar(pid):
    """Bytes the store's process tree passed to write-family calls (s3rver answers with
    writev, which /proc/<pid>/io counts; send() would not be)."""
    total = 0
    for p in pb.tree(pid):
        try:
            for line in Path(f"/proc/{p}/io").read_text().splitlines():
                if line.startswith("wchar:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class CacheBench(pb.Bench):
    def pull(self, dest, cache=None, src=None):
        src = src or f"s3://{pb.BUCKET}/{self.tag}/pkg"
        cmd = [self.bin / "secure-model", "pull", src, dest,
               "--trusted-key", self.pk, "--key", f"local:{self.kek}", "--json"]
        if cache:
            cmd += ["--cache", cache]
        before = wchar(self.s3rver.pid)
        m = pb.measure(cmd, self.env, self.servers)
        m.origin = wchar(self.s3rver.pid) - before
        m.report = json.loads(m.stdout)
        self.check_copy(self.model, dest, "pull")
        shutil.rmtree(dest, ignore_errors=True)
        return m

    def run(self):
        a = self.a
        self.shm = self.c.dir(Path(tempfile.mkdtemp(prefix="cache-bench.", dir="/dev/shm")))
        self.start_servers()
        self.keygen()
        self.model, _ = pb.ensure_model(self.cache, a.size_mib)
        self.tag = f"c{a.size_mib}"
        self.uploads(self.tag, self.model, 1, plain=False)
        wport = self.start_wan_proxy(self.endpoint.rsplit(":", 1)[1], f"WAN-like store (tag {self.tag})")
        self.wan = self.servers[-1]
        self.env = dict(self.env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{wport}")
        disk = self.c.dir(Path(tempfile.mkdtemp(prefix="node-cache.", dir=self.work)))
        # The same package as a local directory on tmpfs: a pull's decrypt-and-verify ceiling.
        local = self.shm / "local-pkg"
        subprocess.run([self.bin / "secure-model", "mirror", f"s3://{pb.BUCKET}/{self.tag}/pkg", local,
                        "--trusted-key", self.pk], env=self.env, check=True, stdout=subprocess.DEVNULL)
        rows = {}
        for r in range(a.rounds):
            pb.log(f"round {r + 1}: 4 pulls without a cache")
            rows.setdefault("plain", []).append([self.pull(self.shm / "p") for _ in range(a.pods)])
            cache = disk / f"round{r}"
            pb.log(f"round {r + 1}: 4 pulls through a cold node cache")
            rows.setdefault("cached", []).append([self.pull(self.shm / "p", cache) for _ in range(a.pods)])
            # Warm cache on tmpfs vs cp of the same bytes (both from the page cache).
            objects = cache / "objects"
            size = sum(p.stat().st_size for p in objects.iterdir())
            cp = pb.measure(["cp", "-r", objects, self.shm / "cp"], self.env, [])
            cp.bytes = size
            shutil.rmtree(self.shm / "cp", ignore_errors=True)
            rows.setdefault("cp", []).append(cp)
            warm = self.pull(self.shm / "p", cache)
            warm.bytes = size
            rows.setdefault("warm", []).append(warm)
            lp = self.pull(self.shm / "p", src=local)
            lp.bytes = size
            rows.setdefault("local", []).append(lp)
            shutil.rmtree(cache, ignore_errors=True)
        self.rows = rows
        self.ciphertext = rows["plain"][0][0].report["ciphertext_bytes"]

    def report(self):
        a, rows, ct = self.a, self.rows, self.ciphertext
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        plain_first = med([r[0].wall for r in rows["plain"]])
        plain_later = med([r[i].wall for r in rows["plain"] for i in range(1, a.pods)])
        cold = med([r[0].wall for r in rows["cached"]])
        later = med([r[i].wall for r in rows["cached"] for i in range(1, a.pods)])
        origin_plain = med([sum(m.origin for m in r) for r in rows["plain"]])
        origin_cached = med([sum(m.origin for m in r) for r in rows["cached"]])
        cp_rate = med([m.bytes / MiB / m.wall for m in rows["cp"]])
        warm_rate = med([m.bytes / MiB / m.wall for m in rows["warm"]])
        local_rate = med([m.bytes / MiB / m.wall for m in rows["local"]])
        hits = [m.report["cache"]["hits"] for r in rows["cached"] for m in r[1:]]
        lines = [
            f"# Node cache benchmark ({a.size_mib} MiB model, {a.pods} pulls per round, "
            f"{a.rounds} rounds, medians)",
            "",
            f"Command: `{self.meta.get('command', '')}`. Store: s3rver behind wan_proxy "
            f"({a.wan_rate_mib} MiB/s per connection, {a.wan_first_byte_ms} ms first byte). "
            f"Package ciphertext: {ct} bytes.",
            "",
            "| row | wall s | origin bytes | ratio |",
            "|---|---|---|---|",
            f"| no cache: first pull | {plain_first:.2f} | {rows['plain'][0][0].origin} | |",
            f"| no cache: later pulls | {plain_later:.2f} | {rows['plain'][0][1].origin} | |",
            f"| no cache: {a.pods} pulls | | {origin_plain} | {origin_plain / ct:.3f}× one copy |",
            f"| cache: first (cold) pull | {cold:.2f} | {rows['cached'][0][0].origin} | "
            f"{cold / plain_first:.3f}× the no-cache pull's time |",
            f"| cache: later pulls | {later:.2f} | {rows['cached'][0][1].origin} | "
            f"{later / plain_later:.3f}× the no-cache time |",
            f"| cache: {a.pods} pulls | | {origin_cached} | {origin_cached / ct:.3f}× one copy |",
            f"| warm-cache pull (tmpfs cache) | | | {warm_rate:.0f} MiB/s |",
            f"| `cp` of the cached objects into tmpfs | | | {cp_rate:.0f} MiB/s |",
            f"| pull of the package from a tmpfs directory (no cache; the decrypt-and-verify ceiling) | | | {local_rate:.0f} MiB/s |",
            "",
            f"Later cached pulls read every object from the cache: hits per pull {sorted(set(hits))}.",
            "",
            "Targets:",
        ]

        def line(name, val, target, ok):
            lines.append(f"- {name}: {val} (target {target}) — {'met' if ok else 'MISSED'}")

        line(f"origin bytes for {a.pods} pulls through the cache", f"{origin_cached / ct:.3f}× one copy",
             "≤ 1.05×", origin_cached <= 1.05 * ct)
        line("warm-cache pull vs cp", f"{warm_rate / cp_rate:.2f}×", "≥ 0.8×", warm_rate >= 0.8 * cp_rate)
        lines.append(f"- (for reference) warm-cache pull vs a pull from a local tmpfs package: "
                     f"{warm_rate / local_rate:.2f}×")
        line("cold-cache first pull vs no-cache pull", f"{cold / plain_first:.3f}× the time",
             "within 5%", cold <= 1.05 * plain_first)
        raw = {k: [[vars_of(m) for m in r] if isinstance(r, list) else vars_of(r) for r in v]
               for k, v in rows.items()}
        return "\n".join(lines) + "\n", raw


def vars_of(m):
    return {k: v for k, v in vars(m).items() if k not in ("stdout", "stderr")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin-dir", default=str(pb.REPO / "target" / "release"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--work", default=str(pb.REPO / "target" / "bench"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--pods", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--wan-rate-mib", type=float, default=32.0, help="per-connection pace")
    ap.add_argument("--wan-first-byte-ms", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help="64 MiB, 1 round")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    a.hash_variants = ""
    if a.smoke:
        a.size_mib, a.rounds = 64, 1
    out = Path(a.out) if a.out else Path(a.work) / ("cache-bench-smoke.md" if a.smoke else "cache-bench.md")
    pb.run_and_report(CacheBench(a), out)

if __name__ == "__main__":
    main()
