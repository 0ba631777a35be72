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
