"""The package's shape: no import circles, models that import no objective or loop, and notebooks
that import from a handful of places."""
import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vp_utils"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _loaded(name: str) -> list[str]:
    """What importing `name` runs: its packages' __init__ files, then the module itself."""
    parts = name.split(".")
    return [m for m in (".".join(parts[:k]) for k in range(1, len(parts) + 1)) if m in MODULES]


def imports(module: str) -> set[str]:
    """The package modules that importing `module` runs directly (relative imports resolved)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.update(_loaded(target))
            found.update(m for alias in node.names for m in _loaded(f"{target}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found.update(m for alias in node.names for m in _loaded(alias.name))
    ancestors = set(_loaded(module))  # a module's own packages are already importing when it runs
    return found - ancestors


GRAPH = {module: imports(module) for module in MODULES}


def _circle() -> list[str] | None:
    """One import circle of the package, or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        stack.pop()
        return None

    return next((found for module in sorted(GRAPH) if module not in state and (found := visit(module))), None)


def test_the_package_has_no_import_circle():
    assert _circle() is None, " -> ".join(_circle())


def test_the_circle_check_can_fail(monkeypatch):
    """The graph holds the edges it should, and the circle the package once had would be found."""
    assert "vp_utils.training.checkpoint" in GRAPH["vp_utils.training.recipes"]
    assert "vp_utils.lab.checks" in GRAPH["vp_utils.models.vit"]
    monkeypatch.setitem(GRAPH, "vp_utils.training.checkpoint",
                        GRAPH["vp_utils.training.checkpoint"] | {"vp_utils.training.recipes"})
    assert _circle() == ["vp_utils.training.checkpoint", "vp_utils.training.recipes", "vp_utils.training.checkpoint"]


def test_models_import_no_objective_and_no_training():
    for module, targets in GRAPH.items():
        if module.startswith("vp_utils.models"):
            wrong = sorted(t for t in targets if t.startswith(("vp_utils.objectives", "vp_utils.training")))
            assert not wrong, f"{module} imports {wrong}"


def test_notebooks_import_vp_utils_from_at_most_ten_places():
    places = set()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                places.update(re.findall(r"^\s*(?:from|import) (vp_utils[\w.]*)", "".join(cell["source"]), re.M))
    assert "vp_utils.data" in places and len(places) <= 10, sorted(places)
