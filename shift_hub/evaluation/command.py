"""`shift-hub evaluate MODEL [MODEL ...] --data DIR_OR_REPO [--configs ...] [--out DIR]` (wired into shift_hub.cli).

One model writes its results in OUT as always; several write OUT/<model id>/ each plus the combined
leaderboard (table, CSV, effective-robustness plot) in OUT."""
from __future__ import annotations

import argparse
import re
import sys


EXAMPLES = """examples:
  shift-hub evaluate efficientnet_lite0 --data samples --out results/          generate from the sample photos, score
  shift-hub evaluate ./my-vit --data data/ --configs clean imagenet_c
  shift-hub evaluate hf-hub:timm/resnet50.a1_in1k torchvision:resnet50 --data my-org/shift_hub --out results/
  shift-hub evaluate MODEL --data devkit:/data/ILSVRC2012 --configs imagenet_c --on-the-fly
  shift-hub evaluate MODEL --data in9/ --configs backgrounds --backgrounds-challenge 0   BG-gap and challenge score
  shift-hub evaluate torchvision:resnet50 --data rb/ --subset robustbench      beside RobustBench's leaderboard
  shift-hub evaluate MODEL --suite robustness --root /data/shifts
  accelerate launch -m shift_hub.cli evaluate MODEL --data data/                   one process per GPU"""


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="score a model on generated configs; print a table, write results", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="*", default=["efficientnet_lite0"],
                   help="one or more: efficientnet_lite0 (default, embedded) | transformers folder or Hub id | "
                        "hf-hub:ORG/NAME | local-dir:PATH | timm:ARCH (with --weights) | torchvision:ARCH[/TAG] "
                        "(--weights FILE, else torchvision's IMAGENET1K_V1) | open_clip:ARCH/TAG")
    p.add_argument("--data", default="samples",
                   help="generated folder, Hub dataset repo, or `samples` (generate clean + CPU shifts first; default samples)")
    p.add_argument("--configs", nargs="+", help="configs or groups (default: all in the data)")
    p.add_argument("--out", default="shift_hub_results", help="folder for results.json, table, plots (default shift_hub_results)")
    p.add_argument("--weights", help="weights file for a timm:ARCH or torchvision:ARCH model (one model)")
    p.add_argument("--revision", help="model revision on the Hub")
    p.add_argument("--data-revision", help="dataset revision on the Hub")
    p.add_argument("--split", default="validation", help="split of the data to score (default validation)")
    p.add_argument("--dataset-id", help="Hub id of the data, for the model-index and .eval_results YAML "
                                        "(default: the Hub source; needed for a local folder)")
    p.add_argument("--label-space", help="override: imagenet-1k, imagenet-r, imagenet-a, ximagenet-12, toonnet, 16-class")
    p.add_argument("--batch-size", type=_at_least(1), default=32,
                   help="images per forward pass (default 32); results do not depend on it")
    p.add_argument("--num-workers", type=_at_least(0),
                   help="decoding/preprocessing workers (default: CPUs - 1)")
    p.add_argument("--device", type=_device, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.add_argument("--amp", action="store_true", help="mixed precision forward")
    p.add_argument("--limit", type=_at_least(1), help="first N images per config")
    p.add_argument("--subset", metavar="robustbench|FILE",
                   help="score only these images: robustbench (RobustBench's 5,000 ImageNet val images) or FILE, one "
                        "id a line; every listed image must be in each config (recorded in results.json)")
    p.add_argument("--allow-partial", action="store_true", help="score models covering only part of ImageNet-1k")
    p.add_argument("--bootstrap", type=_at_least(0), default=1000, metavar="N",
                   help="resamples over images for the 95 %% interval of every score (default 1000; 0 = none)")
    p.add_argument("--backgrounds-challenge", type=_at_least(0), metavar="N",
                   help="the Backgrounds Challenge's score: the share of in9_original foregrounds (cut by in9_fg_mask) "
                        "some in9_only_bg_t background flips, N backgrounds per foreground drawn by its seeded "
                        "generator (0: every background, as the original); needs those three configs in --data")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let a transformers checkpoint run its own Python code (config auto_map); refused otherwise")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any config or image could not be read (they are always reported)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (report.html keeps the table)")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no info lines; warnings still show")
    p.add_argument("--on-the-fly", action="store_true",
                   help="--data is a source (samples, devkit:ROOT, ...): apply the configs while loading; no shift data is written (results still are)")
    from .suite import add_suite_arguments  # --suite robustness --root DIR (+ ImageNet-P options)

    add_suite_arguments(p)
    p.set_defaults(func=run_command)
    p.error = _one_line_error  # a bad option value: one line, as every other evaluate error
    return p


def _one_line_error(message: str):
    print(f"shift-hub: error: {message} (see shift-hub evaluate --help)", file=sys.stderr)
    sys.exit(2)


def _at_least(least: int):
    """argparse type: an integer >= least, refused at parse time rather than deep in the DataLoader."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < least:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {value!r}")
        return number

    return parse


_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu|npu|hpu|mtia|meta)(:\d+)?$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a device; use cpu, cuda, cuda:N or mps")
    return value


def run_command(args) -> int:
    """Run, print the table; every expected failure is one `shift-hub: error:` line and exit 2,
    unreadable data only with --strict (exit 1)."""
    try:
        return _run(args)
    except _expected_errors() as exc:
        print(f"shift-hub: error: {_cli_words(_one_line(exc))}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from . import api

    if args.quiet:
        _silence_progress_bars()
    models = list(args.model) or ["efficientnet_lite0"]
    if len(models) > 1:
        return _run_many(args, models)
    args.model = models[0]
    if getattr(args, "suite", None):
        if args.subset:
            from .runner import DataError

            raise DataError("--subset applies to --data, not to --suite (its sets are scored whole)")
        if args.backgrounds_challenge is not None:
            from .runner import DataError

            raise DataError("--backgrounds-challenge applies to --data (a folder holding the backgrounds configs), "
                            "not to --suite")
        from .suite import run_suite_command

        return run_suite_command(args)
    result = api.evaluate(
        args.model, args.data, args.configs, weights=args.weights, revision=args.revision,
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device, amp=args.amp,
        split=args.split, data_revision=args.data_revision, label_space=args.label_space, limit=args.limit,
        allow_partial=args.allow_partial, out=args.out, plots=not args.no_plots, progress=not args.quiet,
        dataset_id=args.dataset_id, on_the_fly=args.on_the_fly, trust_remote_code=args.trust_remote_code,
        bootstrap=args.bootstrap, subset=args.subset, p_difficulty=args.p_difficulty, p_reference=args.p_reference,
        backgrounds_challenge=args.backgrounds_challenge,
    )
    from .runner import is_main_process

    if not is_main_process():  # under accelerate/torchrun every rank has the results; rank 0 speaks
        return 0
    print(result.markdown())
    for kind, path in result.paths.items():
        print(f"wrote {kind}: {path}")
    for name, why in result.not_written.items():
        print(f"not written: {name} ({why})")
    unreadable = result.results.get("unreadable")
    if unreadable and args.strict:
        from .report import describe_unreadable

        print(f"shift-hub: error: --strict: could not read {describe_unreadable(unreadable)}", file=sys.stderr)
        return 1
    if result.results["data"].get("incomplete") and args.strict:
        from .report import describe_incomplete

        print(f"shift-hub: error: --strict: incomplete config(s): {describe_incomplete(result.results)}; rerun "
              "the generate run that makes them, then evaluate again", file=sys.stderr)
        return 1
    return 0


def _run_many(args, models: list[str]) -> int:
    """Several models on the same data: per-model folders and the combined leaderboard. The data and every
    model are checked first (a model that cannot be loaded is one line, nothing scored); a model that fails
    while scoring is reported in one line and the others still run (exit 2 if any failed)."""
    from . import api

    for flag, value in (("--weights", args.weights), ("--revision", args.revision)):
        if value:
            print(f"shift-hub: error: {flag} applies to one model; with several, use local-dir:PATH, "
                  "hf-hub:ID or one evaluate run per weights file", file=sys.stderr)
            return 2
    if getattr(args, "suite", None):
        print("shift-hub: error: --suite scores one model per run; give one MODEL", file=sys.stderr)
        return 2
    many = api.evaluate_many(
        models, args.data, args.configs, out=args.out, plots=not args.no_plots, progress=not args.quiet,
        limit=args.limit, on_the_fly=args.on_the_fly, expected_errors=_expected_errors(),
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device, amp=args.amp, split=args.split,
        data_revision=args.data_revision, label_space=args.label_space, allow_partial=args.allow_partial,
        dataset_id=args.dataset_id, trust_remote_code=args.trust_remote_code, bootstrap=args.bootstrap,
        subset=args.subset, p_difficulty=args.p_difficulty, p_reference=args.p_reference,
        backgrounds_challenge=args.backgrounds_challenge,
    )
    for result in many.results:
        print(result.markdown() + "\n")
        for kind, path in result.paths.items():
            print(f"wrote {kind}: {path}")
        for name, why in result.not_written.items():
            print(f"not written: {name} ({why})")
        print()
    if many.board:
        print(many.markdown())
        for kind, path in many.paths.items():
            print(f"wrote {kind}: {path}")
    for spec, why in many.failures.items():
        print(f"shift-hub: error: {spec}: {_cli_words(why)}", file=sys.stderr)
    if args.strict and any(r.results.get("unreadable") or r.results["data"].get("incomplete") for r in many.results):
        print("shift-hub: error: --strict: some configs were incomplete or could not be read (see the tables)", file=sys.stderr)
        return 1
    return 2 if many.failures else 0


def _expected_errors() -> tuple:
    from ..generate import GenerationError
    from ..registry import UnknownConfig
    from ..sources import SourceError
    from .labels import UnknownLabelSpace, UnmappableLabels
    from .models import ModelLoadError
    from .runner import DataError

    return (ModelLoadError, UnmappableLabels, UnknownLabelSpace, DataError, SourceError, GenerationError,
            UnknownConfig, OSError)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # the OS's text and file, not "[Errno 2]"
        text = f"{type(exc).__name__}: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc)
    return " ".join(text.split())


# the library's messages name keyword arguments; on the command line the same advice names flags
_API_TO_FLAGS = (
    ("load_model('timm:ARCH', weights=...)", "shift-hub evaluate timm:ARCH --weights FILE"),
    ("allow_partial=True", "--allow-partial"),
    ("on_the_fly=True", "--on-the-fly"),
    ("weights=PATH", "--weights FILE"),
    ("weights=", "--weights"),
    ("split=", "--split"),
    ("batch_size", "--batch-size"),
    ("num_workers", "--num-workers"),
)


def _cli_words(message: str) -> str:
    for api_words, flag in _API_TO_FLAGS:
        message = message.replace(api_words, flag)
    return message


def _silence_progress_bars() -> None:
    import datasets

    from huggingface_hub.utils import disable_progress_bars

    datasets.disable_progress_bars()
    disable_progress_bars()  # huggingface_hub's, which transformers follows: no need to import transformers here
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def cli_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shift-hub")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)
