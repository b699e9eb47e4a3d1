"""The CLI against the real web server (bin/web) on this machine, as a team would use it: log in with a
token, create a project, upload a folder in parallel and resume, push predictions, list suggestions,
export; and a run started and waited for with a real worker."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image as PILImage

from annotator.models import Image, Project
from labeling.models import RunStatus, TrainingRun
from tests import procs
from tests.factories import make_scene_project, make_user
from twinlabel_client import cli


@pytest.fixture
def server(transactional_db, media_root, tmp_path):
    env = procs.service_env(MEDIA_ROOT=str(media_root), MODEL_DIR=str(tmp_path / "models"))
    with procs.web(env) as (_, url):
        yield url


@pytest.fixture
def twinlabel(monkeypatch, tmp_path, capsys):
    """``twinlabel(*args)`` runs the command in this process and returns what it printed, as JSON when it is."""
    monkeypatch.setattr(cli, "CONFIG", tmp_path / "config" / "client.json")
    monkeypatch.delenv("TWINLABEL_URL", raising=False)
    monkeypatch.delenv("TWINLABEL_TOKEN", raising=False)

    def run(*args: str):
        capsys.readouterr()
        cli.main([str(a) for a in args])
        out = capsys.readouterr().out
        try:
            return json.loads(out)
        except ValueError:
            return out

    return run


def _token(username: str) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=make_user(username)).key


def _folder(path, count: int):
    path.mkdir()
    for i in range(count):
        buffer = io.BytesIO()
        PILImage.new("RGB", (40, 30), (i * 9 % 256, 80, 200 - i)).save(buffer, "PNG")
        (path / f"p{i}.png").write_bytes(buffer.getvalue())
    return path


def test_a_team_works_through_the_cli(server, twinlabel, tmp_path):
    token = _token("owner")
    assert "Logged in" in twinlabel("login", "--url", server, "--token", token)
    assert (tmp_path / "config" / "client.json").stat().st_mode & 0o777 == 0o600
    project = twinlabel("project", "create", "Pets", "--labels", "cat", "dog")
    assert [label["name"] for label in project["labels"]] == ["cat", "dog"]
    pid = project["id"]

    folder = _folder(tmp_path / "photos", 12)
    first = twinlabel("upload", pid, folder, "--batch", "5", "--workers", "3")
    assert first["imported"] == 12 and first["skipped"] == 0 and Image.objects.filter(project_id=pid).count() == 12
    again = twinlabel("upload", pid, folder)  # resumed: nothing left to send
    assert again["skipped"] == 12 and again["imported"] == again["duplicates"] == 0
    (folder / ".twinlabel-upload.json").unlink()  # state lost: the server's sha256 dedupe answers
    assert twinlabel("upload", pid, folder)["duplicates"] == 12

    ids = sorted(Image.objects.filter(project_id=pid).values_list("id", flat=True))
    predictions = tmp_path / "preds.json"
    predictions.write_text(
        json.dumps(
            {"model_version": "team-resnet", "predictions": [{"image_id": i, "tags": {"cat": 0.8}} for i in ids]}
        )
    )
    pushed = twinlabel("predictions", pid, predictions, "--format", "json")
    assert pushed["suggestions"] == 12 and pushed["model_version"] == "team-resnet"
    listed = twinlabel("suggestions", pid, "--limit", "5")
    assert len(listed["results"]) == 5 and listed["next"]

    out = tmp_path / "export.json"
    twinlabel("export", pid, "--format", "coco", "--status", "all", "-o", out)
    assert len(json.loads(out.read_text())["images"]) == 12

    with pytest.raises(SystemExit, match="404"):
        twinlabel("login", "--url", server, "--token", _token("other"))
        twinlabel("export", pid, "--format", "coco", "-o", out)
    assert Project.objects.count() == 1


def test_a_run_started_from_the_cli_is_waited_for(server, twinlabel, tmp_path, media_root):
    token = _token("owner")
    project = make_scene_project(
        owner=__import__("django.contrib.auth", fromlist=["get_user_model"])
        .get_user_model()
        .objects.get(username="owner"),
        images=24,
        labeled=12,
    )
    twinlabel("login", "--url", server, "--token", token)
    config = json.dumps({"resolution": 24, "epochs": 2, "batch_size": 8, "projector": [64], "warmup_epochs": 0})
    with procs.worker(procs.worker_env("cli", media_root, tmp_path / "models")):
        run = twinlabel("run", project.id, "--kind", "pretrain", "--config", config, "--wait", "--poll", "0.5")
    assert run["status"] == RunStatus.SUCCEEDED and run["epoch"] == 2
    assert TrainingRun.objects.get(pk=run["id"]).status == RunStatus.SUCCEEDED
