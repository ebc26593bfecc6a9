"""Inputs that used to abort or freeze the process end in the same clear error on both backends.

Each backend runs the cases in a child process with its memory bounded (RLIMIT_AS) and a time
limit, so a regression (unbounded allocation, a search over billions of images) fails the test
instead of taking the machine down. The child prints one JSON line per case; the last line
read names the case that did not finish.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from helpers import BACKENDS, child_env

from xanesnet import WACSF
from xanesnet.descriptors import limits
from xanesnet.descriptors.dispatch import run_kernel, site_error
from xanesnet.descriptors.packing import PackedBatch

#: children run outside the checkout, so that they import the package the tests run against
CHILD_CWD = Path(__file__).resolve().parents[1] / "data"
MEMORY_LIMIT = 4 * 2**30  # bytes: far above what any case needs, far below a runaway search
TIME_LIMIT = 600  # seconds, for every case of one backend (a cold Numba cache compiles first)

# The cases, as code the child runs: name -> expression giving a list of ase.Atoms.
CASES = {
    "short lattice vector": "[fe(cell=[[1e-3, 0, 0], [0, 10, 0], [0, 0, 10]], pbc=True)]",
    "0.3 A cube": "[fe(cell=np.eye(3) * 0.3, pbc=True)]",
    "nearly singular cell": "[fe(cell=[[10, 0, 0], [9.9999, 0.001, 0], [0, 0, 10]], pbc=True)]",
    "atom at 1e20 A": "[far(1e20)]",
    "atom at 1e5 A": "[far(1e5)]",
    "1e300 cell": "[fe(cell=np.eye(3) * 1e300, pbc=True)]",
    "atom on the absorber": "[Atoms('FeOO', positions=[[0, 0, 0], [0, 0, 0], [1, 0, 0]])]",
    "periodic atom on the absorber": (
        "[Atoms('FeO', positions=[[0, 0, 0], [0, 0, 0]], cell=np.eye(3) * 5, pbc=True)]"
    ),
    "denser than matter": "[fe(cell=np.eye(3) * 0.8, pbc=True)]",
}

EXPECTED_ERRORS = {
    "short lattice vector": "periodic cell too small or too skewed for r_max = 6 Å",
    "0.3 A cube": "periodic cell too small or too skewed for r_max = 6 Å",
    "nearly singular cell": "periodic cell too small or too skewed for r_max = 6 Å",
    "atom at 1e20 A": "atom 1 lies too far from the origin (1e+20 Å",
    "1e300 cell": "lattice vector component of 1e+300 Å (at most 1e+06 Å accepted)",
    "atom on the absorber": "atoms 0 and 1 are 0.0000 Å apart (closer than 0.1 Å",
    "periodic atom on the absorber": "atoms 0 and 1 are 0.0000 Å apart (closer than 0.1 Å",
    "denser than matter": "more than 905 atoms within r_max = 6 Å of atom 0",
}

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import numpy as np
    from ase import Atoms
    from xanesnet import WACSF

    def fe(**kwargs):
        return Atoms("Fe", positions=[[0.1, 0.2, 0.3]], **kwargs)

    def far(x):
        rng = np.random.default_rng(0)
        positions = np.r_[[[0, 0, 0], [x, 0, 0]], rng.uniform(0, 20, (200, 3))]
        return Atoms("FeO" + "C" * 200, positions=positions, cell=np.eye(3) * 20,
                     pbc=[False, True, False])

    for name, make in {cases}:
        print(json.dumps({{"case": name, "started": True}}), flush=True)
        try:
            features, _ = WACSF().compute(eval(make), backend=sys.argv[1], n_threads=1)
            result = {{"case": name, "features": features.tolist()}}
        except Exception as exc:
            result = {{"case": name, "error": type(exc).__name__, "message": str(exc)}}
        print(json.dumps(result), flush=True)
    """
)


def _run_cases(backend: str) -> dict[str, dict]:
    code = CHILD.format(limit=MEMORY_LIMIT, cases=list(CASES.items()))
    env = child_env(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, backend],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
            env=env,
            cwd=CHILD_CWD,
        )
        out, err, rc = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, rc = f"timed out after {TIME_LIMIT} s", None
    results = {}
    last = None
    for line in out.splitlines():
        record = json.loads(line)
        last = record["case"]
        if not record.get("started"):
            results[last] = record
    assert rc == 0 and len(results) == len(CASES), (
        f"{backend}: stopped in case {last!r} (exit {rc}): {err[-2000:]}"
    )
    return results


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, dict]]:
    return {backend: _run_cases(backend) for backend in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(EXPECTED_ERRORS))
def test_bad_structure_gives_a_clear_error(outcomes, backend: str, case: str) -> None:
    record = outcomes[backend][case]
    assert record.get("error") == "ValueError", record
    assert record["message"].startswith("structure #0: " + EXPECTED_ERRORS[case]), record


@pytest.mark.parametrize("case", sorted(EXPECTED_ERRORS))
def test_backends_give_the_same_message(outcomes, case: str) -> None:
    messages = {outcomes[backend][case]["message"] for backend in BACKENDS}
    assert len(messages) == 1, messages


def test_far_atom_within_the_limits_gives_the_same_result(outcomes) -> None:
    # 1e5 Å is within MAX_LENGTH: computed, and equal on both backends (the far atom
    # lies beyond every cutoff sphere and changes nothing)
    rows = [np.array(outcomes[backend]["atom at 1e5 A"]["features"]) for backend in BACKENDS]
    assert rows[0].shape == (1, WACSF().n_features) and rows[0][0, 0] > 0
    for row in rows[1:]:
        np.testing.assert_allclose(row, rows[0], rtol=1e-12, atol=1e-300)


# -- per-site status: one refused structure does not cost the others ----------------------------


def _batch(structures: list[Atoms]) -> PackedBatch:
    """Packed without the Python checks of packing, as a reader producing arrays would."""
    offsets = np.cumsum([0] + [len(a) for a in structures]).astype(np.int64)
    return PackedBatch(
        positions=np.ascontiguousarray(np.concatenate([a.positions for a in structures])),
        numbers=np.concatenate([a.numbers for a in structures]).astype(np.int32),
        atom_offsets=offsets,
        cells=np.array([a.cell.array for a in structures]),
        pbc=np.array([a.pbc for a in structures], dtype=np.uint8),
        site_structures=np.arange(len(structures), dtype=np.int64),
        site_atoms=np.zeros(len(structures), dtype=np.int64),
        labels=[f"structure s{n}" for n in range(len(structures))],
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_status_per_site_and_the_rest_computed(backend: str) -> None:
    good = Atoms("FeOC", positions=[[0, 0, 0], [1.9, 0, 0], [0, 2.1, 0]])
    structures = [
        Atoms("Fe", cell=np.eye(3) * 0.3, pbc=True),
        good,
        Atoms("Fe", cell=np.eye(3) * 1e300, pbc=True),
        Atoms("FeO", positions=[[0, 0, 0], [3e6, 0, 0]]),
        Atoms("H", cell=np.eye(3) * 0.8, pbc=True),
        good,
    ]
    config = WACSF()
    batch = _batch(structures)
    features, status, pair, value = run_kernel(config, batch, backend, 1)
    assert status.tolist() == [
        limits.SITE_TOO_MANY_IMAGES,
        limits.SITE_OK,
        limits.SITE_TOO_FAR,
        limits.SITE_TOO_FAR,
        limits.SITE_TOO_MANY_NEIGHBOURS,
        limits.SITE_OK,
    ]
    assert pair[:, 0].tolist() == [-1, -1, -1, 1, 0, -1]
    assert value[2] == 1e300 and value[3] == 3e6 and value[0] > limits.max_images(6.0)
    assert np.all(features[status != 0] == 0.0)
    alone, *_ = run_kernel(config, _batch([good]), backend, 1)
    np.testing.assert_array_equal(features[1], alone[0])
    np.testing.assert_array_equal(features[5], alone[0])
    messages = [
        site_error(config, batch, s, int(status[s]), pair[s], float(value[s])) for s in (2, 3)
    ]
    assert messages[0].startswith("structure s2: lattice vector component of 1e+300 Å")
    assert messages[1].startswith("structure s3: atom 1 lies too far from the origin (3e+06 Å")


def test_limits_follow_from_density() -> None:
    # 1 atom/Å³ over the 6 Å sphere; pair memory caps large cutoffs; never below 64
    assert limits.max_neighbours(6.0) == 905
    assert limits.max_neighbours(0.5) == limits.MIN_NEIGHBOURS_LIMIT
    assert limits.max_neighbours(30.0) < limits.densest_neighbours(30.0)
    assert limits.max_images(6.0) == 8 * 905


# -- without the compiled core: one warning at the first computation that falls back -----------

FALLBACK_CHILD = textwrap.dedent(
    """
    import sys, warnings
    sys.modules["xanesnet._core"] = None  # as if the core were not built
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as at_import:
        import xanesnet
        from ase import Atoms
    atoms = Atoms("FeO", positions=[[0, 0, 0], [1.8, 0, 0]])
    with warnings.catch_warnings(record=True) as computing:
        warnings.simplefilter("always")
        for _ in range(3):
            xanesnet.WACSF(n_g2=2, n_g4=4).compute(atoms, n_threads=1)
    fallback = [w for w in computing if issubclass(w.category, RuntimeWarning)]
    print(len([w for w in at_import if "Numba" in str(w.message)]), len(fallback))
    print(fallback[0].message if fallback else "")
    """
)


@pytest.mark.parametrize("requested", [None, "numba"])
def test_numba_fallback_warns_once(requested: str | None, tmp_path: Path) -> None:
    env = child_env(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    env.pop("XANESNET_BACKEND", None)
    if requested:
        env["XANESNET_BACKEND"] = requested  # asked for: nothing to warn about
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK_CHILD],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts, message = done.stdout.splitlines()[:2]
    assert counts == ("0 1" if requested is None else "0 0")
    if requested is None:
        assert "Numba fallback" in message


def _kernel(backend: str):
    if backend == "cpp":
        from xanesnet import _core

        return _core.wacsf_batch
    from xanesnet.descriptors import _numba_batch

    return _numba_batch.wacsf_batch


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_far_atom_and_atoms_many_cells_away(backend: str) -> None:
    far = Atoms("FeOCN", positions=[[0, 0, 0], [1.5, 0, 0], [0, 0, 2e6], [5e6, 0, 0]])
    # a wire 1e-4 Å long per cell: an atom 5e5 Å along it lies 5e9 cells away (the image bound
    # is lifted here to reach that check)
    away = Atoms("FeO", positions=[[0, 0, 0], [0, 5e5, 0]], cell=np.diag([20, 1e-4, 20]))
    away.pbc = (False, True, False)
    batch = _batch([far, away])
    params = {**WACSF().kernel_params(), "max_images": 1e9}
    _, status, pair, value = _kernel(backend)(
        batch.positions,
        batch.numbers,
        batch.atom_offsets,
        batch.cells,
        batch.pbc,
        batch.site_structures,
        batch.site_atoms,
        params,
        1,
    )
    assert status.tolist() == [limits.SITE_TOO_FAR] * 2
    assert pair[:, 0].tolist() == [2, 1] and value.tolist() == [2e6, 5e5]
