"""The house rules, checked on the source text alone (ast; nothing of the package is imported, so this runs in
a second): module and function sizes, an acyclic import graph, a small package root, no ``sys.path`` edits, and
tests that import the package only (never ``recipes/``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lswag_lightning"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: the shared leaves the package root may hold
MAX_ROOT_MODULES = 6

# Known exceptions, each fixed on another branch that the lead merges; the lead removes these entries at the merge.
OVERSIZED_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def _python_files(*folders: Path) -> list[Path]:
    skip = {".venv", "build", "site", ".git"}
    return sorted(
        p for folder in folders for p in folder.rglob("*.py") if not skip.intersection(p.relative_to(ROOT).parts)
    )


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_no_module_over_500_lines():
    long = {
        _rel(p): n
        for p in _python_files(PACKAGE)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES and _rel(p) not in OVERSIZED_MODULES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_no_function_over_80_lines():
    long = {}
    for path in _python_files(PACKAGE):
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                name = f"{_rel(path)}:{node.name}"
                if lines > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS:
                    long[name] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them by job): {long}"


def test_the_package_root_keeps_only_the_shared_leaves():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_ROOT_MODULES, f"{len(modules)} modules at the package root: {modules}"


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never executed: annotations only)."""
    return {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in ast.walk(node)
    }


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports, at module level or inside functions. ``from a.b import c`` counts as
    ``a.b.c`` when that is a module, else as ``a.b``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = _tree(path)
    typing_only = _typing_only(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def test_no_import_cycle():
    files = _python_files(PACKAGE)
    modules = {_module_name(p) for p in files}
    graph = {_module_name(p): _imports(p, modules) for p in files}
    # Tarjan's strongly connected components: every component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles (module-level and function-level imports): {cycles}"


def _edits_sys_path(tree: ast.Module) -> list[int]:
    """Lines that change ``sys.path`` (a call of one of its methods, an assignment to it or into it)."""

    def is_sys_path(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_sys_path(node.func.value):
            lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if is_sys_path(target) or (isinstance(target, ast.Subscript) and is_sys_path(target.value)):
                    lines.append(node.lineno)
    return lines


#: the one documented place that may touch ``sys.path``: a family file's ``python_path:`` folders are on the import
#: path only while the family's callable is imported and built, then removed (tests/test_spaces_config.py checks it)
SYS_PATH_ALLOWED = {"lswag_lightning/spaces/family/annotations.py"}


def test_no_sys_path_edits_anywhere():
    edits = {
        _rel(p): lines
        for p in _python_files(ROOT)
        if (lines := _edits_sys_path(_tree(p))) and _rel(p) not in SYS_PATH_ALLOWED
    }
    assert not edits, f"sys.path edits (import the package instead): {edits}"


@pytest.mark.parametrize("path", _python_files(ROOT / "tests"), ids=_rel)
def test_tests_import_the_package_only(path):
    if path == Path(__file__).resolve():
        return
    tree = _tree(path)
    imports = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names] + [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ]
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    paths = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.startswith("recipes/")
        and len(node.value) > len("recipes/")  # a file under recipes/, not the word used as a text marker
    ]
    assert not [m for m in imports if m.split(".")[0] == "recipes"] and not paths, (
        f"{_rel(path)} reaches into recipes/ ({imports}, {paths}): test the package's code instead"
    )
