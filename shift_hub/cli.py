"""`shift-hub`: thin argument parsing over the library. Nothing imports this module."""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .registry import REGISTRY, UnknownConfig, groups


def _list(args) -> int:
    if args.params:
        from .registry import get

        spec = get(args.params)
        print(f"{spec.name} ({spec.family}): {spec.description}\n")
        for key, value in spec.params.items():
            print(f"  {key} = {value!r}")
        if spec.deviation:
            print(f"\ndeviation: {spec.deviation}")
        return 0
    rows = [(s.name, s.family, str(s.severity or "-"), ",".join(sorted(s.needs)) or "-",
             s.geometry.describe(), s.encoding.describe(), _short(s.description))
            for s in REGISTRY.values() if not args.family or s.family == args.family]
    header = ("config", "family", "sev", "needs", "geometry", "encoding", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + "  " + r[6])
    grouped = groups()
    if grouped:
        print("\ngroups: " + "; ".join(f"{g} ({len(v)} configs)" for g, v in grouped.items()) + "; all-cpu")
    return 0


def _short(text: str, width: int = 70) -> str:
    first = text.split(". ")[0].split(": ")[0]
    return first if len(first) <= width else first[: width - 1] + "…"


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
    p.add_argument("--hf-config", dest="config", help="config of a Hugging Face source")
    p.add_argument("--image-column")
    p.add_argument("--label-column")
    p.add_argument("--id-column")


def _open_source(args):
    from .sources import open_source

    keys = ("devkit", "boxes", "exclude_blacklist", "split", "config", "image_column", "label_column", "id_column")
    return open_source(args.source, **{k: getattr(args, k) for k in keys})


def _generate(args) -> int:
    from .generate import generate, summary

    if args.quiet:
        import datasets

        datasets.disable_progress_bars()

    reports = generate(args.configs, _open_source(args), args.out, num_proc=args.num_proc, seed=args.seed,
                       limit=args.limit, shard_size=args.shard_size, png=args.png, overwrite=args.overwrite,
                       classes_subset=args.classes, batch_size=args.batch_size, progress=not args.quiet,
                       masks=_mask_options(args), overrides=_overrides(args))
    totals = summary(args.out)
    for name in reports:
        t = totals.get(name, {})
        print(f"{name}: {t.get('written', 0)} images in {t.get('shards', 0)} shard(s), "
              f"{len(t.get('skipped', []))} skipped, {len(t.get('converted', []))} converted")
        for s in t.get("skipped", [])[:10]:
            print(f"  skipped {s['image_id']}: {s['reason']}")
    print(f"wrote {args.out}/README.md; load with datasets.load_dataset({str(args.out)!r}, CONFIG)")
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
         dry_run=args.dry_run)
    return 0


def _mask_options(args):
    """How configs needing masks (the XImageNet-12 backgrounds) get them; see shift_hub/masks.py."""
    from .masks import MaskOptions

    return MaskOptions(polygons=args.polygons, model=args.mask_model, model_labels=tuple(args.mask_label or ()),
                       grabcut_max_side=args.grabcut_max_side, inpaint_model=args.inpaint_model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shift-hub", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="print the registry of shift configs")
    p.add_argument("--family")
    p.add_argument("--params", metavar="CONFIG", help="show one config's parameters, description and deviation")
    p.set_defaults(func=_list)

    p = sub.add_parser("generate", help="write shift configs as parquet shards in the Hub layout")
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="config names from `shift-hub list`, group names, or all-cpu")
    _source_options(p)
    p.add_argument("--out", required=True, help="output folder (the dataset repo root)")
    p.add_argument("--num-proc", type=_positive, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=_positive, help="first M images of the source (sorted by image id)")
    p.add_argument("--classes", help="restrict to a class subset: ximagenet12, imagenet_r, imagenet_a")
    p.add_argument("--shard-size", type=_positive, default=1000)
    p.add_argument("--batch-size", type=_positive, default=16, help="images per batch for GPU shifts")
    p.add_argument("--png", action="store_true", help="store lossless PNG instead of each config's JPEG")
    p.add_argument("--overwrite", action="store_true", help="replace shards made with other settings")
    p.add_argument("--quiet", action="store_true")
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
                   help="run GrabCut (masks from boxes) on a copy at most PX on its longer side; default: full size")
    p.add_argument("--inpaint-model", metavar="ID_OR_PATH",
                   help="SDXL inpainting pipeline for ai_bg: a downloaded Hub id or a local folder")
    p.set_defaults(func=_generate)

    p = sub.add_parser("convert-whitebox", help="convert the official White-box Cartoonization checkpoint "
                       "(model-33999.index + .data-00000-of-00001) to safetensors for the `cartoon` config")
    p.add_argument("index", help="path to model-33999.index (the .data file must sit beside it)")
    p.add_argument("--out", help="output .safetensors (default: where `cartoon` looks when $SHIFT_HUB_WHITEBOX is unset)")
    p.set_defaults(func=_convert_whitebox)

    from .evaluate.command import add_evaluate_parser

    add_evaluate_parser(sub)

    p = sub.add_parser("push", help="upload generated configs and their card to a Hub dataset repo")
    p.add_argument("dir", metavar="DIR", help="a folder written by `shift-hub generate`")
    p.add_argument("repo_id", metavar="REPO_ID", help="e.g. my-org/shift_hub")
    p.add_argument("--configs", nargs="+", metavar="CONFIG", help="configs or groups to push (default: all in DIR)")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
    p.add_argument("--revision", help="branch to push to (created from main if missing)")
    p.add_argument("--dry-run", action="store_true", help="show what would be uploaded, upload nothing")
    p.set_defaults(func=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `shift-hub list | head` ends quietly
    args = build_parser().parse_args(argv)
    from .generate import GenerationError
    from .hub.cards import CardError
    from .hub.push import PushError
    from .sources import SourceError

    try:
        return args.func(args)
    except (SourceError, GenerationError, PushError, CardError, UnknownConfig, FileNotFoundError) as exc:
        print(f"shift-hub: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
