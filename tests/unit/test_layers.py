"""The layers in docs/architecture.md, enforced: a module imports only from its own layer
or the ones below it, so the folder listing stays a true map of the design."""

from __future__ import annotations

import ast
from pathlib import Path

import adkvoice

ROOT = Path(adkvoice.__file__).parent

# Lowest first. A package (or top-level module) may import only from its rank or below.
LAYERS: dict[str, int] = {
    "errors": 0,
    "events": 0,
    "tasks": 0,
    "live_models": 0,
    "redaction": 0,
    "wire": 1,
    "audio": 1,
    "vision": 1,
    "store": 1,
    "agents": 1,
    "ui": 1,
    "config": 1,
    "live_options": 1,
    "emulator": 2,
    "backends": 3,
    "conversation": 4,
    "server": 5,
    "app": 5,
    "commands": 6,
    "cli_options": 7,
    "cli_app": 7,
    "cli_help": 7,
    "cli_sessions": 7,
    "cli": 7,
    "__main__": 8,
    "__init__": 8,
}


def _unit(module_path: Path) -> str:
    relative = module_path.relative_to(ROOT)
    return relative.parts[0].removesuffix(".py")


def _imported_units(tree: ast.AST) -> set[str]:
    units: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "adkvoice" and len(parts) > 1:
                units.add(parts[1])
            elif parts[0] == "adkvoice":
                units.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "adkvoice" and len(parts) > 1:
                    units.add(parts[1])
    return units


def test_every_module_belongs_to_a_layer() -> None:
    units = {_unit(path) for path in ROOT.rglob("*.py")}
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


def test_no_module_imports_from_a_higher_layer() -> None:
    upward: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        for imported in _imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if imported in LAYERS and LAYERS[imported] > LAYERS[unit]:
                upward.append(f"{path.relative_to(ROOT)} imports adkvoice.{imported}")
    assert upward == []


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
