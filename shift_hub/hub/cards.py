"""Dataset cards rendered from `cards/` with huggingface_hub's DatasetCard, from what is on disk.

The card is rebuilt from the shard footers every time, so its `configs:` block always lists every
config present in the folder, and its statistics are those of the files themselves. Each config's
section is wrapped in HTML-comment markers carrying its key facts as JSON, so that a card pushed
to the Hub can be merged with a local one config by config (see `merge_cards`) without reading
the remote parquet files.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path

from ..registry import REGISTRY

THUMBNAIL_DIR = "thumbnails"  # OUT/thumbnails/<config>.jpg: outside every <config>/validation-*.parquet glob
THUMBNAIL_COUNT, THUMBNAIL_TILE, THUMBNAIL_COLUMNS = 8, 128, 4
_START = "<!-- shift_hub:config "
_END = "<!-- /shift_hub:config -->"
_SECTION = re.compile(re.escape(_START) + r"(\{.*?\}) -->\n(.*?)\n" + re.escape(_END), re.S)
_FACT_KEYS = ("name", "family", "written", "skipped", "seed", "source", "ids_sha256", "version", "noncommercial",
              "deviation")


class CardError(ValueError):
    pass


def template_path(name: str = "dataset_card.md") -> str:
    try:
        return str(files("shift_hub.cards") / name)
    except ModuleNotFoundError:  # imported from a source checkout that shadows the installed package
        return str(Path(__file__).resolve().parents[2] / "cards" / name)


# --- facts per config, from the shard footers -----------------------------------------------------

def config_facts(out: Path, name: str, stats: dict) -> dict:
    """Everything the card says about one config, from its footers, its labels and the registry."""
    spec = REGISTRY.get(name)
    enc = stats["encoding"]
    noncommercial = bool(spec and "non-commercial" in f"{spec.deviation or ''} {spec.description}".lower())
    labels = _label_counts(out / name)
    return {
        "name": name, "anchor": name.lower(), "family": spec.family if spec else "unknown",
        "description": spec.description if spec else "(not in this shift_hub version's registry)",
        "severity": (spec.severity or "none") if spec else "?",
        "params": _params_text(stats.get("params", dict(spec.params) if spec else {})),
        "geometry": spec.geometry.describe() if spec else "?",
        "encoding": "PNG (lossless)" if enc["format"] == "PNG" else f"{enc['format']} quality {enc.get('quality')}",
        "seed": stats["seed"], "version": stats["version"], "source": stats["source"],
        "ids_sha256": ids_sha256(out / name), "shards": stats["shards"], "written": stats["written"],
        "skipped": stats["skipped"], "converted": stats["converted"],
        "skip_reasons": Counter(_reason_kind(s["reason"]) for s in stats["skipped"]).most_common(),
        "num_classes": len(labels), "top_classes": _top_classes(labels),
        "deviation": spec.deviation if spec else None, "citation": (spec.citation if spec else "").strip(),
        "noncommercial": noncommercial,
        "license": ("non-commercial: ImageNet terms and non-commercial weights" if noncommercial
                    else "inherits the source images' terms (ImageNet: non-commercial research)"),
        "thumbnail": None, "thumbnail_count": 0,
    }


def _params_text(params: dict) -> str:
    """The parameters the shards were made with (overrides included), as recorded in their footers."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "none"


def _reason_kind(reason: str) -> str:
    """Group skip reasons that differ only by image-specific details (sizes, ids) after a colon."""
    return reason.split(":")[0].strip() or reason


def _label_counts(config_dir: Path) -> Counter:
    import pyarrow.parquet as pq

    from ..generate import SPLIT

    counts: Counter = Counter()
    for path in sorted(config_dir.glob(f"{SPLIT}-*.parquet")):
        counts.update(pq.read_table(path, columns=["label"]).column("label").to_pylist())
    counts.pop(-1, None)  # images without a label
    return counts


def _top_classes(counts: Counter, k: int = 5) -> str:
    if not counts:
        return "none"
    from .. import classes

    wnids, names = classes.wnids(), classes.names()
    return ", ".join(f"`{wnids[i]}` {names[i]} ({n})" for i, n in counts.most_common(k))


def ids_sha256(config_dir: Path) -> str:
    """SHA-256 over the per-shard hashes of the (sorted) image-id list a config was planned from."""
    from ..generate import SPLIT, shard_metadata

    h = hashlib.sha256()
    for path in sorted(config_dir.glob(f"{SPLIT}-*.parquet")):
        h.update(shard_metadata(path)["ids_sha256"].encode())
    return h.hexdigest()


# --- thumbnails -----------------------------------------------------------------------------------

def write_thumbnail(out: Path, name: str) -> tuple[str, int] | None:
    """A grid of the config's first images as OUT/thumbnails/<config>.jpg; returns (relative path, count)."""
    import pyarrow.parquet as pq
    from PIL import Image, ImageOps

    from ..generate import SPLIT

    shards = sorted((out / name).glob(f"{SPLIT}-*.parquet"))
    rel = f"{THUMBNAIL_DIR}/{name}.jpg"
    target = out / rel
    if shards and target.exists() and target.stat().st_mtime >= max(p.stat().st_mtime for p in shards):
        with Image.open(target) as done:  # up to date: its tile count follows from its size
            count = (done.width // THUMBNAIL_TILE) * (done.height // THUMBNAIL_TILE)
        return rel, min(count, sum(pq.ParquetFile(p).metadata.num_rows for p in shards))
    tiles = []
    for path in shards:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=THUMBNAIL_COUNT, columns=["image"]):
            for cell in batch.column("image").to_pylist():
                img = Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
                tiles.append(ImageOps.fit(img, (THUMBNAIL_TILE, THUMBNAIL_TILE)))
                if len(tiles) == THUMBNAIL_COUNT:
                    break
            break
        if len(tiles) == THUMBNAIL_COUNT:
            break
    if not tiles:
        return None
    cols = min(THUMBNAIL_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    grid = Image.new("RGB", (cols * THUMBNAIL_TILE, rows * THUMBNAIL_TILE), "white")
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * THUMBNAIL_TILE, (i // cols) * THUMBNAIL_TILE))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    grid.save(tmp, format="JPEG", quality=85)
    tmp.replace(target)
    return rel, len(tiles)


# --- sections and the whole card ------------------------------------------------------------------

def render_section(facts: dict) -> str:
    """One config's section, wrapped in markers that carry its key facts for later merges."""
    from jinja2 import Template

    body = Template(Path(template_path("config_section.md")).read_text()).render(c=facts).strip()
    return _wrap({k: facts[k] if k != "skipped" else len(facts[k]) for k in _FACT_KEYS}, body)


def _wrap(facts: dict, body: str) -> str:
    marker = json.dumps(facts, sort_keys=True).replace("--", "-\\u002d")  # "--" may not occur in a comment
    return f"{_START}{marker} -->\n{body}\n{_END}"


def config_entry(name: str) -> dict:
    from ..generate import SPLIT

    return {"config_name": name, "data_files": [{"split": SPLIT, "path": f"{name}/{SPLIT}-*.parquet"}]}


def compose_card(sections: list[tuple[dict, str, dict]], repo_hint: str, base_data: dict | None = None,
                 notes: str | None = None):
    """The card for a list of (facts, section text, `configs:` entry), in that order."""
    from huggingface_hub import DatasetCard, DatasetCardData

    if not sections:
        raise CardError("a card needs at least one config")
    data = dict(base_data or {})
    data.update(
        license="other", license_name="imagenet-terms-of-access",
        license_link="https://image-net.org/download.php",
        task_categories=["image-classification"],
        pretty_name="shift_hub ImageNet distribution shifts",
        tags=sorted(set(data.get("tags") or []) | {"distribution-shift", "robustness", "imagenet", "shift_hub"}),
        configs=[entry for _, _, entry in sections],
    )
    total = sum(f["written"] for f, _, _ in sections if isinstance(f.get("written"), int))
    data["size_categories"] = [size_category(total)]
    configs = [{**facts, "anchor": facts["name"].lower(), "section": text,
                "skipped": len(facts["skipped"]) if isinstance(facts["skipped"], list) else facts["skipped"]}
               for facts, text, _ in sections]
    return DatasetCard.from_template(
        DatasetCardData(**data), template_path=template_path(), repo_hint=repo_hint,
        first_config=configs[0]["name"], configs=configs,
        sources="; ".join(sorted({c["source"] for c in configs})),
        versions="version " + ", ".join(sorted({c["version"] for c in configs})),
        noncommercial=", ".join(f"`{c['name']}`" for c in configs if c["noncommercial"]),
        deviations=_group_deviations(configs),
        notes=notes,
    )


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for a number of rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T")]
    return next((label for bound, label in bounds if n < bound), "n>1T")


def _group_deviations(configs: list[dict]) -> list[tuple[str, str]]:
    """(config names, text) per distinct deviation, so 95 corruption configs sharing one note list it once."""
    grouped: dict[str, list[str]] = {}
    for c in configs:
        if c.get("deviation"):
            grouped.setdefault(c["deviation"], []).append(f"`{c['name']}`")
    return [(", ".join(names), text) for text, names in grouped.items()]


def local_sections(out: str | Path, names: list[str] | None = None, thumbnails: bool = True):
    from ..generate import SPLIT, summary

    out = Path(out)
    stats = summary(out)
    if not stats:
        raise FileNotFoundError(f"{out}: no generated configs (expected <config>/{SPLIT}-*.parquet)")
    missing = [n for n in names or [] if n not in stats]
    if missing:
        raise FileNotFoundError(f"{out}: no generated files for config(s) {', '.join(missing)}; "
                                f"present: {', '.join(stats)}")
    sections = []
    for name in names or list(stats):
        facts = config_facts(out, name, stats[name])
        thumb = write_thumbnail(out, name) if thumbnails else None
        if thumb is None and (out / THUMBNAIL_DIR / f"{name}.jpg").exists():
            thumb = (f"{THUMBNAIL_DIR}/{name}.jpg", THUMBNAIL_COUNT)
        if thumb:
            facts["thumbnail"], facts["thumbnail_count"] = thumb
        sections.append((facts, render_section(facts), config_entry(name)))
    return sections


def render_card(out: str | Path, repo_hint: str | None = None, configs: list[str] | None = None,
                thumbnails: bool = True):
    """The card of the configs generated in `out` (all, or `configs`), writing their thumbnails."""
    out = Path(out)
    return compose_card(local_sections(out, configs, thumbnails), repo_hint or out.name)


def parse_sections(text: str) -> dict[str, tuple[dict, str]]:
    """name -> (facts, section text with markers) for every marked config section of a card."""
    found = {}
    for m in _SECTION.finditer(text):
        facts = json.loads(m.group(1))
        found[facts["name"]] = (facts, m.group(0))
    return found


def merge_cards(local_text: str, remote_text: str | None, repo_hint: str):
    """The remote card with the local configs added or replaced; other remote configs are kept as they are.

    The `configs:` lists are merged by config name (remote order, new ones appended), each config keeps
    its own section, remote metadata the local card does not set (extra tags, languages...) survives,
    and prose of a remote card that shift_hub did not write is kept under "Notes from the previous card".
    """
    from huggingface_hub import DatasetCard

    local = DatasetCard(local_text)
    local_sections_ = parse_sections(local_text)
    local_entries = {c["config_name"]: c for c in local.data.to_dict().get("configs", [])}
    if not remote_text:
        remote_data, remote_entries, remote_sections, notes = {}, {}, {}, None
    else:
        remote = DatasetCard(remote_text)
        remote_data = remote.data.to_dict()
        remote_entries = {c["config_name"]: c for c in remote_data.get("configs") or [] if "config_name" in c}
        remote_sections = parse_sections(remote_text)
        notes = _previous_notes(remote.text) if remote_sections else (remote.text.strip() or None)
    merged = []
    for name in [*remote_entries, *(n for n in local_entries if n not in remote_entries)]:
        if name in local_entries:
            facts, text = local_sections_[name]
            merged.append((facts, text, local_entries[name]))
        elif name in remote_sections:
            facts, text = remote_sections[name]
            merged.append((_complete(facts), text, remote_entries[name]))
        else:  # a config the remote card lists without a shift_hub section: keep its entry
            facts = _complete({"name": name})
            text = _wrap(facts, f"### `{name}`\n\n(Listed by the previous card without a shift_hub section.)")
            merged.append((facts, text, remote_entries[name]))
    return compose_card(merged, repo_hint, base_data=remote_data, notes=notes)


def _previous_notes(text: str) -> str | None:
    """The prose a shift_hub card carried over from a card shift_hub did not write, if any."""
    match = re.search(r"^## Notes from the previous card\n(.*)\Z", text, re.S | re.M)
    return match.group(1).strip() or None if match else None


def _complete(facts: dict) -> dict:
    defaults = {"family": "?", "written": "?", "skipped": "?", "seed": "?", "source": "?", "ids_sha256": "?",
                "version": "?", "noncommercial": False, "deviation": None}
    return {**defaults, **facts}


# --- validation -----------------------------------------------------------------------------------

def validate_card(text: str):
    """Offline check of a card's metadata (`RepoCard.validate` posts to the Hub, unreachable here).

    Parses the YAML with datasets' duplicate-key-refusing loader, round-trips it through
    `DatasetCardData`, and reads the `configs:` block with the exact parser `datasets.load_dataset`
    uses (`MetadataConfigs`), which raises on malformed `data_files`. Returns the parsed card.
    """
    import yaml
    from datasets.utils.metadata import MetadataConfigs, _NoDuplicateSafeLoader, _split_yaml_from_readme
    from huggingface_hub import DatasetCard, DatasetCardData

    block, _ = _split_yaml_from_readme(text)
    if block is None:
        raise CardError("the card has no YAML metadata block")
    try:
        raw = yaml.load(block, Loader=_NoDuplicateSafeLoader)
    except (yaml.YAMLError, TypeError) as exc:  # TypeError: datasets' loader refusing a duplicate key
        raise CardError(f"card metadata is not valid YAML: {exc}") from exc
    card = DatasetCard(text)
    if DatasetCardData(**card.data.to_dict()).to_dict() != raw:
        raise CardError("card metadata does not round-trip through DatasetCardData")
    if raw.get("license") == "other" and not raw.get("license_name"):
        raise CardError("license 'other' needs a license_name")
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    names = [c.get("config_name") for c in raw.get("configs", [])]
    if len(set(names)) != len(names) or set(names) != set(configs):
        raise CardError(f"configs block lists a config twice or without a name: {names}")
    return card


def write_card(out: str | Path, repo_hint: str | None = None) -> Path:
    card = render_card(out, repo_hint)
    validate_card(str(card))
    path = Path(out) / "README.md"
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(str(card))
    tmp.replace(path)
    return path
