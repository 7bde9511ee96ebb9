#!/usr/bin/env python3
"""Report module cycles inside each crate of the workspace.

Usage: python3 scripts/module_cycles.py [--verbose] [CRATE_DIR ...]

Without arguments every `crates/*` directory of the repository is checked.
Exit status: 0 when no crate has a cycle, 1 when at least one has, 2 on a
usage error.

What counts as a dependency: one module file naming another through a path
that starts with `crate::`, `super::` or `self::` (in a `use` declaration or
in code), or through a `use` of a child module. A path is followed through
re-exports (`pub use`, also glob ones) to the module that defines the item,
and a re-export itself is no dependency: a `mod.rs` or `lib.rs` that only
re-exports its children is a facade, not a party to a cycle. Method calls
are invisible to this check (it reads paths, not types).

Granularity is the module file; an inline non-test `mod x { ... }` belongs
to its file. Test-only code is left out: items under `#[cfg(test)]`,
modules named `tests`, files named `tests.rs` or `*_tests.rs`.

Each root of a crate (src/lib.rs, src/main.rs, src/bin/*.rs) is its own
module tree. A cycle is a strongly connected component with more than one
module; for each, the script prints the edges inside it with the line that
makes each one.

Standard library only, so the Rust test suite can run it anywhere Python 3
is (crates/kanban-core/tests/module_cycles.rs).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

IDENT = r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*"
ITEM_RE = re.compile(
    r"\b(?:fn|struct|enum|trait|type|const|static|union)\s+(" + IDENT + r")"
    r"|\bmacro_rules!\s*(" + IDENT + r")"
)
MOD_DECL_RE = re.compile(
    r"\b(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])"
)
PATH_ATTR_RE = re.compile(
    r"#\[\s*path\s*=\s*\"([^\"]+)\"\s*\]\s*(?:#\[[^\]]*\]\s*)*"
    r"(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;"
)
USE_RE = re.compile(r"(?<![\w$])(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]*);")
CODE_PATH_RE = re.compile(
    r"(?<![\w$:])((?:crate|super|self)(?:\s*::\s*" + IDENT + r")+)"
)
CFG_TEST_RE = re.compile(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]")
TEST_FILE_RE = re.compile(r"(^|_)tests\.rs$")


def strip_comments_and_strings(src: str) -> str:
    """Blank out comments, string and char literals, keeping offsets and newlines."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r"(?:br|rb|r)(#*)\"", src[i:])
            if m:
                close = '"' + m.group(1)
                j = src.find(close, i + m.end())
                j = n if j < 0 else j + len(close)
                blank(i, j)
                i = j
            else:
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            m = re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", src[i:])
            if m:
                blank(i, i + m.end())
                i += m.end()
            else:  # a lifetime or label
                i += 1
        else:
            i += 1
    return "".join(out)


def matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text) - 1


def item_end(text: str, start: int) -> int:
    """End offset (exclusive) of the item starting at `start` (after attributes)."""
    depth_paren = 0
    k = start
    while k < len(text):
        ch = text[k]
        if ch in "([":
            depth_paren += 1
        elif ch in ")]":
            depth_paren -= 1
        elif ch == ";" and depth_paren <= 0:
            return k + 1
        elif ch == "{" and depth_paren <= 0:
            return matching_brace(text, k) + 1
        k += 1
    return len(text)


def skip_attributes(text: str, k: int) -> int:
    while True:
        m = re.compile(r"\s*#!?\[").match(text, k)
        if not m:
            return k
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "[":
                depth += 1
            elif text[j] == "]":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        k = j + 1


def strip_test_code(text: str) -> str:
    """Blank out `#[cfg(test)]` items and inline `mod tests { ... }` blocks."""
    out = list(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    for m in CFG_TEST_RE.finditer(text):
        start = skip_attributes(text, m.end())
        blank(m.start(), item_end(text, start))
    for m in re.finditer(r"\bmod\s+tests\s*\{", text):
        blank(m.start(), matching_brace(text, m.end() - 1) + 1)
    return "".join(out)


# ---------------------------------------------------------------- use trees


def tokenize_use(tree: str) -> list[str]:
    # `$crate` (a macro body) names the defining crate from the expansion
    # site: no dependency of this file, and never resolved.
    return re.findall(r"::|\{|\}|,|\*|\$crate|" + IDENT, tree)


def expand_use(tokens: list[str]) -> list[tuple[list[str], str | None, bool]]:
    """Flatten a use tree into (segments, alias, is_glob) triples."""
    pos = 0

    def parse(prefix: list[str]) -> list[tuple[list[str], str | None, bool]]:
        nonlocal pos
        segs = list(prefix)
        results: list[tuple[list[str], str | None, bool]] = []
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "::":
                pos += 1
            elif tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    results.extend(parse(segs))
                pos += 1
                return results
            elif tok == "*":
                pos += 1
                return [(segs, None, True)]
            elif tok in (",", "}"):
                break
            elif tok == "as":
                alias = tokens[pos + 1] if pos + 1 < len(tokens) else "_"
                pos += 2
                return [(segs, alias, False)]
            else:
                if tok == "self" and segs and len(segs) == len(prefix):
                    pass  # `{self, ..}`: the prefix itself
                else:
                    segs.append(tok)
                pos += 1
        if not results:
            results.append((segs, None, False))
        return results

    out: list[tuple[list[str], str | None, bool]] = []
    while pos < len(tokens):
        if tokens[pos] == ",":
            pos += 1
            continue
        out.extend(parse([]))
    return out


# ------------------------------------------------------------ module model


@dataclass
class Module:
    path: tuple[str, ...]
    node: tuple[str, ...]  # the file module it belongs to (itself unless inline)
    file: str
    span: tuple[int, int] = (0, -1)  # byte range in the stripped file text
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    items: set[str] = field(default_factory=set)
    imports: dict[str, tuple[list[str], bool]] = field(default_factory=dict)
    globs: list[tuple[list[str], bool]] = field(default_factory=list)


@dataclass
class Edge:
    src: tuple[str, ...]
    dst: tuple[str, ...]
    file: str
    line: int
    text: str


class CrateGraph:
    def __init__(self, crate_dir: str, root_file: str):
        self.crate_dir = crate_dir
        self.root_file = root_file
        self.modules: dict[tuple[str, ...], Module] = {}
        self.texts: dict[str, str] = {}
        self.edges: list[Edge] = []
        self._load(root_file, (), is_mod_rs=True)
        for mod in list(self.modules.values()):
            if mod.node == mod.path:
                self._collect_edges(mod)

    # -- loading

    def _load(self, file: str, path: tuple[str, ...], is_mod_rs: bool) -> None:
        with open(file, encoding="utf-8") as fh:
            raw = fh.read()
        path_attrs = {m.group(2): m.group(1) for m in PATH_ATTR_RE.finditer(raw)}
        text = strip_test_code(strip_comments_and_strings(raw))
        self.texts[file] = text
        module = Module(path=path, node=path, file=file, span=(0, len(text)))
        self.modules[path] = module

        # Inline modules first, so declarations inside them get the right parent.
        inline: list[tuple[int, int, str]] = []
        for m in MOD_DECL_RE.finditer(text):
            if m.group(2) == "{":
                inline.append((m.start(), matching_brace(text, m.end() - 1), m.group(1)))

        def owner(offset: int) -> tuple[str, ...]:
            best = path
            best_start = -1
            for s, e, name in inline:
                if s < offset <= e and s > best_start:
                    best_start = s
                    best = self._inline_path(path, inline, s)
            return best

        for s, e, name in sorted(inline):
            ipath = self._inline_path(path, inline, s)
            parent = self.modules[ipath[:-1]]
            parent.children[name] = ipath
            self.modules[ipath] = Module(path=ipath, node=path, file=file, span=(s, e))

        base_dir = os.path.dirname(file)
        own_dir = base_dir if is_mod_rs else os.path.join(base_dir, os.path.splitext(os.path.basename(file))[0])
        for m in MOD_DECL_RE.finditer(text):
            if m.group(2) != ";":
                continue
            name = m.group(1)
            parent_path = owner(m.start())
            if parent_path != path:
                continue  # a file module declared inside an inline module: rare, not followed
            if name == "tests":
                continue
            if name in path_attrs:
                child_file = os.path.normpath(os.path.join(base_dir, path_attrs[name]))
                child_is_mod_rs = os.path.basename(child_file) == "mod.rs"
            else:
                flat = os.path.join(own_dir, name + ".rs")
                nested = os.path.join(own_dir, name, "mod.rs")
                if os.path.exists(flat):
                    child_file, child_is_mod_rs = flat, False
                elif os.path.exists(nested):
                    child_file, child_is_mod_rs = nested, True
                else:
                    continue
            if TEST_FILE_RE.search(os.path.basename(child_file)):
                continue
            module.children[name] = path + (name,)
            self._load(child_file, path + (name,), child_is_mod_rs)

        # Items and imports, attributed to the innermost (inline) module.
        for m in ITEM_RE.finditer(text):
            self.modules[owner(m.start())].items.add(m.group(1) or m.group(2))
        for m in USE_RE.finditer(text):
            mod = self.modules[owner(m.start())]
            is_pub = m.group(1) is not None
            for segs, alias, glob in expand_use(tokenize_use(m.group(2))):
                if not segs:
                    continue
                if glob:
                    mod.globs.append((segs, is_pub))
                else:
                    name = alias or segs[-1]
                    if name != "_":
                        mod.imports[name] = (segs, is_pub)

    @staticmethod
    def _inline_path(file_path, inline, start) -> tuple[str, ...]:
        chain = [(s, name) for s, e, name in inline if s <= start <= e]
        return file_path + tuple(name for _, name in sorted(chain))

    # -- resolution

    def resolve(self, segs: list[str], ctx: tuple[str, ...], seen=None):
        """Module that defines what `segs` names from module `ctx`.

        Returns (module path, found) or None for paths leaving the crate.
        """
        seen = seen or set()
        key = (tuple(segs), ctx)
        if key in seen:
            return None
        seen.add(key)
        if not segs:
            return (ctx, True)
        first = segs[0]
        i = 0
        if first == "crate":
            cur, i = (), 1
        elif first in ("self", "super"):
            cur = ctx
            while i < len(segs) and segs[i] in ("self", "super"):
                if segs[i] == "super":
                    if not cur:
                        return None
                    cur = cur[:-1]
                i += 1
        elif first in self.modules[ctx].children:
            cur = ctx
        elif first in self.modules[ctx].items:
            return (ctx, True)
        elif first in self.modules[ctx].imports:
            target, _ = self.modules[ctx].imports[first]
            if target and target[0] == first:
                # `use anyhow::{anyhow, ...}`: an item of another crate
                # named like the crate; resolving it again would recurse.
                return None
            return self.resolve(list(target) + segs[1:], ctx, seen)
        else:
            return None  # another crate, std, a prelude name or a local binding
        while i < len(segs) and segs[i] in self.modules[cur].children:
            cur = self.modules[cur].children[segs[i]]
            i += 1
        if i == len(segs):
            return (cur, True)
        name = segs[i]
        mod = self.modules[cur]
        if name in mod.items:
            return (cur, True)
        if name in mod.imports:
            target, _ = mod.imports[name]
            return self.resolve(list(target) + segs[i + 1 :], cur, seen)
        for glob, _ in mod.globs:
            hit = self.resolve(list(glob) + segs[i:], cur, seen)
            if hit and hit[1]:
                return hit
        return (cur, False)

    # -- edges

    def _collect_edges(self, file_mod: Module) -> None:
        text = self.texts[file_mod.file]
        inner = [m for m in self.modules.values() if m.node == file_mod.path and m.path != file_mod.path]

        def ctx_at(offset: int) -> tuple[str, ...]:
            best = file_mod
            for m in inner:
                if m.span[0] < offset <= m.span[1] and len(m.path) > len(best.path):
                    best = m
            return best.path

        def add(segs: list[str], offset: int, snippet: str) -> None:
            hit = self.resolve(segs, ctx_at(offset))
            if not hit:
                return
            dst = self.modules[hit[0]].node
            if dst != file_mod.path:
                line = text.count("\n", 0, offset) + 1
                self.edges.append(Edge(file_mod.path, dst, file_mod.file, line, " ".join(snippet.split())))

        code = list(text)
        for m in USE_RE.finditer(text):
            for k in range(m.start(), m.end()):
                if code[k] != "\n":
                    code[k] = " "
            if m.group(1) is not None:
                continue  # a re-export is a facade, not a dependency
            for segs, _, glob in expand_use(tokenize_use(m.group(2))):
                if segs:
                    add(segs, m.start(), m.group(0))
        code_text = "".join(code)
        for m in CODE_PATH_RE.finditer(code_text):
            segs = [s.strip() for s in m.group(1).split("::")]
            add(segs, m.start(), m.group(1))


def strongly_connected(nodes, edges):
    """Tarjan's algorithm, iterative."""
    graph: dict = {n: [] for n in nodes}
    for s, d in edges:
        graph.setdefault(s, []).append(d)
        graph.setdefault(d, [])
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    sccs: list = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(set(graph[start]))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(set(graph[nxt])))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(sorted(comp))
    return sccs


def crate_roots(crate_dir: str) -> list[tuple[str, str]]:
    src = os.path.join(crate_dir, "src")
    roots = []
    for name, label in (("lib.rs", "lib"), ("main.rs", "bin")):
        if os.path.exists(os.path.join(src, name)):
            roots.append((label, os.path.join(src, name)))
    bin_dir = os.path.join(src, "bin")
    if os.path.isdir(bin_dir):
        for entry in sorted(os.listdir(bin_dir)):
            full = os.path.join(bin_dir, entry)
            if entry.endswith(".rs"):
                roots.append(("bin " + entry[:-3], full))
            elif os.path.exists(os.path.join(full, "main.rs")):
                roots.append(("bin " + entry, os.path.join(full, "main.rs")))
    return roots


def modname(path: tuple[str, ...]) -> str:
    return "crate" if not path else "::".join(path)


def check_crate(crate_dir: str, verbose: bool, repo: str) -> int:
    cycles = 0
    crate = os.path.basename(os.path.normpath(crate_dir))
    for label, root in crate_roots(crate_dir):
        graph = CrateGraph(crate_dir, root)
        nodes = [p for p, m in graph.modules.items() if m.node == p]
        pairs = {(e.src, e.dst) for e in graph.edges}
        if verbose:
            print(f"{crate} ({label}): {len(nodes)} modules, {len(pairs)} edges")
            for s, d in sorted(pairs):
                print(f"    {modname(s)} -> {modname(d)}")
        for comp in strongly_connected(nodes, pairs):
            if len(comp) < 2:
                continue
            cycles += 1
            members = set(comp)
            print(f"cycle in {crate} ({label}): " + " <-> ".join(modname(p) for p in comp))
            shown = set()
            for e in sorted(graph.edges, key=lambda e: (e.src, e.dst, e.line)):
                if e.src in members and e.dst in members and (e.src, e.dst, e.line) not in shown:
                    shown.add((e.src, e.dst, e.line))
                    rel = os.path.relpath(e.file, repo)
                    print(f"    {modname(e.src)} -> {modname(e.dst)}  {rel}:{e.line}: {e.text}")
    return cycles


def main(argv: list[str]) -> int:
    verbose = False
    dirs = []
    for arg in argv:
        if arg in ("-v", "--verbose"):
            verbose = True
        elif arg in ("-h", "--help"):
            print(__doc__)
            return 0
        elif arg.startswith("-"):
            print(f"unknown option {arg}", file=sys.stderr)
            return 2
        else:
            dirs.append(arg)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not dirs:
        crates = os.path.join(repo, "crates")
        dirs = [os.path.join(crates, d) for d in sorted(os.listdir(crates))]
    checked = 0
    total = 0
    for d in dirs:
        if not os.path.isdir(os.path.join(d, "src")):
            if argv:
                print(f"{d}: no src/ directory", file=sys.stderr)
                return 2
            continue
        checked += 1
        total += check_crate(d, verbose, os.getcwd())
    if checked == 0:
        print("no crate to check", file=sys.stderr)
        return 2
    if total:
        print(f"{total} module cycle(s) in {checked} crate(s)")
        return 1
    print(f"no module cycles in {checked} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
