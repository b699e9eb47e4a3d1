"""manage.py demo: an admin login and a demo project of procedural scenes, part of them labeled.

Safe to run again: an existing demo project and admin are kept, and the login is printed each time.
"""

from __future__ import annotations

import io
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotator.demo.scenes import LABEL_COLOURS, LABELS, render_scene
from annotator.models import Project
from annotator.services.annotations import annotations_import, BoxIn, ImageAnnotations
from annotator.services.images import images_import
from annotator.services.labels import label_create
from annotator.services.projects import project_create
from annotator.sources import ImageSource
from labeling.services import pretrain_start

DEMO_NAME = "Demo: shapes"
# Sized for 2 CPU cores: the standard stem at 32 px is ~8x cheaper than the small one, and a
# crop floor of 0.5 keeps the same shapes in both views of these scene-like images (BT 0.377 vs
# 0.310 mAP at 200 labels in bench/results/label_efficiency_cpu_crop05_e60.json). A time budget
# rather than epochs, so the first suggestions come after minutes on any machine (the schedule
# is fitted to the budget); the epochs only cap it on a fast one.
DEMO_PRETRAIN = {
    "resolution": 32,
    "epochs": 60,
    "time_budget_s": 180,
    "batch_size": 64,
    "projector": [512, 512, 512],
    "warmup_epochs": 2,
    "small_stem": False,
    "crop_min": 0.5,
    "colour": "strong",  # the CPU preset's (labeling.ml.presets)
}


class Command(BaseCommand):
    help = "Create the admin login and a demo project of generated scenes (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=300)
        parser.add_argument("--labeled", type=float, default=0.4, help="fraction of images pre-labeled")
        parser.add_argument("--size", type=int, default=256, help="image side in pixels")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--no-pretrain",
            action="store_true",
            help="do not queue the first (CPU-sized) pretraining of the new project",
        )

    def handle(
        self, *args, images: int, labeled: float, size: int, seed: int, username: str, no_pretrain: bool, **options
    ):
        user, password = _admin(username)
        project = Project.objects.filter(name=DEMO_NAME).first()
        if project is None:
            project = _create_demo(user, images, labeled, size, seed)
            self.stdout.write(f"Created “{DEMO_NAME}” with {project.images.count()} images.")
            if not no_pretrain:
                # Sized for a laptop's CPU: suggestions appear within minutes without a click.
                run = pretrain_start(project=project, user=user, config=DEMO_PRETRAIN)
                self.stdout.write(f"Queued pretraining run {run.id}; suggestions follow when it finishes.")
        else:
            self.stdout.write(f"“{DEMO_NAME}” already exists (project {project.id}).")
        self.stdout.write(f"Login: {username} / {password}")


def _admin(username: str) -> tuple[object, str]:
    """The demo admin. Its password is generated once and kept in var/, readable by this user only."""
    path = settings.VAR_DIR / "demo_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(9))
        path.chmod(0o600)
    password = path.read_text().strip()
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_superuser(username=username, email="", password=password)
    return user, password


def _create_demo(user, count: int, labeled: float, size: int, seed: int) -> Project:
    with transaction.atomic():
        project = project_create(
            name=DEMO_NAME,
            user=user,
            description=(
                "Generated scenes: shapes on textured backgrounds. Part of them are labeled; "
                "the model suggests labels for the rest."
            ),
        )
        labels = {name: label_create(project=project, name=name, color=LABEL_COLOURS[name]) for name in LABELS}
    scenes = {}

    def source(index: int) -> ImageSource:
        def read() -> bytes:
            scene = render_scene(index, seed=seed, size=(size, size))
            scenes[f"scene-{index:05d}.png"] = scene
            buffer = io.BytesIO()
            scene.image.save(buffer, "PNG", compress_level=1)
            return buffer.getvalue()

        return ImageSource(f"scene-{index:05d}.png", read)

    report = images_import(project=project, sources=(source(i) for i in range(count)))
    # Label the first part as a person would: some images with boxes, some with image-level tags only.
    to_label = report.imported[: int(count * labeled)]
    items = []
    for n, item in enumerate(to_label):
        scene = scenes[item.name]
        if n % 2 == 0:
            boxes = tuple(BoxIn(labels[o.label].id, *o.box) for o in scene.objects)
            items.append(ImageAnnotations(item.image_id, boxes=boxes))
        else:
            items.append(ImageAnnotations(item.image_id, tag_label_ids=tuple(labels[name].id for name in scene.labels)))
    annotations_import(project=project, items=items, user=user)
    return project
