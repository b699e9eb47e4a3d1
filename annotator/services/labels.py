"""Labels: create, update and delete a project's label classes; names, colours, hotkeys and box
attribute definitions are checked here."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotator import attributes as attributes_rules
from annotator.models import HEX_COLOUR, LabelClass, Project, label_key

PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
    "#800000",
    "#000075",
)
# Keys the annotate page keeps for itself; a label cannot take them as its hotkey.
RESERVED_HOTKEYS = frozenset("fhsark?/+-= otdvwbcgxum")  # the annotate page's own keys (annotate/keys.js)


def label_create(
    *, project: Project, name: str, color: str = "", hotkey: str | None = None, attributes: list | None = None
) -> LabelClass:
    name = name.strip()
    count = project.labels.count()
    color = color or PALETTE[count % len(PALETTE)]
    if hotkey is None:  # the next free digit, 1..9 then 0
        used = set(project.labels.values_list("hotkey", flat=True))
        hotkey = next((k for k in "1234567890" if k not in used), "")
    label = LabelClass(
        project=project,
        name=name,
        color=color,
        hotkey=hotkey,
        order=count,
        attributes=attributes_rules.specs_clean(attributes),
    )
    _label_validate(label)
    _label_save(label)
    return label


def _label_save(label: LabelClass) -> None:
    """Save in a savepoint: a concurrent create of the same name or hotkey (which passed the
    checks before this one committed) is the database's unique constraint, answered as a 400."""
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError:
        raise ValidationError(
            f"A label called “{label.name}” (or with the hotkey “{label.hotkey}”) was just "
            "created by someone else; reload and check the project's labels."
        ) from None


def label_update(
    *, label: LabelClass, name: str, color: str, hotkey: str, order: int | None = None, attributes: list | None = None
) -> LabelClass:
    """``attributes``: the label's box attribute definitions; None keeps them. A box keeps values
    of an attribute since removed: they still export, and the next save of the box drops them."""
    label.name, label.color, label.hotkey = name.strip(), color, hotkey.strip().lower()
    if attributes is not None:
        label.attributes = attributes_rules.specs_clean(attributes)
    if order is not None:
        label.order = order
    _label_validate(label)
    _label_save(label)
    return label


def label_delete(*, label: LabelClass) -> None:
    boxes, tags = label.boxes.count(), label.tags.count()
    if boxes or tags:
        raise ValidationError(
            f"“{label.name}” is used by {boxes} boxes and {tags} image tags. Rename it, or remove those first."
        )
    label.delete()


# Characters a label name may not hold: invisible ones (format characters such as the zero-width
# space, controls, private use, unassigned, line and paragraph separators) make look-alikes of
# other names.
_INVISIBLE_CATEGORIES = {"Cf", "Cc", "Co", "Cn", "Zl", "Zp"}


def label_name_problem(name: str) -> str | None:
    """Why this (stripped) name cannot be a label's, or None."""
    if not name:
        return "A label needs a name."
    if len(name) > 100:
        return "A label name can be at most 100 characters."
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in name):
        return f"The label name {name!r} holds invisible or control characters; type it again without them."
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        # Fullwidth letters, ligatures, superscripts ...: a look-alike of the plain name.
        return f"Write the label name in plain characters: “{normal}” rather than “{name}”."
    return None


def _label_validate(label: LabelClass) -> None:
    problem = label_name_problem(label.name)
    if problem:
        raise ValidationError(problem)
    HEX_COLOUR(label.color)
    if len(label.hotkey) > 1:
        raise ValidationError("A hotkey is a single key.")
    if label.hotkey and label.hotkey in RESERVED_HOTKEYS:
        raise ValidationError(f"The key “{label.hotkey}” is taken by the annotator; choose another.")
    others = LabelClass.objects.filter(project_id=label.project_id).exclude(pk=label.pk)
    if others.filter(name_key=label_key(label.name)).exists():
        raise ValidationError(f"There is already a label called “{label.name}”.")
    if label.hotkey and others.filter(hotkey=label.hotkey).exists():
        raise ValidationError(f"The hotkey “{label.hotkey}” is already used by another label.")
