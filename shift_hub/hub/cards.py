"""Dataset cards rendered from `cards/` with huggingface_hub's DatasetCard, from what is on disk.

The card is a function of one facts dict per config (read from the shard footers, the labels and the
registry), so it is rebuilt, never patched: its `configs:` block lists every config present and its
statistics are those of the files. The facts are stored in the card itself, in HTML comments, factored
so that a value shared by every config is written once (`<!-- shift_hub:card ... -->`) and one shared
within a shift once per shift (each shift's section, wrapped in `<!-- shift_hub:config ... -->`
markers). `merge_cards` reads them back from a card on the Hub and rebuilds the whole card from local
and remote facts together, so the citation, licence and deviation sections always cover every config.
Long texts are not stored twice: a config names its papers by BibTeX key (entries from the registry or
the card's citation section) and its deviation by a hash of the text listed under Known deviations.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path

from .. import folder
from ..folder import SPLIT, ids_sha256  # noqa: F401  (ids_sha256 re-exported)
from ..registry import REGISTRY

THUMBNAIL_DIR = "thumbnails"  # OUT/thumbnails/<config>.jpg: outside every <config>/validation-*.parquet glob
THUMBNAIL_COUNT, THUMBNAIL_TILE, THUMBNAIL_COLUMNS = 8, 128, 4
EXAMPLES = 10  # skipped / converted images listed per config (the footers keep them all)
DEFAULT_CONFIG = "clean"  # `load_dataset(repo)` without a config name loads this one
_START = "<!-- shift_hub:config "
_END = "<!-- /shift_hub:config -->"
_CARD = "<!-- shift_hub:card "
_DEVIATION = "<!-- shift_hub:deviation "
_SECTION = re.compile(re.escape(_START) + r"(\{.*?\}) -->\n(.*?)\n" + re.escape(_END), re.S)
_CARD_FACTS = re.compile(re.escape(_CARD) + r"(\{.*?\}) -->")
_DEVIATION_ITEM = re.compile(r"^\d+\. (.*) " + re.escape(_DEVIATION) + r"([0-9a-f]{8}) -->$", re.M)
_BIBTEX_BLOCK = re.compile(r"```bibtex\n(.*?)```", re.S)
_BIB_ENTRY = re.compile(r"^@\w+\{([^,\s]+),", re.M)
IMAGENET_TERMS = "https://image-net.org/download.php"


class CardError(ValueError):
    pass


def template_path(name: str = "dataset_card.md") -> str:
    try:
        return str(files("shift_hub.cards") / name)
    except ModuleNotFoundError:  # imported from a source checkout that shadows the installed package
        return str(Path(__file__).resolve().parents[2] / "cards" / name)


_MD_SPECIAL = re.compile(r"([\\`*\[\]|{}])")


def md_escape(value) -> str:
    """User data (file names, reasons, parameter values) as inert one-line markdown: no headings, links,
    code spans or raw HTML can come out of it."""
    import html

    text = " ".join(str(value).split())  # newlines and tabs cannot start a heading or a list
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _one_line(text) -> str:
    return " ".join(str(text).split())


def text_id(text: str) -> str:
    """A short content hash: how a config's facts name a long text stored once elsewhere in the card."""
    return hashlib.sha256(_one_line(text).encode()).hexdigest()[:8]


# --- papers ---------------------------------------------------------------------------------------

def bibtex_entries(text: str) -> dict[str, str]:
    """key -> entry for every BibTeX entry in `text` (a registry citation, or ```bibtex blocks of a card)."""
    starts = list(_BIB_ENTRY.finditer(text))
    return {m.group(1): text[m.start(): starts[i + 1].start() if i + 1 < len(starts) else len(text)].strip()
            for i, m in enumerate(starts)}


def card_bibtex(card_text: str) -> dict[str, str]:
    """The BibTeX entries a card carries (so a merge keeps the papers of configs this version does not know)."""
    found: dict[str, str] = {}
    for block in _BIBTEX_BLOCK.findall(card_text):
        for key, entry in bibtex_entries(block).items():
            found.setdefault(key, entry)
    return found


def registry_bibtex() -> dict[str, str]:
    """key -> entry over the whole registry; the first text of a key wins, so each paper is listed once."""
    found: dict[str, str] = {}
    for spec in REGISTRY.values():
        for key, entry in bibtex_entries(spec.citation or "").items():
            found.setdefault(key, entry)
    return found


# --- licences -------------------------------------------------------------------------------------

# How the footer's source description (Source.describe()) starts, per kind of source.
SOURCE_KINDS = (("samples", "samples"), ("devkit", "imagenet"), ("class folders", "folders"),
                ("Hugging Face dataset", "hf"))
_WEIGHTS_LICENCE = re.compile(r"\bCC BY(?:-(?:NC|SA|ND))* \d\.\d\b")


def source_kind(description: str) -> str:
    """'samples', 'imagenet' (ILSVRC-2012 devkit), 'folders', 'hf' or 'unknown', from a source's description."""
    text = str(description)
    return next((kind for prefix, kind in SOURCE_KINDS if text.startswith(prefix)), "unknown")


def weights_licences(spec) -> list[str]:
    """Hub licence ids of model weights a config was made with, as its registry entry states them."""
    text = f"{spec.description} {spec.deviation or ''}"
    return sorted({m.group(0).lower().replace(" ", "-")  # "CC BY-NC-SA 4.0" -> "cc-by-nc-sa-4.0"
                   for m in _WEIGHTS_LICENCE.finditer(text)})


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
    by_licence: dict[str, list[str]] = {}
    for f in facts_list:
        for lic in f.get("licenses") or (["non-commercial"] if f.get("noncommercial") else []):
            by_licence.setdefault(lic, []).append(f"`{md_escape(f['name'])}`")
    for lic, names in sorted(by_licence.items()):
        if lic == "non-commercial":  # the registry says so without naming a licence
            lines.append(f"- {', '.join(names)}: made with model weights released for non-commercial use only, "
                         "so these images are for non-commercial use only.")
            continue
        ids.append(lic)
        terms = "non-commercial use only" + (", and share-alike" if "-sa" in lic else "") if "-nc" in lic \
            else "under the same terms"
        lines.append(f"- {', '.join(names)}: made with model weights released under `{lic}`, so these images are "
                     f"for {terms}.")
    ids = sorted(set(ids)) or ["unknown"]
    data = {"license": ids[0] if len(ids) == 1 else ids}
    if "other" in ids:
        data["license_name"] = "imagenet-terms-of-access" if "imagenet" in kinds else "public-domain"
        if "imagenet" in kinds:
            data["license_link"] = IMAGENET_TERMS
    return data, lines


# --- facts per config, from the shard footers -----------------------------------------------------

def config_facts(out: Path, name: str, stats: dict) -> dict:
    """Everything the card says about one config, from its footers, its shards and the registry."""
    spec = REGISTRY.get(name)
    enc = stats["encoding"]
    text = f"{spec.deviation or ''} {spec.description}".lower() if spec else ""
    kind = source_kind(stats["source"])
    labels, photos = _read_columns(out / name, ids=kind == "samples")
    skipped, converted = stats.get("skipped", []), stats.get("converted", [])
    facts = {
        "name": name, "family": spec.family if spec else "unknown",
        "severity": spec.severity if spec else None,
        "params": _params_text(stats.get("params", dict(spec.params) if spec else {})),
        "geometry": spec.geometry.describe() if spec else "?",
        "encoding": "PNG (lossless)" if enc["format"] == "PNG" else f"{enc['format']} quality {enc.get('quality')}",
        "seed": stats["seed"], "version": stats["version"], "source": stats["source"],
        "ids_sha256": ids_sha256(out / name), "shards": stats["shards"], "written": stats["written"],
        "skipped": len(skipped), "converted": len(converted),
        "skip_reasons": [list(r) for r in Counter(_reason_kind(s["reason"]) for s in skipped).most_common()],
        "skipped_examples": [[s["image_id"], s["reason"]] for s in skipped[:EXAMPLES]],
        "converted_examples": [[s["image_id"], s["note"]] for s in converted[:EXAMPLES]],
        "classes": len(labels), "top": [[i, n] for i, n in labels.most_common(5)],
        "cite": list(bibtex_entries(spec.citation or "")) if spec else [],
        "deviation": _one_line(spec.deviation) if spec and spec.deviation else None,
        "noncommercial": "non-commercial" in text,
        "licenses": weights_licences(spec) if spec else [],
        "thumbnail": 0,
    }
    if kind == "samples":
        facts["photos"] = photos
    return facts


def _params_text(params: dict) -> str:
    """The parameters the shards were made with (overrides included), as recorded in their footers."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "none"


def _reason_kind(reason: str) -> str:
    """Group skip reasons that differ only by image-specific details (sizes, ids) after a colon."""
    return reason.split(":")[0].strip() or reason


def _read_columns(config_dir: Path, ids: bool = False) -> tuple[Counter, list[str]]:
    """Label counts (images without a label left out) and, when asked, the sorted image ids."""
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    found: set[str] = set()
    for path in folder.shard_files(config_dir):
        table = pq.read_table(path, columns=["label", "image_id"] if ids else ["label"])
        counts.update(table.column("label").to_pylist())
        if ids:
            found.update(table.column("image_id").to_pylist())
    counts.pop(-1, None)
    return counts, sorted(found)


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


# --- facts stored in the card, and read back ------------------------------------------------------

_DEFAULTS = {"family": "?", "severity": None, "params": "?", "geometry": "?", "encoding": "?", "seed": "?",
             "version": "?", "source": "?", "ids_sha256": "?", "shards": "?", "written": "?", "skipped": "?",
             "converted": "?", "skip_reasons": [], "skipped_examples": [], "converted_examples": [],
             "classes": "?", "top": [], "cite": [], "deviation": None, "noncommercial": False, "licenses": [],
             "thumbnail": 0, "photos": None, "foreign": False}
_FROM_NAME = ("severity", "params")  # left out of the stored facts when the config name says them


def _complete(facts: dict) -> dict:
    return {**_DEFAULTS, **facts}


def _name_severity(name: str) -> int | None:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else None


def _name_params(severity) -> str:
    return f"severity={severity}" if severity is not None else "none"


def _stored(facts: dict) -> dict:
    """Facts as written into the card: the deviation text by its hash (the text is listed once), severity
    and parameters left out where the config name says them (gaussian_noise_3: severity=3)."""
    out = {**facts, "deviation": text_id(facts["deviation"]) if facts.get("deviation") else None}
    if out.get("severity") == _name_severity(out["name"]):
        out.pop("severity")
        if out.get("params") == _name_params(facts.get("severity")):
            out.pop("params")
    return out


def _restored(stored: dict, deviations: dict[str, str]) -> dict:
    facts = _complete(stored)
    if "severity" not in stored:
        facts["severity"] = _name_severity(stored["name"])
        if "params" not in stored:
            facts["params"] = _name_params(facts["severity"])
    if facts["deviation"]:
        facts["deviation"] = deviations.get(facts["deviation"], "(text not recorded in the card)")
    return facts


_INERT = {"--": "-\\u002d", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "`": "\\u0060", "(": "\\u0028",
          ")": "\\u0029"}  # none occurs in JSON syntax, only in strings, where \u escapes read back the same


def _json(data) -> str:
    """Facts as one line of JSON that cannot end its comment (no "--") nor carry live markup or links."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    for raw, escaped in _INERT.items():
        text = text.replace(raw, escaped)
    return text


def _loads(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _shared(items: list[dict], skip=()) -> dict:
    """The key/values every dict in `items` holds alike (keys in `skip` excepted)."""
    first, rest = items[0], items[1:]
    return {k: v for k, v in first.items() if k not in skip and all(k in o and o[k] == v for o in rest)}


def _modes(stored: list[dict]) -> dict:
    """Per key, the value most configs hold (when two or more do): written once, as the card's defaults."""
    out = {}
    for key in set.intersection(*(set(s) for s in stored)) - {"name", *_FROM_NAME}:
        counts = Counter(_json(s[key]) for s in stored)
        value, n = counts.most_common(1)[0]
        if n >= 2:
            out[key] = json.loads(value)
    return out


def _differing(stored: dict, *bases: dict) -> dict:
    """The facts of `stored` not already given by `bases` (later bases win, as when reading back)."""
    given: dict = {}
    for base in bases:
        given.update(base)
    return {k: v for k, v in stored.items() if k == "name" or k not in given or given[k] != v}


def parse_sections(text: str) -> dict[str, tuple[dict, str]]:
    """name -> (complete facts, text of the section holding it) for every config a shift_hub card records,
    whether written by this version (factored facts) or by an earlier one (one marked section per config)."""
    card = _CARD_FACTS.search(text)
    defaults = _loads(card.group(1)).get("defaults", {}) if card else {}
    deviations = {text_id(t): _one_line(t) for t in (s.deviation for s in REGISTRY.values()) if t}
    deviations.update(_card_deviations(text))
    found = {}
    for m in _SECTION.finditer(text):
        data = _loads(m.group(1))  # a marker edited by hand into bad JSON: its configs count as without facts
        if "configs" in data:
            for own in data["configs"]:
                own = {"name": own} if isinstance(own, str) else own
                facts = _restored({**defaults, **data.get("common", {}), **own}, deviations)
                found[facts["name"]] = (facts, m.group(0))
        elif "name" in data:  # an earlier card: one section per config, with a table and its own BibTeX
            found[data["name"]] = (_legacy_facts(data, m.group(2)), m.group(0))
    return found


def _leading_int(text: str | None):
    """12 from '12' or '12 of 1000'; '?' when there is none."""
    word = (text or "").split()[:1]
    return int(word[0]) if word and word[0].isdigit() else "?"


def _legacy_facts(data: dict, body: str) -> dict:
    """The facts of a config section written before the facts were factored: its marker, its table rows
    (`| parameters | severity=3 |`), its thumbnail and its BibTeX."""
    import html

    rows = {k: html.unescape(re.sub(r"\\(.)", r"\1", v))
            for k, v in re.findall(r"^\| ([^|\n]+?) \| (.*) \|$", body, re.M)}
    thumb = re.search(r"!\[[^\]]*: first (\d+) images\]\(" + THUMBNAIL_DIR + "/", body)
    sev = rows.get("severity")
    facts = {"severity": int(sev) if sev and sev.isdigit() else None, "params": rows.get("parameters", "?"),
             "geometry": rows.get("geometry", "?"), "encoding": rows.get("encoding", "?"),
             "shards": _leading_int(rows.get("shards")), "converted": _leading_int(rows.get("images converted")),
             "classes": _leading_int(rows.get("classes present")), **data, "cite": list(card_bibtex(body)),
             "thumbnail": int(thumb.group(1)) if thumb else 0}
    return _complete(facts)


def _card_deviations(text: str) -> dict[str, str]:
    """id -> text of a card's Known deviations items; the id (a hash) tells where the text starts."""
    found = {}
    for m in _DEVIATION_ITEM.finditer(text):
        line, wanted = m.group(1), m.group(2)
        for start in [0, *(i + 2 for i in range(len(line)) if line.startswith(": ", i))]:
            if text_id(line[start:]) == wanted:
                found[wanted] = line[start:]
                break
    return found


# --- rendering ------------------------------------------------------------------------------------

def _shift_of(facts: dict) -> str:
    """The shift a config belongs to: its name without the severity suffix (gaussian_noise_3 -> gaussian_noise)."""
    name, sev = facts["name"], facts.get("severity")
    return name[: -len(f"_{sev}")] if isinstance(sev, int) and name.endswith(f"_{sev}") else name


def _span(numbers: list[int]) -> str:
    numbers = sorted(numbers)
    contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
    return f"{numbers[0]}–{numbers[-1]}" if contiguous and len(numbers) > 1 else ", ".join(map(str, numbers))


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?]) (?=[A-Z])", text)


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
    general = {re.sub(rf"\bseverity {s}\b", "severity {S}", spec.description) for s, spec in zip(sevs, specs)}
    if len(general) == 1 and all(isinstance(s, int) for s in sevs):
        return general.pop().replace("severity {S}", f"severity {_span(sevs)}")
    return " ".join(f"`{spec.name}`: {spec.description}" for spec in specs)


_LABELS = {"severity": "severity", "params": "parameters", "geometry": "geometry",
           "encoding": "encoding", "seed": "seed", "version": "shift_hub version", "source": "source",
           "ids_sha256": "image-id list SHA-256", "shards": "shards", "written": "images written",
           "skipped": "images skipped", "converted": "images converted", "classes": "classes present",
           "top": "most frequent classes", "cite": "paper", "deviation": "deviation", "licenses": "weights licence"}


def _fact_items(facts: dict, keys, context: dict) -> list[tuple[str, str]]:
    """(label, markdown value) for the displayable `keys` of `facts`; every user-derived value escaped."""
    items = []
    for key, label in _LABELS.items():
        value = facts.get(key)
        if key not in keys or value in (None, [], "none", "?") or (key == "severity" and facts["name"].endswith(f"_{value}")):
            continue
        if key == "params" and value == _name_params(facts.get("severity")):
            continue
        items.append((label, _fact_value(key, value, context)))
    return items


def _fact_value(key: str, value, context: dict) -> str:
    if key == "ids_sha256" and isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
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


def _render_shift(group: list[dict], shown: dict, defaults: dict, context: dict, tail: str = "") -> str:
    """One shift's section, in markers carrying its configs' facts beyond the card's defaults."""
    from jinja2 import Environment

    stored = [_stored(f) for f in group]
    common = {k: v for k, v in _shared(stored, {"name", *_FROM_NAME}).items()
              if k not in defaults or defaults[k] != v}
    own = [_differing(s, defaults, common) for s in stored]
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
    marker = {"common": common, "configs": [o if len(o) > 1 else o["name"] for o in own]}
    return f"{_START}{_json(marker)} -->\n{body}\n{_END}"


def _config_span(group: list[dict]) -> str | None:
    """`gaussian_noise_1` to `gaussian_noise_5` for a shift's contiguous severities, else None."""
    sevs = [f.get("severity") for f in group]
    if len(group) > 2 and all(isinstance(s, int) for s in sevs) and sevs == list(range(sevs[0], sevs[0] + len(sevs))):
        return f"`{md_escape(group[0]['name'])}` to `{md_escape(group[-1]['name'])}`"
    return None


def config_entry(name: str) -> dict:
    return {"config_name": name, "data_files": [{"split": SPLIT, "path": f"{name}/{SPLIT}-*.parquet"}]}


def _with_default(entries: list[dict]) -> list[dict]:
    """Exactly one default config: the first already marked (a remote card's choice), else `clean`."""
    marked = [e for e in entries if e.get("default")]
    keep = marked[0]["config_name"] if marked else DEFAULT_CONFIG
    out = []
    for e in entries:
        rest = {k: v for k, v in e.items() if k not in ("config_name", "default")}
        out.append({"config_name": e["config_name"], **({"default": True} if e["config_name"] == keep else {}),
                    **rest})
    return out


_OURS = ("license", "license_name", "license_link", "configs")  # metadata the card always sets itself


def compose_card(configs: list[tuple[dict, dict]], repo_hint: str, base_data: dict | None = None,
                 notes: str | None = None, bibtex: dict[str, str] | None = None,
                 incomplete: list[tuple[str, str]] = ()):
    """The card for a list of (facts, `configs:` entry), in that order; `bibtex` adds entries for papers
    the registry does not hold (from a remote card)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    if not configs:
        raise CardError("a card needs at least one config")
    facts_list = [_complete(f) for f, _ in configs]
    for f in facts_list:  # one line each: a deviation is a list item, found again by its hash
        f["deviation"] = _one_line(f["deviation"]) if f["deviation"] else None
    licence_data, licence_lines = licence_terms(facts_list)
    base = base_data or {}
    ours = {**licence_data, "task_categories": ["image-classification"],
            "pretty_name": "shift_hub ImageNet distribution shifts",
            "size_categories": [size_category(sum(f["written"] for f in facts_list if isinstance(f["written"], int)))],
            "tags": sorted(set(base.get("tags") or []) | {"distribution-shift", "robustness", "imagenet",
                                                          folder.CARD_TAG})}
    data = {**ours, **{k: v for k, v in base.items() if k not in ours and k not in _OURS},  # a remote card's extras
            "configs": _with_default([entry for _, entry in configs])}
    context = {"deviations": list(dict.fromkeys(f["deviation"] for f in facts_list if f["deviation"]))}
    defaults = _modes([_stored(f) for f in facts_list])
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
            _render_shift(g, {**shown, **mine}, defaults, context, tail) for g in shifts.values()]})
    papers = {**(bibtex or {}), **registry_bibtex()}
    keys = list(dict.fromkeys(k for f in facts_list for k in f["cite"]))
    names = [f["name"] for f in facts_list]
    return DatasetCard.from_template(
        DatasetCardData(**data), template_path=template_path(), repo_hint=json.dumps(_one_line(repo_hint)),
        default=next((e["config_name"] for e in data["configs"] if e.get("default")), None),
        example=names[-1], count=len(names),
        sources="; ".join(md_escape(v) for v in sorted({str(f["source"]) for f in facts_list})),
        versions=", ".join(md_escape(v) for v in sorted({str(f["version"]) for f in facts_list})),
        common_items=common["items"], common_lists=common["lists"],
        card_marker=f"{_CARD}{_json({'defaults': defaults})} -->",
        licence=licence_lines,
        deviations=[(_deviation_names(facts_list, d), d, f"{_DEVIATION}{text_id(d)} -->")
                    for d in context["deviations"]],
        bibtex="\n".join(papers.get(k, f"% {k}: BibTeX not available") for k in keys),
        families=rendered, notes=notes,
        incomplete=[(md_escape(n), md_escape(w)) for n, w in incomplete],
    )


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


def local_configs(out: str | Path, names: list[str] | None = None, thumbnails: bool = True):
    """(facts, `configs:` entry) for the configs generated in `out` (all, or `names`), writing thumbnails."""
    out = Path(out)
    stats = folder.summary(out)
    if not stats:
        raise FileNotFoundError(f"{out}: no generated configs (expected <config>/{SPLIT}-*.parquet)")
    missing = [n for n in names or [] if n not in stats]
    if missing:
        raise FileNotFoundError(f"{out}: no generated files for config(s) {', '.join(missing)}; "
                                f"present: {', '.join(stats)}")
    order = {name: i for i, name in enumerate(REGISTRY)}  # the registry's order: clean first
    found = []
    chosen = names or sorted(stats, key=lambda n: (order.get(n, len(order)), n))
    for name in _card_progress(chosen, thumbnails):
        facts = config_facts(out, name, stats[name])
        thumb = write_thumbnail(out, name) if thumbnails else None
        if thumb is None and (out / THUMBNAIL_DIR / f"{name}.jpg").exists():
            thumb = (f"{THUMBNAIL_DIR}/{name}.jpg", THUMBNAIL_COUNT)
        if thumb:
            facts["thumbnail"] = thumb[1]
        found.append((facts, config_entry(name)))
    return found


def _card_progress(names: list[str], thumbnails: bool):
    """A bar over the configs while a big card reads footers and makes thumbnails (seconds for 100 configs)."""
    import logging

    from tqdm.auto import tqdm

    quiet = logging.getLogger("shift_hub").getEffectiveLevel() > logging.INFO
    return tqdm(names, desc="card and thumbnails" if thumbnails else "card", unit="config", leave=False,
                disable=quiet or len(names) < 10)


def render_card(out: str | Path, repo_hint: str | None = None, configs: list[str] | None = None,
                thumbnails: bool = True):
    """The card of the configs generated in `out` (all, or `configs`), writing their thumbnails.

    Of the whole folder, a config whose planned shard set is not complete (a run still writing it, or one
    that was killed) is left out of `configs:`, so it cannot be loaded as if complete, and named as such."""
    out = Path(out)
    incomplete = []
    if configs is None:
        incomplete = incomplete_configs(out)
        order = {name: i for i, name in enumerate(REGISTRY)}  # the registry's order: clean first
        configs = sorted((n for n in folder.summary(out) if n not in dict(incomplete)),
                         key=lambda n: (order.get(n, len(order)), n))
        if not configs:
            raise CardError(f"{out}: no complete config to list ({'; '.join(f'{n}: {w}' for n, w in incomplete)}); "
                            "rerun the same `shift-hub generate` to finish them")
    return compose_card(local_configs(out, configs, thumbnails), repo_hint or out.name, incomplete=incomplete)


def incomplete_configs(out: Path) -> list[tuple[str, str]]:
    """(config, what is wrong, without local paths) for each config whose shard set is not one complete run."""
    found = []
    for name, check in folder.check(out).items():
        if check.problems:
            what = folder.only_missing(check) or "shards of different runs or settings mixed"
            found.append((name, what))
    return found


def merge_cards(local_text: str, remote_text: str | None, repo_hint: str):
    """The remote card with the local configs added or replaced; other remote configs are kept as they are.

    The `configs:` lists are merged by config name (remote order, new ones appended), each config keeps
    its own facts, remote metadata the local card does not set (extra tags, languages...) survives, the
    papers of remote configs stay cited, and prose of a remote card that shift_hub did not write is kept
    under "Notes from the previous card".
    """
    from huggingface_hub import DatasetCard

    local = DatasetCard(local_text)
    local_facts = parse_sections(local_text)
    local_entries = {c["config_name"]: c for c in local.data.to_dict().get("configs", [])}
    if not remote_text:
        remote_data, remote_entries, remote_facts, notes, bib = {}, {}, {}, None, {}
    else:
        remote = DatasetCard(remote_text)
        remote_data = remote.data.to_dict()
        remote_entries = {c["config_name"]: c for c in remote_data.get("configs") or [] if "config_name" in c}
        remote_facts = parse_sections(remote_text)
        notes = _previous_notes(remote.text) if remote_facts else (remote.text.strip() or None)
        bib = card_bibtex(remote_text)
    merged = []
    for name in [*remote_entries, *(n for n in local_entries if n not in remote_entries)]:
        if name in local_entries:
            merged.append((local_facts[name][0], local_entries[name]))
        elif name in remote_facts:
            merged.append((remote_facts[name][0], remote_entries[name]))
        else:  # a config the remote card lists without shift_hub facts: keep its entry
            merged.append((_complete({"name": name, "foreign": True, "family": "listed by the previous card"}),
                           remote_entries[name]))
    return compose_card(merged, repo_hint, base_data=remote_data, notes=notes, bibtex=bib)


def _previous_notes(text: str) -> str | None:
    """The prose a shift_hub card carried over from a card shift_hub did not write, if any."""
    match = re.search(r"^## Notes from the previous card\n(.*)\Z", text, re.S | re.M)
    return match.group(1).strip() or None if match else None


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
    """Write OUT/README.md; a README.md shift_hub did not write is only replaced when `replace_foreign`."""
    path = Path(out) / "README.md"
    with folder.card_lock(out):
        if path.exists() and not replace_foreign and not folder.is_shift_hub_card(path):
            raise CardError(f"{path} is not a shift_hub dataset card: move it away, or pass --overwrite to "
                            "replace it")
        card = render_card(out, repo_hint)
        validate_card(str(card))
        tmp = folder.temp_path(path)
        try:
            tmp.write_text(str(card), encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
