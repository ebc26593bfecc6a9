"""Docstrings are Google style: no numpy-style section underlined with dashes.

Ruff's D416 (pyproject.toml) catches numpy-style headers of most sections but not
``Parameters``; this test catches every listed header with a dashed line under it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import xanesnet

PACKAGE = Path(xanesnet.__file__).resolve().parent

NUMPY_SECTIONS = frozenset(
    {
        "Parameters",
        "Other Parameters",
        "Returns",
        "Yields",
        "Raises",
        "Attributes",
        "Notes",
        "Examples",
        "See Also",
    }
)
_DASHES = re.compile(r"-{3,}")


def numpy_section_lines(source: str) -> list[int]:
    """Lines of numpy-style section headers (a listed name with a line of dashes under it).

    Args:
        source: the text of one Python module.

    Returns:
        1-based line numbers in ``source`` of each such header, in order.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not node.body or ast.get_docstring(node, clean=False) is None:
            continue
        first = node.body[0]
        lines = first.value.value.splitlines()  # type: ignore[attr-defined]
        for offset, (line, below) in enumerate(zip(lines, lines[1:])):
            if line.strip() in NUMPY_SECTIONS and _DASHES.fullmatch(below.strip()):
                found.append(first.lineno + offset)
    return found


def test_checker_finds_numpy_sections() -> None:
    source = (
        '"""Module.\n\nNotes\n-----\nText.\n"""\n\n\n'
        "def f(a):\n"
        '    """F.\n\n    Parameters\n    ----------\n    a\n        a thing.\n    """\n\n\n'
        "class C:\n"
        '    """C.\n\n    Attributes:\n        x: no underline here.\n    """\n'
    )
    assert numpy_section_lines(source) == [3, 12]


def test_package_docstrings_have_no_numpy_sections() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in numpy_section_lines(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "numpy-style docstring sections (use Google style): " + ", ".join(
        offenders
    )
