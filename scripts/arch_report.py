#!/usr/bin/env python3
"""Architecture report of the workspace, from the source alone (no build needed).

Prints, for the library and binary sources (tests and benches excluded):
  1. the crate graph (workspace crates and which of them each depends on);
  2. the module graph of every crate: an edge A -> B when a file of module A names
     `crate::B` (or `super::B` from a sibling), with the import cycles found (strongly
     connected components of more than one module);
  3. the longest functions (lines from `fn` to its closing brace);
  4. every place that reads the process environment: std::env::var/vars/var_os/vars_os
     and clap's `env = "NAME"` argument attributes (reading argv is not counted);
  5. the core's boundaries (issue 19): no environment read and no setting variable or
     KServe name in the core's code (comments aside); no public way to plaintext that skips
     the signed digests (the decrypting primitives are crate-private, public only through
     the `hazmat` feature's module); every storage relaxation through its one gate.

Usage: scripts/arch_report.py [--top N] [--check] [ROOT]
  --check: exit 1 when a boundary of section 5 is broken (CI runs it).
"""

import argparse
import pathlib
import re
import sys
import tomllib

ENV_READ = re.compile(r"std::env::(var|vars|var_os|vars_os)\b|\benv::(var|vars|var_os|vars_os)\(")
CLAP_ENV = re.compile(r'^\s*(#\[arg\(|\s).*\benv\s*=\s*"[A-Za-z_]+"')
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def crates(root):
    ws = tomllib.loads((root / "Cargo.toml").read_text())
    out = {}
    for member in ws["workspace"]["members"]:
        d = root / member
        manifest = tomllib.loads((d / "Cargo.toml").read_text())
        name = manifest["package"]["name"]
        deps = set()
        for section in ("dependencies",):
            for dep in manifest.get(section, {}):
                deps.add(dep)
        out[name] = (d, deps)
    return out


def strip_code(text):
    """Blanks out comments and string literals (keeps line structure)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:i + 4])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def source_files(crate_dir):
    src = crate_dir / "src"
    for p in sorted(src.rglob("*.rs")):
        rel = p.relative_to(src)
        if rel.name == "tests.rs" or "tests" in rel.parts[:-1]:
            continue
        yield p, rel


def drop_test_modules(code):
    """Removes `#[cfg(test)] mod ... { ... }` blocks (already comment/string free)."""
    out = code
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", out)
        if not m:
            return out
        depth, j = 0, m.end() - 1
        while j < len(out):
            if out[j] == "{":
                depth += 1
            elif out[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out = out[:m.start()] + re.sub(r"[^\n]", " ", out[m.start():j + 1]) + out[j + 1:]


def module_of(rel):
    parts = list(rel.with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def top(parts):
    return parts[0] if parts else "(root)"


def functions(code):
    lines = code.split("\n")
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            for ch in lines[j]:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not started and depth == 0:
                    break
            else:
                if started and depth == 0:
                    yield m.group(6), i + 1, j - i + 1
                    break
                continue
            break


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


SETTING_NAME = re.compile(r'^\s*[A-Z0-9_]+\s*:\s*\w+\s*=\s*(?:s|store|secret|net)\(\s*"([A-Za-z0-9_]+)"', re.M)

# The decrypting primitives, and what makes each unreachable from the default public API.
DECRYPTING = [
    ("crypto/opening.rs", r"pub struct SegmentOpener\b"),
    ("crypto/opening.rs", r"pub struct StreamDecryptor\b"),
    ("crypto/opening.rs", r"pub fn decrypt_all\b"),
]
CRATE_PRIVATE = [
    ("crypto/mod.rs", r"pub\(crate\) mod opening;"),
    ("keys/unlock.rs", r"pub\(crate\) async fn unlock_dek\b"),
    ("verify/manifest.rs", r"pub\(crate\) fn file_opener\b"),
    ("verify/manifest.rs", r"pub\(crate\) fn unlock\b"),
    ("verify/manifest.rs", r"pub\(crate\) struct UnlockedManifest\b"),
    ("loader/mod.rs", r"\n    async fn unlock\("),
    ("lib.rs", r'#\[cfg\(feature = "hazmat"\)\]\s*pub mod hazmat;'),
]
# The one gate of each relaxation: where its decision may be made.
GATES = {
    r"\.with_allow_http\(": "storage/client.rs",
    r"\.with_allow_invalid_certificates\(": "storage/client.rs",
    r"Relaxation::PlainHttpStorage\)": "storage/client.rs",
    r"Relaxation::UnverifiedStorageTls\)": "storage/client.rs",
    r"\.plain_http_kbs\(\)": "keys/kbs/client.rs",
    r"\.sample_attester\(\)": "attest/sample.rs",
    r"\.disk_plaintext\(\)": "loader/destination.rs",
}


def boundaries(root):
    """Section 5: (report lines, violations)."""
    core = root / "secure-model-core" / "src"
    names = set(SETTING_NAME.findall((root / "secure-model-settings/src/registry.rs").read_text()))
    lines, bad = [], []
    for p in sorted(core.rglob("*.rs")):
        rel = str(p.relative_to(core))
        if rel == "test_support.rs":
            continue
        # Comments go; string literals stay: a message naming a variable is knowledge of it.
        text = drop_test_modules(strip_comments(p.read_text()))
        for i, line in enumerate(text.split("\n"), 1):
            for n in names:
                if re.search(rf"\b{re.escape(n)}\b", line):
                    bad.append(f"core names setting {n}: secure-model-core/src/{rel}:{i}")
            if re.search(r"kserve", line, re.I):
                bad.append(f"core names KServe: secure-model-core/src/{rel}:{i}")
            if ENV_READ.search(line):
                bad.append(f"core reads the environment: secure-model-core/src/{rel}:{i}")
    lines.append(f"core: {len(names)} setting names and KServe checked against every file")
    for rel, pat in DECRYPTING + CRATE_PRIVATE:
        ok = re.search(pat, (core / rel).read_text()) is not None
        lines.append(f"{'ok  ' if ok else 'FAIL'} {rel}: {pat}")
        if not ok:
            bad.append(f"decrypting path not confined: {rel} lacks {pat}")
    hazmat = (core / "hazmat.rs").read_text()
    for item in ("SegmentOpener", "StreamDecryptor", "decrypt_all"):
        for p in sorted(core.rglob("*.rs")):
            rel = str(p.relative_to(core))
            code = strip_comments(p.read_text())
            if rel not in ("hazmat.rs", "crypto/opening.rs") and re.search(rf"pub use [^;]*\b{item}\b", code):
                bad.append(f"{item} re-exported publicly outside hazmat: {rel}")
        if item not in hazmat:
            bad.append(f"hazmat does not re-export {item}")
    for pat, home in GATES.items():
        where = []
        for p in sorted(core.rglob("*.rs")):
            rel = str(p.relative_to(core))
            if rel == "danger.rs":  # where the relaxations are defined
                continue
            code = drop_test_modules(strip_code(p.read_text()))
            if re.search(pat, code):
                where.append(rel)
        lines.append(f"gate {pat!r}: {', '.join(where) or '(unused)'}")
        for rel in where:
            if rel != home:
                bad.append(f"relaxation decided outside its gate ({home}): {pat} in {rel}")
    return lines, bad


def strip_comments(text):
    """Blanks out comments only (string literals stay)."""
    out = []
    for line in text.split("\n"):
        # A `//` inside a string literal is rare in the core; good enough for a boundary check.
        m = re.search(r"(^|[^:\"])//", line)
        out.append(line[: m.start() + len(m.group(1))] if m else line)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("root", nargs="?", default=pathlib.Path(__file__).resolve().parent.parent)
    a = ap.parse_args()
    root = pathlib.Path(a.root)
    cs = crates(root)
    names = set(cs)

    print("== crate graph (workspace dependencies)")
    for name in sorted(cs):
        d, deps = cs[name]
        inner = sorted(x for x in deps if x in names)
        print(f"{name} -> {', '.join(inner) if inner else '(none)'}")

    fns, env_reads = [], []
    print("\n== module graph per crate (A -> B: a file of A names crate::B)")
    for name in sorted(cs):
        d, _ = cs[name]
        # Benchmarks, examples and the test-support crate are not the product: their module
        # graphs are shown, but their functions and environment reads are not counted.
        if name.endswith("benches") or "examples" in str(d):
            continue
        product = not name.endswith("testkit")
        edges, nodes = {}, set()
        for p, rel in source_files(d):
            code = drop_test_modules(strip_code(p.read_text()))
            mod = module_of(rel)
            a_ = top(mod)
            nodes.add(a_)
            refs = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code))
            for b in refs:
                if b != a_ and (d / "src" / b).exists() or (d / "src" / f"{b}.rs").exists():
                    if b != a_:
                        edges.setdefault(a_, set()).add(b)
                        nodes.add(b)
            if not product:
                continue
            for fname, line, length in functions(code):
                fns.append((length, f"{p.relative_to(root)}:{line}", fname))
            raw = p.read_text().split("\n")
            for i, line in enumerate(code.split("\n"), 1):
                # clap's `env = "NAME"` argument attribute reads the environment too.
                clap_env = CLAP_ENV.search(raw[i - 1]) if i - 1 < len(raw) else None
                if ENV_READ.search(line) or clap_env:
                    shown = raw[i - 1].strip() if clap_env else line.strip()
                    env_reads.append(f"{p.relative_to(root)}:{i}: {shown}")
        print(f"-- {name}")
        for a_ in sorted(nodes):
            tgt = sorted(edges.get(a_, ()))
            print(f"   {a_} -> {', '.join(tgt) if tgt else '(none)'}")
        cyc = sccs(nodes, edges)
        print(f"   cycles: {'; '.join(' <-> '.join(c) for c in cyc) if cyc else 'none'}")

    print(f"\n== longest functions (top {a.top}; library and binary code; tests, benches, examples and the testkit excluded)")
    for length, where, fname in sorted(fns, reverse=True)[: a.top]:
        print(f"{length:5} {fname:32} {where}")
    over = sum(1 for f in fns if f[0] > 60)
    print(f"functions: {len(fns)}; longer than 60 lines: {over}")

    print(f"\n== places that read the process environment: {len(env_reads)}")
    for r in env_reads:
        print(r)

    lines, bad = boundaries(root)
    print(f"\n== the core's boundaries: {len(bad)} violation(s)")
    for l in lines:
        print(l)
    for b in bad:
        print(f"VIOLATION {b}")
    if a.check and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
