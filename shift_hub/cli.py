"""`shift-hub`: thin argument parsing over the library. Nothing imports this module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .registry import REGISTRY, BadParameter, UnknownConfig, groups

DESCRIPTION = """\
Regenerate ImageNet distribution-shift benchmarks (ImageNet-C, ImageNet-Cartoon, ImageNet-Drawing,
XImageNet-12 backgrounds, ToonNet-style filters) as Hugging Face datasets, deterministically and
resumably, from your own images, and score any vision model on them.
Start with `shift-hub list`, then `shift-hub generate` and `shift-hub evaluate`; each command's
--help has examples."""

EXAMPLES = {
    "list": """examples:
  shift-hub list                        every config, from the one registry
  shift-hub list --group imagenet_c     the 75 ImageNet-C configs
  shift-hub list --family drawing       one family
  shift-hub list --params drawing       one config's parameters with their types and ranges""",
    "generate": """examples:
  shift-hub generate clean --source samples --out data/
  shift-hub generate imagenet_c --source devkit:/data/ILSVRC2012 --out data/ --num-proc 16
  shift-hub generate drawing --set kernel_size=6 --source folders:/photos --out data/
  shift-hub generate clean imagenet_c --source devkit:/data/ILSVRC2012 --subset robustbench --out rb/
  shift-hub generate imagenet_c --source devkit:/shared/ILSVRC --out /shared/data --engine ray
  shift-hub generate imagenet_c --source devkit:/shared/ILSVRC --out /shared/data --shard 3/16
  shift-hub generate imagenet_p --source devkit:/data/ILSVRC2012 --p-encoding mp4 --out data/
A killed run resumes: run the same command again.""",
    "export-p": """examples:
  shift-hub export-p data/ ImageNet-P/   data/imagenet_p_*/ (--p-encoding mp4) as <perturbation>/<wnid>/*.mp4""",
    "card": """examples:
  shift-hub card data/                  after the last --shard slice, or to refresh the card""",
    "push": """examples:
  shift-hub push data/ my-org/shift_hub --dry-run       what would be uploaded, nothing sent
  shift-hub push data/ my-org/shift_hub --configs clean imagenet_c""",
    "push-results": """examples:
  shift-hub push-results results/ my-org/my-model              a pull request when your token cannot write it
  shift-hub push-results results/ my-org/my-model --create-pr""",
    "leaderboard": """examples:
  shift-hub leaderboard results/ --out board/                   every results folder under results/
  shift-hub leaderboard results/a results/b results/c --sort imagenet_c_mce""",
    "convert-whitebox": """examples:
  shift-hub convert-whitebox ~/Downloads/model-33999.index && shift-hub generate cartoon --out data/""",
}



def _list(args) -> int:
    if args.params:
        from .registry import describe, get, shown_needs

        spec = get(args.params)
        print(f"{spec.name} ({spec.family}): {spec.description}\n")
        print(f"  geometry: {spec.geometry.describe()}; encoding: {spec.encoding.describe()}; "
              f"needs: {shown_needs(spec)}\n")
        for line in describe(spec):
            print(f"  {line}")
        if spec.deviation:
            print(f"\ndeviation: {spec.deviation}")
        return 0
    families = sorted({s.family for s in REGISTRY.values()})
    if args.family and args.family not in families:
        raise UnknownConfig(f"--family {args.family}: no such family; families: {', '.join(families)}")
    grouped = groups()
    if args.group and args.group not in grouped and args.group != "all-cpu":
        raise UnknownConfig(f"--group {args.group}: no such group; groups: {', '.join([*grouped, 'all-cpu'])}")
    from .registry import expand

    in_group = set(expand([args.group])) if args.group else None
    from .registry import shown_needs

    specs = [s for s in REGISTRY.values()
             if (not args.family or s.family == args.family) and (in_group is None or s.name in in_group)]
    header = ("config", "family", "sev", "needs")
    rows = [(s.name, s.family, str(s.severity or "-"), shown_needs(s)) for s in specs]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    room = max(20, LIST_WIDTH - sum(widths) - 2 * len(widths))  # the description takes what is left
    for r, text in [(header, "description"), *((r, _short(s.description, room)) for r, s in zip(rows, specs))]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + text)
    print("\ngeometry, encoding, parameters and deviation of one config: shift-hub list --params CONFIG")
    if grouped and not (args.family or args.group):
        import textwrap

        text = "groups: " + "; ".join(f"{g} ({len(v)} configs)" for g, v in grouped.items()) + "; all-cpu"
        print("\n" + textwrap.fill(text, LIST_WIDTH, subsequent_indent="  ", break_on_hyphens=False))
    return 0


SUBSET_HELP = ("only these images: robustbench (RobustBench's 5,000 ImageNet val images) or FILE, one id a line "
               "(WNID/ILSVRC2012_val_XXXXXXXX.JPEG or the bare id; # comments); every listed image must be there")
LIST_WIDTH = 100  # `shift-hub list` fits a 100-column terminal; the details are under --params


def _short(text: str, width: int = 70) -> str:
    first = text.split(". ")[0].split(": ")[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def _at_least_zero(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value!r}")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="samples",
                   help="samples (default) | devkit:ROOT | folders:ROOT | hf:ID_OR_PATH | a path")
    p.add_argument("--devkit", help="devkit folder holding data/ (default: the source root)")
    p.add_argument("--boxes", help="folder of ILSVRC2012_val_*.xml box annotations")
    p.add_argument("--exclude-blacklist", action="store_true", help="drop the devkit's blacklisted val images")
    p.add_argument("--split", help="split of a Hugging Face source (default validation)")
    p.add_argument("--hf-config", dest="config", help="config (subset) of a Hugging Face source")
    p.add_argument("--image-column", help="image column of a Hugging Face source (default: the first Image feature)")
    p.add_argument("--label-column", help="ImageNet label column of a Hugging Face source (class index, WNID or "
                   "name; default: label)")
    p.add_argument("--id-column", help="column giving each image a stable id (default: the row index), which seeds "
                   "its random draws")


def _open_source(args):
    from .sources import open_source

    keys = ("devkit", "boxes", "exclude_blacklist", "split", "config", "image_column", "label_column", "id_column")
    return open_source(args.source, **{k: getattr(args, k) for k in keys})


def _generate(args) -> int:
    from .generate import generate, summary

    if args.quiet:
        import datasets

        datasets.disable_progress_bars()

    from .registry import expand, get, validate_overrides

    validate_overrides([get(n) for n in expand(args.configs)], _overrides(args))  # before any source is read
    subset = None
    if args.subset:
        from .subsets import load

        subset = load(args.subset)  # a bad id list, too
    reports = generate(args.configs, _open_source(args), args.out, num_proc=args.num_proc, seed=args.seed,
                       limit=args.limit, shard_size=args.shard_size, png=args.png, p_encoding=args.p_encoding,
                       overwrite=args.overwrite,
                       classes_subset=args.classes, batch_size=args.batch_size, progress=not args.quiet,
                       masks=_mask_options(args), overrides=_overrides(args), engine=args.engine,
                       ray_address=args.ray_address, shard=args.shard, subset=subset, per_class=args.per_class)
    if args.quiet:  # --quiet: warnings and errors only (they go through the logger, on stderr)
        return 0
    totals = summary(args.out)
    for name, report in reports.items():
        print(_config_line(name, report, totals.get(name, {}), args.shard))
        for s in totals.get(name, {}).get("skipped", [])[:10]:
            print(f"  skipped {s['image_id']}: {s['reason']}")
    out = Path(args.out)  # a clean path: `out/` prints as `out`, never `out//README.md`
    if (out / "README.md").exists():
        print(f"card: {out / 'README.md'}; load with datasets.load_dataset({str(out)!r}, CONFIG)")
    return 0


def _export_p(args) -> int:
    from .video import export_release

    for perturbation, n in export_release(args.folder, args.out).items():
        print(f"{perturbation}: {_count(n, 'video')} in {Path(args.out) / perturbation}")
    return 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _config_line(name: str, report, on_disk: dict, shard: str | None) -> str:
    """One config's outcome, saying whether this run made anything: a resume with nothing to do or a
    --shard slice holding none of the config must not read as if images were generated."""
    held = f"{_count(on_disk.get('written', 0), 'image')} in {_count(on_disk.get('shards', 0), 'shard')}"
    if not (report.written or report.skipped or report.converted):
        if shard and not on_disk.get("shards"):
            return f"{name}: nothing in slice {shard} (its shards belong to the other slices)"
        if shard:
            return f"{name}: nothing to write in slice {shard} ({held} on disk so far)"
        return f"{name}: already complete ({held})"
    return (f"{name}: {held}, {len(on_disk.get('skipped', []))} skipped, "
            f"{len(on_disk.get('converted', []))} converted")


def _card(args) -> int:
    from . import folder
    from .hub.cards import write_card

    found = folder.problems(folder.check(args.out))
    if found and not args.force:
        print(f"shift-hub: error: {args.out} is not complete, card not written: " + "; ".join(found[:5])
              + ("" if len(found) <= 5 else f" (and {len(found) - 5} more)")
              + "; finish the run (rerun the same generate, or the missing --shard slices) or pass --force",
              file=sys.stderr)
        return 2
    print(f"wrote {write_card(args.out)}")
    return 0


def _overrides(args) -> dict:
    """`--set KEY=VALUE` (JSON values, else strings) and `--weights X` as config parameter overrides."""
    import json

    out = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise UnknownConfig(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    if args.weights:
        out["weights"] = args.weights
    return out


def _convert_whitebox(args) -> int:
    from .shifts.whitebox_convert import LICENSE_NOTE, BadCheckpoint, convert_checkpoint

    try:
        print(f"wrote {convert_checkpoint(args.index, args.out)}\n{LICENSE_NOTE}")
    except BadCheckpoint as exc:
        print(f"shift-hub: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _push(args) -> int:
    from .hub.push import push

    push(args.dir, args.repo_id, configs=args.configs, private=args.private, revision=args.revision,
         dry_run=args.dry_run, overwrite=args.overwrite)
    return 0


def _push_results(args) -> int:
    from .hub.push_results import push_results

    push_results(args.results_dir, args.model_repo, create_pr=args.create_pr)
    return 0


def _leaderboard(args) -> int:
    from .evaluation.leaderboard import LeaderboardError, leaderboard

    try:
        board, paths = leaderboard(args.results, args.out, sort=args.sort, plots=not args.no_plots,
                                   bootstrap=args.bootstrap, seed=args.seed)
    except LeaderboardError as exc:
        return _error(exc)
    print(board.markdown())
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def _mask_options(args):
    """How configs needing masks (the XImageNet-12 backgrounds) get them; see shift_hub/masks.py."""
    from .masks import MaskOptions

    return MaskOptions(polygons=args.polygons, model=args.mask_model, model_labels=tuple(args.mask_label or ()),
                       grabcut_max_side=args.grabcut_max_side, inpaint_model=args.inpaint_model)


class _Parser(argparse.ArgumentParser):
    """A wrong option is one line naming the fix, not the whole usage text first (subcommands inherit this)."""

    def error(self, message: str):
        print(f"shift-hub: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


class Stopped(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption, `kill`): unwound like Ctrl-C, so temp files go and the run says so."""


def _stop_on_sigterm(signum, frame):
    raise Stopped()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shift-hub", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines from shift_hub's logger")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="print the registry of shift configs", epilog=EXAMPLES["list"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", help="only this family (clean, corruptions, cartoon, drawing, toon, ximagenet)")
    p.add_argument("--group", help="only this group (imagenet_c, imagenet_c_extra, imagenet_drawing, toonnet, "
                   "ximagenet12, all-cpu)")
    p.add_argument("--params", metavar="CONFIG", help="show one config's parameters, description and deviation")
    p.set_defaults(func=_list)

    p = sub.add_parser("generate", help="write shift configs as parquet shards in the Hub layout",
                       epilog=EXAMPLES["generate"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="config names from `shift-hub list`, group names, or all-cpu")
    _source_options(p)
    p.add_argument("--out", required=True, help="output folder (the dataset repo root)")
    p.add_argument("--num-proc", type=_positive, default=1,
                   help="worker processes on this machine, one thread each (default 1); output bytes never depend on it")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every random draw, with the config name and image id (default 0; recorded in the card)")
    p.add_argument("--limit", type=_positive, help="first M images of the source (sorted by image id)")
    p.add_argument("--classes", help="restrict to a class subset: ximagenet12, imagenet_r, imagenet_a")
    p.add_argument("--subset", metavar="robustbench|FILE", help=SUBSET_HELP)
    p.add_argument("--per-class", type=_positive, metavar="N",
                   help="N images per ImageNet-9 class among those the backgrounds configs select (the published "
                   "IN-9 has 450), drawn from --seed, for every config of the run")
    p.add_argument("--shard-size", type=_positive, default=1000,
                   help="images per parquet shard (default 1000); the unit of resume, locking and distribution")
    p.add_argument("--batch-size", type=_positive, default=16, help="images per batch for GPU shifts")
    p.add_argument("--png", action="store_true", help="store lossless PNG instead of each config's JPEG")
    p.add_argument("--p-encoding", choices=("png", "mp4"), default="png",  # video.P_ENCODINGS, without its imports
                   help="ImageNet-P sequences: png, lossless frames (default); mp4, each sequence also as the "
                   "release's x264 video (`video` column), `frames` decoded from it (pip install 'shift-hub[video]')")
    p.add_argument("--overwrite", action="store_true",
                   help="replace shards made with other settings, and a README.md that is not a shift_hub card")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process or --num-proc workers (or accelerate/torchrun ranks); ray: one Ray "
                   "task per shard on a Ray cluster (pip install 'shift-hub[ray]'), retried when a worker dies")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray on this machine)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only slice I of N of the plan (job arrays: SLURM --array, indexed jobs); the N slices "
                   "together write exactly the files of one run; the last to finish writes the card")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no info lines; warnings still show")
    p.add_argument("--weights", metavar="PATH_OR_REPO",
                   help="weights for configs that take them (cartoon: a .safetensors, the converted folder, or a Hub repo id)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config parameter, e.g. --set pattern=/path/pattern-I.jpg (recorded in the card)")
    p.add_argument("--polygons", metavar="DIR", help="object masks for the ximagenet12 configs: LabelMe / V7 / "
                   "COCO polygon JSON or mask PNGs named after the image ids (preferred over boxes)")
    p.add_argument("--mask-model", metavar="ID_OR_PATH",
                   help="transformers image-segmentation checkpoint making masks where no polygons exist")
    p.add_argument("--mask-label", action="append", metavar="LABEL",
                   help="segment label(s) of --mask-model kept as the object (default: its largest foreground)")
    p.add_argument("--grabcut-max-side", type=int, metavar="PX",
                   help="run GrabCut (masks from boxes) on a copy at most PX on its longer side, the mask scaled back "
                   "(default 512; 0: full size)")
    p.add_argument("--inpaint-model", metavar="ID_OR_PATH",
                   help="SDXL inpainting pipeline for ai_bg: a downloaded Hub id or a local folder")
    p.set_defaults(func=_generate)

    p = sub.add_parser("export-p", help="write an mp4-encoded folder's ImageNet-P videos in the release's layout, "
                       "OUT/<perturbation>/<wnid>/<image>.mp4", epilog=EXAMPLES["export-p"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="FOLDER",
                   help="a folder written by `shift-hub generate imagenet_p --p-encoding mp4`")
    p.add_argument("out", metavar="OUT", help="where the <perturbation>/ folders go")
    p.set_defaults(func=_export_p)

    p = sub.add_parser("card", help="(re)write OUT/README.md from the shards present, e.g. after job-array slices",
                       epilog=EXAMPLES["card"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", help="a folder written by `shift-hub generate`")
    p.add_argument("--force", action="store_true", help="write the card even if some configs are incomplete")
    p.set_defaults(func=_card)

    p = sub.add_parser("convert-whitebox", help="convert the official White-box Cartoonization checkpoint "
                       "(model-33999.index + .data-00000-of-00001) to safetensors for the `cartoon` config",
                       epilog=EXAMPLES["convert-whitebox"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("index", help="path to model-33999.index (the .data file must sit beside it)")
    p.add_argument("--out", help="output .safetensors (default: where `cartoon` looks when $SHIFT_HUB_WHITEBOX is unset)")
    p.set_defaults(func=_convert_whitebox)

    from .evaluation.command import add_evaluate_parser

    add_evaluate_parser(sub)

    p = sub.add_parser("push", help="upload generated configs and their card to a Hub dataset repo",
                       epilog=EXAMPLES["push"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="a folder written by `shift-hub generate`")
    p.add_argument("repo_id", metavar="REPO_ID", help="e.g. my-org/shift_hub")
    p.add_argument("--configs", nargs="+", metavar="CONFIG", help="configs or groups to push (default: all in DIR)")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
    p.add_argument("--revision", help="branch to push to (created from main if missing)")
    p.add_argument("--dry-run", action="store_true", help="show what would be uploaded, upload nothing")
    p.add_argument("--overwrite", action="store_true",
                   help="also delete files in the pushed configs' folders on the Hub that shift_hub did not write")
    p.set_defaults(func=_push)

    p = sub.add_parser("push-results", epilog=EXAMPLES["push-results"],
                       formatter_class=argparse.RawDescriptionHelpFormatter, help="upload a results folder's .eval_results/shift_hub.yaml to a Hub "
                       "model repo (a pull request when the token cannot write it)")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the --out of `shift-hub evaluate` (one model)")
    p.add_argument("model_repo", metavar="MODEL_REPO", help="the model's Hub repo, e.g. timm/resnet50.a1_in1k")
    p.add_argument("--create-pr", action="store_true",
                   help="open (or update) a pull request even with write access")
    p.set_defaults(func=_push_results)

    p = sub.add_parser("leaderboard", epilog=EXAMPLES["leaderboard"],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="rank results folders: table (markdown, CSV, leaderboard.html) with 95 %% intervals and "
                            "paired significance, and effective-robustness plots (logit axes, linear fit)")
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="results folders of `shift-hub evaluate` (or an OUT holding several)")
    p.add_argument("--out", default="leaderboard",
                   help="folder for leaderboard.md, leaderboard.csv, leaderboard.html and the plot")
    p.add_argument("--sort", metavar="TASK_ID", help="column to rank by (default: mean shifted top-1)")
    p.add_argument("--no-plots", action="store_true", help="skip the effective-robustness plots")
    p.add_argument("--bootstrap", type=_at_least_zero, default=1000, metavar="N",
                   help="resamples over images (from each folder's predictions.jsonl) for every value's 95 %% "
                        "interval and the paired comparison of every two models (default 1000; 0 = none)")
    p.add_argument("--seed", type=_at_least_zero, default=0, help="seed of the resamples (default 0)")
    p.set_defaults(func=_leaderboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `shift-hub list | head` ends quietly
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    args = build_parser().parse_args(argv)
    _configure_logging(verbose=args.verbose, quiet=getattr(args, "quiet", False))
    from .folder import FolderError
    from .generate import GenerationError
    from .hub.cards import CardError
    from .hub.push import PushError
    from .sources import SourceError

    try:
        return args.func(args)
    except (SourceError, GenerationError, PushError, CardError, UnknownConfig, FolderError, BadParameter) as exc:
        return _error(exc.args[0] if exc.args else exc)
    except FileNotFoundError as exc:  # ours carry a sentence; the OS's an errno, a text and the file name
        return _error(describe_exception(exc) if exc.strerror else exc.args[0] if exc.args else exc)
    except Stopped:
        return _error("stopped (SIGTERM); finished shards are kept: rerun the same command to resume", 143)
    except KeyboardInterrupt:
        return _error("interrupted; finished shards are kept and a rerun of the same command resumes", 130)
    except Exception as exc:  # anything unforeseen: its type and message in one line, never a bare errno
        if os.environ.get("SHIFT_HUB_TRACEBACK"):
            raise
        return _error(f"{describe_exception(exc)} (set SHIFT_HUB_TRACEBACK=1 for the traceback)", 1)


def _configure_logging(verbose: bool, quiet: bool) -> None:
    """shift_hub's info and warning lines on stderr, written through tqdm so they never break a progress bar."""
    import logging

    class TqdmHandler(logging.StreamHandler):
        def emit(self, record):
            try:
                from tqdm import tqdm

                tqdm.write(self.format(record), file=sys.stderr)
            except Exception:  # noqa: BLE001 - logging must never raise
                self.handleError(record)

    logger = logging.getLogger("shift_hub")
    logger.handlers[:] = [TqdmHandler()]
    logger.handlers[0].setFormatter(logging.Formatter("%(message)s"))
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, with an OSError's file name and text rather than its bare errno."""
    if isinstance(exc, OSError) and exc.strerror:
        names = " -> ".join(str(n) for n in (exc.filename, exc.filename2) if n is not None)
        return f"{type(exc).__name__}: {exc.strerror}" + (f": {names}" if names else "")
    return f"{type(exc).__name__}: {exc}"


def _error(message, code: int = 2) -> int:
    print(f"shift-hub: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
