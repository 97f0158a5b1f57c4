"""`shift-hub`: thin argument parsing over the library. Nothing imports this module."""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .registry import REGISTRY, groups


def _list(args) -> int:
    rows = [(s.name, s.family, str(s.severity or "-"), ",".join(sorted(s.needs)) or "-",
             s.geometry.describe(), s.encoding.describe(), s.description.split(". ")[0])
            for s in REGISTRY.values() if not args.family or s.family == args.family]
    header = ("config", "family", "sev", "needs", "geometry", "encoding", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + "  " + r[6])
    grouped = groups()
    if grouped:
        print("\ngroups: " + "; ".join(f"{g} ({len(v)} configs)" for g, v in grouped.items()) + "; all-cpu")
    return 0


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

    reports = generate(args.configs, _open_source(args), args.out, num_proc=args.num_proc, seed=args.seed,
                       limit=args.limit, shard_size=args.shard_size, png=args.png, overwrite=args.overwrite,
                       classes_subset=args.classes, batch_size=args.batch_size, progress=not args.quiet)
    totals = summary(args.out)
    for name in reports:
        t = totals.get(name, {})
        print(f"{name}: {t.get('written', 0)} images in {t.get('shards', 0)} shard(s), "
              f"{len(t.get('skipped', []))} skipped, {len(t.get('converted', []))} converted")
        for s in t.get("skipped", [])[:10]:
            print(f"  skipped {s['image_id']}: {s['reason']}")
    print(f"wrote {args.out}/README.md; load with datasets.load_dataset({str(args.out)!r}, CONFIG)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shift-hub", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="print the registry of shift configs")
    p.add_argument("--family")
    p.set_defaults(func=_list)

    p = sub.add_parser("generate", help="write shift configs as parquet shards in the Hub layout")
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="config names from `shift-hub list`, group names, or all-cpu")
    _source_options(p)
    p.add_argument("--out", required=True, help="output folder (the dataset repo root)")
    p.add_argument("--num-proc", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="first M images of the source (sorted by image id)")
    p.add_argument("--classes", help="restrict to a class subset: ximagenet12, imagenet_r, imagenet_a")
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16, help="images per batch for GPU shifts")
    p.add_argument("--png", action="store_true", help="store lossless PNG instead of each config's JPEG")
    p.add_argument("--overwrite", action="store_true", help="replace shards made with other settings")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .generate import GenerationError
    from .sources import SourceError

    try:
        return args.func(args)
    except (SourceError, GenerationError, KeyError, FileNotFoundError) as exc:
        print(f"shift-hub: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
