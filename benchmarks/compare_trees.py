"""Before/after on the batch path: two source trees, alternated, warm jobs, one session.

    git worktree add -f /tmp/before e00d7b6 && (cd /tmp/before && scripts/dev_build.sh)
    python benchmarks/compare_trees.py --before /tmp/before --inputs DIR [--rounds 3]

Each round runs, in a fresh process per variant, ``predict_batch(DIR, out)`` once to warm up
(model load, page cache, thread pools) and then ``--jobs`` more times, timing each job; the
variants take turns within a round, so that a machine's drift hits them alike. Variants:

- ``before``: the tree given by ``--before`` (built in place, e.g. with scripts/dev_build.sh);
- ``after``: this tree;
- ``after-bare``: this tree with the per-site trust columns (calibrated σ sums, domain score,
  range flags) and the input fingerprint of safe resumes replaced by no-ops, so that the
  cost of the code's shape and the cost of those two features are told apart;
- ``after-bare-nosum``: ``after-bare`` without the per-chunk data checksums (SHA-256 of each
  committed chunk, which resumes verify) either.

Prints min / median / max seconds per job for each variant, the CPU and the versions.
``DIR`` should hold a few ten thousand XANESNET .xyz files (e.g. 5 copies of the Fe training
structures); nothing is written outside ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _environment import cpuinfo_field, git_commit  # noqa: E402

# Run in the child: time `jobs` warm predict_batch calls; with `bare`, trust and fingerprint
# are no-ops (the columns are then NaN/False, which the job still writes).
_CHILD = r"""
import json, shutil, sys, time
tree, inputs, work, jobs, bare = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, tree)
import xanesnet
if bare:
    from xanesnet.model import trust
    from xanesnet.store import inputs as fingerprint
    def no_trust(self, features, spectra, spread, *, sigma=True):
        return trust.SiteTrust.unknown(len(spectra), self.n_energies if sigma else 0)
    trust.TrustModel.assess = no_trust
    fingerprint.InputFingerprint.of = classmethod(lambda cls, locations: cls(()))
    if bare == 2:  # and the chunk checksums of safe resumes
        import xanesnet.store._output as output
        output.chunk_checksum = lambda chunk: ""
times = []
for k in range(jobs + 1):
    out = f"{work}/out_{k}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    xanesnet.predict_batch([inputs], out, progress=False)
    times.append(time.perf_counter() - start)
    shutil.rmtree(out, ignore_errors=True)
print(json.dumps(times[1:]))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other source tree")
    parser.add_argument("--inputs", type=Path, required=True, help="folder of .xyz files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3, help="timed warm jobs per process")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    after = HERE.parent
    variants = {
        "before": (args.before.resolve(), 0),
        "after": (after, 0),
        "after-bare": (after, 1),
        "after-bare-nosum": (after, 2),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        for round_ in range(args.rounds):
            for name, (tree, bare) in variants.items():
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(tree), str(args.inputs), work,
                     str(args.jobs), str(bare)],
                    cwd=tree, capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs = json.loads(done.stdout.strip().splitlines()[-1])
                times[name] += runs
                print(f"round {round_ + 1} {name}: " + " ".join(f"{t:.3f}" for t in runs))
    n_files = sum(1 for _ in args.inputs.iterdir())
    flags = set((cpuinfo_field("flags") or "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    print(f"CPU: {cpuinfo_field('model name')}; {[f for f in wanted if f in flags]}")
    before = subprocess.run(
        ["git", "-C", str(args.before), "rev-parse", "--short=12", "HEAD"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    print(f"before: {args.before} ({before or '?'}); after: {after} ({git_commit()})")
    print(f"inputs: {args.inputs} ({n_files} files); {args.rounds} rounds x {args.jobs} jobs")
    base = statistics.median(times["before"])
    for name, values in times.items():
        med = statistics.median(values)
        print(
            f"{name:>11}: s per job min {min(values):.3f} median {med:.3f} max {max(values):.3f}"
            f"  ({med / base - 1:+.1%} against before)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
