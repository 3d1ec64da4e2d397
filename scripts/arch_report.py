#!/usr/bin/env python3
"""Architecture report of the workspace, from the source alone (no build needed).

Prints, for the library and binary sources (tests and benches excluded):
  1. the crate graph (workspace crates and which of them each depends on);
  2. the module graph of every crate: an edge A -> B when a file of module A names
     `crate::B` (or `super::B` from a sibling), with the import cycles found (strongly
     connected components of more than one module);
  3. the longest functions (lines from `fn` to its closing brace);
  4. every place that reads the process environment: std::env::var/vars/var_os/vars_os
     and clap's `env = "NAME"` argument attributes (reading argv is not counted).

Usage: scripts/arch_report.py [--top N] [ROOT]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
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


if __name__ == "__main__":
    main()
