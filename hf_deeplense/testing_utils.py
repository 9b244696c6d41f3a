"""Test helpers: an offline stand-in for the Hugging Face Hub, and a marker for tests that need the real one.

`local_hub(tmp_path)` lets a test run the real `push_to_hub` / `upload_folder` / `upload_file` code of
transformers and huggingface_hub without a network. Only the HTTP endpoints of a commit are replaced:

| real Hub call                                  | replaced by                                         |
|------------------------------------------------|-----------------------------------------------------|
| `HfApi.create_repo`, `HfApi.create_branch`     | creating the repo folder / a ref in the local cache |
| `POST /api/validate-yaml` (`HfApi._validate_yaml`) | parsing the README's YAML header locally         |
| `POST .../preupload` (`_commit_api._fetch_upload_modes`) | every file is a "regular" upload             |
| `GET .../paths-info` (`_commit_api._fetch_files_to_copy`) | reading the source file from the local cache |
| `POST .../commit` (`_commit_api._send_commit`)  | writing a new snapshot into the local cache        |
| `GET .../tree` (`HfApi.list_repo_files`, used by `delete_patterns`) | listing the local snapshot  |

`huggingface_hub._upload_pipeline` imports the commit endpoints by name: its copies are replaced too.

Everything else (`HfApi.create_commit`, `upload_folder`, `upload_file`, `PushToHubMixin.push_to_hub`) is the
installed library's own code. Commits land in the layout that `hf_hub_download`, `snapshot_download` and
`from_pretrained("org/name")` read offline:

```
$HF_HOME/hub/{models|datasets}--org--name/
    refs/main                       # commit hash of the branch head
    blobs/<sha256>                  # file contents
    snapshots/<commit>/<path>       # relative symlinks to ../blobs/<sha256>
```

Inside the context `HF_HOME` / `HF_HUB_CACHE` point into `tmp_path` and offline mode is on (the
`huggingface_hub.constants` and `datasets.config` copies are patched too, since both are read at import), so
reading a pushed repo back never touches the network. Everything is restored on exit.

Example:
    ```python
    with local_hub(tmp_path) as hub:
        model.push_to_hub("org/tiny-vit")
        image_processor.push_to_hub("org/tiny-vit")
        reloaded = AutoModelForImageClassification.from_pretrained("org/tiny-vit")
    ```
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from unittest import mock
from urllib.parse import unquote

import httpx
import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, CommitOperationDelete, constants
from huggingface_hub import _commit_api as commit_api
from huggingface_hub import _upload_pipeline as upload_pipeline
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.hf_api import CommitInfo, HfApi, RepoUrl
from huggingface_hub.utils import validate_repo_id

__all__ = ["LocalHub", "hub_token_available", "local_hub", "requires_hub_token"]

_REPO_TYPES = ("model", "dataset")


def _http_error(message: str, status: int, url: str, error_class: type[HfHubHTTPError] = HfHubHTTPError):
    """An `HfHubHTTPError` (or subclass) carrying a fake response, as the real client would raise."""
    response = httpx.Response(status, request=httpx.Request("POST", url))
    return error_class(message, response=response)


@dataclass
class LocalHub:
    """A local, offline Hub: repos live in the HF cache layout under `cache_dir`.

    Attributes:
        hf_home: the `HF_HOME` set inside the context.
        cache_dir: the `HF_HUB_CACHE` (`hf_home / "hub"`) that commits are written to.
        user: namespace given to repo ids pushed without one (the real Hub uses the token's user name).
        endpoint: the Hub URL used in returned `RepoUrl` / `CommitInfo` objects (nothing is requested from it).
    """

    hf_home: Path
    cache_dir: Path
    user: str = "hf-deeplense-tester"
    endpoint: str = constants.ENDPOINT

    def full_repo_id(self, repo_id: str) -> str:
        """`repo_id` with the default user namespace added when it has none."""
        return repo_id if "/" in repo_id else f"{self.user}/{repo_id}"

    def repo_folder(self, repo_id: str, repo_type: str | None = None) -> Path:
        """The cache folder of a repo, e.g. `hub/datasets--org--name` (whether or not it exists)."""
        repo_type = repo_type or "model"
        if repo_type not in _REPO_TYPES:
            raise ValueError(f"local_hub supports repo_type in {_REPO_TYPES}, got {repo_type!r}")
        name = "--".join([f"{repo_type}s", *self.full_repo_id(repo_id).split("/")])
        return self.cache_dir / name

    def head(self, repo_id: str, repo_type: str | None = None, revision: str = "main") -> str | None:
        """Commit hash the branch `revision` points to, or None for an empty repo / unknown branch."""
        ref = self.repo_folder(repo_id, repo_type) / "refs" / revision
        return ref.read_text().strip() if ref.is_file() else None

    def list_files(self, repo_id: str, repo_type: str | None = None, revision: str = "main") -> list[str]:
        """Sorted repo paths (POSIX) of the files at the head of `revision`."""
        return sorted(self._snapshot_files(repo_id, repo_type, revision))

    def list_repo_files(
        self,
        api: HfApi,
        repo_id: str,
        *,
        revision: str | None = None,
        repo_type: str | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Stand-in for `HfApi.list_repo_files`."""
        return self.list_files(repo_id, repo_type, revision or "main")

    def commits(self, repo_id: str, repo_type: str | None = None) -> list[str]:
        """Commit hashes of the repo, oldest first."""
        log = self.repo_folder(repo_id, repo_type) / "commit_log"
        return log.read_text().split() if log.is_file() else []

    # -- internals ---------------------------------------------------------------------------------

    def _require_repo(self, repo_id: str, repo_type: str | None) -> Path:
        folder = self.repo_folder(repo_id, repo_type)
        if not folder.is_dir():
            url = f"{self.endpoint}/api/{repo_type or 'model'}s/{repo_id}/commit"
            raise _http_error(
                f"404 Client Error: Repository Not Found for url: {url} (local_hub: create the repo first)",
                404,
                url,
                RepositoryNotFoundError,
            )
        return folder

    def _snapshot_files(self, repo_id: str, repo_type: str | None, revision: str) -> dict[str, Path]:
        """Map repo path -> blob path of the files at `revision` (a branch or a commit hash)."""
        folder = self._require_repo(repo_id, repo_type)
        commit = self.head(repo_id, repo_type, revision)
        if commit is None and (folder / "snapshots" / revision).is_dir():
            commit = revision
        if commit is None:
            if revision == "main":
                return {}
            url = f"{self.endpoint}/api/{repo_type or 'model'}s/{repo_id}/revision/{revision}"
            raise _http_error(
                f"Revision {revision!r} not found in {repo_id}", 404, url, RevisionNotFoundError
            )
        snapshot = folder / "snapshots" / commit
        return {
            path.relative_to(snapshot).as_posix(): path.resolve()
            for path in snapshot.rglob("*")
            if path.is_file()
        }

    def _write_commit(
        self,
        repo_id: str,
        repo_type: str | None,
        revision: str,
        files: dict[str, Path | bytes],
        commit_message: str,
    ) -> str:
        """Store `files` (repo path -> existing blob or new content) as a new commit on branch `revision`."""
        folder = self._require_repo(repo_id, repo_type)
        parent = self.head(repo_id, repo_type, revision) or ""
        blobs = folder / "blobs"
        blobs.mkdir(exist_ok=True)
        blob_names: dict[str, str] = {}
        for path, content in files.items():
            if isinstance(content, Path):
                blob_names[path] = content.name
                continue
            digest = hashlib.sha256(content).hexdigest()
            blob = blobs / digest
            if not blob.exists():
                blob.write_bytes(content)
            blob_names[path] = digest
        listing = "\n".join(f"{path} {blob_names[path]}" for path in sorted(blob_names))
        commit = hashlib.sha1(f"{parent}\n{commit_message}\n{listing}".encode()).hexdigest()
        snapshot = folder / "snapshots" / commit
        if not snapshot.exists():
            for path, blob_name in blob_names.items():
                target = snapshot / PurePosixPath(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                # relative link, as huggingface_hub writes it: snapshots/<commit>/<dirs...>/file -> blobs/<sha>
                target.symlink_to(os.path.relpath(blobs / blob_name, target.parent))
            snapshot.mkdir(parents=True, exist_ok=True)  # an empty commit still has a snapshot folder
        ref = folder / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
        with open(folder / "commit_log", "a") as log:
            log.write(commit + "\n")
        return commit

    # -- replacements for the Hub's HTTP endpoints -------------------------------------------------

    def create_repo(
        self,
        api: HfApi,
        repo_id: str,
        *,
        repo_type: str | None = None,
        exist_ok: bool = False,
        **kwargs: Any,
    ) -> RepoUrl:
        repo_type = repo_type or "model"
        repo_id = self.full_repo_id(repo_id)
        validate_repo_id(repo_id)
        folder = self.repo_folder(repo_id, repo_type)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        if folder.is_dir() and not exist_ok:
            url = f"{self.endpoint}/api/repos/create"
            raise _http_error(
                f"409 Client Error: Conflict for url: {url} (You already created this repo)", 409, url
            )
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"{self.endpoint}/{prefix}{repo_id}", endpoint=self.endpoint)

    def create_branch(
        self,
        api: HfApi,
        repo_id: str,
        *,
        branch: str,
        revision: str | None = None,
        repo_type: str | None = None,
        exist_ok: bool = False,
        **kwargs: Any,
    ) -> None:
        folder = self._require_repo(repo_id, repo_type)
        ref = folder / "refs" / branch
        if ref.exists():
            if exist_ok:
                return
            url = f"{self.endpoint}/api/{repo_type or 'model'}s/{repo_id}/branch/{branch}"
            raise _http_error(f"409 Client Error: branch {branch!r} already exists", 409, url)
        files = self._snapshot_files(repo_id, repo_type, revision or "main")
        self._write_commit(repo_id, repo_type, branch, dict(files), f"Create branch {branch}")

    def validate_yaml(self, api: HfApi, content: str, *, repo_type: str | None = None, **kwargs: Any) -> None:
        """Local version of the Hub's README metadata check: the YAML header must parse to a mapping."""
        if not content.startswith("---"):
            return
        parts = content.split("---", 2)
        if len(parts) < 3:
            raise ValueError("README.md: YAML header opened with '---' is never closed")
        try:
            metadata = yaml.safe_load(parts[1])
        except yaml.YAMLError as error:
            raise ValueError(f"README.md: invalid YAML metadata: {error}") from error
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError(f"README.md: YAML metadata must be a mapping, got {type(metadata).__name__}")

    def fetch_upload_modes(self, additions, repo_type: str, repo_id: str, **kwargs: Any) -> None:
        self._require_repo(repo_id, repo_type)
        for addition in additions:
            addition._upload_mode = "regular"  # content travels in the commit itself, no LFS/Xet upload
            addition._should_ignore = False
            addition._remote_oid = None

    def fetch_files_to_copy(self, copies, repo_type: str, repo_id: str, revision: str, **kwargs: Any):
        files_to_copy = {}
        for op in copies:
            is_cross_repo = op.src_repo_id is not None
            src_revision = op.src_revision or ("main" if is_cross_repo else unquote(revision))
            files = self._snapshot_files(
                op.src_repo_id or repo_id, op.src_repo_type or repo_type, src_revision
            )
            if op.src_path_in_repo not in files:
                url = f"{self.endpoint}/api/{repo_type}s/{repo_id}/paths-info/{src_revision}"
                raise _http_error(f"Cannot copy {op.src_path_in_repo}: not found in {repo_id}", 404, url)
            source = commit_api._CopySource(
                op.src_repo_id, op.src_repo_type, op.src_path_in_repo, op.src_revision
            )
            files_to_copy[source] = files[op.src_path_in_repo].read_bytes()
        return files_to_copy

    def send_commit(
        self,
        *,
        operations,
        files_to_copy,
        commit_message: str,
        commit_description: str,
        repo_type: str,
        repo_id: str,
        revision: str,
        create_pr: bool = False,
        **kwargs: Any,
    ) -> CommitInfo:
        if create_pr:
            raise NotImplementedError("local_hub does not emulate pull requests (create_pr=True)")
        revision = unquote(revision)
        files: dict[str, Path | bytes] = dict(self._snapshot_files(repo_id, repo_type, revision))
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                with op.as_file() as handle:
                    files[op.path_in_repo] = handle.read()
            elif isinstance(op, CommitOperationDelete):
                path = op.path_in_repo.rstrip("/")
                removed = [p for p in files if p == path or (op.is_folder and p.startswith(path + "/"))]
                if not removed:
                    url = f"{self.endpoint}/api/{repo_type}s/{repo_id}/commit/{revision}"
                    raise _http_error(f"A file with this name doesn't exist: {op.path_in_repo}", 404, url)
                for p in removed:
                    del files[p]
            elif isinstance(op, CommitOperationCopy):
                source = commit_api._CopySource(
                    op.src_repo_id, op.src_repo_type, op.src_path_in_repo, op.src_revision
                )
                files[op.path_in_repo] = files_to_copy[source]
            else:
                raise TypeError(f"Unknown commit operation {op!r}")
        commit = self._write_commit(repo_id, repo_type, revision, files, commit_message)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return CommitInfo(
            commit_url=f"{self.endpoint}/{prefix}{repo_id}/commit/{commit}",
            commit_message=commit_message,
            commit_description=commit_description,
            oid=commit,
            _endpoint=self.endpoint,
        )


def _as_method(function: Callable) -> Callable:
    """Wrap a bound LocalHub function so it can replace an `HfApi` method (receives the api as `self`)."""

    def method(api, *args, **kwargs):
        return function(api, *args, **kwargs)

    return method


@contextmanager
def local_hub(
    tmp_path: str | os.PathLike, *, offline: bool = True, user: str = "hf-deeplense-tester"
) -> Iterator[LocalHub]:
    """Redirect Hub commits into a local HF cache under `tmp_path` (see the module docstring).

    Args:
        tmp_path: folder for `HF_HOME` (the cache is `tmp_path / "hf_home" / "hub"`).
        offline: also switch huggingface_hub (and datasets, if imported) to offline mode inside the context,
            so any request that is not a commit raises `OfflineModeIsEnabled` instead of reaching the network.
        user: namespace for repo ids given without one (`push_to_hub("name")` -> `user/name`).

    Yields:
        The `LocalHub`, for inspecting what was committed (`list_files`, `head`, `commits`, `repo_folder`).
    """
    hf_home = Path(tmp_path) / "hf_home"
    cache_dir = hf_home / "hub"
    cache_dir.mkdir(parents=True, exist_ok=True)
    hub = LocalHub(hf_home=hf_home, cache_dir=cache_dir, user=user)

    environ = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(cache_dir)}
    if offline:
        environ["HF_HUB_OFFLINE"] = "1"
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, environ))
        # constants are read once at import: patch the module attributes the library reads at call time
        stack.enter_context(mock.patch.object(constants, "HF_HOME", str(hf_home)))
        stack.enter_context(mock.patch.object(constants, "HF_HUB_CACHE", str(cache_dir)))
        stack.enter_context(mock.patch.object(constants, "HUGGINGFACE_HUB_CACHE", str(cache_dir)))
        stack.enter_context(mock.patch.object(constants, "HF_ASSETS_CACHE", str(hf_home / "assets")))
        if offline:
            stack.enter_context(mock.patch.object(constants, "HF_HUB_OFFLINE", True))
            datasets_config = sys.modules.get("datasets.config")
            if datasets_config is not None:
                stack.enter_context(mock.patch.object(datasets_config, "HF_HUB_OFFLINE", True))
        stack.enter_context(mock.patch.object(HfApi, "create_repo", _as_method(hub.create_repo)))
        stack.enter_context(mock.patch.object(HfApi, "create_branch", _as_method(hub.create_branch)))
        stack.enter_context(mock.patch.object(HfApi, "_validate_yaml", _as_method(hub.validate_yaml)))
        stack.enter_context(mock.patch.object(commit_api, "_fetch_upload_modes", hub.fetch_upload_modes))
        stack.enter_context(mock.patch.object(commit_api, "_fetch_files_to_copy", hub.fetch_files_to_copy))
        stack.enter_context(mock.patch.object(commit_api, "_send_commit", hub.send_commit))
        # `upload_folder`'s pipeline holds its own references to the endpoints imported from _commit_api
        stack.enter_context(mock.patch.object(upload_pipeline, "_fetch_upload_modes", hub.fetch_upload_modes))
        stack.enter_context(mock.patch.object(upload_pipeline, "_send_commit", hub.send_commit))
        stack.enter_context(mock.patch.object(HfApi, "list_repo_files", _as_method(hub.list_repo_files)))
        yield hub


def hub_token_available() -> bool:
    """True when the real Hub may be used: not in offline mode and a token is configured."""
    from huggingface_hub import get_token

    return not constants.HF_HUB_OFFLINE and get_token() is not None


def requires_hub_token(test: Callable) -> Callable:
    """Decorator for tests that talk to the real Hub: marked `network`, skipped offline or without a token.

    Run them with `HF_HUB_OFFLINE=0 HF_TOKEN=... pytest -m network`.
    """
    import pytest

    test = pytest.mark.network(test)
    return pytest.mark.skipif(
        not hub_token_available(), reason="needs the real Hub: set HF_HUB_OFFLINE=0 and a token (HF_TOKEN)"
    )(test)
