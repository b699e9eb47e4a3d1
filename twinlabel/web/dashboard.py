"""The project dashboard's reads. Every figure is an SQL aggregate (GROUP BY, COUNT, window
functions); Python only reshapes a few hundred grouped rows, so the page costs a fixed number of
queries at any project size (tests/labeling/test_dashboard.py guards the count). The aggregates
that scan rows in proportion to the project are computed by the worker for a project of
DASHBOARD_LIVE_MAX_IMAGES images or more (``figures_read``), so the request stays flat."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Aggregate, Count, DateField, FloatField, Func, OuterRef, Q, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from annotator.models import OPEN_STATUSES, Box, Image, ImageStatus, ImageTag, LabelClass, ProjectStatusCount, Source
from annotator.selectors import agreement_stats, label_box_counts, project_status_counts, review_pending_count
from annotator.selectors import review_stats
from labeling.models import Decision, EmbeddingSet, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import RUN_PROGRESS_FIELDS, SuggestionDecision, TrainingRun
from labeling.paths import projection_path
from labeling.selectors import run_files
from labeling.trust import BOX_SHOWN_FROM
from twinlabel.web.models import DashboardFigures


class Day(Func):
    """The UTC calendar day of a timestamp, in the database's own C code. (Django's TruncDay calls
    a Python function per row on SQLite: 1.5 s over 300,000 boxes, where this takes a few ms.)"""

    output_field = DateField()

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL (timestamptz)
        return super().as_sql(compiler, connection, template="((%(expressions)s) AT TIME ZONE 'UTC')::date", **extra)

    def as_sqlite(self, compiler, connection, **extra):  # stored as UTC text: 'YYYY-MM-DD HH:MM:SS'
        return super().as_sql(compiler, connection, template="date(%(expressions)s)", **extra)


ACTIVITY_DAYS = 30  # the per-annotator, per-day charts cover the last month


def project_dashboard(*, project_id: int, runs_limit: int = 50) -> dict:
    """Everything the dashboard draws but the embedding map (see ``embedding_points``). The figures
    that scan the project's rows come from ``figures_read``: computed now for a project under
    DASHBOARD_LIVE_MAX_IMAGES images, read from the worker's last computation above that
    (``figures_as_of`` says when; null when live)."""
    state = ProjectModelState.objects.filter(project_id=project_id).first()
    probe_run_id = state.probe_run_id if state else None
    labels = list(LabelClass.objects.filter(project_id=project_id).values("id", "name", "color"))
    counts = project_status_counts(project_id=project_id)
    figures, as_of = figures_read(project_id=project_id, probe_run_id=probe_run_id, total=counts["total"])
    since = timezone.now() - timedelta(days=ACTIVITY_DAYS)
    return {
        "labels": labels,
        "progress": progress(counts=counts, figures=figures),
        "submitted_per_day": submitted_per_day(rows=figures["submissions"]),
        "annotators": annotator_activity(figures=figures, since=since),
        "label_counts": label_counts(project_id=project_id, probe_run_id=probe_run_id, figures=figures),
        "suggestion_quality": suggestion_quality(
            project_id=project_id, probe_run_id=probe_run_id, figures=figures, counts=counts
        ),
        "box_quality": box_quality(
            project_id=project_id, detector_run_id=state.detector_run_id if state else None, labels=labels
        ),
        "runs": runs_with_probe_metrics(project_id=project_id, limit=runs_limit),
        # Review verdicts per annotator and agreement per pair on the overlap sample (issue 8).
        "reviews": figures["reviews"],
        "agreement": figures["agreement"],
        "activity_days": ACTIVITY_DAYS,
        "figures_as_of": as_of.isoformat() if as_of else None,
    }


# ---- the figures that scan a project's rows: live for a small project, the worker's for a big one ----


def scanned_figures(*, project_id: int, probe_run_id: int | None) -> dict:
    """Every dashboard aggregate whose cost grows with the project (suggestions, submissions, tags,
    box attributes, decisions, reviews, agreement), computed now, in JSON's own types (label and
    user ids as [id, value] pairs, days as ISO text), so a stored copy reads back the same."""
    return {
        "with_suggestions": images_with_suggestions(probe_run_id=probe_run_id),
        "suggested": sorted(suggested_by_label(probe_run_id=probe_run_id).items()),
        "submissions": submissions_by_day(project_id=project_id),
        "attributes": attribute_counts(project_id=project_id),
        "tags": tag_counts(project_id=project_id),
        "medians": sorted(median_seconds_per_image(project_id=project_id).items()),
        "user_decisions": decisions_by(project_id=project_id, field="user"),
        "label_decisions": decisions_by(project_id=project_id, field="label_id"),
        "reviews": review_stats(project_id=project_id),
        "agreement": agreement_stats(project_id=project_id),
        "review_pending": review_pending_count(project_id=project_id),
    }


def review_figures(*, project_id: int, total: int, with_agreement: bool) -> dict:
    """The project page's review figures: submissions waiting for review, verdicts per annotator,
    agreement (when ``with_agreement``) and ``as_of``. Computed now below
    DASHBOARD_LIVE_MAX_IMAGES images; above, the worker's stored figures when there are some (the
    waiting count scanned 187 ms of 1M images), else computed now."""
    if total >= settings.DASHBOARD_LIVE_MAX_IMAGES:
        row = DashboardFigures.objects.filter(project_id=project_id).only("figures", "computed_at").first()
        if row is not None and "review_pending" in row.figures:
            return {
                "review_pending": row.figures["review_pending"],
                "review_stats": row.figures["reviews"],
                "agreement": row.figures["agreement"] if with_agreement else [],
                "as_of": row.computed_at,
            }
    return {
        "review_pending": review_pending_count(project_id=project_id),
        "review_stats": review_stats(project_id=project_id),
        "agreement": agreement_stats(project_id=project_id) if with_agreement else [],
        "as_of": None,
    }


def figures_read(*, project_id: int, probe_run_id: int | None, total: int) -> tuple[dict, datetime | None]:
    """(figures, when they were computed): ``scanned_figures`` now (None) for a project under
    DASHBOARD_LIVE_MAX_IMAGES images; above that the stored ones the worker's sweep keeps fresh
    (computed here once when none are stored yet)."""
    if total < settings.DASHBOARD_LIVE_MAX_IMAGES:
        return scanned_figures(project_id=project_id, probe_run_id=probe_run_id), None
    row = DashboardFigures.objects.filter(project_id=project_id).first()
    if row is None or "review_pending" not in row.figures:  # none yet, or stored by an older version
        row = figures_refresh(project_id=project_id)
    return row.figures, row.computed_at


def figures_refresh(*, project_id: int) -> DashboardFigures:
    """Compute a project's ``scanned_figures`` and store them with the project's fingerprint as it
    was before the scan (a change during the scan makes the next sweep scan again)."""
    fingerprint = project_fingerprint(project_id=project_id)
    start = time.perf_counter()
    figures = scanned_figures(project_id=project_id, probe_run_id=fingerprint["probe"])
    row, _ = DashboardFigures.objects.update_or_create(
        project_id=project_id,
        defaults={
            "figures": figures,
            "fingerprint": fingerprint,
            "computed_at": timezone.now(),
            "compute_ms": round((time.perf_counter() - start) * 1000, 1),
        },
    )
    return row


def project_fingerprint(*, project_id: int) -> dict:
    """What changes when a project's scanned figures may: its status counts and its current runs
    (two small reads). Edits that move no status (a tag added to a submitted image, a decision on a
    suggestion) are not in it: DASHBOARD_MAX_AGE_SECONDS bounds how late those show."""
    state = ProjectModelState.objects.filter(project_id=project_id).values("probe_run_id", "detector_run_id").first()
    counts = project_status_counts(project_id=project_id)
    return {
        "counts": counts,
        "probe": state["probe_run_id"] if state else None,
        "detector": state["detector_run_id"] if state else None,
    }


def figures_refresh_due() -> list[int]:
    """The sweep's step: refresh the stored figures of every project of at least
    DASHBOARD_LIVE_MAX_IMAGES images that has none, or whose figures are DASHBOARD_REFRESH_SECONDS
    old and the project changed since, or DASHBOARD_MAX_AGE_SECONDS old. -> the projects refreshed."""
    big = (
        ProjectStatusCount.objects.values_list("project_id")
        .annotate(n=Sum("count"))
        .filter(n__gte=settings.DASHBOARD_LIVE_MAX_IMAGES)
        .order_by("project_id")
    )
    stored = {
        row.project_id: row
        for row in DashboardFigures.objects.filter(project_id__in=[p for p, _ in big]).only(
            "project_id", "fingerprint", "computed_at"
        )
    }
    now = timezone.now()
    refreshed = []
    for project_id, _ in big:
        row = stored.get(project_id)
        if row is not None:
            age = (now - row.computed_at).total_seconds()
            if age < settings.DASHBOARD_REFRESH_SECONDS:
                continue
            if age < settings.DASHBOARD_MAX_AGE_SECONDS and row.fingerprint == _json_round_trip(
                project_fingerprint(project_id=project_id)
            ):
                continue
        figures_refresh(project_id=project_id)
        refreshed.append(project_id)
    return refreshed


def _json_round_trip(value: dict) -> dict:
    return json.loads(json.dumps(value))


def progress(*, counts: dict[str, int], figures: dict) -> dict[str, int]:
    """Submitted / with suggestions / unlabeled / skipped. In-progress images count as unlabeled
    until submitted; "with suggestions" are unlabeled ones the current probe suggests a label for."""
    unlabeled = sum(counts[s] for s in OPEN_STATUSES)
    suggested = min(figures["with_suggestions"], unlabeled)  # stored figures may predate a submit
    return {
        "submitted": counts[ImageStatus.SUBMITTED],
        "with_suggestions": suggested,
        "unlabeled": unlabeled - suggested,
        "skipped": counts[ImageStatus.SKIPPED],
        "total": counts["total"],
    }


def images_with_suggestions(*, probe_run_id: int | None) -> int:
    """Unlabeled images the current probe confidently suggests at least one label for."""
    if probe_run_id is None:
        return 0
    return (
        Suggestion.objects.filter(run_id=probe_run_id, predicted=True, image__status__in=OPEN_STATUSES)
        .values("image_id")
        .distinct()
        .count()
    )


def submissions_by_day(*, project_id: int) -> list[dict]:
    """[{submitted_by, day (ISO), n, boxes, tags}] over the project's life: one grouped query (an
    index-only scan of image_project_submissions) that feeds both the progress-over-time and the
    annotator charts."""
    return [
        {**row, "day": row["day"].isoformat()}
        for row in Image.objects.filter(project_id=project_id, status=ImageStatus.SUBMITTED)
        .annotate(day=Day("submitted_at"))
        .values("submitted_by", "day")
        .annotate(n=Count("id"), boxes=Sum("box_count"), tags=Sum("human_tag_count"))
        .order_by("day")
    ]


def submitted_per_day(*, rows: list[dict]) -> list[dict]:
    """[{day, submitted, cumulative}] over the project's life, from ``submissions_by_day``'s rows."""
    per_day: dict[str, int] = {}
    for row in rows:
        per_day[row["day"]] = per_day.get(row["day"], 0) + row["n"]
    total, out = 0, []
    for day in sorted(per_day):
        total += per_day[day]
        out.append({"day": day, "submitted": per_day[day], "cumulative": total})
    return out


def annotator_activity(*, figures: dict, since) -> dict:
    """Per annotator and day since ``since``: the images they submitted, with the boxes and the
    tags people made on them (counted at the submit, from ``Image.box_count`` / ``human_tag_count``:
    no scan of the box table); per annotator: median seconds per image and suggestion accept rate."""
    first_day = since.date().isoformat()  # ISO days compare as text
    days: dict[tuple[int, str], dict] = {}
    for row in figures["submissions"]:
        if row["submitted_by"] is not None and row["day"] >= first_day:
            days[(row["submitted_by"], row["day"])] = {
                "images": row["n"],
                "boxes": row["boxes"] or 0,
                "tags": row["tags"] or 0,
            }
    medians = dict(figures["medians"])
    decisions = {user_id: (accepted, decided) for user_id, accepted, decided in figures["user_decisions"]}
    user_ids = {u for u, _ in days} | set(medians) | {u for u in decisions if u is not None}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    people = []
    for user_id in sorted(user_ids, key=lambda u: names.get(u, "")):
        accepted, decided = decisions.get(user_id, (0, 0))
        people.append(
            {
                "id": user_id,
                "name": names.get(user_id, f"user {user_id}"),
                "median_seconds": medians.get(user_id),
                "accepted": accepted,
                "decided": decided,
                "accept_rate": round(accepted / decided, 4) if decided else None,
            }
        )
    per_day = [{"user": user_id, "day": day, **values} for (user_id, day), values in sorted(days.items())]
    return {"people": people, "per_day": per_day}


def decisions_by(*, project_id: int, field: str) -> list[list]:
    """[[user or label id, accepted, decided]]: the decisions on the model's tag suggestions, ever."""
    return [
        list(row)
        for row in SuggestionDecision.objects.filter(label__project_id=project_id)
        .values_list(field)
        .annotate(a=Count("id", filter=Q(decision=Decision.ACCEPTED)), d=Count("id"))
        .order_by(field)
    ]


def median_seconds_per_image(*, project_id: int) -> dict[int, float]:
    """Per annotator, the median of ``Image.work_seconds`` (queue hand-out to submit) over the images
    they submitted. The middle one or two rows per annotator come from window functions in SQL."""
    # work_seconds is set by a submit only (and cleared by a skip), so the partial index
    # image_project_work_time holds exactly these rows, in this order.
    timed = Image.objects.filter(project_id=project_id, work_seconds__isnull=False, submitted_by__isnull=False)
    if connection.vendor == "postgresql":  # an ordered-set aggregate: one sort per annotator, no window
        return {
            user_id: round(m, 2)
            for user_id, m in timed.values_list("submitted_by")
            .annotate(m=Median("work_seconds"))
            .order_by()
            .values_list("submitted_by", "m")
        }
    # SQLite: per annotator, the middle one or two rows by OFFSET along that index, which steps
    # through it in C; all annotators in one UNION ALL. Numbering every row with window functions
    # sorted and materialised them all: the query that kept the dashboard from being flat (64 ms at
    # 50,000 images, about 9x the OFFSETs; issue 20). Two queries whatever the team's size.
    counts = list(timed.values_list("submitted_by").annotate(n=Count("id")).order_by())
    middles: dict[int, list[float]] = {}
    for first in range(0, len(counts), 400):  # SQLite allows 500 terms in one compound SELECT
        # Django refuses sliced parts in .union(): each part is compiled by the ORM, joined here.
        parts = [
            (
                timed.filter(submitted_by=user_id)
                .order_by("work_seconds")
                .values_list("submitted_by", "work_seconds")[(n - 1) // 2 : n // 2 + 1]
            ).query.sql_with_params()
            for user_id, n in counts[first : first + 400]
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                " UNION ALL ".join(f"SELECT * FROM ({sql})" for sql, _ in parts),
                [p for _, params in parts for p in params],
            )
            for user_id, seconds in cursor.fetchall():
                middles.setdefault(user_id, []).append(seconds)
    return {user_id: round(sum(v) / len(v), 2) for user_id, v in middles.items()}


class Median(Aggregate):
    """PostgreSQL's exact median (the mean of the middle two for an even count)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def suggested_by_label(*, probe_run_id: int | None) -> dict[int, int]:
    """Per label, the unlabeled images the current probe confidently suggests it for (one grouped query)."""
    if probe_run_id is None:
        return {}
    return dict(
        Suggestion.objects.filter(run_id=probe_run_id, predicted=True, image__status__in=OPEN_STATUSES)
        .values_list("label_id")
        .annotate(n=Count("id"))
        .order_by()
    )


def label_counts(*, project_id: int, probe_run_id: int | None, figures: dict | None = None) -> list[dict]:
    """Per label: boxes (and how many of them are occluded, truncated, difficult, or carry any
    attribute), images tagged by people, tags accepted from the model, and images the current probe
    suggests it for (from ``figures``: ``scanned_figures``' answer when the caller has it)."""
    if figures is None:
        figures = {
            "attributes": attribute_counts(project_id=project_id),
            "tags": tag_counts(project_id=project_id),
            "suggested": sorted(suggested_by_label(probe_run_id=probe_run_id).items()),
        }
    out = {
        row["id"]: {
            "label": row["id"],
            "boxes": 0,
            "human_tags": 0,
            "model_tags": 0,
            "auto_tags": 0,
            "suggested": 0,
            "with_attributes": 0,
            **dict.fromkeys(ATTRIBUTE_FLAGS, 0),
        }
        for row in LabelClass.objects.filter(project_id=project_id).values("id")
    }
    for label_id, n in label_box_counts(project_id=project_id).items():  # counters, not a scan of the boxes
        out[label_id]["boxes"] = n
    # Figures stored by the worker may name a label deleted since: skipped.
    for row in figures["attributes"]:
        if row["label_id"] in out:
            out[row["label_id"]].update({k: v for k, v in row.items() if k != "label_id"})
    for label_id, human, model, auto in figures["tags"]:
        if label_id in out:
            out[label_id].update(human_tags=human, model_tags=model, auto_tags=auto)
    for label_id, n in figures["suggested"]:
        if label_id in out:
            out[label_id]["suggested"] = n
    return list(out.values())


ATTRIBUTE_FLAGS = ("occluded", "truncated", "difficult")


def attribute_counts(*, project_id: int) -> list[dict]:
    """[{label_id, with_attributes, occluded, truncated, difficult}]: one grouped query over the
    boxes that have any attribute (a box stores only the attributes that are set, so a key's
    presence counts), through the partial index of those boxes."""
    return list(
        Box.objects.filter(label__project_id=project_id)
        .exclude(attributes={})
        .values("label_id")
        .annotate(
            with_attributes=Count("id"),
            **{f: Count("id", filter=Q(**{f"attributes__{f}": True})) for f in ATTRIBUTE_FLAGS},
        )
        .order_by("label_id")
    )


def tag_counts(*, project_id: int) -> list[list[int]]:
    """[[label id, tags by people (in the editor or in bulk), accepted suggestions, auto-accepted]]."""
    return [
        list(row)
        for row in ImageTag.objects.filter(label__project_id=project_id)
        .values_list("label_id")
        .annotate(
            h=Count("id", filter=Q(source__in=(Source.HUMAN, Source.HUMAN_BULK))),
            m=Count("id", filter=Q(source=Source.MODEL)),
            a=Count("id", filter=Q(source=Source.MODEL_AUTO)),
        )
        .order_by("label_id")
    ]


def suggestion_quality(
    *, project_id: int, probe_run_id: int | None, figures: dict | None = None, counts: dict[str, int] | None = None
) -> dict:
    """Per label, side by side: the precision estimate behind its confident suggestions (the fit's
    out-of-fold counts plus the decisions on the current run's suggestions since: labeling/trust.py),
    its coverage (share of unlabeled images with a confident suggestion of it), the live accept
    rate (every decision ever taken) and the current probe's cross-validated AP and F1. Also the
    run's calibration error and learning curve; and auto-accept's figures: its threshold, the tags
    it set and the audit of its random sample (confirmed of audited). ``figures`` and ``counts``:
    ``scanned_figures``' and ``project_status_counts``' answers when the caller has them."""
    from labeling.auto_accept import auto_accept_summary
    from labeling.trust import live_estimate

    if figures is None:
        figures = {
            "label_decisions": decisions_by(project_id=project_id, field="label_id"),
            "suggested": sorted(suggested_by_label(probe_run_id=probe_run_id).items()),
        }
    rows = {label_id: (accepted, decided) for label_id, accepted, decided in figures["label_decisions"]}
    current = (
        {
            label_id: (accepted, decided)
            for label_id, accepted, decided in SuggestionDecision.objects.filter(run_id=probe_run_id)
            .values_list("label_id")
            .annotate(a=Count("id", filter=Q(decision=Decision.ACCEPTED)), d=Count("id"))
            .order_by()
        }
        if probe_run_id
        else {}
    )
    metrics = (
        TrainingRun.objects.filter(pk=probe_run_id).values_list("metrics", flat=True).first() if probe_run_id else None
    ) or {}
    cv = metrics.get("cv") or {}
    trust = metrics.get("trust") or {}
    by_name = {name: (ap, f1) for name, ap, f1 in zip(cv.get("labels", []), cv.get("ap", []), cv.get("f1", []))}
    fit = {entry.get("label_id"): entry for entry in trust.get("labels", [])}
    counts = counts or project_status_counts(project_id=project_id)
    unlabeled = sum(counts[s] for s in OPEN_STATUSES)
    suggested = dict(figures["suggested"])
    auto = auto_accept_summary(project_id=project_id)
    labels = []
    for label_id, name in LabelClass.objects.filter(project_id=project_id).values_list("id", "name"):
        accepted, decided = rows.get(label_id, (0, 0))
        ap, f1 = by_name.get(name, (None, None))
        entry = fit.get(label_id) or {}
        now_accepted, now_decided = current.get(label_id, (0, 0))
        estimate = (
            live_estimate(entry=entry, accepted=now_accepted, rejected=now_decided - now_accepted)
            if entry.get("confident")
            else {"precision": None, "precision_lower_bound": None, "measured": 0}
        )
        labels.append(
            {
                "label": label_id,
                "accepted": accepted,
                "decided": decided,
                "accept_rate": round(accepted / decided, 4) if decided else None,
                "cv_ap": ap,
                "cv_f1": f1,
                "target": entry.get("target"),
                "confident": bool(entry.get("confident")),
                "near_chance": entry.get("near_chance"),
                "threshold": entry.get("threshold"),
                "estimated_precision": estimate["precision"],
                "precision_lower_bound": estimate["precision_lower_bound"],
                "coverage": min(suggested.get(label_id, 0) / unlabeled, 1.0) if unlabeled else None,
                "auto_threshold": entry.get("auto_threshold"),
                "auto_accepted": auto.get(label_id, {}).get("auto", 0),
                "audited": auto.get(label_id, {}).get("audited", 0),
                "audit_confirmed": auto.get(label_id, {}).get("confirmed", 0),
                "audit_pending": auto.get(label_id, {}).get("pending", 0),
            }
        )
    return {
        "probe_run": probe_run_id,
        "map": cv.get("map"),
        "micro_f1": cv.get("micro_f1"),
        "macro_f1": cv.get("macro_f1"),
        "labeled": metrics.get("labeled"),
        "labels": labels,
        "ece": trust.get("ece"),
        "learning_curve": metrics.get("learning_curve") or [],
        "still_learning": trust.get("still_learning"),
        # "features" (the linear probe on the frozen embeddings) or "finetuned" (labeling.ml.finetune),
        # and what the fine-tuning measured when the fit tried it.
        "scorer": metrics.get("scorer") or "features",
        "finetune": metrics.get("finetune"),
    }


def box_quality(*, project_id: int, detector_run_id: int | None, labels: list[dict] | None = None) -> dict:
    """The current detector run's quality per label, from its held-out images by COCO's own
    evaluator (AP50, mAP@[.5:.95]), beside its confident threshold, and what people did with the
    suggested boxes they were shown (every decision ever taken, as the tags' accept rate): accepted
    as suggested, adjusted, rejected, each a share of the decided ones. Two queries (three
    without the project's ``labels``: [{id, name}])."""
    from labeling.models import BoxDecision, BoxSuggestionDecision

    counts: dict[int, dict[str, int]] = {}
    for label_id, decision, n in (
        BoxSuggestionDecision.objects.filter(label__project_id=project_id)
        .values_list("label_id", "decision")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts.setdefault(label_id, {})[decision] = n
    metrics = (
        TrainingRun.objects.filter(pk=detector_run_id).values_list("metrics", flat=True).first()
        if detector_run_id
        else None
    ) or {}
    coco = metrics.get("coco") or {}
    trust = {entry.get("label_id"): entry for entry in (metrics.get("trust") or {}).get("labels", [])}
    if labels is None:
        labels = list(LabelClass.objects.filter(project_id=project_id).values("id", "name"))
    rows = []
    total = {d: 0 for d in BoxDecision.values}
    for label_id, name in ((label["id"], label["name"]) for label in labels):
        decided = counts.get(label_id, {})
        n = sum(decided.values())
        per = (coco.get("labels") or {}).get(name) or {}
        entry = trust.get(label_id) or {}
        rows.append(
            {
                "label": label_id,
                "ap50": per.get("ap50"),
                "map": per.get("map"),
                "confident": bool(entry.get("confident")),
                "threshold": entry.get("threshold"),
                # Absent: a run from before "shown_from" (drawn from the page's floor); None: never drawn.
                "shown_from": entry.get("shown_from", BOX_SHOWN_FROM) if entry else None,
                # The rejections since the fit hid its boxes that are not confident (labeling.trust).
                "shown_withdrawn": "shown_withdrawn" in entry,
                # They raised its "shown_from" from this (the fit's) cutoff instead; None: not raised.
                "shown_raised_from": (entry.get("shown_raised") or {}).get("shown_from"),
                "decided": n,
                **{d: decided.get(d, 0) for d in BoxDecision.values},
                **{f"{d}_rate": round(decided.get(d, 0) / n, 4) if n else None for d in BoxDecision.values},
            }
        )
        for d in BoxDecision.values:
            total[d] += decided.get(d, 0)
    n = sum(total.values())
    return {
        "detector_run": detector_run_id,
        "held_out_images": metrics.get("held_out_images"),
        "boxed_images": metrics.get("boxed_images"),
        "ap50": coco.get("ap50"),
        "map": coco.get("map"),
        "evaluator": coco.get("evaluator"),
        "decided": n,
        **{f"{d}_rate": round(total[d] / n, 4) if n else None for d in BoxDecision.values},
        "labels": rows,
    }


RUN_LIST_FIELDS = (
    "id",
    "kind",
    "status",
    "config",
    "finetune_stage",
    *RUN_PROGRESS_FIELDS,
    "device",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "backbone_run_id",
    "cancel_requested",
)


def runs_with_probe_metrics(*, project_id: int, limit: int = 50) -> list[dict]:
    """Recent runs (no loss history: the run detail has it), each pretraining with the metrics of
    the newest successful probe fitted on its features. Two queries."""
    latest_probe = (
        TrainingRun.objects.filter(backbone_run=OuterRef("pk"), kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values("id")[:1]
    )
    runs = list(
        TrainingRun.objects.filter(project_id=project_id)
        .order_by("-id")
        .annotate(probe_id=Subquery(latest_probe))
        .values(*RUN_LIST_FIELDS, "probe_id", "metrics")[:limit]
    )
    probe_ids = {r["probe_id"] for r in runs if r["probe_id"]}
    probe_metrics = dict(TrainingRun.objects.filter(pk__in=probe_ids).values_list("id", "metrics"))
    out = []
    for r in runs:
        own = r.pop("metrics") or {}
        probe = own if r["kind"] in (RunKind.PROBE, RunKind.EXTERNAL) else probe_metrics.get(r.pop("probe_id"), {})
        r.pop("probe_id", None)
        end = r["finished_at"] or r["heartbeat_at"]
        cv = probe.get("cv") or {}
        out.append(
            {
                **{k: v for k, v in r.items() if k not in ("heartbeat_at", "started_at", "config")},
                # A detector's plan (every training image id) is for its resume, not for this page.
                "config": {k: v for k, v in (r["config"] or {}).items() if k != "plan"},
                "created_at": r["created_at"].isoformat(),
                "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
                "duration_s": round((end - r["started_at"]).total_seconds(), 1) if r["started_at"] and end else None,
                "final_loss": own.get("final_loss"),
                "detector": _detector_figures(own) if r["kind"] == RunKind.DETECTOR else None,
                "files": run_files(run_id=r["id"]),
                "probe": {
                    "map": cv.get("map"),
                    "micro_f1": cv.get("micro_f1"),
                    "macro_f1": cv.get("macro_f1"),
                    "labeled": probe.get("labeled"),
                }
                if cv
                else None,
            }
        )
    return out


def embedding_points(
    *, project_id: int, after: int | None = None, limit: int = 5000, max_points: int = 20_000, projection: str = "pca"
) -> dict:
    """One page (by image id, keyset) of the embedding map of the current backbone: a fixed,
    evenly spaced sample of at most ``max_points`` images, each with its 2-D position and what it
    is coloured by: the human label (submitted), the top suggestion (unlabeled) or neither.
    ``projection``: "pca", or "umap" where the worker computed it (else PCA; the answer says which)."""
    state = ProjectModelState.objects.filter(project_id=project_id).first()
    embedding = (
        EmbeddingSet.objects.filter(run_id=state.pretrain_run_id).order_by("-id").first()
        if state and state.pretrain_run_id
        else None
    )
    path = projection_path(embedding.path) if embedding else None
    if path is None or not path.exists():
        return {"points": [], "next_after": None, "total": 0, "sampled": 0, "run": None, "projection": projection}
    with np.load(path) as data:
        has_umap = "umap" in data.files
        projection = "umap" if projection == "umap" and has_umap else "pca"
        ids, xy = (data["umap_ids"], data["umap"]) if projection == "umap" else (data["ids"], data["xy"])
    order = np.argsort(ids, kind="stable")
    ids, xy = ids[order], xy[order]
    stride = max(1, -(-len(ids) // max_points))
    ids, xy = ids[::stride], xy[::stride]
    start = int(np.searchsorted(ids, after, side="right")) if after is not None else 0
    page_ids, page_xy = ids[start : start + limit], xy[start : start + limit]
    page_ids = page_ids.tolist()
    points = _colour_points(project_id, page_ids, state.probe_run_id)
    xy_rows = page_xy.astype(np.float32).round(3).tolist()  # one conversion, not one per element
    rows = [[i, x, y, *points.get(i, ("missing", None, None))] for i, (x, y) in zip(page_ids, xy_rows)]
    rows = [r for r in rows if r[3] != "missing"]  # images deleted since the embedding
    more = start + limit < len(ids)
    return {
        "points": rows,
        "next_after": page_ids[-1] if more and page_ids else None,
        "total": int(len(order)),
        "sampled": int(len(ids)),
        "run": state.pretrain_run_id,
        "projection": projection,
        "projections": ["pca", "umap"] if has_umap else ["pca"],
    }


def id_set(ids: list[int]) -> RawSQL:
    """``ids`` as one query parameter, for ``field__in=id_set(ids)``: a page of thousands of ids
    costs one bound value instead of thousands (Django prepares each element of a list in Python)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [ids])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(ids)])


def _colour_points(project_id: int, image_ids: list[int], probe_run_id: int | None) -> dict[int, tuple]:
    """{image id: (kind, label id, version)}: "human" with its first label, "suggested" with its likeliest
    predicted label, or "unlabeled"/"skipped". Four queries for a page."""
    # The version too: a lasso's bulk tag sends it back, so an image edited since is not overwritten.
    rows = Image.objects.filter(project_id=project_id, pk__in=id_set(image_ids)).values_list("id", "status", "version")
    version = {i: v for i, _, v in rows}
    status = {i: s for i, s, _ in rows}
    submitted = [i for i, s in status.items() if s == ImageStatus.SUBMITTED]
    human: dict[int, int] = {}
    for model in (ImageTag, Box):  # tags first: a box's class is the fallback
        for image_id, label_id in (
            model.objects.filter(image_id__in=id_set(submitted))
            .order_by("image_id", "label_id")
            .values_list("image_id", "label_id")
            .distinct()
        ):
            human.setdefault(image_id, label_id)
    suggested: dict[int, int] = {}
    if probe_run_id is not None:
        open_ids = [i for i, s in status.items() if s in OPEN_STATUSES]
        for image_id, label_id in (
            Suggestion.objects.filter(run_id=probe_run_id, image_id__in=id_set(open_ids), predicted=True)
            .order_by("image_id", "-probability")
            .values_list("image_id", "label_id")
        ):
            suggested.setdefault(image_id, label_id)
    out = {}
    for image_id, s in status.items():
        if s == ImageStatus.SUBMITTED:
            out[image_id] = ("human", human.get(image_id), version[image_id])
        elif image_id in suggested:
            out[image_id] = ("suggested", suggested[image_id], version[image_id])
        else:
            out[image_id] = ("skipped" if s == ImageStatus.SKIPPED else "unlabeled", None, version[image_id])
    return out


def _detector_figures(metrics: dict) -> dict | None:
    """A detector run's row in the comparison: COCO AP50 and mAP on its held-out images, and how
    many images it learnt from."""
    if "held_out_images" not in metrics:
        return None
    coco = metrics.get("coco") or {}
    return {
        "ap50": coco.get("ap50"),
        "map": coco.get("map"),
        "train_images": metrics.get("train_images"),
        "held_out_images": metrics.get("held_out_images"),
        "boxed_images": metrics.get("boxed_images"),
        "backbone": metrics.get("backbone"),
    }
