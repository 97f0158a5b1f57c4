"""`shift-hub push-results RESULTS_DIR MODEL_REPO [--create-pr]`: put a model's shift_hub scores in its repo.

Uploads RESULTS_DIR/.eval_results/shift_hub.yaml to the same path in the model repo, merged with what is
there (entries of the same dataset and task are replaced, others kept), so a second push updates rather
than duplicates, and a push of results the target already holds commits nothing and says so. Without write
access (or with --create-pr) it goes to a pull request; an open shift_hub pull request of the same user is
updated instead of opening another. The token is never printed.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from .push import PushError, lfs_uploads_off_huggingface_co

PR_TITLE = "Add shift_hub evaluation results"


def read_local(results_dir: str | Path) -> tuple[str, list]:
    """(path in repo, EvalResultEntry list) from RESULTS_DIR; PushError naming the fix when absent."""
    from ..evaluation import eval_results

    results_dir = Path(results_dir)
    path = results_dir / eval_results.FOLDER / eval_results.FILENAME
    if not results_dir.is_dir():
        raise PushError(f"{results_dir}: no such folder (give the --out of `shift-hub evaluate`)")
    several = sorted(p.parent.parent for p in results_dir.glob(f"*/{eval_results.FOLDER}/{eval_results.FILENAME}"))
    if not path.is_file() and several:
        raise PushError(f"{results_dir} holds the results of several models: give one of them (e.g. {several[0]})")
    if not path.is_file():
        raise PushError(f"{path} does not exist (its evaluate run printed why under `not written:`); rerun "
                        "`shift-hub evaluate` on the Hub dataset, or on its local folder with --dataset-id ORG/NAME, "
                        "without --limit")
    try:
        items = eval_results.parse(path.read_text(encoding="utf-8"), where=str(path))
    except ValueError as exc:
        raise PushError(str(exc)) from None
    if not items:
        raise PushError(f"{path} holds no results; rerun `shift-hub evaluate`")
    return eval_results.PATH_IN_REPO, items


def push_results(results_dir: str | Path, model_repo: str, create_pr: bool = False,
                 log: Callable[[str], None] = print):
    """Commit the merged .eval_results file to MODEL_REPO's main branch, or to a pull request when asked
    (`create_pr`) or when the token cannot write the repo. Returns the CommitInfo, or None when the target
    already holds these results (nothing is committed)."""
    from huggingface_hub import HfApi, get_token

    from .push import check_repo_id

    check_repo_id(model_repo)
    path_in_repo, local = read_local(results_dir)
    token = get_token()
    if token is None:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (any token can open a pull "
                        f"request on {model_repo})")
    api = HfApi(token=token)
    with lfs_uploads_off_huggingface_co(api.endpoint):
        return _push_to(api, model_repo, path_in_repo, local, create_pr, log)


def _push_to(api, model_repo: str, path_in_repo: str, local: list, create_pr: bool, log):
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        api.model_info(model_repo)
    except RepositoryNotFoundError:
        raise PushError(f"model repo {model_repo} not found on {api.endpoint} (or private to others); check the "
                        "id, or create the repo first") from None
    except HfHubHTTPError as exc:
        raise PushError(f"cannot open model repo {model_repo}: {_http_line(exc)}") from None
    try:
        if not create_pr:
            try:
                return _commit(api, model_repo, path_in_repo, local, "main", log)
            except HfHubHTTPError as exc:
                if _status(exc) not in (401, 403):
                    raise
                log(f"no write access to {model_repo} with this token: opening a pull request instead")
        return _commit_to_pr(api, model_repo, path_in_repo, local, log)
    except HfHubHTTPError as exc:
        raise PushError(f"push of {path_in_repo} to {model_repo} failed: {_http_line(exc)}; rerun the same command "
                        "(a pull request already opened is reused)") from None


def _commit_to_pr(api, repo_id: str, path_in_repo: str, local: list, log):
    """Update our open shift_hub pull request if there is one, else open one."""
    me = api.whoami().get("name")
    for discussion in api.get_repo_discussions(repo_id, author=me, discussion_type="pull_request",
                                               discussion_status="open"):
        if discussion.title == PR_TITLE:
            return _commit(api, repo_id, path_in_repo, local, discussion.git_reference, log,
                           pr_url=discussion.url)
    return _commit(api, repo_id, path_in_repo, local, None, log)


def _commit(api, repo_id: str, path_in_repo: str, local: list, revision: str | None, log, pr_url: str | None = None):
    """One commit of the merged file: to `revision` (main or refs/pr/N), or to a new pull request (None)."""
    from huggingface_hub import CommitOperationAdd

    from ..evaluation import eval_results

    remote = _remote_entries(api, repo_id, path_in_repo, revision or "main")
    merged = eval_results.merge(remote, local)
    where = f"pull request {pr_url}" if pr_url else f"{repo_id} ({revision or 'main'})"
    if _same_entries(merged, remote):  # a commit would change nothing: say so, and link to no commit
        log(f"nothing changed: {path_in_repo} in {where} already holds these {len(local)} entries"
            + ("; no pull request opened" if revision is None else ""))
        return None
    text = eval_results.dump(merged)
    datasets = sorted({e.dataset_id for e in local})
    message = f"shift_hub results on {', '.join(datasets)}"
    if revision is None:
        commit = api.create_commit(repo_id, [CommitOperationAdd(path_in_repo, text.encode())], commit_message=PR_TITLE,
                                   commit_description=f"{message}: {len(local)} task(s), written by `shift-hub "
                                                      "push-results`.", create_pr=True)
        log(f"opened pull request: {commit.pr_url}")
        return commit
    commit = api.create_commit(repo_id, [CommitOperationAdd(path_in_repo, text.encode())], commit_message=message,
                               revision=revision)
    log(f"updated {path_in_repo} in {where}: {len(local)} entries ({_changes(remote, local)}); "
        f"{commit.commit_url}")
    return commit


def _entry_texts(items: list) -> list[str]:
    """Each entry as canonical text, so entries compare by content, whatever their order in the file."""
    import json

    from huggingface_hub import eval_result_entries_to_yaml

    return [json.dumps(d, sort_keys=True, default=str) for d in eval_result_entries_to_yaml(list(items))]


def _same_entries(merged: list, remote: list) -> bool:
    return sorted(_entry_texts(merged)) == sorted(_entry_texts(remote))


def _changes(remote: list, local: list) -> str:
    """'1 new, 2 changed, 3 unchanged' (zeros left out): what the commit did to each of our entries."""
    before = dict(zip(((e.dataset_id, e.task_id) for e in remote), _entry_texts(remote)))
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    for entry, text in zip(local, _entry_texts(local)):
        key = (entry.dataset_id, entry.task_id)
        counts["new" if key not in before else "unchanged" if before[key] == text else "changed"] += 1
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)


def _remote_entries(api, repo_id: str, path_in_repo: str, revision: str) -> list:
    from huggingface_hub.errors import EntryNotFoundError

    from ..evaluation import eval_results

    with tempfile.TemporaryDirectory(prefix="shift_hub_results_") as cache:
        try:
            path = api.hf_hub_download(repo_id, path_in_repo, revision=revision, cache_dir=cache)
        except EntryNotFoundError:
            return []
        text = Path(path).read_text(encoding="utf-8")
    try:
        return eval_results.parse(text, where=f"{repo_id}/{path_in_repo} ({revision})")
    except ValueError as exc:
        raise PushError(f"{exc}; fix or delete it in the repo, then push again") from None


def _status(exc) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _http_line(exc) -> str:
    text = " ".join(str(exc).split())
    return f"HTTP {_status(exc)}: {text[:300]}" if _status(exc) else text[:300]
