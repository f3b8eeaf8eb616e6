#!/usr/bin/env python3
"""Checks every #include "..." in Kiln's sources against docs/layers.txt.

Fails (exit 1, one line per offence) on an include of a directory the including directory may
not use, on a source directory docs/layers.txt does not list, and on a cycle in the allowed
graph itself. Prints a summary line either way.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["include", "common", "ir", "frontend", "backend", "convert", "runtime", "api", "tools", "python/src", "python/tf_op", "examples"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_layers(path):
    allowed = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            sys.exit(f"{path}:{number}: expected 'directory: allowed directories'")
        name, deps = line.split(":", 1)
        allowed[name.strip()] = set(deps.split())
    return allowed


def unit(directory):
    """The component a directory belongs to for the cycle check."""
    parts = directory.split("/")
    if directory == "include/kiln":
        return "common"
    if parts[0] in ("frontend", "backend") and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0]


def find_cycle(directories):
    """A cycle among the units of the allowed graph, or None."""
    allowed = {}
    for d, deps in directories.items():
        allowed.setdefault(unit(d), set()).update(unit(x) for x in deps)
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(allowed.get(node, ())):
            if dep == node:
                continue
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep] if dep in stack else [node, dep]
            if dep not in state:
                cycle = visit(dep, stack + [dep])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(allowed):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def main():
    allowed = read_layers(ROOT / "docs" / "layers.txt")
    problems = []
    cycle = find_cycle(allowed)
    if cycle:
        problems.append("docs/layers.txt: the allowed graph has a cycle: " + " -> ".join(cycle))
    files = [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*")) if p.suffix in (".h", ".cc", ".cu")]
    checked = 0
    for path in files:
        rel = path.relative_to(ROOT)
        directory = str(rel.parent)
        if directory not in allowed:
            problems.append(f"{rel}: directory '{directory}' is not listed in docs/layers.txt")
            continue
        for match in INCLUDE.finditer(path.read_text(errors="replace")):
            target = match.group(1)
            if target.startswith("kiln/"):
                target = "include/" + target  # public headers: -I include
            target_dir = str(pathlib.PurePosixPath(target).parent)
            checked += 1
            if target_dir in (directory, "."):
                continue
            if target_dir not in allowed.get(directory, set()):
                line = path.read_text(errors="replace").count("\n", 0, match.start()) + 1
                problems.append(f"{rel}:{line}: includes \"{match.group(1)}\" but '{directory}' may not use "
                                f"'{target_dir}' (docs/layers.txt)")
    for p in problems:
        print(p)
    print(f"layering: {len(files)} files, {checked} includes checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
