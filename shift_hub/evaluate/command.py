"""`shift-hub evaluate MODEL --data DIR_OR_REPO [--configs ...] [--out DIR]` (wired into shift_hub.cli)."""
from __future__ import annotations

import argparse
import sys


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="score a model on generated configs; print a table, write results")
    p.add_argument("model", nargs="?", default="efficientnet_lite0",
                   help="efficientnet_lite0 (default, embedded) | transformers folder or Hub id | "
                        "hf-hub:ORG/NAME | local-dir:PATH | timm:ARCH (with --weights) | open_clip:ARCH/TAG")
    p.add_argument("--data", default="samples",
                   help="generated folder, Hub dataset repo, or `samples` (generate clean + CPU shifts first)")
    p.add_argument("--configs", nargs="+", help="configs or groups (default: all in the data)")
    p.add_argument("--out", default="shift_hub_results", help="folder for results.json, table, plots")
    p.add_argument("--weights", help="weights file for a timm architecture name")
    p.add_argument("--revision", help="model revision on the Hub")
    p.add_argument("--data-revision", help="dataset revision on the Hub")
    p.add_argument("--split", default="validation")
    p.add_argument("--dataset-id", help="Hub id of the data, for the model-index YAML (default: the source)")
    p.add_argument("--label-space", help="override: imagenet-1k, imagenet-r, imagenet-a, ximagenet-12, toonnet, 16-class")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, help="decoding/preprocessing workers (default: CPUs - 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.add_argument("--amp", action="store_true", help="mixed precision forward")
    p.add_argument("--limit", type=int, help="first N images per config")
    p.add_argument("--allow-partial", action="store_true", help="score models covering only part of ImageNet-1k")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--on-the-fly", action="store_true",
                   help="--data is a source (samples, devkit:ROOT, ...): apply the configs while loading, write nothing")
    from .suite import add_suite_arguments  # --suite robustness --root DIR (+ ImageNet-P options)

    add_suite_arguments(p)
    p.set_defaults(func=run_command)
    return p


def run_command(args) -> int:
    from . import api
    from .labels import UnmappableLabels
    from .models import ModelLoadError
    from ..sources import SourceError
    from .runner import DataError

    if args.quiet:
        _silence_progress_bars()
    if getattr(args, "suite", None):
        from .suite import run_suite_command

        return run_suite_command(args)
    try:
        result = api.evaluate(
            args.model, args.data, args.configs, weights=args.weights, revision=args.revision,
            batch_size=args.batch_size, num_workers=args.num_workers, device=args.device, amp=args.amp,
            split=args.split, data_revision=args.data_revision, label_space=args.label_space, limit=args.limit,
            allow_partial=args.allow_partial, out=args.out, plots=not args.no_plots, progress=not args.quiet,
            dataset_id=args.dataset_id, on_the_fly=args.on_the_fly,
        )
    except (ModelLoadError, UnmappableLabels, DataError, SourceError) as exc:
        print(f"shift-hub evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(result.markdown())
    for kind, path in result.paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def _silence_progress_bars() -> None:
    import datasets

    datasets.disable_progress_bars()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def cli_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shift-hub")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)
