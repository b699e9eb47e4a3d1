"""Projects: create one (with its first labels and its creator as admin), set its overlap."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotator.access import project_create_allowed
from annotator.models import Membership, Project, Role
from annotator.services.labels import label_create


def project_create(*, name: str, user: AbstractBaseUser, labels: Iterable[str] = (), description: str = "") -> Project:
    name = name.strip()
    if not name:
        raise ValidationError("Give the project a name.")
    if len(name) > 200:
        raise ValidationError(f"A project name can be at most 200 characters (this one has {len(name)}).")
    if "\x00" in name or "\x00" in description:
        raise ValidationError("The project's name and description cannot contain NUL characters.")
    project_create_allowed(user=user)
    with transaction.atomic():
        project = Project.objects.create(name=name, description=description, created_by=user)
        Membership.objects.create(user=user, project=project, role=Role.ADMIN)
        for label_name in labels:
            label_create(project=project, name=label_name)
    return project


def project_set_overlap(*, project: Project, percent: str | float) -> Project:
    """How much of the project two annotators label independently (0 to 100 percent)."""
    try:
        value = float(percent)
    except (TypeError, ValueError):
        raise ValidationError("The overlap is a percentage from 0 to 100.") from None
    if not 0 <= value <= 100:  # also refuses nan
        raise ValidationError("The overlap is a percentage from 0 to 100.")
    project.overlap_fraction = value / 100
    project.save(update_fields=["overlap_fraction"])
    return project
