"""The batch progress bar: structure counts of the inputs and the ETA total it implies."""

from __future__ import annotations

import shutil

import pytest
from ase import Atoms
from helpers import EXAMPLES

from xanesnet import predict_batch
from xanesnet.io.sources import resolve_sources
from xanesnet.pipeline.progress import ONE_STRUCTURE_BYTES, Progress, expected_structures

N_EXAMPLES = len(list(EXAMPLES.glob("*.xyz")))


def _sources(*inputs, select=None):
    return resolve_sources(list(map(str, inputs)), None, select, None)[0]


def test_counts_folder_files_single_files_and_selected_database_rows(tmp_path):
    import ase.db

    with ase.db.connect(tmp_path / "s.db") as db:
        for i in range(5):
            db.write(Atoms("FeO", positions=[[0, 0, 0], [0, 0, 1.8 + i / 10]]), batch=i % 2)
    single = tmp_path / "one.xyz"
    shutil.copy(next(EXAMPLES.glob("*.xyz")), single)
    assert expected_structures(_sources(EXAMPLES, single)) == N_EXAMPLES + 1
    assert expected_structures(_sources(tmp_path / "s.db"), None) == 5
    assert expected_structures(_sources(tmp_path / "s.db", select="batch=1"), "batch=1") == 2


def test_a_large_single_file_makes_the_count_unknown(tmp_path):
    big = tmp_path / "frames.xyz"
    frame = next(EXAMPLES.glob("*.xyz")).read_text()
    big.write_text(frame * (ONE_STRUCTURE_BYTES // len(frame) + 1))
    assert expected_structures(_sources(EXAMPLES, big)) is None


@pytest.mark.parametrize(
    ("done", "shard", "expected"),
    [
        (set(), None, 250),
        ({0, 2}, None, 250 - 64 - 64),
        (set(), (1, 2), 64 + 58),  # chunks 1 and 3 (the last holds 250 - 3 * 64)
        ({1}, (1, 2), 58),
    ],
)
def test_structures_to_do_leave_out_committed_and_other_shards_chunks(done, shard, expected):
    progress = Progress(False, 0, 64, done, shard)
    progress.expect(250)
    assert progress.to_do == expected


def test_total_is_sites_per_structure_seen_times_structures_to_do():
    progress = Progress(True, "Fe", 10, set(), None)
    try:
        progress.expect(40)
        assert progress.bar.total is None  # unknown until a chunk shows sites per structure
        progress.update(15, 10, 0)
        assert progress.bar.total == 60
        progress.update(5, 10, 1)  # 20 sites from 20 structures so far
        assert progress.bar.total == 40
        progress.update(40, 30, 1)  # more structures than expected: no total
        assert progress.bar.total is None
    finally:
        progress.close()


def test_the_bar_of_a_job_ends_at_its_total(tmp_path, capsys):
    predict_batch(EXAMPLES, tmp_path / "out", chunk_size=30, absorber=0, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err  # stderr is no terminal here: plain lines
    last = err.strip().splitlines()[-1]
    assert f"{N_EXAMPLES}/{N_EXAMPLES} site (100 %)" in last
