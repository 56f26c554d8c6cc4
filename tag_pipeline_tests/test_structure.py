"""The code's shape: no import cycle among the package's modules or the tests' (imports inside
functions count), and tests share code through ``support.py`` and data modules, never by
importing ``conftest`` or another test module."""

from __future__ import annotations

import ast
from pathlib import Path

from tag_pipeline_tests.support import REPO_ROOT


def _imports(root: Path) -> dict[str, set[str]]:
    """Module name -> the modules of the same package it imports (anywhere in its body)."""
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package_or_the_tests():
    for package in ("tag_pipeline", "tag_pipeline_tests"):
        assert _cycles(_imports(REPO_ROOT / package)) == [], package


def test_tests_share_code_through_support_not_through_conftest_or_test_modules():
    graph = _imports(REPO_ROOT / "tag_pipeline_tests")
    wrong = sorted((name, target) for name, targets in graph.items() for target in targets
                   if target.endswith(".conftest") or target.rsplit(".", 1)[-1].startswith("test_"))
    assert wrong == []


# The serving path's modules, each importing only modules before it: the array-level stages
# (thresholds and hierarchy, fusion, the refiner) and the bundle (the artifact) below the
# stages that read products (inputs, backends), explanations and the driver, ``serving``.
SERVING_LAYERS = ("scoring", "fusion", "bundle", "refiner", "inputs", "backends", "explain",
                  "serving")
# What tags products, and so must do it through ``serving``.
SERVING_CONSUMERS = ("tag_pipeline.lib.tags.tagging", "tag_pipeline.lib.models.pyfunc",
                     "tag_pipeline.lib.models.refiner_pyfunc", "tag_pipeline.lib.cli.evaluation",
                     "tag_pipeline.defs.refiner.assets")


def test_the_serving_path_runs_in_one_direction():
    graph = _imports(REPO_ROOT / "tag_pipeline")
    layer = {f"tag_pipeline.lib.models.{name}": i for i, name in enumerate(SERVING_LAYERS)}
    upward = sorted((name, target) for name in layer for target in graph[name]
                    if target in layer and layer[target] >= layer[name])
    assert upward == []
    serving = "tag_pipeline.lib.models.serving"
    assert not [name for name, targets in graph.items() if serving in targets
                and name not in SERVING_CONSUMERS]
    for consumer in SERVING_CONSUMERS:
        assert serving in graph[consumer], consumer
        assert not graph[consumer] & {"tag_pipeline.lib.models.backends",
                                      "tag_pipeline.lib.models.explain"}, consumer
