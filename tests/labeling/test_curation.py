"""The curation rankings a worker writes (labeling/curation.py) and the orders that read them: the
queue's "diverse" and "hybrid", the review queue's and the image list's "mistakes"."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.models import Image, ImageStatus
from annotator.services.queue import queue_next
from annotator.services.reviews import review_next
from labeling.curation import diverse_write, hybrid_write, mistakes_write
from labeling.models import CurationScore, ImageUncertainty, ProjectModelState, RunKind, RunStatus, TrainingRun
from tests.factories import embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=12)]


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"


def _clusters(n, k=3, seed=0):
    """n rows in k tight clusters along the axes; row i is in cluster i % k."""
    rng = np.random.default_rng(seed)
    return np.eye(k)[np.arange(n) % k] * 10 + rng.normal(scale=0.05, size=(n, k))


def _submit(ids):
    Image.objects.filter(pk__in=ids).update(status=ImageStatus.SUBMITTED, submitted_at=timezone.now())


def _serve(team, order):
    """The next image in ``order``, then skipped, so the next call does not resume it."""
    image = queue_next(project=team.project, user=team.annotator, order=order)
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.SKIPPED, locked_by=None)
    return image.id


def _probe(team):
    pretrain = ProjectModelState.objects.get(project=team.project).pretrain_run
    run = TrainingRun.objects.create(
        project=team.project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, backbone_run=pretrain
    )
    ProjectModelState.objects.filter(project=team.project).update(probe_run=run)
    return run


def test_the_diverse_queue_serves_one_image_of_each_cluster_before_a_second_of_any(team):
    embeddings(team.project, team.ids, _clusters(12))
    run = ProjectModelState.objects.get(project=team.project).pretrain_run
    assert diverse_write(backbone_run_id=run.id) == 12
    served = [_serve(team, "diverse") for _ in range(3)]
    assert sorted(team.ids.index(i) % 3 for i in served) == [0, 1, 2]


def test_the_diverse_order_counts_submitted_images_as_covered(team):
    embeddings(team.project, team.ids, _clusters(12))
    _submit([team.ids[0], team.ids[1]])  # clusters 0 and 1 are labelled
    diverse_write(backbone_run_id=ProjectModelState.objects.get(project=team.project).pretrain_run_id)
    assert not CurationScore.objects.filter(image_id__in=team.ids[:2]).exists()
    first = queue_next(project=team.project, user=team.annotator, order="diverse")
    assert team.ids.index(first.id) % 3 == 2


def test_the_model_orders_fall_back_when_there_is_no_ranking(team):
    assert queue_next(project=team.project, user=team.annotator, order="diverse").id == team.ids[0]
    assert queue_next(project=team.project, user=team.reviewer, order="hybrid").id == team.ids[1]


def test_hybrid_takes_the_uncertain_images_but_not_two_of_one_cluster(team, monkeypatch):
    embeddings(team.project, team.ids, _clusters(12))
    run = _probe(team)
    # Cluster 0 holds the most uncertain images by far; a pure uncertainty order serves it twice.
    for n, image_id in enumerate(team.ids):
        ImageUncertainty.objects.create(run=run, image_id=image_id, score=0.9 if n % 3 == 0 else 0.5 - n / 100)
    monkeypatch.setattr("labeling.curation.HYBRID_PICKS", 3)
    assert hybrid_write(run_id=run.id) == 3
    uncertain = [queue_next(project=team.project, user=team.owner, order="uncertain").id for _ in range(2)]
    assert [team.ids.index(i) % 3 for i in uncertain] == [0, 0]
    Image.objects.filter(pk__in=uncertain).update(status=ImageStatus.UNLABELED, locked_by=None)
    hybrid = [_serve(team, "hybrid") for _ in range(3)]
    assert hybrid[0] == team.ids[0]  # nothing labelled: the most uncertain first
    assert sorted(team.ids.index(i) % 3 for i in hybrid) == [0, 1, 2]
    # past its picks it goes on by uncertainty
    assert team.ids.index(queue_next(project=team.project, user=team.annotator, order="hybrid").id) % 3 == 0


def _mistakes(team):
    """Six submitted images; the probe doubts image 2's given cat most, then image 4's missing dog."""
    embeddings(team.project, team.ids, _clusters(12))
    run = _probe(team)
    labeled = np.array(team.ids[:6])
    _submit(labeled.tolist())
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 0], [0, 1]])
    oof = np.array([[0.9, 0.1], [0.8, 0.2], [0.03, 0.1], [0.1, 0.9], [0.2, 0.85], [0.3, 0.6]])
    label_ids = np.array([team.cat.id, team.dog.id])
    assert mistakes_write(run_id=run.id, labeled=labeled, y=y, oof=oof, label_ids=label_ids) == 6
    return run


def test_the_review_queue_can_serve_likely_mistakes_first(team):
    _mistakes(team)
    assert review_next(project=team.project, user=team.reviewer).id == team.ids[0]  # oldest first by default
    assert review_next(project=team.project, user=team.owner, order="mistakes").id == team.ids[2]
    assert review_next(project=team.project, user=team.annotator, order="mistakes").id == team.ids[4]


def test_the_review_page_names_the_doubted_label(client, team):
    _mistakes(team)
    client.force_login(team.reviewer)
    html = client.get(reverse("review", args=[team.project.id]), {"order": "mistakes"}).content.decode()
    assert 'id="model-doubt"' in html and "<strong>cat</strong>: given" in html and "0.03" in html
    assert "?order=mistakes" in html  # the next image comes in the same order
    other = client.get(reverse("review", args=[team.project.id]), {"image": team.ids[4]}).content.decode()
    assert "<strong>dog</strong>: left out" in other and "0.85" in other
    calm = client.get(reverse("review", args=[team.project.id]), {"image": team.ids[0]}).content.decode()
    assert 'id="model-doubt"' not in calm  # 0.9 for a given cat: no doubt to show


def test_the_image_list_ranks_likely_mistakes(client, team):
    _mistakes(team)
    for user in (team.owner, team.annotator, team.reviewer):
        client.force_login(user)
        body = client.get(reverse("api_project_images", args=[team.project.id]), {"order": "mistakes"}).json()
        assert [r["id"] for r in body["results"]][:2] == [team.ids[2], team.ids[4]]
        assert body["results"][0]["mistake_score"] == pytest.approx(0.97)
    client.force_login(team.outsider)
    assert client.get(reverse("api_project_images", args=[team.project.id]), {"order": "mistakes"}).status_code == 404


def test_a_new_probe_fit_replaces_the_old_ones_rankings(team):
    from labeling.suggesting import finalise

    old = _mistakes(team)
    new = TrainingRun.objects.create(
        project=team.project, kind=RunKind.PROBE, status=RunStatus.RUNNING, backbone_run=old.backbone_run
    )
    finalise(new.id)
    assert not CurationScore.objects.filter(run=old).exists()
    assert ProjectModelState.objects.get(project=team.project).probe_run_id == new.id


@pytest.mark.django_db(transaction=True)
def test_a_real_pretraining_and_probe_write_every_ranking(eager_tasks, settings):
    from labeling import services
    from tests.factories import make_scene_project, make_user
    from tests.labeling.conftest import TINY

    settings.SUGGEST_PARALLEL = False
    project = make_scene_project(owner=make_user("owner"))
    services.pretrain_start(project=project, config=TINY)
    state = ProjectModelState.objects.get(project=project)
    kinds = dict(
        CurationScore.objects.filter(run__project=project).values_list("kind", "run_id").distinct().order_by("kind")
    )
    kinds.pop("duplicate", None)  # groups only if two scenes embed above the threshold
    assert kinds == {
        "diverse": state.pretrain_run_id,
        "hybrid": state.probe_run_id,
        "mistake": state.probe_run_id,
        "rare": state.probe_run_id,
    }
    submitted = project.images.filter(status=ImageStatus.SUBMITTED).count()
    assert CurationScore.objects.filter(kind="mistake").count() == submitted == 20
    assert CurationScore.objects.filter(kind="diverse").count() == project.images.count() - submitted
    assert TrainingRun.objects.get(pk=state.probe_run_id).metrics["likely_mistakes"] == submitted


@pytest.mark.django_db(transaction=True)
def test_a_pretraining_sends_its_rankings_after_its_probe_fit(settings, monkeypatch, tmp_path):
    """The first suggestions do not wait for the near-duplicate and diverse rankings: the pretraining
    task sends the probe fit, then the rankings as a task of their own (a worker takes them in that
    order), and writes none of them itself."""
    from labeling import services, tasks
    from tests.factories import make_scene_project, make_user
    from tests.labeling.conftest import TINY

    settings.MODEL_DIR = tmp_path / "models"
    sent: list[tuple[str, int]] = []
    for task in (tasks.gpu_pretrain, tasks.fit_probe, tasks.curate):
        monkeypatch.setattr(task, "delay", lambda run_id, _name=task.name: sent.append((_name, run_id)))
    project = make_scene_project(owner=make_user("owner"))
    pretrain = services.pretrain_start(project=project, config=TINY)
    assert tasks.gpu_pretrain.apply(args=[pretrain.id]).get() == "succeeded"
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    assert sent == [
        ("labeling.tasks.gpu_pretrain", pretrain.id),
        ("labeling.tasks.fit_probe", probe.id),
        ("labeling.tasks.curate", pretrain.id),
    ]
    assert not CurationScore.objects.filter(run=pretrain).exists()
    assert tasks.curate.apply(args=[pretrain.id]).get() == "written"
    assert CurationScore.objects.filter(kind="diverse", run=pretrain).count() == project.images.count() - 20


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_rankings_are_made_in_the_pretraining_task(settings, monkeypatch):
    from labeling import tasks

    made = []
    monkeypatch.setattr(tasks, "send_now", lambda *a, **k: False)
    monkeypatch.setattr(tasks.pretraining, "curation_write", made.append)
    run = TrainingRun(id=7, kind=RunKind.PRETRAIN)
    tasks.curation_send(run)
    assert made == [run]


def test_a_rankings_message_for_a_run_that_did_not_succeed_does_nothing(team, monkeypatch):
    from labeling import pretraining

    monkeypatch.setattr(pretraining, "curation_write", lambda run: pytest.fail("written"))
    failed = TrainingRun.objects.create(project=team.project, kind=RunKind.PRETRAIN, status=RunStatus.FAILED)
    assert pretraining.curation_run(failed.id) == "gone"
    assert pretraining.curation_run(10**9) == "gone"


def test_the_grid_shows_likely_mistakes_with_the_doubted_label(client, team):
    grid = reverse("image_grid", args=[team.project.id])
    client.force_login(team.reviewer)
    assert "No ranking yet" in client.get(grid, {"order": "mistakes"}).content.decode()
    _mistakes(team)
    html = client.get(grid, {"order": "mistakes"}).content.decode()
    shown = [int(part.split('"')[0]) for part in html.split('data-image-id="')[1:]]
    assert shown[:2] == [team.ids[2], team.ids[4]] and len(shown) == 6
    assert "given cat? p=0.03" in html and "missing dog? p=0.85" in html
    client.force_login(team.outsider)
    assert client.get(grid, {"order": "mistakes"}).status_code == 404


def _planted(n=12, seed=5):
    """Random directions, with rows 7 and 9 near copies of row 1, and row 10 of row 4."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 64))
    x[7] = x[1] + rng.normal(scale=0.02, size=64)
    x[9] = x[1] + rng.normal(scale=0.02, size=64)
    x[10] = x[4] + rng.normal(scale=0.02, size=64)
    return x


def test_near_duplicates_are_grouped_and_listed_by_group(client, team):
    run = embeddings(team.project, team.ids, _planted())
    from labeling.curation import duplicates_write

    assert duplicates_write(backbone_run_id=run.id) == 5
    url = reverse("api_project_duplicates", args=[team.project.id])
    for user in (team.owner, team.annotator, team.reviewer):
        client.force_login(user)
        body = client.get(url).json()
        assert body == {
            "groups": [
                {"group": team.ids[1], "images": [team.ids[1], team.ids[7], team.ids[9]]},
                {"group": team.ids[4], "images": [team.ids[4], team.ids[10]]},
            ],
            "next_after": None,
        }
    first = client.get(url, {"limit": 1}).json()
    assert [g["group"] for g in first["groups"]] == [team.ids[1]] and first["next_after"] == team.ids[1]
    rest = client.get(url, {"limit": 1, "after": first["next_after"]}).json()
    assert [g["group"] for g in rest["groups"]] == [team.ids[4]] and rest["next_after"] is None
    client.force_login(team.outsider)
    assert client.get(url).status_code == 404


def test_near_duplicates_are_found_by_their_cached_pixels_when_their_features_differ(team):
    """A crop and a colour shift of two images embed far from them (random features here) and are
    found all the same: the worker confirms candidates with the pixels of the project's image cache."""
    from labeling.curation import duplicates_write
    from labeling.ml.cache import ImageCache, store_dir
    from labeling.paths import project_cache_dir
    from tests.labeling.ml.test_curation import _copy, _photos

    photos = _photos(12, seed=4)
    photos[7], photos[10] = _copy(photos[1], "crop"), _copy(photos[4], "colour")
    cache = ImageCache(store_dir(project_cache_dir(team.project.id), 32), resolution=32)
    cache.add(team.ids, photos)
    run = embeddings(team.project, team.ids, np.random.default_rng(2).normal(size=(12, 64)))
    assert duplicates_write(backbone_run_id=run.id) == 4
    rows = CurationScore.objects.filter(run=run, kind="duplicate").order_by("image_id")
    assert [(r.image_id, r.group) for r in rows] == sorted(
        [
            (team.ids[1], team.ids[1]),
            (team.ids[7], team.ids[1]),
            (team.ids[4], team.ids[4]),
            (team.ids[10], team.ids[4]),
        ]
    )


def test_the_grid_shows_near_duplicates_group_by_group(client, team):
    from labeling.curation import duplicates_write

    grid = reverse("image_grid", args=[team.project.id])
    client.force_login(team.annotator)
    assert "No near-duplicates" in client.get(grid, {"duplicates": 1}).content.decode()
    duplicates_write(backbone_run_id=embeddings(team.project, team.ids, _planted()).id)
    html = client.get(grid, {"duplicates": 1}).content.decode()
    shown = [int(part.split('"')[0]) for part in html.split('data-image-id="')[1:]]
    assert shown == [team.ids[i] for i in (1, 7, 9, 4, 10)]
    assert f"group {team.ids[1]} · 3 images" in html


def test_the_rare_order_serves_the_likeliest_image_of_the_rarest_label_first(team):
    from labeling.curation import rare_write_block

    embeddings(team.project, team.ids, _clusters(12))
    run = _probe(team)
    pool = np.array(team.ids)
    probs = np.zeros((12, 2))
    probs[:, 0] = 0.9  # cat: likely everywhere, 99 positives
    probs[5, 1], probs[8, 1] = 0.7, 0.4  # dog: 4 positives
    label_ids = np.array([team.cat.id, team.dog.id])
    n = rare_write_block(
        run_id=run.id, block=0, s=50_000, pool=pool, probs=probs, label_ids=label_ids, positives=[99, 4], trained=None
    )
    assert n == 12
    assert [_serve(team, "rare") for _ in range(2)] == [team.ids[5], team.ids[8]]
    assert CurationScore.objects.get(run=run, kind="rare", image_id=team.ids[5]).label_id == team.dog.id
