"""Dataset cards rendered from `cards/` with huggingface_hub's DatasetCard: a rendering, never a store.

A card is a function of its facts (`card_facts.CardFacts`: one facts dict per config, read from the shard
footers, the labels and the registry, plus what an earlier card carried), so it is rebuilt, never patched:
its `configs:` block lists every config present and its statistics are those of the files. `write_card`
and `push` write the facts beside the card as shift_hub.json; nothing reads README.md back (a card written
before shift_hub.json existed is read once, by hub/legacy_card.py). A value every config shares is said
once, one shared within a shift once per shift; each paper is cited once, each deviation listed once.
"""
from __future__ import annotations

import html
import io
import json
from importlib.resources import files
from pathlib import Path

from .. import folder
from ..folder import SPLIT
from ..registry import REGISTRY
from . import card_facts
from .card_facts import EXAMPLES, CardFacts, complete, config_entry, source_kind

THUMBNAIL_DIR = "thumbnails"  # OUT/thumbnails/<config>.jpg: outside every <config>/validation-*.parquet glob
THUMBNAIL_COUNT, THUMBNAIL_TILE, THUMBNAIL_COLUMNS = 8, 128, 4
# what tells folder.is_shift_hub_card that a README.md is ours; it carries nothing to read back
MARKER = (f"{folder.CARD_MARKER}rendered from {card_facts.FILENAME} beside this card; shift_hub rewrites this "
          "file from that one -->")
IMAGENET_TERMS = "https://image-net.org/download.php"


class CardError(ValueError):
    pass


def template_path(name: str = "dataset_card.md") -> str:
    try:
        return str(files("shift_hub.cards") / name)
    except ModuleNotFoundError:  # imported from a source checkout that shadows the installed package
        return str(Path(__file__).resolve().parents[2] / "cards" / name)


_MD_SPECIAL = {ord(c): "\\" + c for c in "\\`*[]|{}"}  # each markdown character that could start markup


def md_escape(value) -> str:
    """User data (file names, reasons, parameter values) as inert one-line markdown: no headings, links,
    code spans or raw HTML can come out of it."""
    text = " ".join(str(value).split())  # newlines and tabs cannot start a heading or a list
    return html.escape(text, quote=False).translate(_MD_SPECIAL)


# --- licences -------------------------------------------------------------------------------------

def _samples_used(facts_list: list[dict]):
    from ..sources.samples import MANIFEST

    used = set()
    for f in facts_list:
        if source_kind(f.get("source", "")) == "samples":
            used |= set(f.get("photos") or [s.image_id for s in MANIFEST])
    return [s for s in MANIFEST if s.image_id in used]


def licence_terms(facts_list: list[dict]) -> tuple[dict, list[str]]:
    """(the `license*` metadata fields, the licence section's markdown lines) for these configs' sources
    and the weights they were made with: each kind of source keeps its own terms."""
    foreign = [f"`{md_escape(f['name'])}`" for f in facts_list if f.get("foreign")]
    facts_list = [f for f in facts_list if not f.get("foreign")]
    kinds = {source_kind(f.get("source", "")) for f in facts_list}
    photos = _samples_used(facts_list)
    ids, lines = ["unknown"] if foreign else [], []
    if foreign:
        lines.append(f"- {', '.join(foreign)}: listed by the previous card without shift_hub facts; see its notes.")
    if "imagenet" in kinds:
        ids.append("other")
        lines.append(f"- ILSVRC-2012 images: the [ImageNet terms of access]({IMAGENET_TERMS}), non-commercial "
                     "research and educational use only; the copyright of each photo stays with its owner.")
    if photos:
        ids += [p.license_id for p in photos]
        lines.append("- The embedded sample photos, each under its own terms (derived images keep them; "
                     "credit the authors as below):")
        for p in photos:
            link = f" ([origin]({p.link}))" if p.link else ""
            terms = p.license if p.license_id != "unknown" else f"no licence stated: {p.license}"
            lines.append(f"  - `{p.image_id}` ({p.about}): {terms}{link}")
    for kind in sorted(kinds & {"folders", "hf", "unknown"}):
        ids.append("unknown")
        sources = "; ".join(sorted(md_escape(f["source"]) for f in facts_list if source_kind(f["source"]) == kind))
        lines.append(f"- Images from {sources}: they keep their source's terms, which shift_hub cannot read from "
                     f"the files; ImageNet photos fall under the [ImageNet terms of access]({IMAGENET_TERMS}).")
    by_licence: dict[tuple[str, str], list[str]] = {}
    for f in facts_list:
        made_with = f.get("licence_of") or "model weights"
        for lic in f.get("licenses") or (["non-commercial"] if f.get("noncommercial") else []):
            by_licence.setdefault((lic, made_with), []).append(f"`{md_escape(f['name'])}`")
    for (lic, made_with), names in sorted(by_licence.items()):
        if lic == "non-commercial":  # the registry says so without naming a licence
            lines.append(f"- {', '.join(names)}: made with {made_with} released for non-commercial use only, "
                         "so these images are for non-commercial use only.")
            continue
        ids.append(lic)
        terms = "non-commercial use only" + (", and share-alike" if "-sa" in lic else "") if "-nc" in lic \
            else "under the same terms"
        lines.append(f"- {', '.join(names)}: made with {md_escape(made_with)} released under `{lic}`, so these "
                     f"images are for {terms}.")
    ids = sorted(set(ids)) or ["unknown"]
    data = {"license": ids[0] if len(ids) == 1 else ids}
    if "other" in ids:
        data["license_name"] = "imagenet-terms-of-access" if "imagenet" in kinds else "public-domain"
        if "imagenet" in kinds:
            data["license_link"] = IMAGENET_TERMS
    return data, lines


# --- thumbnails -----------------------------------------------------------------------------------

def write_thumbnail(out: Path, name: str) -> tuple[str, int] | None:
    """A grid of the config's first images as OUT/thumbnails/<config>.jpg; returns (relative path, count)."""
    import pyarrow.parquet as pq
    from PIL import Image, ImageOps

    shards = folder.shard_files(out / name)
    rel = f"{THUMBNAIL_DIR}/{name}.jpg"
    target = out / rel
    if shards and target.exists() and target.stat().st_mtime >= max(p.stat().st_mtime for p in shards):
        with Image.open(target) as done:  # up to date: its tile count follows from its size
            count = (done.width // THUMBNAIL_TILE) * (done.height // THUMBNAIL_TILE)
        return rel, min(count, sum(pq.ParquetFile(p).metadata.num_rows for p in shards))
    tiles = []
    for path in shards:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=THUMBNAIL_COUNT, columns=["image"]):
            for cell in batch.column("image").to_pylist()[:THUMBNAIL_COUNT - len(tiles)]:
                img = Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
                tiles.append(ImageOps.fit(img, (THUMBNAIL_TILE, THUMBNAIL_TILE)))
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


# --- rendering ------------------------------------------------------------------------------------

def _shared(items: list[dict], skip=()) -> dict:
    """The key/values every dict in `items` holds alike (keys in `skip` excepted)."""
    first, rest = items[0], items[1:]
    return {k: v for k, v in first.items() if k not in skip and all(k in o and o[k] == v for o in rest)}


def _shift_of(facts: dict) -> str:
    """The shift a config belongs to: its name without the severity suffix (gaussian_noise_3 -> gaussian_noise)."""
    name, sev = facts["name"], facts.get("severity")
    return name[: -len(f"_{sev}")] if isinstance(sev, int) and name.endswith(f"_{sev}") else name


def _span(numbers: list[int]) -> str:
    numbers = sorted(numbers)
    contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
    return f"{numbers[0]}–{numbers[-1]}" if contiguous and len(numbers) > 1 else ", ".join(map(str, numbers))


def _sentences(text: str) -> list[str]:
    """A registry description cut at each space between a sentence's end (.!?) and a capital letter."""
    cuts = [i for i in range(1, len(text) - 1)
            if text[i] == " " and text[i - 1] in ".!?" and "A" <= text[i + 1] <= "Z"]
    return [text[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(text)])]


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _severity_free(text: str, severity: int) -> str:
    """`text` with each whole "severity N" (not "severity 10" for 1) written "severity {S}"."""
    word, out, at = f"severity {severity}", [], 0
    while (found := text.find(word, at)) >= 0:
        end = found + len(word)
        whole = (found == 0 or not _is_word(text[found - 1])) and (end == len(text) or not _is_word(text[end]))
        out.append(text[at:found] + ("severity {S}" if whole else word))
        at = end
    return "".join(out) + text[at:]


def _shared_tail(texts: list[str]) -> str:
    """The closing sentences every text ends with (each keeping one of its own), said once per family."""
    split = [_sentences(t) for t in texts]
    n = 0
    while all(len(s) > n + 1 for s in split) and len({tuple(s[len(s) - n - 1:]) for s in split}) == 1:
        n += 1
    tail = " ".join(split[0][len(split[0]) - n:]) if n and len(texts) > 1 else ""
    return tail if len(tail) >= 40 else ""  # not worth a line of its own


def _description(group: list[dict]) -> str:
    """The shift's description, once for all its severities when they differ by the severity only."""
    if any(f.get("foreign") for f in group):
        return "(Listed by the previous card without shift_hub facts.)"
    specs = [REGISTRY.get(f["name"]) for f in group]
    if not all(specs):
        return "(not in this shift_hub version's registry)"
    if len(group) == 1:
        return specs[0].description
    sevs = [s.severity for s in specs]
    general = {_severity_free(spec.description, s) for s, spec in zip(sevs, specs)}
    if len(general) == 1 and all(isinstance(s, int) for s in sevs):
        return general.pop().replace("severity {S}", f"severity {_span(sevs)}")
    return " ".join(f"`{spec.name}`: {spec.description}" for spec in specs)


_LABELS = {"severity": "severity", "params": "parameters", "geometry": "geometry",
           "encoding": "encoding", "seed": "seed", "version": "shift_hub version", "source": "source",
           "ids_sha256": "image-id list SHA-256", "shards": "shards", "written": "images written",
           "skipped": "images skipped", "converted": "images converted", "classes": "classes present",
           "top": "most frequent classes", "cite": "paper", "deviation": "deviation", "licenses": "licence"}


def _fact_items(facts: dict, keys, context: dict) -> list[tuple[str, str]]:
    """(label, markdown value) for the displayable `keys` of `facts`; every user-derived value escaped."""
    items = []
    for key, label in _LABELS.items():
        value = facts.get(key)
        if key not in keys or value in (None, [], "none", "?") or (key == "severity" and facts["name"].endswith(f"_{value}")):
            continue
        if key == "params" and value == (f"severity={facts['severity']}" if facts.get("severity") is not None
                                         else "none"):
            continue
        items.append((label, _fact_value(key, value, context)))
    return items


def _fact_value(key: str, value, context: dict) -> str:
    if key == "ids_sha256" and isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef"):
        return f"`{value}`"
    if key == "top":
        from .. import classes

        wnids, names = classes.wnids(), classes.names()
        return ", ".join(f"`{wnids[i]}` {names[i]} ({md_escape(n)})" for i, n in value
                         if isinstance(i, int) and 0 <= i < len(wnids))
    if key == "cite":
        return ", ".join(f"[{md_escape(k)}](#citation)" for k in value)
    if key == "deviation":
        return f"[{context['deviations'].index(value) + 1}](#known-deviations)"
    if key == "licenses":
        return ", ".join(md_escape(v) for v in value)
    return md_escape(value)


def _lists(facts: dict, keys, indent: str = "") -> list[str]:
    """A markdown block per per-image list among `keys` (skip reasons, skipped, converted), escaped."""
    out = []
    for key, title in (("skip_reasons", "Why images were skipped"), ("skipped_examples", "Skipped images"),
                       ("converted_examples", "Converted on read")):
        if key in keys and facts.get(key):
            more = f" (first {EXAMPLES})" if key != "skip_reasons" and len(facts[key]) >= EXAMPLES else ""
            lines = [f"{title}{more}:", ""] + [f"- {md_escape(a)}: {md_escape(b)}" for a, b in facts[key]]
            out.append("\n".join(indent + line if line else "" for line in lines))
    return out


def _level(group: list[dict], outer: dict, context: dict) -> tuple[dict, dict]:
    """(what `group` shares beyond `outer`, as display context) for one heading level of the card."""
    shared = _shared(group, {"name"})
    mine = {k: v for k, v in shared.items() if k not in outer}
    return mine, {"items": _fact_items(group[0], mine, context), "lists": _lists(group[0], mine)}


def _render_shift(group: list[dict], shown: dict, context: dict, tail: str = "") -> str:
    """One shift's section: what its configs share beyond `shown`, then each config's own facts."""
    from jinja2 import Environment

    mine, display = _level(group, shown, context)
    configs = []
    for facts in group:
        rest = {k for k in facts if k not in shown and k not in mine and k != "name"}
        configs.append({"name": md_escape(facts["name"]), "items": _fact_items(facts, rest, context),
                        "lists": _lists(facts, rest, indent="  "),
                        "link": f"{THUMBNAIL_DIR}/{facts['name']}.jpg" if facts.get("thumbnail") else None})
    thumb = next((f for f in group[len(group) // 2:] if f.get("thumbnail")), None)
    env = Environment(keep_trailing_newline=True)
    env.filters["md"] = md_escape
    body = env.from_string(Path(template_path("config_section.md")).read_text()).render(
        title=md_escape(_shift_of(group[0])), description=_description(group)[: -len(tail) or None].strip(),
        single=len(group) == 1,
        thumbnail=thumb and {"name": md_escape(thumb["name"]), "count": thumb["thumbnail"],
                             "path": f"{THUMBNAIL_DIR}/{thumb['name']}.jpg"},
        configs=configs, detailed=len(group) > 1 and any(c["items"] or c["lists"] for c in configs),
        span=_config_span(group), **display,
    ).strip()
    return body


def _config_span(group: list[dict]) -> str | None:
    """`gaussian_noise_1` to `gaussian_noise_5` for a shift's contiguous severities, else None."""
    sevs = [f.get("severity") for f in group]
    if len(group) > 2 and all(isinstance(s, int) for s in sevs) and sevs == list(range(sevs[0], sevs[0] + len(sevs))):
        return f"`{md_escape(group[0]['name'])}` to `{md_escape(group[-1]['name'])}`"
    return None


def compose_card(configs: list[tuple[dict, dict]], repo_hint: str, incomplete: list[tuple[str, str]] = ()):
    """The card for a list of (facts, `configs:` entry), in that order."""
    return render(card_facts.from_configs(configs, incomplete=incomplete), repo_hint)


def render(facts: CardFacts, repo_hint: str):
    """The card (a huggingface_hub DatasetCard) rendered from `facts` alone: nothing is read from another card."""
    from huggingface_hub import DatasetCard, DatasetCardData

    if not facts.entries:
        raise CardError("a card needs at least one config")
    entries = card_facts.with_default(facts.entries)
    facts_list = [complete(facts.facts[e["config_name"]]) for e in entries]
    licence_data, licence_lines = licence_terms(facts_list)
    base = facts.metadata
    ours = {**licence_data, "task_categories": ["image-classification"],
            "pretty_name": "shift_hub ImageNet distribution shifts",
            "size_categories": [size_category(sum(f["written"] for f in facts_list if isinstance(f["written"], int)))],
            "tags": sorted(set(base.get("tags") or []) | set(card_facts.OWN_TAGS))}
    extras = {k: v for k, v in base.items() if k not in ours and k not in card_facts.OWN_METADATA}
    data = {**ours, **extras, "configs": entries}  # extras: what an earlier card set that shift_hub does not
    context = {"deviations": list(dict.fromkeys(f["deviation"] for f in facts_list if f["deviation"]))}
    shown, common = _level(facts_list, {}, context) if len(facts_list) > 1 else ({}, {"items": [], "lists": []})
    families: dict[str, dict[str, list[dict]]] = {}
    for f in facts_list:
        families.setdefault(str(f["family"]), {}).setdefault(_shift_of(f), []).append(f)
    for shifts in families.values():  # severities in order, whatever order the configs were pushed in
        for group in shifts.values():
            group.sort(key=lambda f: f["severity"] if isinstance(f["severity"], int) else 0)
    rendered = []
    for family, shifts in families.items():
        members = [f for group in shifts.values() for f in group]
        mine, display = _level(members, shown, context) if len(shifts) > 1 else ({}, {"items": [], "lists": []})
        tail = _shared_tail([_description(g) for g in shifts.values()])
        rendered.append({"name": md_escape(family), "tail": tail, **display, "sections": [
            _render_shift(g, {**shown, **mine}, context, tail) for g in shifts.values()]})
    keys = list(dict.fromkeys(k for f in facts_list for k in f["cite"]))
    names = [f["name"] for f in facts_list]
    return DatasetCard.from_template(
        DatasetCardData(**data), template_path=template_path(), repo_hint=json.dumps(card_facts.one_line(repo_hint)),
        default=next((e["config_name"] for e in entries if e.get("default")), None),
        example=names[-1], count=len(names),
        sources="; ".join(md_escape(v) for v in sorted({str(f["source"]) for f in facts_list})),
        versions=", ".join(md_escape(v) for v in sorted({str(f["version"]) for f in facts_list})),
        common_items=common["items"], common_lists=common["lists"], marker=MARKER,
        licence=licence_lines,
        deviations=[(_deviation_names(facts_list, d), d) for d in context["deviations"]],
        bibtex="\n".join(facts.bibtex.get(k, f"% {k}: BibTeX not available") for k in keys),
        families=rendered, notes=facts.notes,
        incomplete=[(md_escape(n), md_escape(w)) for n, w in facts.incomplete],
    )


def render_files(facts: CardFacts, repo_hint: str) -> tuple[CardFacts, dict[str, str]]:
    """(the facts, recording their README) and the text of README.md and shift_hub.json, README checked."""
    readme = str(render(facts, repo_hint))
    validate_card(readme)
    facts = facts.rendered(readme)
    return facts, {"README.md": readme, card_facts.FILENAME: facts.to_json()}


def _deviation_names(facts_list: list[dict], text: str) -> str:
    """The configs a deviation applies to, a shift's severities written once (`gaussian_noise` 1–5)."""
    by_shift: dict[str, list[dict]] = {}
    for f in facts_list:
        if f["deviation"] == text:
            by_shift.setdefault(_shift_of(f), []).append(f)
    return ", ".join(f"`{md_escape(shift)}` ({_span([f['severity'] for f in group])})" if len(group) > 1
                     else f"`{md_escape(group[0]['name'])}`" for shift, group in by_shift.items())


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for a number of rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T")]
    return next((label for bound, label in bounds if n < bound), "n>1T")


def local_facts(out: str | Path, names: list[str] | None = None, thumbnails: bool = True) -> CardFacts:
    """The card facts of the configs generated in `out` (`names`, or every complete one), writing thumbnails.

    Of the whole folder, a config whose planned shard set is not complete (a run still writing it, or one
    that was killed) is left out of `configs:`, so it cannot be loaded as if complete, and named as such."""
    out = Path(out)
    stats = folder.summary(out)
    if not stats:
        raise FileNotFoundError(f"{out}: no generated configs (expected <config>/{SPLIT}-*.parquet)")
    missing = [n for n in names or [] if n not in stats]
    if missing:
        raise FileNotFoundError(f"{out}: no generated files for config(s) {', '.join(missing)}; "
                                f"present: {', '.join(stats)}")
    incomplete = [] if names else incomplete_configs(out)
    order = {name: i for i, name in enumerate(REGISTRY)}  # the registry's order: clean first
    chosen = names or sorted((n for n in stats if n not in dict(incomplete)),
                             key=lambda n: (order.get(n, len(order)), n))
    if not chosen:
        raise CardError(f"{out}: no complete config to list ({'; '.join(f'{n}: {w}' for n, w in incomplete)}); "
                        "rerun the same `shift-hub generate` to finish them")
    found = []
    for name in _card_progress(chosen, thumbnails):
        facts = card_facts.config_facts(out, name, stats[name])
        thumb = write_thumbnail(out, name) if thumbnails else None
        if thumb is None and (out / THUMBNAIL_DIR / f"{name}.jpg").exists():
            thumb = (f"{THUMBNAIL_DIR}/{name}.jpg", THUMBNAIL_COUNT)
        if thumb:
            facts["thumbnail"] = thumb[1]
        found.append((facts, config_entry(name)))
    return card_facts.from_configs(found, incomplete=incomplete)


def _card_progress(names: list[str], thumbnails: bool):
    """A bar over the configs while a big card reads footers and makes thumbnails (seconds for 100 configs)."""
    import logging

    from tqdm.auto import tqdm

    quiet = logging.getLogger("shift_hub").getEffectiveLevel() > logging.INFO
    return tqdm(names, desc="card and thumbnails" if thumbnails else "card", unit="config", leave=False,
                disable=quiet or len(names) < 10)


def incomplete_configs(out: Path) -> list[tuple[str, str]]:
    """(config, what is wrong, without local paths) for each config whose shard set is not one complete run."""
    found = []
    for name, check in folder.check(out).items():
        if check.problems:
            what = folder.only_missing(check) or "shards of different runs or settings mixed"
            found.append((name, what))
    return found


# --- validation -----------------------------------------------------------------------------------

def validate_card(text: str):
    """Offline check of a card's metadata (`RepoCard.validate` posts to the Hub, unreachable here).

    Parses the YAML with datasets' duplicate-key-refusing loader, round-trips it through
    `DatasetCardData`, and reads the `configs:` block with the exact parser `datasets.load_dataset`
    uses (`MetadataConfigs`), which raises on malformed `data_files` or several default configs.
    Returns the parsed card.
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
    licences = raw.get("license") if isinstance(raw.get("license"), list) else [raw.get("license")]
    if "other" in licences and not raw.get("license_name"):
        raise CardError("license 'other' needs a license_name")
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    names = [c.get("config_name") for c in raw.get("configs", [])]
    if len(set(names)) != len(names) or set(names) != set(configs):
        raise CardError(f"configs block lists a config twice or without a name: {names}")
    try:
        configs.get_default_config_name()
    except ValueError as exc:
        raise CardError(str(exc)) from None
    return card


def write_card(out: str | Path, repo_hint: str | None = None, replace_foreign: bool = False) -> Path:
    """Write OUT/README.md and, beside it, OUT/shift_hub.json, the facts it is rendered from; a README.md
    or shift_hub.json shift_hub did not write is only replaced when `replace_foreign`."""
    out = Path(out)
    path = out / "README.md"
    with folder.card_lock(out):
        if path.exists() and not replace_foreign and not folder.is_shift_hub_card(path):
            raise CardError(f"{path} is not a shift_hub dataset card: move it away, or pass --overwrite to "
                            "replace it")
        facts_path = out / card_facts.FILENAME
        if facts_path.exists() and not replace_foreign and not card_facts.is_facts_file(facts_path):
            raise CardError(f"{facts_path} is not a shift_hub facts file, and shift_hub writes the card's facts "
                            "there: move it away, or pass --overwrite to replace it")
        _, texts = render_files(local_facts(out), repo_hint or out.name)
        for name in (card_facts.FILENAME, "README.md"):  # the card last: it is what says the folder is ours
            _write_atomically(out / name, texts[name])
    return path


def _write_atomically(path: Path, text: str) -> None:
    tmp = folder.temp_path(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
