"""The shape of the package, as docs/ARCHITECTURE.md states it: every module has a layer in
its table, imports point only down (or within a layer), no module over 400 lines and no
function over 60. The table is read from the document, so the two cannot drift apart."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dance_ext"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def layer_table() -> dict[str, int]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    text = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for number, modules in re.findall(r"^\| (\d) \| ([^|]+) \|", text, re.M):
        for name in re.findall(r"`([\w.]+)`", modules):
            layers[name] = int(number)
    return layers


def unit_of(path: Path) -> str:
    """The table's name for a source file: its top-level module or package under dance_ext."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_units(text: str, package: tuple[str, ...]) -> set[str]:
    """dance_ext modules that source ``text`` of a module in ``package`` (e.g. ("dance_ext",
    "data")) imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts + [alias.name] for alias in node.names] if not node.module else [parts]
            else:
                names = [(node.module or "").split(".")]
            for parts in names:
                if parts[:1] == ["dance_ext"] and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "dance_ext" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_module_has_a_layer():
    table = layer_table()
    missing = sorted({unit_of(p) for p in sources()} - set(table) - {"_C"})
    assert not missing, f"modules without a layer in docs/ARCHITECTURE.md: {missing}"


def test_imports_point_down():
    table = layer_table()
    upward = []
    for path in sources():
        here = unit_of(path)
        package = path.relative_to(ROOT).parts[:-1]
        for target in imported_units(path.read_text(), package) - {here, "_C"}:
            if target in table and table[target] > table.get(here, 99):
                upward.append(f"{path.relative_to(ROOT)} (layer {table[here]}) imports {target} "
                              f"(layer {table[target]})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_modules_and_functions_stay_small():
    too_big = []
    for path in sources():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, "\n".join(too_big)


@pytest.mark.parametrize("source, package, expected", [
    ("from . import ops", ("dance_ext",), {"ops"}),
    ("from .data import ClassData", ("dance_ext",), {"data"}),
    ("from ..checks import hw", ("dance_ext", "data"), {"checks"}),
    ("from .. import presets", ("dance_ext", "cli"), {"presets"}),
    ("from .classdata import ClassData", ("dance_ext", "data"), {"data"}),
    ("import dance_ext.api", ("dance_ext",), {"api"}),
    ("def f():\n    from dance_ext.cli import main", ("tests",), {"cli"}),
    ("import torch", ("dance_ext",), set()),
])
def test_the_import_reader_itself(source, package, expected):
    assert imported_units(source, package) == expected
