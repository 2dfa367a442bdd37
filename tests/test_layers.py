"""The collector's packages are layers: a module imports its own package and lower layers only,
and packages on one layer never import each other. ``driftline.agent`` and
``driftline.detectors`` stand below the collector and never import it, and no module names one
of them without ``driftline.`` (installed, only the namespaced names exist). Read from the
source with ``ast`` (imports inside functions count too), so a wrong import fails here rather
than as a cycle at run time."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. Equal numbers are one layer: they may not import each other.
LAYERS = {
    "core": 0,
    "store": 1,
    "consume": 2,
    "drift": 3,
    "alerting": 3,
    "audit": 3,
    "golive": 4,
    "web": 5,
    "runtime": 6,
    "cli": 7,
}
TOPS = ("agent", "collector", "detectors")  # folders of the repository, driftline.* installed
# What each of them may import of the others.
ALLOWED_TOP = {"agent": {"agent"}, "detectors": {"detectors"}}


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import names, with its line; ``from a import b`` names ``a.b`` too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _inside(name: str) -> list[str]:
    """A dotted name's parts below ``driftline``; [] for a name outside it."""
    parts = name.split(".")
    return parts[1:] if parts[0] == "driftline" else []


def _package(module: str) -> str | None:
    """The collector package a dotted name falls in, or None outside collector's packages."""
    parts = _inside(module)
    if parts[:1] != ["collector"] or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def violations(module: str, source: str) -> list[str]:
    """What is wrong with the imports of ``module`` (dotted name), given its source."""
    found: dict[tuple[int, str], str] = {}
    top = _inside(module)[0]
    own = _package(module)
    for line, name in imported(ast.parse(source)):
        if name.split(".")[0] in TOPS:
            found.setdefault(
                (line, "bare"), f"{module}:{line} imports {name}: name it driftline.{name}"
            )
            continue
        parts = _inside(name)
        if top in ALLOWED_TOP:
            if parts[:1] and parts[0] in set(TOPS) - ALLOWED_TOP[top]:
                found[line, top] = f"{module}:{line} imports {name}: {top}/ stands below it"
            continue
        if top != "collector" or parts[:1] != ["collector"] or len(parts) == 1:
            continue
        if parts[1] not in LAYERS:
            # ``from driftline.collector import ledger`` hides the layer the module is in.
            found[line, name] = f"{module}:{line} imports {name}: name its package"
            continue
        target = parts[1]
        if own is not None and target != own and LAYERS[target] >= LAYERS[own]:
            kind = "sideways" if LAYERS[target] == LAYERS[own] else "upward"
            found[line, target] = f"{module}:{line} imports {name}: {kind}, {own} -> {target}"
    return list(found.values())


def _modules() -> Iterator[tuple[str, Path]]:
    for top in TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            yield "driftline." + ".".join(relative.parts).removesuffix(".__init__"), path


def test_no_module_imports_a_higher_layer_or_a_neighbour() -> None:
    problems = [
        problem
        for module, path in _modules()
        for problem in violations(module, path.read_text(encoding="utf-8"))
    ]
    assert problems == []


def test_every_module_of_the_collector_is_in_a_layer() -> None:
    outside = [
        module
        for module, _ in _modules()
        if module.startswith("driftline.collector.") and _package(module) is None
    ]
    assert outside == []


def test_the_check_finds_an_upward_a_sideways_a_hidden_and_a_bare_import() -> None:
    ledger = "driftline.collector.store.ledger"
    assert violations(ledger, "from driftline.collector.audit import checkpoints\n") == [
        f"{ledger}:1 imports driftline.collector.audit.checkpoints: upward, store -> audit"
    ]
    sideways = "def f():\n    from driftline.collector.alerting.alerts import owner_for\n"
    assert violations("driftline.collector.drift.worker", sideways) == [
        "driftline.collector.drift.worker:2 imports driftline.collector.alerting.alerts.owner_for:"
        " sideways, drift -> alerting"
    ]
    gate = "driftline.collector.golive.gate"
    assert violations(gate, "from driftline.collector import ledger\n") == [
        f"{gate}:1 imports driftline.collector.ledger: name its package"
    ]
    assert violations(gate, "from collector.store import ledger\n") == [
        f"{gate}:1 imports collector.store: name it driftline.collector.store"
    ]
    assert violations("driftline.agent.contract", "import driftline.collector.store.models\n")
    cli = "driftline.collector.cli.main"
    assert violations(cli, "from driftline.collector.store import ledger\n") == []
