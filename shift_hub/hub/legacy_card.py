"""Reading a card written before shift_hub.json existed, once, into card facts: the only place a card is read.

Cards of shift_hub 0.1.0 kept their facts in HTML comments: factored (`<!-- shift_hub:card {...} -->` for
what every config shares, a `<!-- shift_hub:config {...} -->` section per shift for the rest, deviations by
the hash of their text in `<!-- shift_hub:deviation ID -->` list items), or, earlier, one marked section per
config with its facts in a table. A push onto a repo without shift_hub.json reads them here, keeps the
prose a card shift_hub did not write, and from then on the repo's shift_hub.json is used instead.
"""
from __future__ import annotations

import hashlib
import html
import json
import re

from .. import folder
from ..registry import REGISTRY
from .card_facts import CardFacts, bibtex_entries, complete, extra_metadata, foreign_facts, from_configs, one_line

_START = "<!-- shift_hub:config "
_END = "<!-- /shift_hub:config -->"
_SECTION = re.compile(re.escape(_START) + r"(\{.*?\}) -->\n(.*?)\n" + re.escape(_END), re.S)
_CARD_FACTS = re.compile(re.escape("<!-- shift_hub:card ") + r"(\{.*?\}) -->")
_DEVIATION_ITEM = re.compile(r"^\d+\. (.*) " + re.escape("<!-- shift_hub:deviation ") + r"([0-9a-f]{8}) -->$", re.M)
_BIBTEX_BLOCK = re.compile(r"```bibtex\n(.*?)```", re.S)
_NOTES = re.compile(r"^## Notes from the previous card\n(.*)\Z", re.S | re.M)
_THUMBNAIL = re.compile(r"!\[[^\]]*: first (\d+) images\]\(thumbnails/")


class UnreadableCard(ValueError):
    """A README.md whose metadata block is not YAML huggingface_hub can read."""


def read(text: str) -> CardFacts:
    """The card facts of a README.md: its configs (with the facts an earlier shift_hub stored in it, else as
    listed without facts), its metadata shift_hub does not set, its papers, and the prose to keep: its notes
    when shift_hub wrote it, else its whole text."""
    from huggingface_hub import DatasetCard

    try:
        card = DatasetCard(text)
    except Exception as exc:  # noqa: BLE001 - yaml's errors, or huggingface_hub's ValueError
        raise UnreadableCard(f"its metadata cannot be read ({type(exc).__name__}: {one_line(exc)[:160]})") from None
    data = card.data.to_dict()
    listed = data.get("configs")
    entries = [e for e in listed if isinstance(e, dict) and isinstance(e.get("config_name"), str)] \
        if isinstance(listed, list) else []
    found = config_facts(text)
    ours = folder.CARD_MARKER in text
    notes = previous_notes(card.text) if ours else (card.text.strip() or None)
    pairs = [(found.get(e["config_name"]) or foreign_facts(e["config_name"]), e) for e in entries]
    return from_configs(pairs, card_bibtex(text), notes, extra_metadata(data))


def config_facts(text: str) -> dict[str, dict]:
    """name -> complete facts for every config a card of an earlier shift_hub records, whether factored
    (0.1.0) or one marked section per config (before)."""
    card = _CARD_FACTS.search(text)
    defaults = _loads(card.group(1)).get("defaults", {}) if card else {}
    deviations = {text_id(t): one_line(t) for t in (s.deviation for s in REGISTRY.values()) if t}
    deviations.update(_card_deviations(text))
    found = {}
    for m in _SECTION.finditer(text):
        data = _loads(m.group(1))  # a marker edited by hand into bad JSON: its configs count as without facts
        if "configs" in data:
            for own in data["configs"]:
                own = {"name": own} if isinstance(own, str) else own
                facts = _restored({**defaults, **data.get("common", {}), **own}, deviations)
                found[facts["name"]] = facts
        elif "name" in data:
            found[data["name"]] = _legacy_facts(data, m.group(2))
    return found


def previous_notes(text: str) -> str | None:
    """The prose a shift_hub card carried over from a card shift_hub did not write, if any."""
    match = _NOTES.search(text)
    return match.group(1).strip() or None if match else None


def card_bibtex(card_text: str) -> dict[str, str]:
    """The BibTeX entries a card carries (so the papers of configs this version does not know stay cited)."""
    found: dict[str, str] = {}
    for block in _BIBTEX_BLOCK.findall(card_text):
        for key, entry in bibtex_entries(block).items():
            found.setdefault(key, entry)
    return found


def text_id(text: str) -> str:
    """The short content hash by which a 0.1.0 card's facts named a deviation listed once in it."""
    return hashlib.sha256(one_line(text).encode()).hexdigest()[:8]


def _loads(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _name_severity(name: str) -> int | None:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else None


def _restored(stored: dict, deviations: dict[str, str]) -> dict:
    """Facts as a 0.1.0 card stored them: severity and parameters left out where the config name says them
    (gaussian_noise_3: severity=3), the deviation by its hash."""
    facts = complete(stored)
    if "severity" not in stored:
        facts["severity"] = _name_severity(stored["name"])
        if "params" not in stored:
            facts["params"] = f"severity={facts['severity']}" if facts["severity"] is not None else "none"
    if facts["deviation"]:
        facts["deviation"] = deviations.get(facts["deviation"], "(text not recorded in the card)")
    return facts


def _leading_int(text: str | None):
    """12 from '12' or '12 of 1000'; '?' when there is none."""
    word = (text or "").split()[:1]
    return int(word[0]) if word and word[0].isdigit() else "?"


def _legacy_facts(data: dict, body: str) -> dict:
    """The facts of a config section written before the facts were factored: its marker, its table rows
    (`| parameters | severity=3 |`), its thumbnail and its BibTeX."""
    rows = {k: html.unescape(re.sub(r"\\(.)", r"\1", v))
            for k, v in re.findall(r"^\| ([^|\n]+?) \| (.*) \|$", body, re.M)}
    thumb = _THUMBNAIL.search(body)
    sev = rows.get("severity")
    facts = {"severity": int(sev) if sev and sev.isdigit() else None, "params": rows.get("parameters", "?"),
             "geometry": rows.get("geometry", "?"), "encoding": rows.get("encoding", "?"),
             "shards": _leading_int(rows.get("shards")), "converted": _leading_int(rows.get("images converted")),
             "classes": _leading_int(rows.get("classes present")), **data, "cite": list(card_bibtex(body)),
             "thumbnail": int(thumb.group(1)) if thumb else 0}
    return complete(facts)


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
