"""The bulk SQLite reader gives exactly what ase.db gives, row for row."""

from __future__ import annotations

import ase.db
import numpy as np
from ase import Atoms

from xanesnet import read_structures


def test_bulk_sqlite_rows_equal_ase_db_rows(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "set.db"
    with ase.db.connect(path) as db:
        for i in range(700):  # several pages
            n = int(rng.integers(3, 40))
            atoms = Atoms(
                numbers=rng.choice([1, 6, 8, 26], n),
                positions=rng.normal(size=(n, 3)) * 4,
                cell=np.diag(rng.uniform(5, 9, 3)) if i % 3 == 0 else None,
                pbc=(i % 3 == 0, i % 2 == 0, False),
            )
            pairs = {"charge": int(rng.integers(-2, 3)), "spin": 0.5 * (i % 3), "tag": f"x{i}"}
            db.write(atoms, **(pairs if i % 2 else {}))
        db.delete([5, 6])  # gaps in the ids
    bulk = list(read_structures(path))
    reference = list(read_structures(path, select="id>0"))  # a selection goes through ase.db
    assert len(bulk) == len(reference) == 698
    for a, b in zip(bulk, reference, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        np.testing.assert_array_equal(a.pbc, b.pbc)
        assert a.info == b.info
    assert bulk[1].info["charge"] in (-2, -1, 0, 1, 2) and bulk[1].info["id"] == "set:2"
