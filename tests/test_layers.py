"""The package layout of DESIGN.md holds: a package imports only packages in rows above its own
(lazy imports inside functions count too), the kubelet none of the API server's, and no module
imports itself back through others.

`python tests/test_layers.py` prints the package graph: each package and what it imports."""
from __future__ import annotations

import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# DESIGN.md's table, bottom up (cluster DNS is `clusterdns`: dnspython owns `dns`).
LAYERS = ["linux", "cgroups", "overlay", "netns", "kubeapi", "runtime", "shim", "cni", "cri",
          "apiserver", "controllers", "proxy", "clusterdns", "kubelet"]


def _modules() -> dict[str, str]:
    """Every module of the project's packages: dotted name -> file."""
    found = {}
    for package in LAYERS:
        for root, dirs, files in os.walk(os.path.join(REPO, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(root, name), REPO)[:-3].replace(os.sep, ".")
                    found[rel.removesuffix(".__init__")] = os.path.join(root, name)
    return found


def _imports(module: str, path: str, known: dict[str, str]) -> set[str]:
    """The project modules `module` imports (the longest known prefix of each name)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            # `from package import module` needs that module; `from module import name`, the
            # module that holds the name.
            names.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                         for alias in node.names)
    found = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(module, path, known) for module, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {package: set() for package in LAYERS}
    for module, imported in _graph().items():
        for other in imported:
            a, b = module.split(".")[0], other.split(".")[0]
            if a != b:
                edges[a].add(b)
    return edges


def test_packages_import_only_the_rows_above_their_own():
    upward = [f"{a} imports {b}" for a, imported in package_graph().items() for b in imported
              if LAYERS.index(b) > LAYERS.index(a)]
    assert upward == []


def test_the_kubelet_reaches_the_api_server_only_over_rest():
    assert "apiserver" not in package_graph()["kubelet"]


def test_no_module_imports_itself_back():
    assert _cycles(_graph()) == []


if __name__ == "__main__":
    for package, imported in package_graph().items():
        print(f"{package:12} -> {', '.join(sorted(imported, key=LAYERS.index)) or '-'}")
    sys.exit(0)
