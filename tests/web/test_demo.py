import pytest
from django.core.management import call_command

from annotator.demo.scenes import LABELS, generate, render_scene
from twinlabel.web.management.commands.demo import DEMO_NAME
from annotator.models import Box, Image, ImageTag, Project


def test_scenes_are_reproducible_and_independent_of_the_count():
    a = render_scene(5, seed=3, size=(64, 48))
    b = list(generate(2, seed=3, size=(64, 48), start=4))[1]
    assert a.image.tobytes() == b.image.tobytes() and a.objects == b.objects
    assert a.image.size == (64, 48)
    for scene in generate(30, seed=1, size=(64, 64)):
        assert scene.objects and scene.labels <= set(LABELS)
        for o in scene.objects:
            x, y, w, h = o.box
            assert w >= 1 and h >= 1 and x >= 0 and y >= 0 and x + w <= 64.0001 and y + h <= 64.0001


@pytest.mark.django_db
def test_the_demo_command_builds_a_partly_labeled_project_once(capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo", images=20, labeled=0.5, size=64)
    project = Project.objects.get(name=DEMO_NAME)
    assert list(project.labels.values_list("name", flat=True)) == list(LABELS)
    assert project.images.count() == 20
    submitted = project.images.filter(status="submitted").order_by("id")
    assert submitted.count() == 10
    # Half of the labeled images carry boxes and half image-level tags, true to the generated scenes.
    for n, image in enumerate(submitted):
        scene = render_scene(int(image.original_name[6:11]), seed=0, size=(64, 64))
        boxes = Box.objects.filter(image=image)
        tags = ImageTag.objects.filter(image=image)
        names = {b.label.name for b in boxes} | {t.label.name for t in tags}
        assert names == scene.labels
        assert (boxes.count(), tags.count()) == ((len(scene.objects), 0) if n % 2 == 0 else (0, len(scene.labels)))
    # The first pretraining is queued by itself (the task is sent when the transaction commits).
    from labeling.models import TrainingRun

    run = TrainingRun.objects.get(project=project)
    assert (run.kind, run.status, run.config["resolution"]) == ("pretrain", "queued", 32)
    out = capsys.readouterr().out
    password = (tmp_path / "demo_password").read_text().strip()
    assert f"Login: admin / {password}" in out
    call_command("demo", images=20)
    assert "already exists" in capsys.readouterr().out
    assert Image.objects.count() == 20
