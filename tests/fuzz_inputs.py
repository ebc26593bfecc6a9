"""Seeded fuzzing of the structure inputs: mutated XANESNET .xyz, extxyz and ASE .db files.

Every case is one mutated input file. A worker process runs the cases one after another; the
parent gives each case a time limit and the worker a memory limit, so a hang or a crash (abort,
out of memory) is seen as such and the next case runs in a fresh worker. For each case, on both
descriptor backends and through ``xanesnet-batch``, the contract is:

* reading + descriptors either succeed with the same result on both backends (to float64
  rounding), or raise a ``ValueError``-family error (``InputError``, ``FileNotFoundError`` is not
  enough: the file exists) whose message names the file; both backends agree on which;
* ``xanesnet-batch`` never raises: it returns 0 or 1 and records a failure for the bad item;
* the batch gives the same predictions and errors through the compiled readers (block
  parser, raw extended XYZ frames) as through the per-file readers;
* an input database is never written (its size and modification time are unchanged).

Run a larger campaign as a developer (the default test run takes a small seeded sample)::

    python tests/fuzz_inputs.py --cases 2000 --seed 1 [--timeout 60]

It prints one line per defect and a summary (cases, crashes, hangs, wrong results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "data" / "structures"
WORKER_MEMORY = 6 << 30  # bytes of address space; a runaway allocation fails, not the machine

XYZ_COUNTS = ["99999999999999", "-3", "9223372036854775808", "1e3", "abc", "0", ""]
XYZ_ELEMENTS = ["0", "119", "-1", "1e10", "Xx", "26.5", "nan", "Fe"]
COORDINATES = ["nan", "inf", "-inf", "1e300", "1e20", "", "abc", "1e-300", "0x10", "-0"]
LATTICES = [
    'Lattice="0.001 0 0 0 10 0 0 0 10" pbc="T T T"',
    'Lattice="0.3 0 0 0 0.3 0 0 0 0.3" pbc="T T T"',
    'Lattice="10 0 0 9.9999 0.001 0 0 0 10" pbc="T T T"',
    'Lattice="1e300 0 0 0 1e300 0 0 0 1e300" pbc="T T T"',
    'Lattice="0 0 0 0 0 0 0 0 0" pbc="T T T"',
    'Lattice="10 0 0 0 10 0 0 0 10" pbc="F T F"',
    'Lattice="nan 0 0 0 10 0 0 0 10" pbc="T T T"',
    'Lattice="5 0 0 0 5 0 0 0 5" pbc="T T T"',
    'Lattice="10 0 0 0 10 0 0 0 1e-9" pbc="T T T"',
    'Lattice="10 0 0 5 8.66 0 0 0 10" pbc="T T F"',
    'Lattice="1e20 0 0 0 1e20 0 0 0 1e20" pbc="T T T"',
    'Lattice="10 0 0 0 10 0 0 0 10" pbc="T F F"',
    'Lattice="1 2 3" pbc="T T T"',
]
#: Where a lattice mutation puts the last atom (a far atom in a partly periodic cell, ...).
FAR_COORDINATES = [b"1e20", b"-1e15", b"1e300", b"123456.7"]


@dataclass
class Case:
    index: int
    kind: str  # "xyz", "extxyz", "db"
    mutations: list[str]
    path: str


# ---- mutations -----------------------------------------------------------------------------


def _lines(text: bytes) -> list[bytes]:
    return text.split(b"\n")


def _mutate_text(data: bytes, rng: random.Random, kind: str) -> tuple[bytes, str]:
    """One mutation of a text structure file; returns the new bytes and its name."""
    lines = _lines(data)
    atom_rows = [i for i, line in enumerate(lines[2:], 2) if line.strip()]
    choice = rng.randrange(13)
    if choice == 0:
        lines[0] = rng.choice(XYZ_COUNTS).encode()
        return b"\n".join(lines), "count"
    if choice == 1 and atom_rows:
        row = rng.choice(atom_rows)
        fields = lines[row].split()
        fields[0] = rng.choice(XYZ_ELEMENTS).encode()
        lines[row] = b"\t".join(fields)
        return b"\n".join(lines), "element"
    if choice == 2 and atom_rows:
        row = rng.choice(atom_rows)
        fields = lines[row].split()
        if len(fields) > 1:
            fields[rng.randrange(1, len(fields))] = rng.choice(COORDINATES).encode()
        lines[row] = b"\t".join(fields)
        return b"\n".join(lines), "coordinate"
    if choice == 3 and atom_rows:
        row = rng.choice(atom_rows)
        lines.insert(row, lines[row])  # the same atom twice; the count is now short by one
        if rng.random() < 0.5:
            lines[0] = str(int(lines[0]) + 1).encode() if lines[0].strip().isdigit() else lines[0]
        return b"\n".join(lines), "duplicate-atom"
    if choice == 4:
        cut = rng.randrange(len(data) + 1)
        return data[:cut], "truncate"
    if choice == 5:
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice([b"\xff\xfe", b"\x00", b"\xc3"]) + data[at:], "bad-bytes"
    if choice == 6:
        out = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            if out:
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out), "bit-flip"
    if choice == 7 and len(atom_rows) > 1:
        del lines[atom_rows[0]]  # the absorber (first atom) removed, count kept
        return b"\n".join(lines), "no-absorber"
    if choice == 8 and len(atom_rows) > 1:
        row = atom_rows[1]
        fields = lines[row].split()
        fields[1:4] = [b"0.01", b"0.0", b"0.0"]
        lines[row] = b"\t".join(fields)
        return b"\n".join(lines), "close-atoms"
    if choice == 9:
        return data.replace(b"\n", b"\r\n"), "crlf"
    if choice == 10:
        return rng.choice(
            [b"", b"   \n\n", b"\x00" * 64, bytes(rng.randrange(256) for _ in range(200))]
        ), "garbage"
    if choice == 11:
        head = data if data.endswith(b"\n") else data + b"\n"
        return head + rng.choice(XYZ_COUNTS[:3]).encode() + b"\ncomment\n", "huge-next-frame"
    if kind == "extxyz" and len(lines) > 1:
        comment = lines[1].decode("utf-8", "replace")
        comment = comment.replace('pbc="F F F"', "").strip() + " " + rng.choice(LATTICES)
        lines[1] = comment.encode()
        if ("F T F" in comment or "T F F" in comment or rng.random() < 0.2) and atom_rows:
            row = atom_rows[-1]
            fields = lines[row].split()
            fields[rng.randrange(1, 4)] = rng.choice(FAR_COORDINATES)
            lines[row] = b" ".join(fields)
        return b"\n".join(lines), "lattice"
    return data, "none"


def _make_db(path: Path, rng: random.Random) -> str:
    """An ASE database of the fixture structures, then one fault."""
    import ase.db
    import ase.io

    frames = [ase.io.read(FIXTURES / "FECL6_two_frames.extxyz", index=i) for i in range(2)]
    with ase.db.connect(str(path), append=False) as db:
        for atoms in frames:
            db.write(atoms)
    with sqlite3.connect(path) as con:  # ase stamps rows with the time and a random id
        con.execute("UPDATE systems SET unique_id = printf('%032x', id), ctime = 0, mtime = 0")
    con.close()
    choice = rng.randrange(13)
    if choice == 0:
        path.write_bytes(b"")
        return "empty-file"
    if choice == 1:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
        return "random-bytes"
    if choice == 2:
        data = path.read_bytes()
        path.write_bytes(data[: rng.randrange(len(data))])
        return "truncated"
    with sqlite3.connect(path) as con:
        if choice == 3:
            con.execute("DROP TABLE systems")
            return "no-systems-table"
        if choice == 4:
            con.execute("UPDATE systems SET numbers = X'0000' WHERE id = 1")
            return "bad-numbers-blob"
        if choice == 5:
            con.execute("UPDATE systems SET positions = X'00' WHERE id = 2")
            return "bad-positions-blob"
        if choice == 6:
            con.execute("UPDATE systems SET key_value_pairs = '{not json' WHERE id = 1")
            return "bad-key-value-json"
        if choice == 7:
            con.execute("DELETE FROM systems")
            return "no-rows"
        if choice == 8:
            con.execute("UPDATE systems SET cell = X'0000803f' WHERE id = 1")
            return "bad-cell-blob"
        if choice == 9:  # atomic numbers 200 (int32, little-endian)
            con.execute("UPDATE systems SET numbers = X'c8000000c8000000' WHERE id = 2")
            return "unknown-element"
        if choice == 10:
            con.execute("UPDATE systems SET key_value_pairs = '[1, 2]' WHERE id = 2")
            return "key-value-not-object"
        if choice == 11:  # a cell of 1e300 Å on every axis, periodic
            cell = struct.pack("<9d", 1e300, 0, 0, 0, 1e300, 0, 0, 0, 1e300)
            con.execute("UPDATE systems SET cell = ?, pbc = 7 WHERE id = 1", (cell,))
            return "huge-cell"
        con.execute("DROP TABLE information")
        return "no-information-table"


def make_cases(folder: Path, n_cases: int, seed: int) -> list[Case]:
    """Write ``n_cases`` mutated inputs into ``folder`` (one subfolder each)."""
    bases = {
        "xyz": [
            (FIXTURES / "FEN6_FeN6.xyz").read_bytes(),
            (FIXTURES / "FEO6_FeO6.xyz").read_bytes(),
        ],
        "extxyz": [(FIXTURES / "FECL6_two_frames.extxyz").read_bytes()],
    }
    cases = []
    for index in range(n_cases):
        rng = random.Random(f"{seed}:{index}")
        kind = ("xyz", "extxyz", "db")[index % 3]
        case_dir = folder / f"case_{index:05d}"
        case_dir.mkdir(parents=True)
        if kind == "db":
            path = case_dir / "fuzz.db"
            mutations = [_make_db(path, rng)]
        else:
            data = rng.choice(bases[kind])
            mutations = []
            for _ in range(rng.randint(1, 2)):
                data, name = _mutate_text(data, rng, kind)
                mutations.append(name)
            path = case_dir / f"fuzz_{index:05d}.{kind}"
            path.write_bytes(data)
        cases.append(Case(index, kind, mutations, str(path)))
    return cases


# ---- worker --------------------------------------------------------------------------------


def _outcome(run) -> dict:
    try:
        value = run()
    except Exception as exc:  # noqa: BLE001 - the contract is what kind of error
        return {
            "error": type(exc).__name__,
            "value_error": isinstance(exc, ValueError),
            "message": str(exc),
        }
    return {"value": value}


def _descriptors(path: str, backend: str):
    import numpy as np

    import xanesnet

    structures = list(xanesnet.read_structures(path))
    if not structures:  # a database with its tables and no rows: nothing to compute
        return np.zeros((0, xanesnet.WACSF().n_features)), np.zeros(0, dtype=np.int64)
    features, index = xanesnet.WACSF().compute(
        structures, absorber="Fe", backend=backend, n_threads=1
    )
    return np.asarray(features), np.asarray(index)


def _run_case(case: dict, out_root: Path) -> dict:
    import numpy as np

    from xanesnet.cli.batch import main as batch_main

    path = case["path"]
    name = Path(path).name
    stem = Path(path).stem
    stamp = _stamp(path)
    results = {b: _outcome(lambda b=b: _descriptors(path, b)) for b in ("cpp", "numba")}
    defects = []
    for backend, result in results.items():
        if "error" in result:
            if not result["value_error"]:
                defects.append(
                    f"{backend}: {result['error']} is not a ValueError: {result['message'][:200]}"
                )
            elif name not in result["message"] and stem not in result["message"]:
                defects.append(
                    f"{backend}: message does not name the file: {result['message'][:200]}"
                )
    cpp, numba = results["cpp"], results["numba"]
    if ("error" in cpp) != ("error" in numba):
        defects.append(
            f"backends disagree: cpp {cpp.get('error', 'ok')}, numba {numba.get('error', 'ok')}"
        )
    elif "value" in cpp:
        (f1, i1), (f2, i2) = cpp["value"], numba["value"]
        if f1.shape != f2.shape or not np.array_equal(i1, i2):
            defects.append("backends give different sites")
        elif not np.allclose(f1, f2, rtol=1e-9, atol=1e-12, equal_nan=False):
            defects.append("backends give different descriptors")
    out = out_root / f"batch_{case['index']}"
    batch = _outcome(lambda: batch_main([path, "-o", str(out), "--quiet", "--chunk-size", "4"]))
    if "error" in batch:
        defects.append(f"xanesnet-batch raised {batch['error']}: {batch['message'][:200]}")
    elif batch["value"] not in (0, 1):
        defects.append(f"xanesnet-batch returned {batch['value']}")
    # a folder of one .xyz file takes the block parser when forced; folders skip .db files
    given = path if case["kind"] == "db" else str(Path(path).parent)
    defects += _reader_paths_agree(given, out_root / f"paths_{case['index']}")
    if _stamp(path) != stamp:
        defects.append("the input file was written (size or modification time changed)")
    outcome = "read" if "value" in cpp else "refused"
    return {"index": case["index"], "defects": defects, "outcome": outcome}


def _reader_paths_agree(given: str, out: Path) -> list[str]:
    """The batch over the case's input through the compiled readers (block parser for .xyz
    folders, raw extended XYZ frames) and through the per-file readers: the same ids,
    spectra and errors."""
    import numpy as np

    from xanesnet import predict_batch, read_predictions

    results = {}
    for fast in (True, False):
        target = out / str(fast)
        try:
            predict_batch(given, target, chunk_size=4, progress=False, fast_xyz=fast)
            results[fast] = read_predictions(target)
        except Exception as exc:  # noqa: BLE001 - reported as a defect
            return [f"predict_batch(fast_xyz={fast}) raised {type(exc).__name__}: {exc}"[:300]]
    a, b = results[True], results[False]
    if a.ids.tolist() != b.ids.tolist() or not np.array_equal(a.spectra, b.spectra):
        return ["compiled and per-file readers give different predictions"]
    if list(a.errors) != list(b.errors):
        return [f"compiled and per-file readers give different errors: {a.errors} / {b.errors}"]
    return []


def _stamp(path: str) -> tuple[int, int, list[str]]:
    """Size, modification time and the folder's listing (lock or journal files)."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, sorted(os.listdir(Path(path).parent))


def worker(cases_file: str, start: int) -> None:
    import resource
    import warnings

    warnings.simplefilter("ignore")
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    except (ValueError, OSError):
        pass
    cases = json.loads(Path(cases_file).read_text())
    out_root = Path(tempfile.mkdtemp(prefix="fuzz_batch_"))
    # warm up (imports, JIT, model) outside any case's time limit
    _descriptors(str(FIXTURES / "FEN6_FeN6.xyz"), "numba")
    _descriptors(str(FIXTURES / "FEN6_FeN6.xyz"), "cpp")
    print("READY", flush=True)
    for case in cases[start:]:
        print(f"BEGIN {case['index']}", flush=True)
        result = _run_case(case, out_root)
        shutil.rmtree(out_root / f"batch_{case['index']}", ignore_errors=True)
        shutil.rmtree(out_root / f"paths_{case['index']}", ignore_errors=True)
        print("END " + json.dumps(result), flush=True)
    shutil.rmtree(out_root, ignore_errors=True)


# ---- parent --------------------------------------------------------------------------------


@dataclass
class Report:
    cases: int
    defects: dict[int, list[str]]
    crashes: list[int]
    hangs: list[int]
    outcomes: dict[int, str] = field(default_factory=dict)  # "read" or "refused" (named error)

    def summary(self) -> str:
        wrong = len([i for i, d in self.defects.items() if d])
        return f"{self.cases} cases: {len(self.crashes)} crashes, {len(self.hangs)} hangs, {wrong} with wrong results or errors"

    def by_kind(self, cases: list[Case]) -> list[str]:
        """One line per input kind: cases, crashes, hangs, wrong, read, refused."""
        lines = []
        for kind in ("xyz", "extxyz", "db"):
            mine = [c.index for c in cases if c.kind == kind]
            count = {
                "crashes": len(set(mine) & set(self.crashes)),
                "hangs": len(set(mine) & set(self.hangs)),
                "wrong": len([i for i in mine if self.defects.get(i)]),
                "read": len([i for i in mine if self.outcomes.get(i) == "read"]),
                "refused": len([i for i in mine if self.outcomes.get(i) == "refused"]),
            }
            lines.append(
                f"{kind}: {len(mine)} cases, " + ", ".join(f"{v} {k}" for k, v in count.items())
            )
        return lines


def run_campaign(
    cases: list[Case], folder: Path, timeout: float = 60.0, startup: float = 240.0
) -> Report:
    """Run every case in worker processes; a case past ``timeout`` s is a hang, a worker that
    dies inside a case is a crash; either way the next case runs in a fresh worker."""
    cases_file = folder / "cases.json"
    cases_file.write_text(json.dumps([c.__dict__ for c in cases]))
    report = Report(len(cases), {}, [], [])
    position = 0
    import xanesnet

    # the workers import the package this process imported (installed, or a developer build)
    package_parent = str(Path(xanesnet.__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([package_parent, *map(os.path.abspath, paths)])
    )
    worker_log = open(folder / "workers.log", "a")  # noqa: SIM115 - closed below
    while position < len(cases):
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                str(cases_file),
                str(position),
            ],
            stdout=subprocess.PIPE,
            stderr=worker_log,
            text=True,
            env=env,
        )
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current = None
        deadline = time.monotonic() + startup
        while True:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                if current is None:
                    raise RuntimeError(f"fuzz worker did not start (see {folder / 'workers.log'})")
                report.hangs.append(current)
                proc.kill()
                break
            line = proc.stdout.readline()
            if not line:  # the worker died
                if current is not None:
                    report.crashes.append(current)
                break
            if line.startswith("BEGIN "):
                current = int(line.split()[1])
                deadline = time.monotonic() + timeout
            elif line.startswith("END "):
                result = json.loads(line[4:])
                report.defects[result["index"]] = result["defects"]
                report.outcomes[result["index"]] = result["outcome"]
                current = None
                position = result["index"] + 1
                deadline = time.monotonic() + timeout
        proc.wait()
        sel.close()
        if current is not None:
            position = current + 1
        elif position < len(cases) and proc.returncode not in (0, None):
            worker_log.flush()
            tail = (folder / "workers.log").read_text()[-2000:]
            raise RuntimeError(
                f"fuzz worker failed outside a case (exit {proc.returncode}):\n{tail}"
            )
    worker_log.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--worker", nargs=2, metavar=("CASES", "START"))
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = make_cases(Path(tmp), args.cases, args.seed)
        report = run_campaign(cases, Path(tmp), args.timeout)
        by_index = {c.index: c for c in cases}
        for index in report.crashes:
            print(f"CRASH case {index} {by_index[index].kind} {by_index[index].mutations}")
        for index in report.hangs:
            print(f"HANG case {index} {by_index[index].kind} {by_index[index].mutations}")
        for index, defects in sorted(report.defects.items()):
            for defect in defects:
                print(
                    f"WRONG case {index} {by_index[index].kind} {by_index[index].mutations}: {defect}"
                )
        for line in report.by_kind(cases):
            print(line)
        print(report.summary())
    return 0 if not (report.crashes or report.hangs or any(report.defects.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
