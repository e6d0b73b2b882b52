"""The package's shape: data flows one way, modules talk through public names, functions stay short.

The import graph is the reading order (README, "How the code is laid out"): a module imports
only from modules earlier in :data:`READING_ORDER`, never a name starting with ``_`` from
another module, and an import inside a function says why on its line or the line above.
"""
from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "coachnb"

#: every module of the package, in the order data flows through them (stage by stage)
READING_ORDER = (
    # leaves: no coachnb imports of their own
    "version", "errors", "fsutil", "formatting",
    # data: the contract, loading and validating, importing exports, the demo team
    "config", "schema", "loading", "importers", "demo",
    # calendar: weeks, windows, the coaching date
    "calendar",
    # metrics, and recording commitments against them
    "metrics", "commitments",
    # store: the read side of the precomputed feature store
    "store",
    # statistics
    "simulate", "adherence", "impact", "team_effects",
    # coaching analyses: the team view, diagnosis, focus, scenarios, questions
    "team", "coaching",
    # report assembly
    "report", "record", "overview",
    # presentation
    "plots", "display", "sparklines", "overview_page", "render", "pdf",
    # the analyst's workbooks: helpers the notebooks in notebooks/ call
    "workbooks",
    # batch: building the store, the in-process engine, the pool
    "store_build", "engine", "batch",
    # command line
    "cli", "__main__",
)
#: the package's public face re-exports from later stages, lazily; it is no stage of its own
FACADE = "__init__"
#: a function longer than this states why in a comment holding "long:" (none does today)
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def _imports(tree: ast.Module):
    """(node, imported coachnb module, imported names) for every relative import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:  # from .x import a, b
                yield node, node.module.split(".")[0], [a.name for a in node.names]
            else:  # from . import x, y
                for alias in node.names:
                    yield node, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("coachnb"):
            rest = node.module.split(".")
            yield node, rest[1] if len(rest) > 1 else FACADE, [a.name for a in node.names]


def test_every_module_has_a_place_in_the_reading_order():
    found = set(_modules()) - {FACADE}
    assert found == set(READING_ORDER), (f"not placed: {sorted(found - set(READING_ORDER))}; "
                                         f"gone: {sorted(set(READING_ORDER) - found)}")


def test_no_module_imports_from_a_later_stage_or_itself_through_the_facade():
    rank = {name: i for i, name in enumerate(READING_ORDER)}
    backwards = []
    for name, tree in _modules().items():
        if name == FACADE:
            continue
        for node, target, _ in _imports(tree):
            if target == FACADE or rank.get(target, -1) >= rank[name]:
                backwards.append(f"{name}.py:{node.lineno} imports {target}")
    assert not backwards, "imports against the flow of data:\n" + "\n".join(backwards)


def test_no_private_name_crosses_a_module_boundary():
    crossing = []
    for name, tree in _modules().items():
        module_aliases = {}
        for node, target, names in _imports(tree):
            crossing += [f"{name}.py:{node.lineno} imports {target}.{n}" for n in names
                         if n.startswith("_") and not n.startswith("__")]
            if not names:
                for alias in node.names:
                    module_aliases[alias.asname or alias.name] = target
        for node in ast.walk(tree):  # module.attribute on an imported coachnb module
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                crossing.append(f"{name}.py:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not crossing, "private names used across modules:\n" + "\n".join(crossing)


def _functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _explained(lines: list[str], i: int) -> bool:
    """Line ``i`` holds a comment, or the block of imports it belongs to has one above or on a line."""
    while True:
        if "#" in lines[i]:
            return True
        above = lines[i - 1].strip()
        if above.startswith("#"):
            return True
        if not above.startswith(("import ", "from ")):
            return False
        i -= 1


def test_an_import_inside_a_function_says_why():
    silent = []
    for path in sorted(PACKAGE.glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in _functions(ast.parse("\n".join(lines))):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not _explained(lines, node.lineno - 1):
                    silent.append(f"{path.name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    assert not silent, "imports inside functions without a reason:\n" + "\n".join(silent)


def test_functions_are_short_enough_to_read_at_once():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for fn in _functions(ast.parse(text)):
            n = fn.end_lineno - fn.lineno + 1
            body = "\n".join(lines[fn.lineno - 1:fn.end_lineno])
            if n > MAX_FUNCTION_LINES and "# long:" not in body:
                long.append(f"{path.name}:{fn.lineno} {fn.name} ({n} lines)")
    assert not long, "functions over ~80 lines without a stated reason:\n" + "\n".join(long)


def _resolves(dotted: str) -> bool:
    """``coachnb.a.b`` names a module or an attribute that exists."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:k + 1]))
        except ImportError:
            return False
    return True


def test_every_coachnb_name_the_text_mentions_exists():
    """Docstrings, comments, the README and docs/ name modules and functions that are there
    (a rename leaves no reader at a dead end)."""
    root = PACKAGE.parent
    texts = [*PACKAGE.glob("*.py"), root / "README.md", *(root / "docs").glob("*.md"), *(root / "notebooks").glob("*.ipynb"),
             *(root / "benchmarks").glob("*.py"), *(root / "benchmarks").glob("*.md")]
    dead = []
    for path in texts:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for m in re.finditer(r"(?<![\w./-])coachnb(?:\.[A-Za-z_]\w*)+", line):
                name = m.group(0).rstrip(".")
                if not _resolves(name):
                    dead.append(f"{path.relative_to(root)}:{i} {name}")
    assert not dead, "names that don't exist:\n" + "\n".join(dead)


@pytest.mark.parametrize("probe, expected", [
    ("from .report import rep_report\n", "metrics.py:1 imports report"),
    ("from .calendar import _secret\n", "imports calendar._secret"),
])
def test_the_checks_catch_what_they_are_for(probe, expected, tmp_path, monkeypatch):
    """A backwards import and a private name, planted in a copy of the package, are both reported."""
    for path in PACKAGE.glob("*.py"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path / "metrics.py"
    target.write_text(probe + target.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    with pytest.raises(AssertionError, match=expected.replace(".", r"\.")):
        test_no_module_imports_from_a_later_stage_or_itself_through_the_facade()
        test_no_private_name_crosses_a_module_boundary()
