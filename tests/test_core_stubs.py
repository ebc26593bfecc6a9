"""xanesnet/_core.pyi describes the compiled module as built: the same names, and each
function's parameters in the binding's order (from pybind11's signature line)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import xanesnet

core = pytest.importorskip("xanesnet._core", reason="the compiled core is not built")
STUB = Path(xanesnet.__file__).resolve().parent / "_core.pyi"


def _stub_functions() -> dict[str, list[str]]:
    tree = ast.parse(STUB.read_text())
    return {
        node.name: [a.arg for a in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _binding_parameters(function) -> list[str]:
    """Parameter names of pybind11's first docstring line ``name(a: T, b: T = v) -> R``."""
    line = function.__doc__.splitlines()[0]
    inside = line[line.index("(") + 1 : line.rindex(") ->")]
    depth, names, current = 0, [], ""
    for char in inside:  # split on commas outside brackets
        depth += char in "[(" and 1 or 0
        depth -= char in "])" and 1 or 0
        if char == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    return [re.match(r"\s*(\w+)", n).group(1) for n in names if n.strip()]


def test_stub_names_the_compiled_functions_and_their_parameters() -> None:
    stub = _stub_functions()
    compiled = {n for n in dir(core) if not n.startswith("_") and callable(getattr(core, n))}
    assert set(stub) == compiled
    for name, parameters in stub.items():
        assert parameters == _binding_parameters(getattr(core, name)), name
    assert "have_openmp" in STUB.read_text() and isinstance(core.have_openmp, bool)


def test_stub_params_keys_are_those_the_configuration_sends() -> None:
    from xanesnet import WACSF

    tree = ast.parse(STUB.read_text())
    (params,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    keys = {n.target.id for n in params.body if isinstance(n, ast.AnnAssign)}
    assert keys == set(WACSF().kernel_params())
