"""``xanesnet COMMAND ...``: dispatch to one module per command."""

from __future__ import annotations

import importlib
import sys

#: command name -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("xanesnet.cli.predict", "predict spectra with a model (default: shipped Fe K)"),
    "batch": ("xanesnet.cli.batch", "streaming, resumable prediction (also: xanesnet-batch)"),
    "merge": ("xanesnet.cli.merge", "join the shard outputs of a batch job"),
    "export-xdi": ("xanesnet.cli.export_xdi", "XDI files (Larch, Athena) of a batch output"),
    "descriptors": ("xanesnet.cli.descriptors", "compute wACSF descriptors of absorbing sites"),
    "train": ("xanesnet.cli.train", "train a spectrum model and export it"),
    "distill": ("xanesnet.cli.distill", "train small networks to reproduce a larger model"),
    "evaluate": ("xanesnet.cli.evaluate", "published metrics of a model on a data set"),
    "plot": ("xanesnet.cli.plot", "figures: predicted vs reference spectra, Δμ histogram"),
    "importance": ("xanesnet.cli.importance", "permutation feature importance per energy window"),
    "convolve": ("xanesnet.cli.convolve", "broaden raw FDMNES spectra onto an energy grid"),
    "models": ("xanesnet.cli.models", "list the shipped pretrained models and their figures"),
}


def _usage() -> str:
    lines = ["usage: xanesnet COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'xanesnet COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from xanesnet import __version__

        print(f"xanesnet {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"xanesnet: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(command[0])
    return int(module.main(args[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
