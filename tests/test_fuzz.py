"""A small seeded fuzzing campaign over mutated .xyz, extxyz and .db inputs (see
``tests/fuzz_inputs.py`` for the contract and for running a larger one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_inputs import make_cases, run_campaign

# the default run: 5 of each input kind; the slow run (.ci/run) 60 more on another seed;
# `python tests/fuzz_inputs.py --cases 2000` for a developer's campaign
SIZES = [
    pytest.param(15, 20261203, id="15-cases"),
    pytest.param(60, 7, id="60-cases", marks=pytest.mark.slow),
]


def test_cases_are_reproducible(tmp_path):
    a = make_cases(tmp_path / "a", 9, seed=7)
    b = make_cases(tmp_path / "b", 9, seed=7)
    assert [c.mutations for c in a] == [c.mutations for c in b]
    assert all(Path(x.path).read_bytes() == Path(y.path).read_bytes() for x, y in zip(a, b))
    assert {c.kind for c in a} == {"xyz", "extxyz", "db"}


@pytest.mark.parametrize(("n_cases", "seed"), SIZES)
def test_mutated_inputs_never_crash_hang_or_mislead(tmp_path, n_cases, seed):
    cases = make_cases(tmp_path, n_cases, seed)
    report = run_campaign(cases, tmp_path, timeout=120.0)
    by_index = {c.index: c for c in cases}
    problems = [f"crash: case {i} {by_index[i].mutations}" for i in report.crashes]
    problems += [f"hang: case {i} {by_index[i].mutations}" for i in report.hangs]
    problems += [
        f"case {i} {by_index[i].kind} {by_index[i].mutations}: {d}"
        for i, defects in sorted(report.defects.items())
        for d in defects
    ]
    assert len(report.defects) + len(report.crashes) + len(report.hangs) == n_cases
    assert not problems, "\n".join(problems)
