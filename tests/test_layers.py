"""The layering rules of the design guide, checked on the source itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import collect_tui

PACKAGE = Path(collect_tui.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_nothing_from_the_project_or_io_libraries() -> None:
    code = (
        "import sys, collect_tui.domain, pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(collect_tui.domain.__path__):\n"
        "    importlib.import_module('collect_tui.domain.' + m.name)\n"
        "bad = [n for n in sys.modules if n.startswith(('collect_tui.storage', "
        "'collect_tui.services', 'collect_tui.sync', 'collect_tui.screens', "
        "'collect_tui.widgets', 'sqlalchemy', 'textual', 'httpx'))]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ui_never_imports_sqlalchemy_or_storage() -> None:
    for folder in ("screens", "widgets"):
        for path in (PACKAGE / folder).rglob("*.py"):
            for name in _imports(path):
                assert not name.startswith("sqlalchemy"), f"{path} imports {name}"
                assert not name.startswith("collect_tui.storage"), f"{path} imports {name}"
    for name in _imports(PACKAGE / "app.py"):
        assert not name.startswith(("sqlalchemy", "collect_tui.storage")), name
