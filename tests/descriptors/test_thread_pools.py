"""The C++ core (OpenMP), Numba and torch share one process without stepping on each other."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import EXAMPLES

SCRIPT = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    env_before = dict(os.environ)
    import numba, numpy as np, torch
    torch.set_num_threads(2)
    settings = (torch.get_num_threads(), numba.get_num_threads())
    import xanesnet
    from xanesnet.descriptors import _numba  # noqa: F401  (import must change nothing either)
    assert dict(os.environ) == env_before, "importing xanesnet changed the environment"
    from ase import Atoms

    def read(path):
        lines = Path(path).read_text().splitlines()
        rows = np.array([l.split() for l in lines[2:2 + int(lines[0])]], dtype=float)
        return Atoms(numbers=rows[:, 0].astype(int), positions=rows[:, 1:])

    structures = [read(p) for p in sorted(Path(sys.argv[1]).glob("*.xyz"))]
    config = xanesnet.WACSF()
    reference = config.compute(structures, backend="cpp", n_threads=1)[0]
    a = torch.randn(400, 400)
    torch_reference = a @ a

    results = {}

    def run(name, backend):
        for _ in range(3):
            results[name] = config.compute(structures, backend=backend, n_threads=2)[0]

    workers = [threading.Thread(target=run, args=("cpp", "cpp")),
               threading.Thread(target=run, args=("numba", "numba"))]
    for w in workers:
        w.start()
    for _ in range(30):  # torch's own pool busy at the same time
        assert torch.equal(a @ a, torch_reference)
    for w in workers:
        w.join()
    np.testing.assert_array_equal(results["cpp"], reference)
    np.testing.assert_allclose(results["numba"], reference, rtol=1e-12, atol=1e-300)
    # and one after another, in the main thread
    np.testing.assert_array_equal(config.compute(structures, backend="cpp", n_threads=0)[0], reference)
    assert torch.equal(a @ a, torch_reference)
    after = (torch.get_num_threads(), numba.get_num_threads())
    assert after == settings, f"thread settings changed: {settings} -> {after}"
    print("thread pools OK")
    """
)


@pytest.mark.slow
def test_cpp_numba_and_torch_thread_pools_coexist(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    # the package this test runs against: a relative PYTHONPATH (``PYTHONPATH=. pytest``)
    # made absolute, as the child runs elsewhere
    if env.get("PYTHONPATH"):
        paths = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else p for p in paths)
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,  # not the source tree: the package installed or on PYTHONPATH
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "thread pools OK" in completed.stdout
