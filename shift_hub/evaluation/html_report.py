"""report.html: one self-contained page — summary, plots, sortable per-config table, clean-vs-shifted gallery.

Everything is inlined (data: URIs, inline CSS/JS) and the page's Content-Security-Policy forbids any fetch,
so it reads the same offline, as an attachment or from a model repo. Images come from the evaluated folder's
parquet shards (only the few rows shown are read); Hub and on-the-fly data have none at hand, so the page
says the gallery is unavailable instead.
"""
from __future__ import annotations

import base64
import io
import math
from pathlib import Path

from .left_out import describe_incomplete, describe_unreadable

THUMB = 128  # px, longer side of a gallery thumbnail
PER_CONFIG = 4  # gallery images per config
SHOWN_CONFIGS = 6  # configs whose gallery is open (clean first); the others sit in closed <details>
REST_PER_CONFIG = 1  # gallery images (pairs) of a config in a closed <details>: keeps a many-config page small
JPEG_QUALITY = 60  # thumbnails: ~3 KB each at THUMB px, plenty for a 128 px picture
TEMPLATE = "report.html.j2"
PLOT_TITLES = {"accuracy_per_shift": "Top-1 accuracy per shift", "accuracy_vs_severity": "Top-1 accuracy vs severity"}
CE_COLUMNS = [("corruption", "text")] + [(f"sev. {s}", "num") for s in range(1, 6)] + [
    ("mean error %", "num"), ("CE %", "num"), ("relative CE %", "num")]
COLUMNS = [("config", "text"), ("label space", "text"), ("images", "num"), ("top-1 %", "num"), ("top-5 %", "num"),
           ("drop (pts)", "num"), ("drop (rel %)", "num"), ("ECE %", "num")]
P_COLUMNS = [("config", "text"), ("perturbation", "text"), ("sequences", "num"), ("frames", "num"),
             ("compared with", "text"), ("flip probability %", "num"), ("top-5 distance", "num")]


def write_report_html(results: dict, rows: list[dict], path: str | Path, plots: dict | None = None,
                      per_config: int = PER_CONFIG, imagenet_x_plot: str | Path | None = None,
                      imagenet_p_plot: str | Path | None = None) -> Path:
    """Render report.html at `path`; `plots` maps a plot key (see PLOT_TITLES) to its PNG; `imagenet_x_plot`
    is the heatmap shown in the ImageNet-X section, `imagenet_p_plot` the flip-probability bars of ImageNet-P's."""
    from jinja2 import Environment

    folder, why_not = image_folder(results)
    gallery = _gallery(results, rows, folder, per_config) if folder else []
    env = Environment(autoescape=True, keep_trailing_newline=True)  # every string from data is escaped
    page = env.from_string(_template_text()).render(
        model=results["model"], data=results["data"], version=results.get("shift_hub_version", ""),
        created=results.get("created", ""), summary=_summary(results), columns=COLUMNS, table=_table(results),
        ce_columns=CE_COLUMNS, ce_table=_ce_table(results), ce_note=_ce_note(results),
        imagenet_x=_imagenet_x_section(results, imagenet_x_plot),
        imagenet_p=_imagenet_p_section(results, imagenet_p_plot),
        plots=[{"title": PLOT_TITLES.get(k, k), "src": _data_uri(Path(p).read_bytes(), "image/png")}
               for k, p in (plots or {}).items() if p and Path(p).is_file()],
        gallery=gallery, gallery_unavailable=why_not, thumb=THUMB,
        unreadable=describe_unreadable(results["unreadable"]) if results.get("unreadable") else "",
        incomplete=describe_incomplete(results) if results["data"].get("incomplete") else "",
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _template_text() -> str:
    from importlib.resources import files

    try:
        return (files("shift_hub.cards") / TEMPLATE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # a source checkout that shadows the installed package
        return (Path(__file__).resolve().parents[2] / "cards" / TEMPLATE).read_text(encoding="utf-8")


def image_folder(results: dict) -> tuple[Path | None, str | None]:
    """(the generated folder holding the evaluated images, None) or (None, why the gallery is unavailable)."""
    data = results.get("data", {})
    kind, source = data.get("kind"), data.get("source")
    if kind == "on-the-fly":
        return None, "the images were shifted on the fly (--on-the-fly) and never stored."
    if kind == "hub":
        return None, f"the data came from the Hub ({source}); its images are not stored beside these results."
    if kind != "local" or not source:
        return None, "the evaluated images are not at hand."
    folder = Path(source)
    if not folder.is_dir():
        return None, f"{folder} is no longer there."
    return folder, None


# ----------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------

def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _with_ci(cell: dict, ci: dict | None) -> dict:
    """A cell with its 95 % interval's half-width (`± h`), the sort key unchanged."""
    if not ci or cell["text"] == "-":
        return cell
    return {**cell, "text": f"{cell['text']} ± {100 * (ci['ci_high'] - ci['ci_low']) / 2:.1f}"}


def _pct_cell(value) -> dict:
    v = _num(value)
    return {"text": "-" if v is None else f"{100 * v:.2f}", "sort": "" if v is None else f"{100 * v:.6f}"}


def _summary(results: dict) -> list[dict]:
    """The headline tiles: clean top-1/5, mean top-1 and drop over the shifts, mCE, ECE, XImageNet score."""
    metrics = results["metrics"]
    tiles = []
    clean = metrics.get("clean") or metrics.get("clean_full")
    if clean and clean.get("n_scored"):
        tiles += [_tile("clean top-1", clean["top1"]), _tile("clean top-5", clean["top5"])]
    shifted = [m for n, m in metrics.items() if n not in ("clean", "clean_full") and m.get("n_scored")]
    if shifted:
        tiles.append(_tile("mean top-1 over shifts", _mean(m["top1"] for m in shifted),
                           note=f"{len(shifted)} config(s)"))
    drops = [m["drop"] for m in shifted if m.get("drop")]
    if drops:
        rel = _mean(d.get("rel") for d in drops)  # undefined when the clean accuracy is 0
        tiles.append(_tile("mean drop vs clean", _mean(d["abs"] for d in drops), " pts",
                           "" if rel is None else _pct_cell(rel)["text"] + " % relative"))
    c = results.get("summary", {}).get("imagenet_c") or {}
    if "mce" in c:
        partial = "" if c.get("complete") else f"; partial: {c.get('corruptions_in_mce')} of 15 corruptions"
        tiles.append(_tile("mCE", c["mce"], note="AlexNet-normalised" + partial))
        if "relative_mce" in c:
            tiles.append(_tile("relative mCE", c["relative_mce"]))
    if clean and _num(clean.get("ece")) is not None:
        tiles.append(_tile("ECE (clean)", clean["ece"], note="15 equal-mass bins"))
    x = results.get("summary", {}).get("ximagenet_robustness")
    if x:
        tiles.append({"label": "XImageNet-12 robustness", "value": f"{x['score']:.4f}", "note": "provisional formula"})
    w = results.get("summary", {}).get("watermark")
    if isinstance(w, dict):
        tiles += _watermark_tiles(w)
    g = results.get("summary", {}).get("imagenet_9")
    if isinstance(g, dict) and "bg_gap" in g:
        shared = f"; on the {g.get('images')} shared images" if g.get("shared_only") else ""
        tiles.append({"label": "ImageNet-9 BG-gap", "value": _signed_pts(g.get("bg_gap"), (g.get("ci") or {}).get(
            "bg_gap")), "note": "top-1 on in9_mixed_same minus in9_mixed_rand" + shared})
    if isinstance(g, dict) and isinstance(g.get("challenge"), dict):
        tiles.append(_challenge_tile(g["challenge"]))
    p = results.get("summary", {}).get("imagenet_p")
    if isinstance(p, dict):
        tiles += _imagenet_p_tiles(p)
    return tiles


def _imagenet_p_tiles(p: dict) -> list[dict]:
    """ImageNet-P's mean flip probability and, with a reference, its mFR (results.json `summary.imagenet_p`)."""
    ci = p.get("ci") or {}
    over = f"over {len(p.get('perturbations') or [])} of 10 perturbations, difficulty {p.get('difficulty', 1)}"
    tiles = [{"label": "ImageNet-P mean flip probability",
              "value": _with_ci(_pct_cell(p.get("mean_flip_probability")), ci.get("mean_flip_probability"))["text"]
              + " %", "note": over}]
    if "mfr" in p:
        partial = "" if p.get("reference_complete") else "; partial"
        tiles.append({"label": "ImageNet-P mFR", "value": _with_ci(_pct_cell(p["mfr"]), ci.get("mfr"))["text"] + " %",
                      "note": "AlexNet-normalised" + partial})
    return tiles


def _challenge_tile(c: dict) -> dict:
    """The Backgrounds Challenge's score (results.json `summary.imagenet_9.challenge`): the vulnerable share."""
    every = c.get("backgrounds_per_foreground") == c.get("backgrounds")
    tried = (f"every one of {c.get('backgrounds')} backgrounds" if every else
             f"{c.get('backgrounds_per_foreground')} of {c.get('backgrounds')} backgrounds each (a lower bound)")
    share = _with_ci(_pct_cell(c.get("vulnerable_share")), (c.get("ci") or {}).get("vulnerable_share"))["text"]
    return {"label": "Backgrounds Challenge", "value": share + " % vulnerable",
            "note": f"{c.get('vulnerable')} of {c.get('foregrounds')} foregrounds flipped by {tried}"}


def _signed_pts(value, ci: dict | None) -> str:
    v = _num(value)
    if v is None:
        return "-"
    half = f" ± {100 * (ci['ci_high'] - ci['ci_low']) / 2:.1f}" if ci else ""
    return f"{100 * v:+.2f}{half} pts"


def _watermark_tiles(w: dict) -> list[dict]:
    """ImageNet-W's IN-W gap and carton gap (results.json `summary.watermark`), in signed points."""
    ci = w.get("ci") or {}
    shared = f"; on the {w.get('images')} shared images" if w.get("shared_only") else ""
    tiles = [{"label": "IN-W gap", "value": _signed_pts(w.get("in_w_gap"), ci.get("in_w_gap")),
              "note": "top-1 on watermark minus clean" + shared}]
    if "carton_gap" in w:
        tiles.append({"label": "carton gap", "value": _signed_pts(w["carton_gap"], ci.get("carton_gap")),
                      "note": f"accuracy on the {w.get('carton_images')} images of class 478 carton"})
    if "carton_prediction_gap" in w:
        tiles.append({"label": "predicted carton", "value": _signed_pts(w["carton_prediction_gap"],
                                                                        ci.get("carton_prediction_gap")),
                      "note": "share of all images predicted carton, watermark minus clean"
                      + ("" if "carton_gap" in w else "; no carton image scored, so no carton gap")})
    return tiles


def _tile(label: str, fraction, unit: str = " %", note: str = "") -> dict:
    return {"label": label, "value": _pct_cell(fraction)["text"] + unit, "note": note}


def _mean(values) -> float | None:
    values = [v for v in (_num(v) for v in values) if v is not None]
    return sum(values) / len(values) if values else None


def _table(results: dict) -> list[list[dict]]:
    """One row per config, each cell {text, sort} (sort: the raw number, '' when missing)."""
    out = []
    for name, m in results["metrics"].items():
        d = m.get("drop") or {}
        extra = []
        if m.get("n_unscorable"):
            extra.append(f"+{m['n_unscorable']} unscorable")
        unread = results.get("counts", {}).get(name, {}).get("unreadable")
        if unread:
            extra.append(f"+{unread} unreadable")
        images = {"text": f"{m['n_scored']}" + (f" ({', '.join(extra)})" if extra else ""), "sort": str(m["n_scored"])}
        space = m.get("label_space") or ""
        space_text = space + (f" (fallback: {m['label_space_fallback']})" if m.get("label_space_fallback") else "")
        ci = m.get("ci") or {}
        drop_abs = _pct_cell(d.get("abs"))
        if d.get("shared_only"):  # the two configs hold different images: the drop is over the shared ones
            drop_abs = {**drop_abs, "text": f"{drop_abs['text']} (on {d['images']} shared images)"}
        out.append([{"text": name, "sort": name}, {"text": space_text or "-", "sort": space}, images,
                    _with_ci(_pct_cell(m["top1"]), ci.get("top1")), _with_ci(_pct_cell(m["top5"]), ci.get("top5")),
                    _with_ci(drop_abs, ci.get("drop_abs")), _pct_cell(d.get("rel")),
                    _with_ci(_pct_cell(m.get("ece")), ci.get("ece"))])
    return out


def _ce_table(results: dict) -> list[list[dict]]:
    """One row per ImageNet-C corruption: error by severity, mean error, CE and relative CE, the last two
    marked "(partial)" when not all 5 severities were scored (as in table.md)."""
    c = results.get("summary", {}).get("imagenet_c") or {}
    out = []
    for name, e in (c.get("per_corruption") or {}).items():
        partial = "" if e.get("complete") or e.get("ce") is None else " (partial)"
        by_sev = [_pct_cell((e.get("error_by_severity") or {}).get(str(s))) for s in range(1, 6)]
        ce, rel = _pct_cell(e.get("ce")), _pct_cell(e.get("relative_ce"))
        out.append([{"text": name, "sort": name}, *by_sev, _pct_cell(e.get("mean_error")),
                    {**ce, "text": ce["text"] + partial}, {**rel, "text": rel["text"] + partial}])
    return out


def _imagenet_x_section(results: dict, plot) -> dict | None:
    """ImageNet-X's note, config x factor heatmap and numbers (results.json `summary.imagenet_x`), or None."""
    block = results.get("summary", {}).get("imagenet_x")
    if not isinstance(block, dict):
        return None
    from .imagenet_x import html_section

    src = _data_uri(Path(plot).read_bytes(), "image/png") if plot and Path(plot).is_file() else None
    return {**html_section(block), "src": src}


def _imagenet_p_section(results: dict, plot) -> dict | None:
    """ImageNet-P's per-config flip probability and top-5 distance with their intervals, the line of means
    (results.json `summary.imagenet_p`) and the flip-probability plot, or None without any."""
    p = results.get("summary", {}).get("imagenet_p")
    if not isinstance(p, dict):
        return None
    rows = []
    for name, e in (p.get("per_config") or {}).items():
        ci = e.get("ci") or {}
        left = f" (+{len(e['incomplete'])} incomplete, left out)" if e.get("incomplete") else ""
        rows.append([_text_cell(name), _text_cell(e.get("perturbation")),
                     {"text": f"{e.get('sequences')}{left}", "sort": str(e.get("sequences") or 0)},
                     {"text": str(e.get("frames")), "sort": str(e.get("frames") or 0)},
                     _text_cell(e.get("compared_to")),
                     _with_ci(_pct_cell(e.get("flip_probability")), ci.get("flip_probability")),
                     _with_raw_ci(_raw_cell(e.get("top5_distance")), ci.get("top5_distance"))])
    src = _data_uri(Path(plot).read_bytes(), "image/png") if plot and Path(plot).is_file() else None
    return {"columns": P_COLUMNS, "rows": rows, "line": _imagenet_p_line(p), "src": src}


def _text_cell(value) -> dict:
    return {"text": str(value) if value else "-", "sort": str(value) if value else ""}


def _raw_cell(value) -> dict:
    """A number in its own unit (top-5 distance counts rank positions, no percentage), three decimals."""
    v = _num(value)
    return {"text": "-" if v is None else f"{v:.3f}", "sort": "" if v is None else f"{v:.6f}"}


def _with_raw_ci(cell: dict, ci: dict | None) -> dict:
    if not ci or cell["text"] == "-":
        return cell
    return {**cell, "text": f"{cell['text']} ± {(ci['ci_high'] - ci['ci_low']) / 2:.3f}"}


def _imagenet_p_line(p: dict) -> str:
    """The means under the ImageNet-P table, as table.md words them: over which perturbations, mFR / mT5D with a
    reference, partial or not, and the summary's note."""
    from .sequence_scores import means_sentence

    text = means_sentence(p, lambda v, ci: _with_ci(_pct_cell(v), ci)["text"],
                          lambda v, ci: _with_raw_ci(_raw_cell(v), ci)["text"])
    return text[:1].upper() + text[1:]


def _ce_note(results: dict) -> str:
    """The mCE line under the CE table, with what it is computed over."""
    c = results.get("summary", {}).get("imagenet_c") or {}
    if "mce" not in c:
        return ""
    text = f"mCE {_pct_cell(c['mce'])['text']} %"
    if "relative_mce" in c:
        text += f", relative mCE {_pct_cell(c['relative_mce'])['text']} %"
    text += " (AlexNet-normalised)"
    if not c.get("complete"):
        text += f"; partial: {c.get('corruptions_in_mce')} of 15 corruptions and/or not all severities"
    if c.get("shared_only"):
        text += f"; on the {c.get('images')} images all its configs share"
    return text


# ----------------------------------------------------------------------------------------------
# gallery
# ----------------------------------------------------------------------------------------------

def _gallery(results: dict, rows: list[dict], folder: Path, per_config: int) -> list[dict]:
    """Per config: up to `per_config` images, its clean counterpart beside it, both with the model's answer.
    Only the first SHOWN_CONFIGS sections are open; the rest (flag `folded`) hold REST_PER_CONFIG images."""
    from .metrics import config_info

    split = results["data"].get("split", "validation")
    configs = list(results["metrics"])
    by_key = {(r["config"], r["image_id"]): r for r in rows}
    # the clean config's first images come first, so every config shows the same photos when it can
    clean_rank = {}
    for r in rows:
        if r["config"] in ("clean", "clean_full"):
            clean_rank.setdefault(r["image_id"], len(clean_rank))
    info = config_info(configs)
    shown = set(_shown_configs(configs))
    plan = {}
    for name in configs:
        own = list(dict.fromkeys(r["image_id"] for r in rows if r["config"] == name))
        own.sort(key=lambda i: clean_rank.get(i, len(clean_rank)))  # stable: the rest keep their order
        limit = per_config if name in shown else min(per_config, REST_PER_CONFIG)
        plan[name] = (own[:limit], _baseline(name, info[name]["baseline"], folder))
    needed: dict[str, set] = {}
    for name, (ids, base) in plan.items():
        for config in (name, base) if base else (name,):
            needed.setdefault(config, set()).update(ids)
    thumbs, errors = {}, {}
    for config, ids in needed.items():
        try:
            thumbs[config] = {i: _thumbnail(b) for i, b in read_images(folder, config, split, ids).items()}
        except Exception as exc:  # a damaged shard: this config's gallery says so, the page is still written
            errors[config] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            thumbs[config] = {}
    sections = []
    for name, (ids, base) in plan.items():
        items = []
        for image_id in ids:
            row = by_key.get((name, image_id))
            shots = [_shot(base, thumbs[base].get(image_id), by_key.get((base, image_id)))] if base else []
            shots.append(_shot(name, thumbs[name].get(image_id), row))
            items.append({"image_id": image_id, "truth": _truth(row), "shots": shots})
        m = results["metrics"][name]
        sections.append({"config": name, "top1": _pct_cell(m["top1"])["text"], "images": items,
                         "folded": name not in shown,
                         "error": errors.get(name) or (errors.get(base) if base else None)})
    return sections


def _shown_configs(configs: list[str]) -> list[str]:
    """The configs whose gallery is open: the clean ones, then shifted ones spread evenly over the list, first
    and last included (the last is often a shift of another family than the first)."""
    clean = [c for c in configs if c in ("clean", "clean_full")]
    shifted = [c for c in configs if c not in clean]
    room = max(SHOWN_CONFIGS - len(clean), 0)
    if len(shifted) <= room:
        return clean + shifted
    if room == 1:
        return clean + shifted[:1]
    return clean + [shifted[round(i * (len(shifted) - 1) / (room - 1))] for i in range(room)]


def _baseline(name: str, preferred: str, folder: Path) -> str | None:
    """The clean config shown beside `name` (clean_full for full-resolution shifts), if it is in the folder."""
    if name in ("clean", "clean_full"):
        return None
    for candidate in (preferred, "clean", "clean_full"):
        if (folder / candidate).is_dir():
            return candidate
    return None


def _shot(config: str, src: str | None, row: dict | None) -> dict:
    state = "none" if row is None or not row.get("scorable", True) else ("right" if row["correct"] else "wrong")
    pred = None
    if row is not None:
        names = _class_names(row.get("label_space"))
        pred = names[row["pred"]] if names and 0 <= row.get("pred", -1) < len(names) else row.get("pred_name")
    return {"config": config, "src": src, "pred": pred, "state": state}


def _class_names(space: str | None) -> tuple[str, ...] | None:
    """Short readable names of a label space: ImageNet-1k's first lemma ('tabby', not 'tabby, tabby cat')."""
    from .. import classes
    from .labels import get_label_space

    if (space or "imagenet-1k") == "imagenet-1k":
        return classes.names()
    try:
        return get_label_space(space).class_names
    except (KeyError, ValueError):  # a label space this version does not know (results from elsewhere)
        return None


def _truth(row: dict | None) -> str:
    """Readable true label(s): in the row's label space when scorable, else the ImageNet-1k names."""
    if row is None:
        return "-"
    names = _class_names(row.get("label_space"))
    if row.get("targets") and names:
        return " / ".join(names[t] for t in row["targets"] if 0 <= t < len(names))
    labels = row.get("labels") or []
    in1k = _class_names(None)
    text = " / ".join(in1k[i] for i in labels if 0 <= i < len(in1k)) or "no label"
    return text if row.get("targets") or not labels else f"{text} (outside the label space)"


def read_images(folder: Path, config: str, split: str, ids) -> dict[str, bytes | None]:
    """{image_id: encoded bytes} for `ids` of one config, reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    directory = folder / config
    files = sorted(directory.glob(f"{split}-*.parquet")) or sorted(directory.glob("*.parquet"))
    remaining, found = set(ids), {}
    for file in files:
        if not remaining:
            break
        shard = pq.ParquetFile(file)
        if "image_id" not in shard.schema_arrow.names:
            return found
        positions = {i: p for p, i in enumerate(shard.read(columns=["image_id"]).column(0).to_pylist())
                     if i in remaining}
        start = 0
        for group in range(shard.num_row_groups):
            size = shard.metadata.row_group(group).num_rows
            local = {i: p - start for i, p in positions.items() if start <= p < start + size}
            if local:
                column = shard.read_row_group(group, columns=["image"]).column(0)
                for i, p in local.items():
                    value = column[p].as_py()
                    found[i] = value.get("bytes") if isinstance(value, dict) else value
            start += size
        remaining -= found.keys()
    return found


def _thumbnail(data: bytes | None) -> str | None:
    """A ~THUMB px JPEG data URI, or None when the bytes cannot be decoded (the page shows a placeholder)."""
    from PIL import Image

    if not data:
        return None
    try:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (2 * THUMB, 2 * THUMB))  # JPEG: decode at a reduced scale
        image = image.convert("RGB")
        image.thumbnail((THUMB, THUMB), Image.LANCZOS)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return _data_uri(buf.getvalue(), "image/jpeg")


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
