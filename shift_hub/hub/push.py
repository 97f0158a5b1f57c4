"""Publish generated configs to a Hub dataset repo with `create_repo` + `upload_folder`.

Only the chosen configs' files (their shards and thumbnails), the card, its facts and `eval.yaml` are uploaded; stale
shards of those configs (files of shift_hub's shard naming this push does not write) are deleted, other files
in their folders are kept unless `overwrite`, and no other config's files are touched. Everything is checked and
prepared (the folder, the images the thumbnails are made of, the card, the remote state and so every deletion)
before anything is created on the Hub; the plan lists each deletion and each file kept. The card's facts are the
repo's shift_hub.json merged with the local facts config by config (hub/card_facts.py), so pushing `clean` to a
repo that holds `clean_full` keeps both, and README.md is rendered from the merged facts, never read back (a repo
whose card predates shift_hub.json has it read once, by hub/legacy_card.py); `eval.yaml` (the Hub Benchmark
definition, hub/eval_yaml.py) is rebuilt for every config the merged card lists and merged with the remote one by
task id. The token comes from `HF_TOKEN` or the login cache
(`huggingface_hub.get_token`) and is never printed.
"""
from __future__ import annotations

import fnmatch
import glob
import io
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import folder
from .._version import __version__
from ..folder import SPLIT
from . import card_facts, cards, eval_yaml, legacy_card
from .card_facts import CardFacts

REPO_TYPE = "dataset"


class PushError(RuntimeError):
    pass


@dataclass
class PushPlan:
    repo_id: str
    configs: list[str]
    files: list[tuple[str, Path, int]]  # (path in repo, local path, size)
    card: str
    url: str
    revision: str | None = None
    remote_configs: list[str] = field(default_factory=list)
    eval_yaml: str = ""  # the merged benchmark definition written at the repo root
    deletions: list[str] = field(default_factory=list)  # files on the Hub this push deletes
    kept: list[str] = field(default_factory=list)  # files in the pushed configs' folders shift_hub did not write
    remote_known: bool = True  # False when the Hub was not read (then deletions are unknown)
    remote_sha: str | None = None  # the commit the plan was made from: a push that lands on it changed nothing
    facts: str = ""  # shift_hub.json, the facts the card is rendered from, written beside it
    remarks: list[str] = field(default_factory=list)  # how the remote card was read, when not from its facts

    @property
    def card_configs(self) -> list[str]:
        """The configs the merged card lists, from the facts it is rendered from."""
        return CardFacts.from_json(self.facts).names if self.facts else []

    @property
    def total_bytes(self) -> int:
        return (sum(size for _, _, size in self.files) + len(self.card.encode()) + len(self.facts.encode())
                + len(self.eval_yaml.encode()))

    def describe(self) -> str:
        lines = [f"push {len(self.configs)} config(s) to {self.repo_id}"
                 + (f" (revision {self.revision})" if self.revision else "") + ": " + ", ".join(self.configs)]
        by_folder: dict[str, list] = {}
        for path, _, size in self.files:
            by_folder.setdefault(path.rsplit("/", 1)[0], []).append((path, size))
        for where, items in by_folder.items():
            if len(items) <= 10:
                lines.extend(f"  {path}  {_size(size)}" for path, size in items)
            else:  # ImageNet-sized configs: one line per config, not one per shard
                lines.append(f"  {where}/validation-*.parquet  {len(items)} files  "
                             f"{_size(sum(size for _, size in items))}")
        lines.append(f"  README.md  {_size(len(self.card.encode()))}  (card: configs "
                     + ", ".join(self.card_configs) + ")")
        if self.facts:
            lines.append(f"  {card_facts.FILENAME}  {_size(len(self.facts.encode()))}  (the facts README.md is "
                         "rendered from)")
        if self.eval_yaml:
            tasks = [t["id"] for t in eval_yaml.parse(self.eval_yaml)["tasks"]]
            lines.append(f"  {eval_yaml.FILENAME}  {_size(len(self.eval_yaml.encode()))}  (benchmark tasks: "
                         + ", ".join(tasks) + ")")
        lines.extend(f"  delete {path}" + ("" if _is_our_shard(path) else "  (not written by shift_hub; --overwrite)")
                     for path in self.deletions)
        if self.kept:
            lines.append("kept on the Hub, not written by shift_hub (--overwrite deletes them): "
                         + ", ".join(self.kept))
        if not self.remote_known:
            lines.append("files on the Hub not read: what this push would delete is not known")
        kept = [c for c in self.remote_configs if c not in self.configs]
        if kept:
            lines.append(f"kept on the Hub as they are: {', '.join(kept)}")
        lines.extend(self.remarks)
        lines.append(f"total {_size(self.total_bytes)} in "
                     f"{len(self.files) + 1 + bool(self.facts) + bool(self.eval_yaml)} files")
        lines.append(f"dataset page: {self.url}")
        return "\n".join(lines)


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"


def config_files(out: Path, configs: list[str]) -> list[tuple[str, Path, int]]:
    found = []
    for name in configs:
        shards = sorted((out / name).glob(f"{SPLIT}-*.parquet"))
        if not shards:
            raise PushError(f"{out}: config {name!r} has no {name}/{SPLIT}-*.parquet to push")
        thumb = out / cards.THUMBNAIL_DIR / f"{name}.jpg"
        for path in [*shards, *([thumb] if thumb.exists() else [])]:
            found.append((path.relative_to(out).as_posix(), path, path.stat().st_size))
    return found


def dataset_url(api, repo_id: str, revision: str | None) -> str:
    url = f"{api.endpoint}/datasets/{repo_id}"
    return f"{url}/tree/{revision}" if revision else url


@dataclass
class Remote:
    """What the Hub holds where a push lands, read at one commit: root texts and every file's path."""
    texts: dict[str, str | None]
    files: list[str]
    known: bool = True  # False: the Hub was not read
    sha: str | None = None  # the commit read


ROOT_FILES = ["README.md", card_facts.FILENAME, eval_yaml.FILENAME]


def remote_card(api, repo_id: str, revision: str | None, token) -> str | None:
    """The README.md on the Hub, or None when the repo, the revision or the file does not exist yet."""
    return remote_files(api, repo_id, revision, token, ["README.md"])["README.md"]


def remote_files(api, repo_id: str, revision: str | None, token, names: list[str]) -> dict[str, str | None]:
    """The text of each named root file on the Hub (None where the repo, revision or file does not exist),
    all read at one commit."""
    return read_remote(api, repo_id, revision, token, names).texts


def read_remote(api, repo_id: str, revision: str | None, token, names: list[str] = ROOT_FILES) -> Remote:
    """The Hub's state where a push lands. A branch that does not exist yet is read from main, which it
    will be created from; a repo that does not exist yet holds nothing."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    found: dict[str, str | None] = dict.fromkeys(names)
    try:  # repo info first: one request, not retried, so an unreachable Hub fails fast
        try:
            info = api.dataset_info(repo_id, revision=revision, token=token)
        except RevisionNotFoundError:
            if not revision:
                raise
            info = api.dataset_info(repo_id, token=token)
        present = sorted(s.rfilename for s in info.siblings or [])
        with tempfile.TemporaryDirectory(prefix="shift_hub_card_") as cache:
            for name in (n for n in names if n in present):
                path = api.hf_hub_download(repo_id, name, repo_type=REPO_TYPE, revision=info.sha, token=token,
                                           cache_dir=cache)
                found[name] = Path(path).read_text(encoding="utf-8")
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return Remote(found, [])
    return Remote(found, present, sha=info.sha)


def _is_our_shard(path: str) -> bool:
    """Whether a repo path is named as shift_hub names shards: <config>/validation-IIIII-of-NNNNN.parquet."""
    parts = path.split("/")
    return len(parts) == 2 and folder.SHARD_PATTERN.match(parts[1]) is not None


def _loaded_with_config(path: str) -> bool:
    """Whether `load_dataset` reads this file as part of its config (the card's data_files glob)."""
    parts = path.split("/")
    return len(parts) == 2 and fnmatch.fnmatchcase(parts[1], f"{SPLIT}-*.parquet")


def remote_changes(remote_files: list[str], configs: list[str], written: set[str],
                   overwrite: bool) -> tuple[list[str], list[str]]:
    """(files to delete, files kept) among the files on the Hub in the pushed configs' folders that this push
    does not write: stale shards of ours go; anything else stays unless `overwrite`. A foreign file that
    `load_dataset` would read as part of the config is refused, so the pushed config is never silently mixed."""
    delete, kept = [], []
    for path in remote_files:
        if "/" not in path or path.split("/", 1)[0] not in configs or path in written:
            continue
        if overwrite or _is_our_shard(path):
            delete.append(path)
        elif _loaded_with_config(path):
            raise PushError(f"{path} on the Hub is not a shift_hub shard, but `load_dataset` would read it as part "
                            f"of {path.split('/')[0]}: delete it on the Hub, or pass --overwrite to delete it "
                            "with this push; nothing was created or uploaded")
        else:
            kept.append(path)
    return delete, kept


def check_thumbnail_images(out: Path, configs: list[str]) -> None:
    """Decode the images each config's card thumbnail is made of, as cards.write_thumbnail picks them, so an
    undecodable one is refused in one line before anything is created on the Hub (a dry run included)."""
    for name in configs:
        problem = _undecodable_thumbnail_image(out, name)
        if problem:
            raise PushError(problem)


def _undecodable_thumbnail_image(out: Path, name: str) -> str | None:
    import pyarrow.parquet as pq
    from PIL import Image

    left = cards.THUMBNAIL_COUNT
    for path in folder.shard_files(out / name):
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=cards.THUMBNAIL_COUNT, columns=["image", "image_id"])
            batch = next(batches, None)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
            return _undecodable(path, name, None, exc)
        if batch is None:
            continue
        cells, ids = batch.column("image").to_pylist()[:left], batch.column("image_id").to_pylist()
        for cell, image_id in zip(cells, ids):
            try:
                with Image.open(io.BytesIO(cell["bytes"])) as img:
                    img.convert("RGB")
            except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError...
                return _undecodable(path, name, image_id, exc)
        left -= len(cells)
        if left <= 0:
            break
    return None


def _undecodable(path: Path, config: str, image_id: str | None, exc: Exception) -> str:
    what = f"image {image_id!r}" if image_id is not None else "its images"
    reason = " ".join(str(exc).split())[:120]
    return (f"{path}: {what} cannot be decoded ({type(exc).__name__}: {reason}), and config {config}'s card "
            "thumbnail is made from it; nothing was created or uploaded. Delete this shard and rerun the same "
            "`shift-hub generate` to remake it, then push again")


def chosen_configs(out: str | Path, configs: list[str] | None) -> list[str]:
    """The configs to push (groups expanded), all generated in `out` and passing `folder.check` exactly as
    a resumed `generate` would read them: ours, readable, one complete shard set, one set of settings."""
    from ..registry import expand

    out = Path(out)
    if not out.is_dir():
        raise PushError(f"{out}: no such folder (give the --out of a `shift-hub generate` run)")
    present = list(folder.summary(out))
    if not present:
        raise PushError(f"{out}: nothing generated here (run `shift-hub generate` first)")
    chosen = expand(list(configs)) if configs else sorted(folder.check(out))
    missing = [c for c in chosen if not folder.shard_files(out / c)]
    if missing:
        raise PushError(f"{out}: not generated here: {', '.join(missing)} (present: {', '.join(present)})")
    found = folder.problems(folder.check(out, chosen))
    if found:
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise PushError(f"{out} cannot be pushed as it is, nothing was uploaded: " + "; ".join(found[:5]) + more)
    return chosen


def check_repo_id(repo_id: str) -> None:
    """A full NAMESPACE/NAME: a bare name would be created under the token's user, then not be found."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PushError(f"{repo_id!r} is not a Hub repo id (expected NAMESPACE/NAME, e.g. my-org/shift_hub): "
                        f"{exc}") from None
    if "/" not in repo_id:
        raise PushError(f"{repo_id!r} has no namespace: give NAMESPACE/NAME (your user or organisation, e.g. "
                        f"my-org/{repo_id}); nothing was created or uploaded")


def prepare_local(out: str | Path, repo_id: str, configs: list[str] | None = None,
                  thumbnails: bool = True) -> tuple[list[str], CardFacts]:
    """(the configs to push, their card facts): every local check, so none can fail after the repo exists."""
    out = Path(out)
    check_repo_id(repo_id)
    chosen = chosen_configs(out, configs)
    check_thumbnail_images(out, chosen)  # before the facts, which decode them for the thumbnails
    return chosen, cards.local_facts(out, chosen, thumbnails=thumbnails)


def plan(out: str | Path, repo_id: str, configs: list[str] | None = None, revision: str | None = None,
         api=None, token=None, remote: str | None | bool | Remote = True, thumbnails: bool = True,
         overwrite: bool = False) -> PushPlan:
    """What a push would upload and delete: files, sizes, the merged card and its facts. `remote=True` reads
    the Hub; a `Remote` is what was read; a string is the remote README.md alone; False or None skips reading
    the Hub."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    chosen, local = prepare_local(out, repo_id, configs, thumbnails)
    if remote is True:
        remote = read_remote(api, repo_id, revision, token)
    elif not isinstance(remote, Remote):
        remote = Remote({"README.md": remote or None}, [], known=False)
    return assemble(Path(out), repo_id, chosen, local, remote, revision, dataset_url(api, repo_id, revision),
                    overwrite)


def assemble(out: Path, repo_id: str, chosen: list[str], local: CardFacts, remote: Remote, revision: str | None,
             url: str, overwrite: bool = False) -> PushPlan:
    """The plan from the local facts and the Hub's state: the merged card, its facts and eval.yaml, and what goes."""
    stored, remarks = remote_facts(remote.texts, repo_id, overwrite)
    merged, texts = cards.render_files(card_facts.merge(local, stored), repo_hint=repo_id)
    files = config_files(out, chosen)
    deletions, kept = remote_changes(remote.files, chosen, {rel for rel, _, _ in files}, overwrite)
    return PushPlan(repo_id, chosen, files, texts["README.md"], url, revision, stored.names if stored else [],
                    merged_eval_yaml(merged.names, remote.texts.get(eval_yaml.FILENAME), repo_id),
                    deletions, kept, remote.known, remote.sha, texts[card_facts.FILENAME], remarks)


def remote_facts(texts: dict[str, str | None], repo_id: str,
                 overwrite: bool = False) -> tuple[CardFacts | None, list[str]]:
    """(the facts of the card on the Hub, remarks for the plan). They are its shift_hub.json, completed by what
    a README.md not rendered from it adds (edited on the Hub, or pushed by an older shift_hub); a card without
    shift_hub.json beside it is read once (hub/legacy_card.py). None for a repo without a card."""
    readme, stored = texts.get("README.md"), texts.get(card_facts.FILENAME)
    if stored is not None:
        try:
            facts = CardFacts.from_json(stored, where=f"{card_facts.FILENAME} on the Hub at {repo_id}")
        except card_facts.FactsError as exc:
            if not overwrite:
                raise PushError(f"{exc}: fix or delete it on the Hub, or pass --overwrite to replace it (the card's "
                                "facts are then read from README.md); nothing was uploaded") from None
        else:
            if readme is None or facts.renders(readme):
                return facts, []
            edited = f"README.md on the Hub was edited since shift_hub rendered it from {card_facts.FILENAME}"
            try:
                return card_facts.completed_by(facts, legacy_card.read(readme)), [
                    f"{edited}: it is rendered again from the facts (configs and metadata the edit added are kept)"]
            except legacy_card.UnreadableCard as exc:
                return facts, [f"{edited}, and {exc}: it is rendered again from the facts alone"]
    if readme is None:
        return None, []
    try:
        facts = legacy_card.read(readme)
    except legacy_card.UnreadableCard as exc:
        raise PushError(f"README.md on the Hub at {repo_id} has no {card_facts.FILENAME} beside it, and {exc}: fix "
                        "its YAML block on the Hub; nothing was uploaded") from None
    return facts, [f"README.md on the Hub has no {card_facts.FILENAME} beside it: read once ({len(facts.names)} "
                   f"config(s)); {card_facts.FILENAME} is added and used from now on"]


def merged_eval_yaml(configs: list[str], remote_text: str | None, repo_id: str) -> str:
    """eval.yaml for every config the merged card lists, merged by task id with the one on the Hub."""
    remote_doc = None
    if remote_text:
        try:
            remote_doc = eval_yaml.parse(remote_text, where=f"{eval_yaml.FILENAME} on the Hub at {repo_id}")
        except eval_yaml.EvalYamlError as exc:
            raise PushError(f"{exc}; nothing was uploaded") from None
    return eval_yaml.dump(eval_yaml.merge(configs, remote_doc))


def push(out: str | Path, repo_id: str, configs: list[str] | None = None, private: bool = False,
         revision: str | None = None, dry_run: bool = False, overwrite: bool = False,
         log: Callable[[str], None] = print):
    """Check and prepare everything (folder, thumbnail images, card, the Hub's state), then create the repo
    if needed and upload the chosen configs with the merged card (see `_upload`).

    Returns the CommitInfo (None for a dry run). Raises PushError before anything is created on the Hub for
    any problem found locally, a missing token, or a Hub that cannot be read. `overwrite` also deletes the
    files in the pushed configs' folders that shift_hub did not write.
    """
    from huggingface_hub import HfApi, get_token

    check_repo_id(repo_id)
    chosen_configs(out, configs)  # a wrong folder, config or damaged shard is reported before the token
    token = get_token()
    if token is None and not dry_run:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access "
                        f"to {repo_id.split('/')[0]!r} is needed to push)")
    api = HfApi(token=token)
    with lfs_uploads_off_huggingface_co(api.endpoint):
        chosen, local = prepare_local(out, repo_id, configs, thumbnails=not dry_run)
        remote = _read_remote_for_push(api, repo_id, revision, token, dry_run, log)
        the_plan = assemble(Path(out), repo_id, chosen, local, remote, revision,
                            dataset_url(api, repo_id, revision), overwrite)
        log(the_plan.describe())
        if dry_run:
            log("dry run: nothing uploaded")
            return None
        _open_repo(api, repo_id, revision, private)
        return _upload_and_report(api, the_plan, log)


def _read_remote_for_push(api, repo_id: str, revision: str | None, token, dry_run: bool, log) -> Remote:
    """The Hub's state; a dry run works offline (the local card alone), a push refuses before creating."""
    try:
        return read_remote(api, repo_id, revision, token)
    except Exception as exc:  # network, auth, a Hub that is down: one line, nothing created
        if not dry_run:
            raise PushError(f"cannot read dataset repo {repo_id} on {api.endpoint} ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}); nothing was created or uploaded") from exc
        log(f"(could not read the card on the Hub: {type(exc).__name__}; showing the local card only)")
        return Remote({}, [], known=False)


def _open_repo(api, repo_id: str, revision: str | None, private: bool) -> None:
    """Create the repo (and branch) only now, after every check: a refused push leaves nothing on the Hub."""
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type=REPO_TYPE, branch=revision, exist_ok=True)
    except Exception as exc:  # auth, permissions, network: say so without a traceback
        raise PushError(f"cannot create or open dataset repo {repo_id}: {type(exc).__name__}: {exc}") from exc


def _upload_and_report(api, the_plan: PushPlan, log):
    """Upload; a failure says that the Hub holds no half-published config and that a rerun completes it."""
    repo_id = the_plan.repo_id
    try:
        commit = _upload(api, the_plan)
    except Exception as exc:
        raise PushError(f"upload to {repo_id} failed ({type(exc).__name__}: {exc}). The Hub applies each commit "
                        "whole or not at all and the card is committed last, so no config is listed without all "
                        "of its files; rerun the same command to complete the push (files already on the Hub are "
                        "not sent again).") from exc
    if commit is None or commit.oid == the_plan.remote_sha:  # the client skips a commit that changes nothing
        log("nothing changed: the Hub already holds these files")
    else:
        log(f"pushed: {commit.commit_url}")
    log(f"dataset page: {the_plan.url}")
    return commit


def _is_huggingface_co(endpoint: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(endpoint).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in ("huggingface.co", "hf.co"))


@contextmanager
def lfs_uploads_off_huggingface_co(endpoint: str):
    """Upload with the LFS protocol to any endpoint but huggingface.co (a local Hub such as tests/hub_server.py,
    a self-hosted one): with hf_xet installed, huggingface_hub sends every upload through Xet, with no
    fallback, and only the Hugging Face Hub serves Xet. An HF_HUB_DISABLE_XET the user set is left as it is;
    the switch is undone afterwards, so nothing else in the process changes."""
    from huggingface_hub import constants

    if "HF_HUB_DISABLE_XET" in os.environ or _is_huggingface_co(endpoint):
        yield
        return
    before = constants.HF_HUB_DISABLE_XET
    constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_XET = before


def xet_uploads() -> bool:
    """Whether huggingface_hub will upload through hf_xet (and so may split `upload_folder` in commits)."""
    try:
        from huggingface_hub.utils._runtime import is_xet_available
    except ImportError:  # huggingface_hub without Xet support
        return False
    return is_xet_available()


def _upload(api, the_plan: PushPlan):
    """Stage links to the chosen files plus the merged card, its facts and eval.yaml, then `upload_folder`.

    Without hf_xet, `upload_folder` makes one commit: files, card, facts, eval.yaml and the plan's deletions
    land together or not at all. With hf_xet it may split a large folder into several commits (by file count
    and every 5 minutes); then the data goes first and the card, its facts and eval.yaml, with the plan's
    deletions, in a last commit of their own, so none names a config before all of its files are on the Hub.
    Exactly the files the plan lists are deleted, never a folder's whole content.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    message = f"shift_hub {__version__}: push {', '.join(the_plan.configs)}"
    patterns = [f"{c}/*" for c in the_plan.configs] + [f"{cards.THUMBNAIL_DIR}/{c}.jpg" for c in the_plan.configs]
    exact = [glob.escape(p) for p in the_plan.deletions]  # patterns that each match one path, the listed one
    together = not xet_uploads()
    root = {"README.md": the_plan.card, card_facts.FILENAME: the_plan.facts, eval_yaml.FILENAME: the_plan.eval_yaml}
    root = {name: text for name, text in root.items() if text}
    with tempfile.TemporaryDirectory(prefix="shift_hub_push_") as tmp:
        stage = Path(tmp)
        for rel, src, _ in the_plan.files:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src.resolve(), stage / rel)
        if together:
            for name, text in root.items():
                (stage / name).write_text(text, encoding="utf-8")
        commit = api.upload_folder(
            repo_id=the_plan.repo_id, repo_type=REPO_TYPE, folder_path=stage, revision=the_plan.revision,
            allow_patterns=patterns + list(root),
            delete_patterns=(exact or None) if together else None, commit_message=message,
        )
    if together:
        return commit
    return api.create_commit(
        repo_id=the_plan.repo_id, repo_type=REPO_TYPE, revision=the_plan.revision,
        operations=[*(CommitOperationAdd(name, text.encode()) for name, text in root.items()),
                    *(CommitOperationDelete(p) for p in the_plan.deletions)],
        commit_message=message + " (card)",
    )
