"""Add the metadata checksum to model files written before checksums existed (developer tool).

``python scripts/add_model_checksum.py FILE.pt [...]`` rewrites each file in place: the networks
are copied unchanged, the metadata is checked field by field and against the networks, then the
checksum is added. Use it only on files you produced yourself: it vouches for the weights as
they are. Predictions before and after are compared bit for bit on random descriptors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from xanesnet.model.files import (
    CHECKSUM_KEY,
    METADATA_NAME,
    check_against_network,
    check_metadata,
    load_model,
    quiet_torchscript,
    weights_checksum,
)


def add_checksum(path: Path) -> str:
    """Rewrite ``path`` with a checksum; returns it. Files that have one are left alone."""
    extra = {METADATA_NAME: ""}
    with quiet_torchscript():
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[METADATA_NAME])
    if CHECKSUM_KEY in meta:
        load_model(path)  # verifies it
        return meta[CHECKSUM_KEY]
    check_metadata(meta, path)
    check_against_network(module, meta, path)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(64, meta["n_features"])))
    with torch.inference_mode():
        before = [t.clone() for t in module(x.float())]
    meta[CHECKSUM_KEY] = weights_checksum(module.state_dict(), meta)
    # written under its own name in a scratch folder beside it, then renamed into place
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        text = json.dumps(meta, sort_keys=True)
        with quiet_torchscript():
            torch.jit.save(module, str(scratch / path.name), _extra_files={METADATA_NAME: text})
        os.replace(scratch / path.name, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reloaded = load_model(path)
    with torch.inference_mode():
        after = reloaded.module(x.float())
    if not all(torch.equal(a, b) for a, b in zip(before, after, strict=True)):
        raise SystemExit(f"{path}: predictions changed after rewriting; restore the file")
    return meta[CHECKSUM_KEY]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.files:
        print(path, add_checksum(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
