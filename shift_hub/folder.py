"""Reading and checking a generated folder: the one place generate, cards and push trust.

A generated folder is OUT/<config>/validation-IIIII-of-NNNNN.parquet (each footer carrying the
fingerprint and settings it was made with) plus OUT/README.md (the card). Everything that decides
whether a file is ours, complete, and consistent with its neighbours lives here, as do the locks
that keep two runs from writing one config at once.
"""
from __future__ import annotations

import json
import os
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SPLIT = "validation"
META_KEY = b"shift_hub"
LOCK_DIR = ".locks"  # OUT/.locks/<config>.lock: outside every <config>/validation-*.parquet glob
CARD_TAG = "shift_hub"  # every card shift_hub writes carries this tag and its config markers
CARD_MARKER = "<!-- shift_hub:config "
SHARD_PATTERN = re.compile(rf"^{SPLIT}-(\d{{5}})-of-(\d{{5}})\.parquet$")
# footer keys that must agree across the shards of one config (the fingerprint differs per shard: it hashes ids)
SETTINGS_KEYS = ("config", "seed", "source", "encoding", "params", "masks", "shift_hub_version", "num_shards")


class FolderError(RuntimeError):
    """A generated folder that cannot be used as it is; the message names the file and the fix."""


# --- one shard -------------------------------------------------------------------------------------

def shard_name(index: int, count: int) -> str:
    return f"{SPLIT}-{index:05d}-of-{count:05d}.parquet"


def shard_files(config_dir: Path) -> list[Path]:
    return sorted(Path(config_dir).glob(f"{SPLIT}-*.parquet"))


def _footer(path: str | Path) -> dict | None:
    """The parquet footer's key-value metadata (streamed shards add ours after the last row group), or None
    when the file cannot be read as parquet (truncated, not parquet: pyarrow raises several kinds)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).metadata or {}
    except Exception:
        return None


def shard_metadata(path: str | Path) -> dict:
    """The footer shift_hub wrote into a shard; FolderError for a foreign or unreadable file."""
    meta = _footer(path)
    if meta is None:
        raise FolderError(f"{path}: not a readable parquet file; it is damaged or was not written by shift_hub")
    if META_KEY not in meta:
        raise FolderError(f"{path}: not written by shift_hub (no {META_KEY.decode()} footer metadata)")
    return json.loads(meta[META_KEY])


def readable_fingerprint(path: str | Path) -> str | None:
    try:
        return shard_metadata(path).get("fingerprint")
    except FolderError:
        return None


def ownership(path: str | Path) -> str:
    """'ours' (a shift_hub footer), 'foreign' (readable parquet, no footer) or 'damaged' (unreadable)."""
    meta = _footer(path)
    return "damaged" if meta is None else "ours" if META_KEY in meta else "foreign"


# --- the whole folder ------------------------------------------------------------------------------

def summary(out: str | Path) -> dict[str, dict]:
    """Per config: shards, images written, skipped and converted with reasons, read back from the footers.

    Damaged or foreign files are left out here; `check` reports them.
    """
    result: dict[str, dict] = {}
    for path in sorted(Path(out).glob(f"*/{SPLIT}-*.parquet")):
        try:
            meta = shard_metadata(path)
        except FolderError:
            continue
        s = result.setdefault(meta["config"], {"shards": 0, "written": 0, "skipped": [], "converted": [],
                                                "seed": meta["seed"], "source": meta["source"],
                                                "encoding": meta["encoding"], "version": meta["shift_hub_version"],
                                                "params": meta.get("params", {})})
        s["shards"] += 1
        s["written"] += meta["written"]
        s["skipped"] += meta["skipped"]
        s["converted"] += meta["converted"]
    return result


def ids_sha256(config_dir: Path) -> str:
    """SHA-256 over the per-shard hashes of the (sorted) image-id list a config was planned from."""
    import hashlib

    h = hashlib.sha256()
    for path in shard_files(config_dir):
        h.update(shard_metadata(path)["ids_sha256"].encode())
    return h.hexdigest()


@dataclass
class ConfigCheck:
    name: str
    shards: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_config(out: str | Path, name: str) -> ConfigCheck:
    """Every shard of a config ours, readable to its row count, one complete planned set, one set of settings."""
    import pyarrow.parquet as pq

    config_dir = Path(out) / name
    result = ConfigCheck(name, shard_files(config_dir))
    if not result.shards:
        result.problems.append(f"{config_dir}: no {SPLIT}-*.parquet shards")
        return result
    settings, counts, indices = {}, set(), set()
    for path in result.shards:
        match = SHARD_PATTERN.match(path.name)
        if not match:
            result.problems.append(f"{path}: not a shift_hub shard name ({shard_name(0, 1)} style)")
            continue
        try:
            meta = shard_metadata(path)
            rows = pq.ParquetFile(path).metadata.num_rows
        except FolderError as exc:
            result.problems.append(str(exc))
            continue
        except Exception as exc:
            result.problems.append(f"{path}: unreadable ({type(exc).__name__})")
            continue
        index, count = int(match.group(1)), int(match.group(2))
        if meta.get("config") != name or meta.get("shard") != index or meta.get("num_shards") != count:
            result.problems.append(f"{path}: its footer says config {meta.get('config')!r} shard "
                                   f"{meta.get('shard')} of {meta.get('num_shards')}: it was moved or renamed")
        if rows != meta.get("written"):
            result.problems.append(f"{path}: {rows} rows but its footer records {meta.get('written')} written")
        counts.add(count)
        indices.add(index)
        own = {k: meta.get(k) for k in SETTINGS_KEYS}
        if settings and own != settings:
            differing = sorted(k for k in SETTINGS_KEYS if own[k] != settings.get(k))
            result.problems.append(f"{path}: made with other settings than its neighbours ({', '.join(differing)})")
        settings = settings or own
    if len(counts) > 1:
        result.problems.append(f"{config_dir}: shards of different runs mixed (of {sorted(counts)} shards); "
                               "rerun `shift-hub generate` with the same settings to tidy it, or remove the strays")
    elif counts and indices != set(range(next(iter(counts)))):
        missing = sorted(set(range(next(iter(counts)))) - indices)
        if missing:
            result.problems.append(f"{config_dir}: shard(s) {missing[:5]} of {next(iter(counts))} missing; "
                                   "rerun the same `shift-hub generate` to finish it")
    return result


def planned_ids(out: str | Path, name: str) -> tuple[set[str], bool]:
    """(the image ids a config's present shards were planned over, whether its shard set is complete):
    the rows' ids plus the ids each footer records as skipped. Damaged or foreign shards are ignored."""
    import pyarrow.parquet as pq

    ids: set[str] = set()
    check = check_config(out, name)
    for path in check.shards:
        try:
            meta = shard_metadata(path)
            ids.update(pq.read_table(path, columns=["image_id"]).column("image_id").to_pylist())
        except Exception:  # noqa: BLE001 - damaged or foreign: not evidence of a plan
            continue
        ids.update(s["image_id"] for s in meta.get("skipped", []))
    return ids, not check.problems


def other_images(out: str | Path, names: list[str], ids: list[str]) -> list[tuple[str, int]]:
    """(config, images it was planned over) for each config in `out`, other than `names`, planned over other
    images than `ids` (a complete config must hold exactly them, an unfinished one a subset of them)."""
    out, wanted = Path(out), set(ids)
    if not out.is_dir():
        return []
    differing = []
    for config in sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if config in names or not shard_files(out / config):
            continue
        theirs, complete = planned_ids(out, config)
        if theirs and (theirs != wanted if complete else not theirs <= wanted):
            differing.append((config, len(theirs)))
    return differing


def only_missing(check: ConfigCheck) -> str | None:
    """'K of N planned shards written' when a config's only problem is shards not written yet (a run still
    writing it, or one that was stopped), else None. Path-free: cards and results.json carry it."""
    counts = {int(m.group(2)) for p in check.shards if (m := SHARD_PATTERN.match(p.name))}
    if check.problems and len(counts) == 1 and all(" missing; " in p for p in check.problems):
        return f"{len(check.shards)} of {counts.pop()} planned shards written"
    return None


def check(out: str | Path, configs: list[str] | None = None) -> dict[str, ConfigCheck]:
    """`check_config` for the given configs, or for every folder under `out` that holds shards."""
    out = Path(out)
    names = configs if configs is not None else sorted(
        p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and shard_files(p))
    return {name: check_config(out, name) for name in names}


def problems(checks: dict[str, ConfigCheck]) -> list[str]:
    return [p for c in checks.values() for p in c.problems]


# --- the card and the output folder ------------------------------------------------------------

def is_shift_hub_card(path: str | Path) -> bool:
    """Whether a README.md was written by shift_hub (its tag and per-config markers), so it may be replaced."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return CARD_MARKER in text and re.search(rf"^\s*-\s*{CARD_TAG}\s*$", text, re.M) is not None


FACTS_FILE, FACTS_KEY = "shift_hub.json", "shift_hub_facts"  # the card's facts, beside README.md (hub/card_facts.py)


def is_facts_file(path: str | Path) -> bool:
    """Whether a shift_hub.json was written by shift_hub (so it may be replaced)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and FACTS_KEY in data


def check_output_folder(out: str | Path, overwrite: bool = False) -> None:
    """Refuse an --out that is a file, or whose README.md is not a shift_hub card, before any work."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FolderError(f"--out {out} is an existing file, not a folder: choose a folder (new or empty, or "
                          "one written by shift-hub)")
    readme = out / "README.md"
    if readme.exists() and not overwrite and not is_shift_hub_card(readme):
        raise FolderError(f"{readme} is not a shift_hub dataset card and shift-hub writes its card there: choose "
                          "a new or empty --out, move that README.md away, or pass --overwrite to replace it")
    facts = out / FACTS_FILE
    if facts.exists() and not overwrite and not is_facts_file(facts):
        raise FolderError(f"{facts} was not written by shift-hub, which keeps the card's facts there: choose a new "
                          "or empty --out, move that file away, or pass --overwrite to replace it")
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise FolderError(f"--out {out} is not writable by this user: choose another folder or fix its permissions")


# --- locks -----------------------------------------------------------------------------------------

def _owner_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def lock_path(shard: str | Path) -> Path:
    """OUT/.locks/<config>/<shard>.lock: beside, not inside, the config folder a `data_files` glob reads."""
    shard = Path(shard)
    return shard.parent.parent / LOCK_DIR / shard.parent.name / f"{shard.name}.lock"


@contextmanager
def shard_lock(shard: str | Path, wait: bool = False) -> Iterator[bool]:
    """Hold the lock of one shard while it is written; yields False when another live writer holds it.

    The locks are advisory OS locks (filelock), released by the OS when the holder dies, so a killed run
    never blocks the next one, and while a writer holds a shard's lock every temporary file of that shard
    is a dead writer's. Any number of runs, pool workers, Ray tasks or job-array slices can share one
    folder: each shard is written by exactly one of them at a time.
    """
    from filelock import FileLock, Timeout

    path = lock_path(shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        _write_owner(path)
        yield True
    finally:
        lock.release()


def lock_owner(shard: str | Path) -> str:
    """Who last took a shard's lock ("pid N on HOST"), for messages about a busy shard."""
    return _read_owner(lock_path(shard))


@contextmanager
def commit_lock(config_dir: str | Path) -> Iterator[None]:
    """Held for the instant a run checks a config folder and renames a finished shard into it (or removes
    shards with --overwrite): a run with other settings can then never slip a shard in between the check
    and the rename. Held for milliseconds, so waiting on it is fine."""
    from filelock import FileLock

    config_dir = Path(config_dir)
    path = config_dir.parent / LOCK_DIR / f"{config_dir.name}.commit.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=600):
        yield


@contextmanager
def card_lock(out: str | Path) -> Iterator[None]:
    """Serialise card writes of concurrent runs on disjoint configs (a card write takes seconds)."""
    from filelock import FileLock

    lock_dir = Path(out) / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / "README.lock"), timeout=600):
        yield


def _write_owner(lock_path: Path) -> None:
    try:
        lock_path.with_suffix(".owner").write_text(_owner_text())
    except OSError:
        pass


def _read_owner(lock_path: Path) -> str:
    try:
        return lock_path.with_suffix(".owner").read_text().strip()
    except OSError:
        return ""


def temp_path(path: Path) -> Path:
    """Where a writer puts a file before the atomic rename: hidden, and named after its process."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def dead_temp_files(shard: str | Path) -> list[Path]:
    """A shard's temporary files; only call while holding its lock (then their writers are dead)."""
    shard = Path(shard)
    return sorted(shard.parent.glob(f".{shard.name}.tmp-*"))
