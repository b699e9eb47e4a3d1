"""The REST client: token auth, one method per call, and ``CALLS``, every (method, path) it uses,
written as the OpenAPI schema writes them (the server's tests check each against /api/schema/)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

CALLS: dict[str, tuple[str, str]] = {
    "projects_list": ("GET", "/api/projects/"),
    "project_create": ("POST", "/api/projects/"),
    "project": ("GET", "/api/projects/{project_id}/"),
    "images_upload": ("POST", "/api/projects/{project_id}/images/"),
    "images_list": ("GET", "/api/projects/{project_id}/images/"),
    "predictions_push": ("POST", "/api/projects/{project_id}/predictions/"),
    "export": ("GET", "/api/projects/{project_id}/export/"),
    "export_job": ("GET", "/api/exports/{job_id}/"),
    "export_download": ("GET", "/api/exports/{job_id}/download/"),
    "annotations_import": ("POST", "/api/projects/{project_id}/import/"),
    "runs": ("GET", "/api/projects/{project_id}/runs/"),
    "run_start": ("POST", "/api/projects/{project_id}/runs/"),
    "run": ("GET", "/api/runs/{run_id}/"),
    "suggestions": ("GET", "/api/projects/{project_id}/suggestions/"),
}
# What the client sends besides path parameters: (where, field names), checked against the schema too.
SENDS: dict[str, tuple[str, set[str]]] = {
    "project_create": ("application/json", {"name", "labels", "description"}),
    "images_upload": ("multipart/form-data", {"files"}),
    "predictions_push": ("multipart/form-data", {"format", "model_version", "tags_from_boxes", "files"}),
    "annotations_import": ("multipart/form-data", {"format", "files"}),
    "run_start": ("application/json", {"kind", "config", "confirm"}),
    "export": ("query", {"format", "status"}),
    "suggestions": ("query", {"label", "predicted", "limit", "cursor", "min_probability", "max_probability"}),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".zip"}
STATE_FILE = ".twinlabel-upload.json"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 120):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    # -----------------------------------------------------------------------------------------
    def call(self, name: str, *, params: dict | None = None, stream: bool = False, **kwargs: Any) -> Any:
        """One call of ``CALLS`` by name; path parameters are keyword arguments, the rest goes to requests."""
        method, template = CALLS[name]
        path_args = {k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in template}
        response = self.session.request(
            method,
            self.url + template.format(**path_args),
            params=params,
            timeout=self.timeout,
            stream=stream,
            **kwargs,
        )
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text[:500]
            raise ApiError(response.status_code, message)
        if stream:
            return response
        return response.json() if response.content else None

    def projects(self) -> list[dict]:
        return self.call("projects_list")

    def project_create(self, name: str, labels: list[str], description: str = "") -> dict:
        return self.call("project_create", json={"name": name, "labels": labels, "description": description})

    # -----------------------------------------------------------------------------------------
    def upload(
        self,
        project_id: int,
        folder: Path,
        *,
        batch: int = 20,
        workers: int = 4,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Every image (and zip) under ``folder``, ``batch`` files a request, ``workers`` requests at
        once. Resumable: the sha256 of every file the server took (imported or a duplicate) is kept
        in ``folder/.twinlabel-upload.json``, and a re-run sends only the others (the server's own
        sha256 dedupe makes a lost state file cost a re-send, never a second copy)."""
        state_path = folder / STATE_FILE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        done: set[str] = set(state.get(str(project_id), []))
        files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        todo = [(p, sha) for p in files if (sha := _sha256(p)) not in done]
        totals = {
            "files": len(files),
            "skipped": len(files) - len(todo),
            "imported": 0,
            "duplicates": 0,
            "rejected": [],
        }
        sent = 0

        def send(chunk: list[tuple[Path, str]]) -> tuple[list[tuple[Path, str]], dict]:
            handles = [("files", (p.name, p.open("rb"))) for p, _ in chunk]
            try:
                return chunk, self._upload_batch(project_id, handles)
            finally:
                for _, (_, handle) in handles:
                    handle.close()

        chunks = [todo[i : i + batch] for i in range(0, len(todo), batch)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for chunk, report in pool.map(send, chunks):
                rejected = {r["name"] for r in report.get("rejected", [])}
                done.update(sha for p, sha in chunk if p.name not in rejected)
                totals["imported"] += len(report.get("imported", []))
                totals["duplicates"] += len(report.get("duplicates", []))
                totals["rejected"].extend(report.get("rejected", []))
                state[str(project_id)] = sorted(done)
                state_path.write_text(json.dumps(state))
                sent += len(chunk)
                if progress:
                    progress(sent, len(todo))
        return totals

    def _upload_batch(self, project_id: int, handles: list) -> dict:
        try:
            return self.call("images_upload", project_id=project_id, files=handles)
        except ApiError as error:  # 400: every file of the batch refused; the body says why
            if error.status == 400 and error.message.startswith("{"):
                return json.loads(error.message)
            raise

    def images(self, project_id: int, **params: Any) -> Iterator[dict]:
        page = self.call("images_list", project_id=project_id, params=params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            response = self.session.get(page["next"], timeout=self.timeout)
            response.raise_for_status()
            page = response.json()

    # -----------------------------------------------------------------------------------------
    def predictions_push(
        self, project_id: int, files: list[Path], *, fmt: str, model_version: str = "", tags_from_boxes: bool = False
    ) -> dict:
        handles = [("files", (p.name, p.read_bytes())) for p in files]
        data = {"format": fmt, "model_version": model_version, "tags_from_boxes": str(tags_from_boxes).lower()}
        return self.call("predictions_push", project_id=project_id, data=data, files=handles)

    def export(self, project_id: int, out: Path, *, fmt: str, status: str = "submitted", poll_s: float = 1.0) -> Path:
        """Stream the export to ``out``; a big one runs as a job on the server: wait, then download."""
        params = {"format": fmt, "status": status}
        response = self.call("export", project_id=project_id, params=params, stream=True)
        if response.status_code == 202:
            job = response.json()
            while job["status"] in ("queued", "running"):
                time.sleep(poll_s)
                job = self.call("export_job", job_id=job["id"])
            if job["status"] != "succeeded":
                raise ApiError(500, f"the export job {job['id']} {job['status']}: {job.get('error')}")
            response = self.call("export_download", job_id=job["id"], stream=True)
        with out.open("wb") as f:
            for chunk in response.iter_content(1 << 16):
                f.write(chunk)
        return out

    def annotations_import(self, project_id: int, files: list[Path], *, fmt: str) -> dict:
        handles = [("files", (p.name, p.read_bytes())) for p in files]
        return self.call("annotations_import", project_id=project_id, data={"format": fmt}, files=handles)

    # -----------------------------------------------------------------------------------------
    def run_start(self, project_id: int, kind: str, config: dict | None = None, confirm: bool = False) -> dict:
        body: dict[str, Any] = {"kind": kind}
        if config:
            body["config"] = config
        if confirm:
            body["confirm"] = True
        return self.call("run_start", project_id=project_id, json=body)

    def run_wait(
        self,
        run_id: int,
        *,
        poll_s: float = 2.0,
        timeout_s: float = 24 * 3600,
        progress: Callable[[dict], None] | None = None,
    ) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.call("run", run_id=run_id)
            if progress:
                progress(run)
            if run["status"] not in ("queued", "running"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def suggestions(self, project_id: int, **params: Any) -> dict:
        return self.call("suggestions", project_id=project_id, params=params)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
