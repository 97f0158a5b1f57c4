"""Publish generated configs to a Hub dataset repo with `create_repo` + `upload_folder`.

Only the chosen configs' files (their shards and thumbnails), the card and `eval.yaml` are uploaded; stale
shards of those configs are deleted, and no other config's files are touched. The card is the remote card
merged with the local one config by config, so pushing `clean` to a repo that holds `clean_full` keeps both;
`eval.yaml` (the Hub Benchmark definition, hub/eval_yaml.py) is rebuilt for every config the merged card lists
and merged with the remote one by task id. The token comes from `HF_TOKEN` or the login cache
(`huggingface_hub.get_token`) and is never printed.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__, folder
from ..folder import SPLIT
from . import cards, eval_yaml

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

    @property
    def total_bytes(self) -> int:
        return sum(size for _, _, size in self.files) + len(self.card.encode()) + len(self.eval_yaml.encode())

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
                     + ", ".join(cards_configs(self.card)) + ")")
        if self.eval_yaml:
            tasks = [t["id"] for t in eval_yaml.parse(self.eval_yaml)["tasks"]]
            lines.append(f"  {eval_yaml.FILENAME}  {_size(len(self.eval_yaml.encode()))}  (benchmark tasks: "
                         + ", ".join(tasks) + ")")
        kept = [c for c in self.remote_configs if c not in self.configs]
        if kept:
            lines.append(f"kept on the Hub as they are: {', '.join(kept)}")
        lines.append(f"total {_size(self.total_bytes)} in {len(self.files) + 1 + bool(self.eval_yaml)} files")
        lines.append(f"dataset page: {self.url}")
        return "\n".join(lines)


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"


def cards_configs(card_text: str) -> list[str]:
    from huggingface_hub import DatasetCard

    return [c["config_name"] for c in DatasetCard(card_text).data.to_dict().get("configs", [])]


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


def remote_card(api, repo_id: str, revision: str | None, token) -> str | None:
    """The README.md on the Hub, or None when the repo, the revision or the file does not exist yet."""
    return remote_files(api, repo_id, revision, token, ["README.md"])["README.md"]


def remote_files(api, repo_id: str, revision: str | None, token, names: list[str]) -> dict[str, str | None]:
    """The text of each named root file on the Hub (None where the repo, revision or file does not exist),
    all read at one commit."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    found: dict[str, str | None] = dict.fromkeys(names)
    try:  # repo info first: one request, not retried, so an unreachable Hub fails fast
        info = api.dataset_info(repo_id, revision=revision, token=token)
        present = {s.rfilename for s in info.siblings or []}
        with tempfile.TemporaryDirectory(prefix="shift_hub_card_") as cache:
            for name in (n for n in names if n in present):
                path = api.hf_hub_download(repo_id, name, repo_type=REPO_TYPE, revision=info.sha, token=token,
                                           cache_dir=cache)
                found[name] = Path(path).read_text(encoding="utf-8")
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        pass
    return found


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
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PushError(f"{repo_id!r} is not a Hub repo id (expected NAMESPACE/NAME, e.g. my-org/shift_hub): "
                        f"{exc}") from None


def plan(out: str | Path, repo_id: str, configs: list[str] | None = None, revision: str | None = None,
         api=None, token=None, remote: str | None | bool = True, thumbnails: bool = True) -> PushPlan:
    """What a push would upload: files, sizes and the merged card. `remote=False` skips reading the Hub."""
    from huggingface_hub import HfApi

    out = Path(out)
    check_repo_id(repo_id)
    api = api or HfApi()
    chosen = chosen_configs(out, configs)
    local = str(cards.render_card(out, repo_hint=repo_id, configs=chosen, thumbnails=thumbnails))
    found = remote_files(api, repo_id, revision, token, ["README.md", eval_yaml.FILENAME]) if remote is True else {
        "README.md": remote or None}
    remote_text = found["README.md"]
    card = cards.merge_cards(local, remote_text, repo_hint=repo_id)
    cards.validate_card(str(card))
    return PushPlan(repo_id, chosen, config_files(out, chosen), str(card), dataset_url(api, repo_id, revision),
                    revision, cards_configs(remote_text) if remote_text else [],
                    merged_eval_yaml(cards_configs(str(card)), found.get(eval_yaml.FILENAME), repo_id))


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
         revision: str | None = None, dry_run: bool = False, log: Callable[[str], None] = print):
    """Create the repo if needed and upload the chosen configs with the merged card (see `_upload`).

    Returns the CommitInfo (None for a dry run). Raises PushError before any upload when no token
    is available.
    """
    from huggingface_hub import HfApi, get_token

    check_repo_id(repo_id)
    chosen_configs(out, configs)  # a wrong folder, config or damaged shard is reported before anything is created
    token = get_token()
    if token is None and not dry_run:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access "
                        f"to {repo_id.split('/')[0]!r} is needed to push)")
    api = HfApi(token=token)
    if not dry_run:
        try:
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, repo_type=REPO_TYPE, branch=revision, exist_ok=True)
        except Exception as exc:  # auth, permissions, network: say so without a traceback
            raise PushError(f"cannot create or open dataset repo {repo_id}: {type(exc).__name__}: {exc}") from exc
    try:
        the_plan = plan(out, repo_id, configs, revision, api=api, token=token, thumbnails=not dry_run)
    except (PushError, FileNotFoundError, KeyError, cards.CardError):
        raise
    except Exception as exc:  # a dry run works offline: the Hub may be unreachable
        if not dry_run:
            raise
        log(f"(could not read the card on the Hub: {type(exc).__name__}; showing the local card only)")
        the_plan = plan(out, repo_id, configs, revision, api=api, token=token, remote=None, thumbnails=False)
    log(the_plan.describe())
    if dry_run:
        log("dry run: nothing uploaded")
        return None
    try:
        commit = _upload(api, the_plan)
    except Exception as exc:
        raise PushError(f"upload to {repo_id} failed ({type(exc).__name__}: {exc}). The Hub applies each commit "
                        "whole or not at all and the card is committed last, so no config is listed without all "
                        "of its files; rerun the same command to complete the push (files already on the Hub are "
                        "not sent again).") from exc
    log(f"pushed: {commit.commit_url if commit else 'nothing changed'}")
    log(f"dataset page: {the_plan.url}")
    return commit


def xet_uploads() -> bool:
    """Whether huggingface_hub will upload through hf_xet (and so may split `upload_folder` in commits)."""
    try:
        from huggingface_hub.utils._runtime import is_xet_available
    except ImportError:  # huggingface_hub without Xet support
        return False
    return is_xet_available()


def _upload(api, the_plan: PushPlan):
    """Stage links to the chosen files plus the merged card and eval.yaml, then `upload_folder`.

    Without hf_xet, `upload_folder` makes one commit: files, card, eval.yaml and stale-shard deletions land
    together or not at all. With hf_xet it may split a large folder into several commits (by file count and
    every 5 minutes); then the data goes first and the card and eval.yaml, with the deletion of stale shards,
    in a last commit of their own, so neither names a config before all of its files are on the Hub.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    message = f"shift_hub {__version__}: push {', '.join(the_plan.configs)}"
    patterns = [f"{c}/*" for c in the_plan.configs] + [f"{cards.THUMBNAIL_DIR}/{c}.jpg" for c in the_plan.configs]
    stale_patterns = [f"{c}/*" for c in the_plan.configs]  # only the pushed configs' own folders
    together = not xet_uploads()
    with tempfile.TemporaryDirectory(prefix="shift_hub_push_") as tmp:
        stage = Path(tmp)
        for rel, src, _ in the_plan.files:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src.resolve(), stage / rel)
        if together:
            (stage / "README.md").write_text(the_plan.card, encoding="utf-8")
            if the_plan.eval_yaml:
                (stage / eval_yaml.FILENAME).write_text(the_plan.eval_yaml, encoding="utf-8")
        commit = api.upload_folder(
            repo_id=the_plan.repo_id, repo_type=REPO_TYPE, folder_path=stage, revision=the_plan.revision,
            allow_patterns=patterns + ["README.md", eval_yaml.FILENAME],
            delete_patterns=stale_patterns if together else None, commit_message=message,
        )
    if together:
        return commit
    local = {rel for rel, _, _ in the_plan.files}
    remote = api.list_repo_files(the_plan.repo_id, repo_type=REPO_TYPE, revision=the_plan.revision)
    stale = [p for p in remote if p not in local and any(p.startswith(pat[:-1]) for pat in stale_patterns)]
    benchmark = [CommitOperationAdd(eval_yaml.FILENAME, the_plan.eval_yaml.encode())] if the_plan.eval_yaml else []
    return api.create_commit(
        repo_id=the_plan.repo_id, repo_type=REPO_TYPE, revision=the_plan.revision,
        operations=[CommitOperationAdd("README.md", the_plan.card.encode()), *benchmark,
                    *(CommitOperationDelete(p) for p in stale)],
        commit_message=message + " (card)",
    )
