"""``xanesnet distill CONFIG [--set KEY=VALUE ...]``: train small networks to reproduce a model.

The student learns the teacher's predictions on the training structures and on perturbed
copies of them (see :mod:`xanesnet.model.distill`). The configuration (TOML, or YAML when
PyYAML is installed) has these tables::

    [data]      xyz_dir, xanes_dir, split, element, edge, e0: as for ``xanesnet train``; the
                training split must be the teacher's own (checked by the training-set hash),
                so the validation split stays unseen by both
    [teacher]   model: the teacher model file ("default", "ensemble" or "fast" for a shipped
                one)
    [distill]   copies, sigmas (Å), mixup, seed, originals ("teacher"/"reference"),
                label_margin, spread ("members"/"teacher": the students carry the teacher's
                spread)
    [training]  TrainConfig of the student (networks only), with [training.network]
    [output]    model, workdir, weight_dtype: as for ``xanesnet train``

The student carries the teacher's out-of-domain score (fitted on the training structures if the
teacher has none); it has no calibrated σ of its own (``docs/calibration.md`` says how the
shipped default's was fitted: students distilled per fold).

The student keeps the teacher's descriptor and energy grid. Relative paths are taken from the
configuration file's folder; ``--set distill.copies=8`` overrides any value.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

from xanesnet.cli._dataset import load_split_sets
from xanesnet.cli._progress import Progress, TrainingProgress
from xanesnet.cli._training import (
    add_training_arguments,
    export_trained,
    fit_trust,
    output_paths,
    output_weight_dtype,
    training_record,
)
from xanesnet.config import load_config

SECTIONS = ("data", "teacher", "distill", "training", "output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet distill",
        description="Train networks (the student) on a teacher model's predictions over the training "
        "structures and perturbed copies of them, and export it.",
    )
    add_training_arguments(parser, "distillation")
    parser.add_argument("--teacher", default=None, help="teacher model file ([teacher] model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        raw = load_config(args.config, SECTIONS, args.set)
        return run(raw, args.config.resolve().parent, args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"xanesnet distill: error: {exc}", file=sys.stderr)
        return 2


def _teacher_path(raw: dict[str, Any], base: Path, args: argparse.Namespace) -> Path:
    from xanesnet.model.pretrained import VARIANTS, resolve_model_path

    value = args.teacher or raw.get("teacher", {}).get("model")
    if value is None:
        raise ValueError("no teacher: give --teacher or [teacher] model")
    if args.teacher is None and str(value) not in VARIANTS:
        value = base / value
    return resolve_model_path(value, "--teacher" if args.teacher else "[teacher] model")


def run(raw: dict[str, Any], base: Path, args: argparse.Namespace) -> int:
    import torch

    from xanesnet.checksums import file_sha256
    from xanesnet.io import read_structures
    from xanesnet.model.distill import (
        DistillConfig,
        check_student_config,
        check_teacher_split,
        distillation_set,
        train_student,
    )
    from xanesnet.model.files import load_model
    from xanesnet.model.train import TrainConfig

    raw = copy.deepcopy(raw)
    data = raw.get("data", {})
    output = raw.get("output", {})
    distill_config = DistillConfig.from_dict(raw.get("distill", {}))
    train_config = TrainConfig.from_dict(raw.get("training", {}))
    check_student_config(train_config)
    model_path, workdir = output_paths(output, base, args)
    weight_dtype = output_weight_dtype(output)
    teacher_file = _teacher_path(raw, base, args)
    teacher = load_model(teacher_file)
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset, train_set, val_set = load_split_sets(
        data, base, teacher.descriptor, energies=teacher.energies
    )
    check_teacher_split(teacher.metadata, train_set, teacher_file)
    structures = list(
        read_structures([(base / data["xyz_dir"]).resolve() / f"{n}.xyz" for n in train_set.names])
    )
    print(
        f"distilling {teacher_file.name} on {len(structures)} structures x "
        f"{distill_config.copies} perturbed copies + {distill_config.mixup} mixed samples",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with Progress(distill_config.copies, "teacher labels", "copy", quiet=args.quiet) as copies:
        features, labels, spread, summary = distillation_set(
            teacher,
            structures,
            train_set.features,
            train_set.spectra,
            distill_config,
            n_threads=args.threads,
            progress=lambda done, _total: copies.update_to(done),
        )
    print(
        f"{summary['samples']} samples ({summary['dropped']} dropped: teacher outside the "
        "training spectra's range); "
        f"{train_config.n_members} student(s) x {train_config.epochs} epochs",
        file=sys.stderr,
    )
    progress = TrainingProgress(train_config.epochs, quiet=args.quiet)
    student, histories = train_student(
        features, labels, train_config, spread=spread, workdir=workdir, progress=progress
    )
    progress.close()
    extra = training_record(train_set, train_config, histories, started)
    extra["distillation"] = {
        **distill_config.to_dict(),
        **summary,
        "teacher_file": teacher_file.name,
        "teacher_sha256": file_sha256(teacher_file),
        "teacher_validation_metrics": teacher.metadata.get("validation_metrics"),
    }
    # the out-of-domain score is the training structures' (the student's own standardiser
    # differs, the entry carries its own): the teacher's entry, or one fitted here
    if teacher.trust_model.domain is not None:
        extra["domain"] = teacher.metadata["domain"]
    else:
        extra.update(
            fit_trust(
                student,
                train_set,
                train_config,
                folds=0,
                domain=True,
                weight_dtype=weight_dtype,
                quiet=args.quiet,
            )
        )
    export_trained(
        student,
        model_path,
        weight_dtype=weight_dtype,
        val_set=val_set,
        descriptor=teacher.descriptor,
        energies=teacher.energies,
        e0=teacher.e0,
        element=teacher.element,
        edge=teacher.edge,
        extra=extra,
    )
    return 0
