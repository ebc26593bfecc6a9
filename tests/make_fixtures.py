"""Regenerate the committed fixtures from ../shared/data (run from the repository root).

- ``xanesnet/examples/fe_k_edge/*.xyz``: the 100 Fe structures of the upstream example set
  (XANESNET .xyz), shipped inside the package for the README's main job and the tests.
- ``tests/data/wacsf/wacsf_reference_values.json``: upstream wACSF vectors of three of them.

- ``tests/data/spectra/``: three raw and processed Fe spectra (``make_spectra_fixtures.py``).
- ``tests/data/structures/``: small synthetic structures (``make_structure_fixtures.py``).

Usage: ``python tests/make_fixtures.py [--shared ../shared]`` runs every generator.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args(argv)
    fe = args.shared / "data" / "fe_k_edge"
    examples = ROOT / "xanesnet" / "examples" / "fe_k_edge"
    examples.mkdir(parents=True, exist_ok=True)
    sources = sorted((fe / "xanesnet_2026_data_fe" / "xyz_train").glob("*.xyz"))
    # The upstream example set lacks this structure's .xyz; the 2022 set has it byte-identical.
    sources.append(fe / "xanesnet_2022_preconv" / "xyz_train" / "ABAXIK_C11H21FeIN3O2(1+).xyz")
    for path in sources:
        shutil.copyfile(path, examples / path.name)
    reference = ROOT / "tests" / "data" / "wacsf"
    reference.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fe / "wacsf_reference_values.json", reference / "wacsf_reference_values.json")
    print(f"wrote {len(sources)} example structures to {examples.relative_to(ROOT)}")
    for script in ("make_spectra_fixtures.py", "make_structure_fixtures.py"):
        command = [sys.executable, str(ROOT / "tests" / script)]
        if script == "make_spectra_fixtures.py":
            command += ["--shared", str(args.shared)]
        subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
