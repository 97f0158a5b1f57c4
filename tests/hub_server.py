"""A small Hub-compatible HTTP server on 127.0.0.1 for round-trip tests of `shift-hub push`, and a local
Hub to try `shift-hub push` / `push-results` offline:

    python tests/hub_server.py [--port N] [--namespace NS ...]     # prints the lines to export, then serves

Any token is accepted (user `tester`, member of `org`; `--namespace` adds writable namespaces). State is in
memory and gone when it stops. The server speaks LFS, not Xet: shift-hub push uses LFS by itself for any
endpoint other than huggingface.co; other clients need HF_HUB_DISABLE_XET=1 (its Xet token route says so).

It implements the endpoints the real huggingface_hub 2.x and datasets clients call when pushing with
`create_repo` + `upload_folder` (LFS transfer, i.e. HF_HUB_DISABLE_XET=1), when loading a dataset, and when
committing to a model repo directly or through a pull request (`create_commit(create_pr=True)`):

    POST /api/repos/create                                  create (409 when it exists)
    GET  /api/whoami-v2                                     who owns the token
    POST /api/validate-yaml                                 card metadata check (offline rules)
    GET  /api/{type}s/{ns}/{name}[/revision/{rev}]          repo info (sha, siblings, cardData)
    POST /api/{type}s/{ns}/{name}/preupload/{rev}           upload mode + remote oid per file
    POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch    LFS batch API (basic transfer)
    PUT  /lfs-objects/{prefix}{ns}/{name}/{oid}             LFS object upload (sha256 checked)
    POST /{prefix}{ns}/{name}.git/info/lfs/objects/verify   LFS verify
    POST /api/{type}s/{ns}/{name}/commit/{rev}[?create_pr=1] NDJSON commit, applied atomically; with
                                                            create_pr: a new pull request on refs/pr/N
    GET  /api/{type}s/{ns}/{name}/discussions               pull requests (filters: author, type, status)
    POST /api/{type}s/{ns}/{name}/branch/{branch}           create a branch
    GET  /api/{type}s/{ns}/{name}/refs | /commits/{rev}     branches, history
    GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]       tree listing
    POST /api/{type}s/{ns}/{name}/paths-info/{rev}          paths info
    GET|HEAD /{prefix}{ns}/{name}/resolve/{rev}/{path}      file content, ETag, X-Repo-Commit, ranges
    GET  /api/{type}s/{ns}/{name}/xet-write-token/{rev}     501: no Xet here, use LFS (HF_HUB_DISABLE_XET=1)

State is in memory. A commit replaces a branch head in one step, so a request that fails or is cut
never leaves a partial commit. Every token is user `tester`, member of `org`: it may write repos in the
namespaces of `HubState.writers` (403 elsewhere, as the Hub), and may always open a pull request and
push to its own. `drop(method, substring)` makes the server cut the connection of the
next matching request after reading its body, to simulate a network failure mid-upload.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

PREFIXES = {"dataset": "datasets/", "space": "spaces/", "model": ""}
LFS_SUFFIXES = (".parquet", ".arrow", ".jpg", ".jpeg", ".png", ".bin", ".safetensors", ".zip", ".gz")


def client_env(endpoint: str, token: str, home, xet_off: bool = True, **extra) -> dict:
    """A user's environment for a client run against this server: HF_ENDPOINT and a token, no proxy (the server is
    127.0.0.1), no inherited HF_* settings; HF_HUB_DISABLE_XET=1 unless `xet_off` is False."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=endpoint, HF_TOKEN=token, HF_HOME=os.path.join(str(home), "hf_home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", **extra)
    if xet_off:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One file in a commit's tree: regular files are stored inline, LFS files by sha256."""

    size: int
    blob_id: str
    sha256: str | None = None  # set for LFS files
    content: bytes | None = None  # set for regular files


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, Entry]
    date: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes; per repo, as on the Hub
    created: str = ""
    pulls: list[dict] = field(default_factory=list)  # pull requests: num, title, author, status, createdAt

    def resolve(self, rev: str) -> Commit | None:
        rev = unquote(rev)
        oid = self.branches.get(rev, rev)
        if oid in self.commits:
            return self.commits[oid]
        matches = [c for k, c in self.commits.items() if len(rev) >= 7 and k.startswith(rev)]
        return matches[0] if len(matches) == 1 else None

    def history(self, rev: str) -> list[Commit]:
        out, commit = [], self.resolve(rev)
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def validate_card_yaml(content: str) -> list[str]:
    """The offline subset of the Hub's README metadata rules that matter for dataset cards."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.S)
    if not match:
        return []
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        return [f"YAML does not parse: {exc}"]
    if not isinstance(data, dict):
        return ["metadata must be a mapping"]
    errors = []
    if data.get("license") == "other" and not data.get("license_name"):
        errors.append('"license_name" is required when "license" is "other"')
    configs = data.get("configs", [])
    if not isinstance(configs, list):
        errors.append('"configs" must be a list')
        configs = []
    names = [c.get("config_name") for c in configs if isinstance(c, dict)]
    if len(names) != len(configs) or any(not isinstance(n, str) for n in names):
        errors.append('every "configs" item needs a "config_name" string')
    if len(set(names)) != len(names):
        errors.append('"configs" lists a config_name twice')
    for c in configs:
        if isinstance(c, dict) and "data_files" not in c:
            errors.append(f'config {c.get("config_name")!r} has no "data_files"')
    return errors


class HubState:
    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.requests: list[str] = []  # "METHOD path" of every request, for assertions
        self.drops: list[tuple[str, str]] = []  # (method, substring) of requests to cut
        self.tokens_seen: set[str] = set()
        self.user = "tester"
        self.writers: set[str] = {"tester", "org"}  # namespaces every token may write

    # --- repos -----------------------------------------------------------------------------

    def get_repo(self, repo_type: str, repo_id: str, token: str | None) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not token):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> tuple[Repo, bool]:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                return self.repos[(repo_type, repo_id)], False
            repo = Repo(repo_id, repo_type, private, created=_now())
            gitattributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            self._commit(repo, None, "initial commit", {".gitattributes": _regular(gitattributes)})
            self.repos[(repo_type, repo_id)] = repo
            return repo, True

    def _commit(self, repo: Repo, parent: str | None, title: str, files: dict[str, Entry], branch="main") -> Commit:
        digest = hashlib.sha1(json.dumps([parent, title, sorted((k, v.blob_id) for k, v in files.items()),
                                          time.time_ns()]).encode()).hexdigest()
        commit = Commit(digest, parent, title, files, _now())
        repo.commits[digest] = commit
        repo.branches[branch] = digest
        return commit

    def open_pull(self, repo: Repo, base: str, lines: list[dict]) -> tuple[Commit, int]:
        """A pull request: refs/pr/N from the head of `base`, with the commit applied on it."""
        base = unquote(base)
        with self.lock:
            if base not in repo.branches:
                raise HubError(404, f"Invalid rev id: {base}", "RevisionNotFound")
            num = len(repo.pulls) + 1
            ref = f"refs/pr/{num}"
            repo.branches[ref] = repo.branches[base]
        try:
            commit = self.apply_commit(repo, ref, lines)
        except HubError:
            del repo.branches[ref]
            raise
        title = next((i["value"].get("summary", "") for i in lines if i.get("key") == "header"), "")
        repo.pulls.append({"num": num, "title": title, "author": self.user, "status": "open", "createdAt": _now()})
        return commit, num

    def may_write(self, repo: Repo, rev: str) -> bool:
        """Write access: a namespace in `writers`, or the token user's own pull request."""
        rev = unquote(rev)
        pr = re.fullmatch(r"refs/pr/(\d+)", rev)
        if pr:
            return any(p["num"] == int(pr[1]) and p["author"] == self.user for p in repo.pulls) or \
                repo.repo_id.split("/")[0] in self.writers
        return repo.repo_id.split("/")[0] in self.writers

    def apply_commit(self, repo: Repo, rev: str, lines: list[dict]) -> Commit:
        """Validate every operation first, then move the branch head once: all or nothing."""
        rev = unquote(rev)
        with self.lock:
            if rev not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            head = repo.commits[repo.branches[rev]]
            header = next((item["value"] for item in lines if item.get("key") == "header"), {})
            parent = header.get("parentCommit")
            if parent and not head.oid.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for item in lines:
                key, value = item.get("key"), item.get("value", {})
                if key == "file":
                    files[value["path"]] = _regular(base64.b64decode(value["content"]))
                elif key == "lfsFile":
                    oid = value["oid"]
                    if oid not in repo.lfs:
                        raise HubError(400, f"LFS object {oid} for {value['path']} was never uploaded")
                    files[value["path"]] = _lfs(oid, len(repo.lfs[oid]))
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for path in [p for p in files if p.startswith(prefix)]:
                        del files[path]
                elif key != "header":
                    raise HubError(400, f"unknown commit operation {key!r}")
            return self._commit(repo, head.oid, header.get("summary", ""), files, rev)

    # --- inspection helpers for tests ------------------------------------------------------

    def files(self, repo_id: str, rev: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        repo = self.repos[(repo_type, repo_id)]
        return {p: self.read(e, repo) for p, e in repo.resolve(rev).files.items()}

    def read(self, entry: Entry, repo: Repo | None = None) -> bytes:
        if entry.content is not None:
            return entry.content
        stores = [repo.lfs] if repo else [r.lfs for r in self.repos.values()]
        return next(store[entry.sha256] for store in stores if entry.sha256 in store)

    def drop(self, method: str, substring: str) -> None:
        """Cut the connection of the next request whose method and path match, after reading its body."""
        with self.lock:
            self.drops.append((method, substring))


def _regular(data: bytes) -> Entry:
    return Entry(len(data), git_blob_id(data), content=data)


def _lfs(oid: str, size: int) -> Entry:
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()
    return Entry(size, git_blob_id(pointer), sha256=oid)


REPO = r"(?P<ns>[\w.-]+)/(?P<name>[\w.-]+)"
TYPED = r"(?P<type>models|datasets|spaces)"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HubServer"

    def log_message(self, format, *args):  # quiet: the tests assert on state.requests instead
        pass

    # --- plumbing ----------------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") and len(auth) > len("Bearer ") else None

    def _need_token(self) -> str:
        token = self._token()
        if not token:
            raise HubError(401, "Invalid credentials in Authorization header")
        self.server.state.tokens_seen.add(token)
        return token

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        state.requests.append(f"{method} {url.path}")
        body = self._body() if method in ("POST", "PUT") else b""
        with state.lock:
            drop = next((d for d in state.drops if d[0] == method and d[1] in url.path), None)
            if drop:
                state.drops.remove(drop)
        if drop:
            self.close_connection = True
            self.connection.shutdown(2)  # the client sees the connection reset, with no response
            return
        try:
            self._route(method, path, query, body)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._json(err.status, {"error": err.message}, headers)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    # --- routes ------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        state = self.server.state
        base = self.server.url
        m = re.fullmatch(r"/api/whoami-v2", path)
        if m:
            self._need_token()
            return self._json(200, {"type": "user", "name": state.user, "orgs": [{"name": "org"}],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if path == "/api/repos/create" and method == "POST":
            self._need_token()
            payload = json.loads(body)
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload.get('organization') or state.user}/{payload['name']}"
            if repo_id.split("/")[0] not in state.writers:
                raise HubError(403, f"You don't have the rights to create a repo under {repo_id.split('/')[0]}")
            repo, created = state.create_repo(repo_type, repo_id, payload.get("visibility") == "private"
                                              or bool(payload.get("private")))
            url = f"{base}/{PREFIXES[repo_type]}{repo_id}"
            if not created:
                return self._json(409, {"error": "You already created this dataset repo", "url": url})
            return self._json(200, {"url": url, "name": repo_id})
        if path == "/api/validate-yaml" and method == "POST":
            errors = validate_card_yaml(json.loads(body).get("content", ""))
            return self._json(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []})
        m = re.fullmatch(rf"/api/{TYPED}/{REPO}(?:/revision/(?P<rev>.+))?", path)
        if m and method == "GET":
            return self._repo_info(m, query)
        m = re.fullmatch(rf"/api/{TYPED}/{REPO}/(?P<op>preupload|commit|tree|paths-info|commits|branch)/(?P<rest>.+)", path)
        if m:
            return getattr(self, "_" + m["op"].replace("-", "_"))(m, method, query, body)
        m = re.fullmatch(rf"/api/{TYPED}/{REPO}/xet-(?:read|write)-token/.+", path)
        if m:  # huggingface_hub with hf_xet asks here first and has no LFS fallback: say what to do
            raise HubError(501, "this local Hub speaks LFS, not Xet: set HF_HUB_DISABLE_XET=1 for this client "
                                "(shift-hub push does so by itself for endpoints other than huggingface.co)")
        m = re.fullmatch(rf"/api/{TYPED}/{REPO}/discussions", path)
        if m and method == "GET":
            return self._discussions(m, query)
        m = re.fullmatch(rf"/api/{TYPED}/{REPO}/refs", path)
        if m:
            repo = self._repo(m)
            return self._json(200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c}
                                                 for b, c in repo.branches.items()], "tags": [], "converts": []})
        m = re.fullmatch(rf"/(?P<prefix>datasets/|spaces/)?{REPO}\.git/info/lfs/objects/(?P<op>batch|verify)", path)
        if m and method == "POST":
            self._need_token()
            repo = self._repo(m)
            if m["op"] == "verify":
                return self._lfs_verify(repo, json.loads(body))
            return self._lfs_batch(repo, json.loads(body), f"{base}/{m['prefix'] or ''}{m['ns']}/{m['name']}")
        m = re.fullmatch(rf"/lfs-objects/(?P<prefix>datasets/|spaces/)?{REPO}/(?P<oid>[0-9a-f]{{64}})", path)
        if m and method == "PUT":  # a pre-signed URL on the Hub: no Authorization header is sent
            repo_type = {"datasets/": "dataset", "spaces/": "space"}.get(m["prefix"] or "", "model")
            repo = state.repos.get((repo_type, f"{m['ns']}/{m['name']}"))
            if repo is None:
                raise HubError(404, "no such upload URL")
            if hashlib.sha256(body).hexdigest() != m["oid"]:
                raise HubError(400, "uploaded content does not match its sha256")
            with state.lock:
                repo.lfs[m["oid"]] = body
            return self._send(200, b"", {"ETag": f'"{m["oid"]}"'})
        m = re.fullmatch(rf"/(?P<prefix>datasets/|spaces/)?{REPO}/resolve/(?P<rest>.+)", path)
        if m and method in ("GET", "HEAD"):
            return self._resolve(m, method)
        raise HubError(404, f"no route for {method} {path}")

    def _repo(self, m) -> Repo:
        repo_type = m["type"][:-1] if "type" in m.groupdict() and m["type"] else \
            {"datasets/": "dataset", "spaces/": "space"}.get(m["prefix"] or "", "model")
        return self.server.state.get_repo(repo_type, f"{m['ns']}/{m['name']}", self._token())

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
        return commit

    def _split_rev(self, repo: Repo, rest: str) -> tuple[str, str]:
        """`rest` is `{rev}/{path}`; a branch name may itself hold slashes (refs/pr/1)."""
        for branch in sorted(repo.branches, key=len, reverse=True):
            if rest == branch or rest.startswith(branch + "/"):
                return branch, rest[len(branch) + 1:]
        rev, _, sub = rest.partition("/")
        return rev, sub

    def _repo_info(self, m, query) -> None:
        repo = self._repo(m)
        commit = self._commit_at(repo, m["rev"] or "main")
        card = {}
        readme = commit.files.get("README.md")
        if readme is not None:
            match = re.match(r"^---\s*\n(.*?)\n---\s*\n", readme.content.decode(), re.S)
            card = yaml.safe_load(match.group(1)) if match else {}
        self._json(200, {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": commit.oid, "private": repo.private, "gated": False,
            "disabled": False, "downloads": 0, "likes": 0, "tags": card.get("tags", []) if isinstance(card, dict) else [],
            "createdAt": repo.created, "lastModified": commit.date, "cardData": card,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        })

    def _need_write(self, repo: Repo, rev: str, query: dict) -> None:
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            return  # anyone with a token may open a pull request
        if not self.server.state.may_write(repo, rev):
            raise HubError(403, f"You don't have the rights to push to {repo.repo_id} ({unquote(rev)}); "
                                "open a pull request instead")

    def _discussions(self, m, query) -> None:
        repo = self._repo(m)
        state = self.server.state
        wanted = [p for p in repo.pulls
                  if query.get("type", ["all"])[0] in ("all", "pull_request")
                  and query.get("status", ["all"])[0] in ("all", p["status"])
                  and query.get("author", [p["author"]])[0] == p["author"]]
        self._json(200, {"discussions": [
            {"num": p["num"], "title": p["title"], "status": p["status"], "createdAt": p["createdAt"],
             "isPullRequest": True, "author": {"name": p["author"]},
             "repo": {"name": repo.repo_id, "type": repo.repo_type}} for p in wanted],
            "count": len(wanted), "start": 0, "numItemsPerPage": max(len(wanted), 1), "user": state.user})

    def _preupload(self, m, method, query, body) -> None:
        self._need_token()
        repo = self._repo(m)
        self._need_write(repo, m["rest"], query)
        head = self._commit_at(repo, m["rest"])
        out = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            binary = b"\0" in sample or f["path"].lower().endswith(LFS_SUFFIXES) or f["size"] > 10_000_000
            remote = head.files.get(f["path"])
            oid = None if remote is None else (remote.sha256 or remote.blob_id)
            out.append({"path": f["path"], "uploadMode": "lfs" if binary else "regular", "shouldIgnore": False,
                        "oid": oid})
        self._json(200, {"files": out, "commitOid": head.oid})

    def _lfs_batch(self, repo: Repo, payload: dict, repo_url: str) -> None:
        objects = []
        for obj in payload["objects"]:
            if obj["oid"] in repo.lfs:
                objects.append({"oid": obj["oid"], "size": obj["size"]})  # already stored: nothing to send
            else:
                objects.append({"oid": obj["oid"], "size": obj["size"], "authenticated": True, "actions": {
                    "upload": {"href": f"{repo_url.replace(self.server.url, self.server.url + '/lfs-objects')}/"
                                       f"{obj['oid']}", "header": {}},
                    "verify": {"href": f"{repo_url}.git/info/lfs/objects/verify"},
                }})
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_verify(self, repo: Repo, payload: dict) -> None:
        data = repo.lfs.get(payload["oid"])
        if data is None or len(data) != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} not found")
        self._json(200, {"success": True})

    def _commit(self, m, method, query, body) -> None:
        self._need_token()
        repo = self._repo(m)
        self._need_write(repo, m["rest"], query)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        prefix = PREFIXES[repo.repo_type]
        pull = None
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            commit, num = self.server.state.open_pull(repo, m["rest"], lines)
            pull = f"{self.server.url}/{prefix}{repo.repo_id}/discussions/{num}"
        else:
            commit = self.server.state.apply_commit(repo, m["rest"], lines)
        self._json(200, {"commitUrl": f"{self.server.url}/{prefix}{repo.repo_id}/commit/{commit.oid}",
                         "commitOid": commit.oid, "success": True, "pullRequestUrl": pull})

    def _branch(self, m, method, query, body) -> None:
        self._need_token()
        repo = self._repo(m)
        self._need_write(repo, "main", {})
        branch = m["rest"]
        if method != "POST":
            raise HubError(405, "only branch creation is implemented")
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.branches[branch] = self._commit_at(repo, start).oid
        self._json(200, {})

    def _commits(self, m, method, query, body) -> None:
        repo = self._repo(m)
        self._json(200, [{"id": c.oid, "title": c.title, "message": "", "authors": [{"user": "tester"}],
                          "date": c.date} for c in repo.history(m["rest"])])

    def _entry(self, path: str, entry: Entry | None) -> dict:
        if entry is None:  # a folder
            return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        out = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
        if entry.sha256:
            out["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
        return out

    def _tree(self, m, method, query, body) -> None:
        repo = self._repo(m)
        rev, sub = self._split_rev(repo, m["rest"])
        commit = self._commit_at(repo, rev)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries: dict[str, dict] = {}
        for path, entry in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, self._entry(folder, None))
            if recursive or len(parts) == 1:
                entries[path] = self._entry(path, entry)
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {sub}", "EntryNotFound")
        self._json(200, list(entries.values()))

    def _paths_info(self, m, method, query, body) -> None:
        repo = self._repo(m)
        commit = self._commit_at(repo, m["rest"])
        form = parse_qs(body.decode())
        out = []
        for p in form.get("paths", []):
            p = p.strip("/")
            if p in commit.files:
                out.append(self._entry(p, commit.files[p]))
            elif any(f.startswith(p + "/") for f in commit.files):
                out.append(self._entry(p, None))
        self._json(200, out)

    def _resolve(self, m, method) -> None:
        repo = self._repo(m)
        rev, sub = self._split_rev(repo, m["rest"])
        commit = self._commit_at(repo, rev)
        entry = commit.files.get(sub)
        if entry is None:
            raise HubError(404, f"Entry not found: {sub}", "EntryNotFound")
        data = self.server.state.read(entry, repo)
        etag = entry.sha256 or entry.blob_id
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if entry.sha256:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": entry.size})
        status = 200
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if rng:
            start = int(rng[1]) if rng[1] else max(0, len(data) - int(rng[2]))
            end = min(int(rng[2]), len(data) - 1) if rng[1] and rng[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        self._send(status, data, headers, head=method == "HEAD", content_type="application/octet-stream")


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = HubState()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> "HubServer":
        self._thread = threading.Thread(target=self.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def usage_lines(server: HubServer) -> list[str]:
    """What a user types to point shift-hub (and huggingface_hub, datasets) at this server."""
    namespaces = ", ".join(sorted(server.state.writers))
    return [f"local Hub on {server.url} (writable namespaces: {namespaces}; any token; Ctrl-C stops it)",
            "in another shell:",
            f"  export HF_ENDPOINT={server.url}",
            "  export HF_TOKEN=hf_local_anything",
            "  shift-hub push OUT/ org/shift_hub --dry-run && shift-hub push OUT/ org/shift_hub"]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="A local Hub-compatible server for trying shift-hub push offline.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--namespace", action="append", default=[], metavar="NS",
                        help="also allow writes to this namespace (tester and org always are); repeatable")
    args = parser.parse_args(argv)
    try:
        server = HubServer(args.port)
    except OSError as exc:
        parser.exit(2, f"hub_server: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}\n")
    server.state.writers.update(args.namespace)
    print("\n".join(usage_lines(server)), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
