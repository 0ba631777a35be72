"""The floors of the package: a module imports only its own floor and the floors below it.

Every ``import readmit.x`` / ``from readmit.x import`` in ``src/readmit`` is read, including the
lazy ones inside functions, so a shortcut upward fails here instead of in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "readmit"

# Ground-floor rooms of things every floor shares (months, JSON, cores, lineage, a gate's
# result): each imports at most the errors.
SHARED = {"months", "jsonsafe", "runtime", "lineage", "checks"}
GROUND = {"config", "storage", "errors"} | SHARED
# room -> the rooms it may import (its own room is always allowed)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    **{room: {"errors"} for room in SHARED},
    "storage": {"errors"} | SHARED,
    "config": {"errors", "storage"} | SHARED,
    "data": GROUND,
    "registry": GROUND,
    "training": GROUND | {"data", "registry"},
    "serving": GROUND | {"data", "registry", "training"},
    "monitoring": GROUND | {"data", "registry", "training", "serving"},
    "governance": GROUND | {"data", "registry", "training", "serving", "monitoring"},
    "report": GROUND | {"data", "registry", "training", "serving", "monitoring", "governance"},
    "pipeline": GROUND | {"data", "registry", "training", "serving", "monitoring", "governance", "report"},
    "cli": {"pipeline", "config", "errors"},
    "orchestration": {"pipeline", "config", "errors", "storage"},
}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("readmit.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "readmit":
                found |= {f"readmit.{a.name}" for a in node.names}
            elif node.module.startswith("readmit."):
                found.add(node.module)
    return found


def test_every_room_is_known():
    rooms = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if p.name != "__pycache__" and p.name != "__init__.py" and (p.is_dir() or p.suffix == ".py")}
    assert rooms <= set(ALLOWED), f"add {sorted(rooms - set(ALLOWED))} to ALLOWED with its floor"


def test_no_module_imports_a_higher_floor():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("readmit", *path.relative_to(SRC).with_suffix("").parts))
        room = _room(module)
        if room == "__init__":
            continue
        for imported in _imports(path):
            target = _room(imported)
            if target != room and target not in ALLOWED[room]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_command_line_reaches_the_layers_only_through_pipeline():
    for path in sorted((SRC / "cli").glob("*.py")):
        rooms = {_room(m) for m in _imports(path)}
        assert rooms <= {"cli", "pipeline", "config", "errors"}, (path.name, rooms)


def test_no_floor_imports_training_for_a_shared_helper():
    """What every floor needs (cores, JSON, lineage, a gate's result, months) lives on the ground
    floor, so serving, monitoring and the report never reach into training's modules for it."""
    shared = {"available_cpus", "resolve_n_jobs", "jsonable", "git_revision", "library_versions",
              "CheckResult", "Progress", "months_between", "check_month", "is_mature"}
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "training":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("readmit.training"):
                wrong += [f"{path.relative_to(SRC)} imports {a.name} from {node.module}"
                          for a in node.names if a.name in shared]
    assert not wrong, "\n".join(wrong)


# -- no cycle between modules -------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("readmit", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def module_graph() -> dict[str, set[str]]:
    """Every module of ``src/readmit`` -> the readmit modules it imports (lazy imports included).

    ``from readmit.serving import ab`` is an arrow to ``readmit.serving.ab`` (a module), ``from
    readmit.training import predict_proba`` one to the package ``readmit.training``.
    """
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in modules else base)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other_even_through_others():
    found = cycles(module_graph())
    assert not found, "module cycles (put what they share in a module of its own):\n" + "\n".join(
        " <-> ".join(group) for group in found)


def test_the_module_graph_sees_lazy_and_from_package_imports():
    graph = module_graph()
    assert "readmit.serving.ab" in graph["readmit.serving.predict"]  # from readmit.serving import ab
    assert "readmit.serving.spark_predict" in graph["readmit.serving.predict"]  # inside a function


# -- the floor picture of docs/architecture.md ---------------------------------------------------

DOC = SRC.parents[1] / "docs" / "architecture.md"


def room_arrows() -> set[tuple[str, str]]:
    """(room, room it imports) for every import between rooms above the ground floor."""
    arrows = set()
    for module, targets in module_graph().items():
        for target in targets:
            pair = (_room(module), _room(target))
            if pair[0] != pair[1] and not {*pair} & (GROUND | {"__init__"}):
                arrows.add(pair)
    return arrows


def test_the_architecture_doc_draws_the_arrows_that_exist():
    import re

    block = re.search(r"```arrows\n(.*?)```", DOC.read_text(), re.S)
    assert block, f"{DOC} lost its ```arrows block"
    drawn = set()
    for line in block.group(1).splitlines():
        source, _, targets = line.partition("->")
        drawn |= {(source.strip(), t.strip()) for t in targets.split(",") if t.strip()}
    real = room_arrows()
    assert drawn == real, (f"docs/architecture.md: drawn but not imported {sorted(drawn - real)}; "
                           f"imported but not drawn {sorted(real - drawn)}: redraw the picture and its list")
