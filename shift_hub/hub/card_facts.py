"""The facts a dataset card is rendered from, and shift_hub.json, the file beside the card that keeps them.

A card is a function of one facts dict per config (read from the shard footers, the labels and the registry)
and of what an earlier card carried (its prose, its metadata, configs shift_hub did not write). README.md is
that function's output and is never read back; shift_hub.json is its input. So `push` merges files, not
texts: the configs pushed now take their facts from the local footers, every other config keeps the facts the
repo's shift_hub.json holds (hub/legacy_card.py reads them, once, from a card written before the file).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import folder
from ..folder import SPLIT, ids_sha256
from ..registry import REGISTRY

FILENAME = folder.FACTS_FILE  # at the repo root: outside every <config>/validation-*.parquet glob
FORMAT_KEY, FORMAT = folder.FACTS_KEY, 1  # the key that says a JSON file is ours, and its version
DEFAULT_CONFIG = "clean"  # `load_dataset(repo)` without a config name loads this one
EXAMPLES = 10  # skipped / converted images listed per config (the footers keep them all)
FOREIGN_FAMILY = "listed by the previous card"
# card metadata shift_hub always sets itself; whatever else a previous card set is kept
OWN_METADATA = ("license", "license_name", "license_link", "configs", "task_categories", "pretty_name",
                "size_categories")
OWN_TAGS = ("distribution-shift", "robustness", "imagenet", folder.CARD_TAG)

DEFAULTS = {"family": "?", "severity": None, "params": "?", "geometry": "?", "encoding": "?", "seed": "?",
            "version": "?", "source": "?", "ids_sha256": "?", "shards": "?", "written": "?", "skipped": "?",
            "converted": "?", "skip_reasons": [], "skipped_examples": [], "converted_examples": [],
            "classes": "?", "top": [], "cite": [], "deviation": None, "noncommercial": False, "licenses": [], "licence_of": None,
            "thumbnail": 0, "photos": None, "foreign": False}


class FactsError(ValueError):
    """A shift_hub.json that cannot be used; the message names the file and the fix."""


def one_line(text) -> str:
    return " ".join(str(text).split())


def complete(facts: dict) -> dict:
    """Every key the card reads, '?' (or empty) where a config's facts do not say; the deviation on one line."""
    out = {**DEFAULTS, **facts}
    out["deviation"] = one_line(out["deviation"]) if out["deviation"] else None
    return out


def foreign_facts(name: str) -> dict:
    """The facts of a config an earlier card lists without shift_hub facts: its name, nothing else known."""
    return complete({"name": name, "foreign": True, "family": FOREIGN_FAMILY})


# --- the facts of a whole card, and shift_hub.json ------------------------------------------------

@dataclass
class CardFacts:
    """Everything a card is rendered from. `entries` is the `configs:` block in card order (one default
    marked), `facts` one complete facts dict per entry, `bibtex` the entry of every paper they cite."""
    entries: list[dict]
    facts: dict[str, dict]
    bibtex: dict[str, str] = field(default_factory=dict)
    notes: str | None = None  # prose of an earlier card shift_hub did not write
    metadata: dict = field(default_factory=dict)  # metadata an earlier card set that shift_hub does not
    incomplete: list[list[str]] = field(default_factory=list)  # [config, what is missing], local folders only
    readme_sha256: str | None = None  # of the README.md rendered from these facts

    @property
    def names(self) -> list[str]:
        return [e["config_name"] for e in self.entries]

    def pairs(self) -> list[tuple[dict, dict]]:
        return [(self.facts[e["config_name"]], e) for e in self.entries]

    def to_json(self) -> str:
        """Deterministic text (sorted keys, ASCII, one trailing newline): the same facts, the same bytes."""
        data = {FORMAT_KEY: FORMAT, "about": "the facts the dataset card README.md is rendered from (shift_hub)",
                "configs": self.entries, "facts": self.facts, "bibtex": self.bibtex, "notes": self.notes,
                "metadata": self.metadata, "incomplete": self.incomplete, "readme_sha256": self.readme_sha256}
        return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = FILENAME) -> "CardFacts":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise FactsError(f"{where} is not JSON ({exc})") from None
        if not isinstance(data, dict) or FORMAT_KEY not in data:
            raise FactsError(f"{where} is not a shift_hub facts file (no {FORMAT_KEY!r} key)")
        if data[FORMAT_KEY] != FORMAT:
            raise FactsError(f"{where} is format {data[FORMAT_KEY]!r}, this shift_hub reads format {FORMAT}: "
                             "upgrade shift_hub")
        entries, facts = data.get("configs"), data.get("facts")
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("config_name"), str)
                                                    for e in entries) or not isinstance(facts, dict):
            raise FactsError(f"{where}: 'configs' must be a list of `configs:` entries, 'facts' a mapping")
        names = [e["config_name"] for e in entries]
        if len(set(names)) != len(names) or set(names) != set(facts) or \
                not all(isinstance(f, dict) and f.get("name") == n for n, f in facts.items()):
            raise FactsError(f"{where}: 'configs' and 'facts' must name the same configs, each once")
        return cls([dict(e) for e in entries], {n: complete(f) for n, f in facts.items()},
                   dict(data.get("bibtex") or {}), data.get("notes"), dict(data.get("metadata") or {}),
                   [list(i) for i in data.get("incomplete") or []], data.get("readme_sha256"))

    def rendered(self, readme: str) -> "CardFacts":
        """These facts, recording the README.md rendered from them (so an edited README is noticed)."""
        return replace(self, readme_sha256=hashlib.sha256(readme.encode()).hexdigest())

    def renders(self, readme: str) -> bool:
        """Whether `readme` is the README.md rendered from these facts, unedited."""
        return self.readme_sha256 == hashlib.sha256(readme.encode()).hexdigest()


def from_configs(configs: list[tuple[dict, dict]], bibtex: dict[str, str] | None = None, notes: str | None = None,
                 metadata: dict | None = None, incomplete=()) -> CardFacts:
    """The card facts of (facts, `configs:` entry) pairs in card order; `bibtex` adds entries for papers the
    registry does not hold (from an earlier card); only the papers the configs cite are kept."""
    facts = {f["name"]: complete(f) for f, _ in configs}
    papers = {**(bibtex or {}), **registry_bibtex()}
    cited = dict.fromkeys(k for f in facts.values() for k in f["cite"])
    metadata = json.loads(json.dumps(metadata or {}, sort_keys=True))  # in the order shift_hub.json gives back
    return CardFacts(with_default([e for _, e in configs]), facts, {k: papers[k] for k in cited if k in papers},
                     notes or None, metadata, [[n, w] for n, w in incomplete])


def merge(local: CardFacts, remote: CardFacts | None) -> CardFacts:
    """The remote card's configs with the local ones added or replaced (remote order, new ones appended):
    every other remote config keeps its own facts, the remote notes and metadata stay, and so do the papers
    remote configs cite. Nothing local but its configs carries over (a local folder has no notes)."""
    if remote is None:
        return from_configs(local.pairs())
    entries = {e["config_name"]: e for e in remote.entries}
    entries.update((e["config_name"], e) for e in local.entries)
    facts = {**remote.facts, **local.facts}
    names = [*remote.names, *(n for n in local.names if n not in remote.facts)]
    return from_configs([(facts[n], entries[n]) for n in names], {**remote.bibtex, **local.bibtex},
                        remote.notes, remote.metadata)


def completed_by(stored: CardFacts, card: CardFacts) -> CardFacts:
    """`stored` (a repo's shift_hub.json) with what a README.md not rendered from it adds (a card edited on
    the Hub, or written by an older shift_hub): configs it lists that `stored` lacks and its metadata."""
    missing = [n for n in card.names if n not in stored.facts]
    extra = {e["config_name"]: e for e in card.entries}
    tags = sorted({*stored.metadata.get("tags", []), *card.metadata.get("tags", [])})
    metadata = {**stored.metadata, **card.metadata, **({"tags": tags} if tags else {})}
    return from_configs([*stored.pairs(), *((card.facts[n], extra[n]) for n in missing)],
                        {**card.bibtex, **stored.bibtex}, stored.notes, metadata)


def extra_metadata(data: dict) -> dict:
    """The metadata of a card that shift_hub does not set itself (extra tags, languages...), to keep."""
    out = {k: v for k, v in data.items() if k not in OWN_METADATA and k != "tags"}
    tags = data.get("tags") or []
    tags = sorted({str(t) for t in (tags if isinstance(tags, list) else [tags])} - set(OWN_TAGS))
    return {**out, **({"tags": tags} if tags else {})}


is_facts_file = folder.is_facts_file  # whether a local shift_hub.json was written by shift_hub


def config_entry(name: str) -> dict:
    return {"config_name": name, "data_files": [{"split": SPLIT, "path": f"{name}/{SPLIT}-*.parquet"}]}


def with_default(entries: list[dict]) -> list[dict]:
    """Exactly one default config: the first already marked (an earlier card's choice), else `clean`."""
    marked = [e for e in entries if e.get("default")]
    keep = marked[0]["config_name"] if marked else DEFAULT_CONFIG
    out = []
    for e in entries:
        rest = {k: e[k] for k in sorted(e) if k not in ("config_name", "default", "data_files")}
        files = e.get("data_files")
        out.append({"config_name": e["config_name"], **({"default": True} if e["config_name"] == keep else {}),
                    **({"data_files": _in_order(files)} if "data_files" in e else {}), **rest})
    return out


def _in_order(data_files):
    """`data_files` with each item's keys in one order (split, then path), as the card shows them, so the card
    does not depend on the key order JSON or YAML gave them in."""
    if not isinstance(data_files, list):
        return data_files
    first = ("split", "path")
    return [{**{k: f[k] for k in first if k in f}, **{k: f[k] for k in sorted(f) if k not in first}}
            if isinstance(f, dict) else f for f in data_files]


# --- papers ---------------------------------------------------------------------------------------

_BIB_ENTRY = re.compile(r"^@\w+\{([^,\s]+),", re.M)


def bibtex_entries(text: str) -> dict[str, str]:
    """key -> entry for every BibTeX entry in `text` (a registry citation, or a card's ```bibtex block)."""
    starts = list(_BIB_ENTRY.finditer(text))
    return {m.group(1): text[m.start(): starts[i + 1].start() if i + 1 < len(starts) else len(text)].strip()
            for i, m in enumerate(starts)}


def registry_bibtex() -> dict[str, str]:
    """key -> entry over the whole registry; the first text of a key wins, so each paper is listed once."""
    found: dict[str, str] = {}
    for spec in REGISTRY.values():
        for key, entry in bibtex_entries(spec.citation or "").items():
            found.setdefault(key, entry)
    return found


# --- facts per config, from the shard footers -----------------------------------------------------

# How the footer's source description (Source.describe()) starts, per kind of source.
SOURCE_KINDS = (("samples", "samples"), ("devkit", "imagenet"), ("class folders", "folders"),
                ("Hugging Face dataset", "hf"))
_WEIGHTS_LICENCE = re.compile(r"\bCC BY(?:-(?:NC|SA|ND))* \d\.\d\b")  # over registry texts


def source_kind(description: str) -> str:
    """'samples', 'imagenet' (ILSVRC-2012 devkit), 'folders', 'hf' or 'unknown', from a source's description."""
    text = str(description)
    return next((kind for prefix, kind in SOURCE_KINDS if text.startswith(prefix)), "unknown")


def weights_licences(spec) -> list[str]:
    """Hub licence ids of model weights a config was made with, as its registry entry states them."""
    if spec.licence:
        return [spec.licence]
    text = f"{spec.description} {spec.deviation or ''}"
    return sorted({m.group(0).lower().replace(" ", "-")  # "CC BY-NC-SA 4.0" -> "cc-by-nc-sa-4.0"
                   for m in _WEIGHTS_LICENCE.finditer(text)})


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
        "encoding": _encoding_text(enc),
        "seed": stats["seed"], "version": stats["version"], "source": stats["source"],
        "ids_sha256": ids_sha256(out / name), "shards": stats["shards"], "written": stats["written"],
        "skipped": len(skipped), "converted": len(converted),
        "skip_reasons": [list(r) for r in Counter(_reason_kind(s["reason"]) for s in skipped).most_common()],
        "skipped_examples": [[s["image_id"], s["reason"]] for s in skipped[:EXAMPLES]],
        "converted_examples": [[s["image_id"], s["note"]] for s in converted[:EXAMPLES]],
        "classes": len(labels), "top": [[i, n] for i, n in labels.most_common(5)],
        "cite": list(bibtex_entries(spec.citation or "")) if spec else [],
        "deviation": _deviation(spec, enc),
        "noncommercial": "non-commercial" in text,
        "licenses": weights_licences(spec) if spec else [],
        "licence_of": spec.licence_of if spec and weights_licences(spec) else None,
        "thumbnail": 0,
    }
    if kind == "samples":
        facts["photos"] = photos
    return facts


def _encoding_text(enc: dict) -> str:
    """How the shards store images, from their footer: an ImageNet-P config stored as mp4 says its x264 settings."""
    from ..video import describe

    if enc.get("video"):
        return describe(enc["video"])
    return "PNG (lossless)" if enc["format"] == "PNG" else f"{enc['format']} quality {enc.get('quality')}"


def _deviation(spec, enc: dict) -> str | None:
    """The registry's deviation; for frames stored as mp4 ImageNet-P's mp4 text, naming the encoder used."""
    if spec and spec.frames and enc.get("video"):
        from ..registry import p_deviation

        return one_line(p_deviation("mp4", enc["video"].get("encoder", "?")))
    return one_line(spec.deviation) if spec and spec.deviation else None


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
