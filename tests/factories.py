"""Test data in one place: users, projects, and image bytes made on the spot."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from PIL import Image as PILImage

from annotator.models import Image, ImageStatus, LabelClass, Membership, Project, Role
from annotator.services.images import images_import
from annotator.services.projects import project_create
from annotator.sources import ImageSource


def image_bytes(
    width: int = 64, height: int = 48, color=(200, 30, 30), fmt: str = "PNG", orientation: int | None = None
) -> bytes:
    image = PILImage.new("RGB", (width, height), color)
    image.paste((0, 0, 0), (0, 0, 10, 10))  # a marker: top-left is black, so orientation can be checked
    buffer = io.BytesIO()
    if orientation is not None:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        image.save(buffer, fmt, exif=exif)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def make_user(username: str = "ann", **extra):
    return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)


def make_project(owner=None, labels=("cat", "dog"), name: str = "Pets") -> Project:
    owner = owner or make_user("owner")
    return project_create(name=name, user=owner, labels=labels)


def add_member(project: Project, user, role: str = Role.ANNOTATOR) -> Membership:
    return Membership.objects.create(project=project, user=user, role=role)


def add_images(project: Project, count: int, *, size=(32, 32)) -> list[int]:
    sources = [
        ImageSource(f"img-{i}.png", lambda i=i: image_bytes(*size, color=(i % 256, (i * 7) % 256, 99)))
        for i in range(count)
    ]
    return [item.image_id for item in images_import(project=project, sources=sources).imported]


@dataclass
class Team:
    """A project with one person in each role, and one who belongs to none: what every access
    test needs (healthchecks' BaseTestCase has the same four)."""

    project: Project
    owner: object
    annotator: object
    reviewer: object
    outsider: object
    labels: dict[str, LabelClass]
    ids: list[int] = field(default_factory=list)
    others: dict[str, object] = field(default_factory=dict)  # more members, by user name

    @property
    def cat(self) -> LabelClass:
        return self.labels["cat"]

    @property
    def dog(self) -> LabelClass:
        return self.labels["dog"]

    def add_images(self, count: int, *, size=(100, 80)) -> list[int]:
        """``count`` more images, their ids appended to ``ids`` (and returned)."""
        new = add_images(self.project, count, size=size)
        self.ids.extend(new)
        return new

    def image_id(self, name: str) -> int:
        return Image.objects.get(project=self.project, original_name=name).id

    def add_member(self, username: str, role: str = Role.ANNOTATOR):
        """Another member, kept in ``others`` under its user name."""
        user = self.others[username] = make_user(username)
        add_member(self.project, user, role)
        return user


def make_team(
    *,
    labels=("cat", "dog"),
    images: int = 0,
    image_size=(100, 80),
    name: str = "Pets",
    annotator: str = "annie",
    reviewer: str = "rev",
    outsider: str = "out",
) -> Team:
    """The owner (an admin), an annotator, a reviewer and an outsider around one project."""
    owner = make_user("owner")
    project = make_project(owner=owner, labels=labels, name=name)
    team = Team(
        project=project,
        owner=owner,
        annotator=make_user(annotator),
        reviewer=make_user(reviewer),
        outsider=make_user(outsider),
        labels={label.name: label for label in project.labels.order_by("id")},
    )
    add_member(project, team.annotator, Role.ANNOTATOR)
    add_member(project, team.reviewer, Role.REVIEWER)
    if images:
        team.add_images(images, size=image_size)
    return team


def make_scene_project(*, owner, images: int = 40, labeled: int = 20, seed: int = 5) -> Project:
    """A project of demo scenes (48 px PNGs) whose first ``labeled`` images are submitted with their
    true tags: what a tiny pretraining and probe need."""
    from annotator.demo.scenes import LABELS, render_scene
    from annotator.services.annotations import annotations_import, ImageAnnotations

    project = project_create(name="Shapes", user=owner, labels=LABELS)

    def png(index: int) -> bytes:
        buffer = io.BytesIO()
        render_scene(index, seed=seed, size=(48, 48)).image.save(buffer, "PNG")
        return buffer.getvalue()

    report = images_import(
        project=project, sources=[ImageSource(f"s{i}.png", lambda i=i: png(i)) for i in range(images)]
    )
    label_id = dict(project.labels.values_list("name", "id"))
    annotations_import(
        project=project,
        user=owner,
        items=[
            ImageAnnotations(item.image_id, tag_label_ids=tuple(label_id[n] for n in render_scene(i, seed=seed).labels))
            for i, item in enumerate(report.imported[:labeled])
        ],
    )
    return project


def image_row(
    project: Project,
    i: int,
    *,
    folder: str = "bench",
    size: tuple[int, int] = (640, 480),
    size_bytes: int = 1000,
    file: str | None = None,
    thumbnail: str | None = None,
    **fields,
) -> Image:
    """An unsaved Image row for data made in bulk (benchmarks, big projects in tests): the ``i``-th
    file name and a sha256 unique in the project; no file behind it unless ``file`` names one."""
    return Image(
        project=project,
        file=file or f"{folder}/{i}.png",
        thumbnail=thumbnail or f"{folder}/{i}.jpg",
        original_name=f"{i}.png",
        width=size[0],
        height=size[1],
        size_bytes=size_bytes,
        sha256=f"{project.id}-{i:060d}",
        **fields,
    )


def bulk_images(
    project: Project, count: int, *, submitted: int, submitted_at, folder: str, size: tuple[int, int]
) -> None:
    """Save ``count`` rows of ``image_row`` in bulk (no files behind them), the first ``submitted`` of
    them submitted at ``submitted_at``, the rest unlabeled."""
    Image.objects.bulk_create(
        [
            image_row(
                project,
                i,
                folder=folder,
                size=size,
                size_bytes=1,
                **({"status": ImageStatus.SUBMITTED, "submitted_at": submitted_at} if i < submitted else {}),
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def probe_run(pretrain, *, labeled: int, cv: dict):
    """A finished probe on ``pretrain``'s backbone, with ``labeled`` images and its cross-validation's
    metrics (``cv``: map, micro_f1, macro_f1, and per label ap and f1), as the dashboard reads them."""
    from labeling.models import RunKind, RunStatus, TrainingRun

    return TrainingRun.objects.create(
        project=pretrain.project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        backbone_run=pretrain,
        metrics={"labeled": labeled, "cv": cv},
    )


def embeddings(project: Project, ids, features, *, block_size: int = 50_000):
    """A succeeded pretraining of ``project`` whose embedding blocks hold ``features`` (N, D) for
    ``ids`` (sorted), made the project's current backbone, as a worker leaves them."""
    import numpy as np

    from labeling.ml.embed import save_embeddings
    from labeling.models import EmbeddingSet, ProjectModelState, RunKind, RunStatus, TrainingRun
    from labeling.paths import block_path, embeddings_dir

    ids = np.asarray(ids, dtype=np.int64)
    features = np.asarray(features, dtype=np.float16)
    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    for block in np.unique(ids // block_size):
        at = ids // block_size == block
        save_embeddings(block_path(run.id, int(block)), ids[at], features[at])
    EmbeddingSet.objects.create(
        run=run,
        project=project,
        path=str(embeddings_dir(run.id)),
        resolution=32,
        count=len(ids),
        dim=features.shape[1],
        block_size=block_size,
    )
    ProjectModelState.objects.update_or_create(project=project, defaults={"pretrain_run": run})
    return run
