"""Box attributes: pure rules, no ORM.

Every box may carry the three flags detection datasets use (``occluded``, ``truncated``,
``difficult``) and the attributes its label defines. A label's definitions are a list of
``{"name", "type"}`` with ``type`` one of ``checkbox``, ``choice`` (plus ``choices``: the allowed
values) or ``text``. A box stores only what is set: flags and checkboxes when true, a choice or a
text when not empty. So ``{}`` is a plain box, and the stored JSON stays small on 10,000 boxes.

The admin writes definitions in one line on the project page; ``specs_from_text`` reads it:
``parked; colour: red|blue|grey; plate: text`` (a bare name is a checkbox).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError

FLAGS = ("occluded", "truncated", "difficult")
TYPES = ("checkbox", "choice", "text")
MAX_SPECS = 12
MAX_CHOICES = 30
MAX_TEXT = 200
MAX_NAME = 40


class AttributeInvalid(ValidationError):
    """An attribute definition or value a person can fix; the message says what. A ValidationError,
    so every entry point answers it as it answers other bad input (a 400 with the message)."""


def specs_clean(raw) -> list[dict]:
    """Checked label attribute definitions, in a canonical shape."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_SPECS:
        raise AttributeInvalid(f"Attributes are a list of at most {MAX_SPECS} definitions.")
    out, seen = [], set(FLAGS)
    for spec in raw:
        if not isinstance(spec, Mapping):
            raise AttributeInvalid("Each attribute is an object with a name and a type.")
        name = str(spec.get("name", "")).strip().lower()
        kind = spec.get("type", "checkbox")
        if not name or len(name) > MAX_NAME:
            raise AttributeInvalid(f"An attribute needs a name of at most {MAX_NAME} characters.")
        if name in seen:
            raise AttributeInvalid(
                f"The attribute “{name}” is defined twice (occluded, truncated and difficult exist on every box)."
            )
        if kind not in TYPES:
            raise AttributeInvalid(f"The attribute “{name}” has type “{kind}”; use one of {', '.join(TYPES)}.")
        seen.add(name)
        entry = {"name": name, "type": kind}
        if kind == "choice":
            choices = [str(c).strip() for c in spec.get("choices") or [] if str(c).strip()]
            if not 2 <= len(choices) <= MAX_CHOICES or len(set(choices)) != len(choices):
                raise AttributeInvalid(f"The choice “{name}” needs 2 to {MAX_CHOICES} different values.")
            entry["choices"] = choices
        out.append(entry)
    return out


def specs_from_text(text: str) -> list[dict]:
    """``parked; colour: red|blue; plate: text`` → definitions (see the module docstring)."""
    raw = []
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        name, _, rest = part.partition(":")
        rest = rest.strip()
        if not rest or rest == "checkbox":
            raw.append({"name": name, "type": "checkbox"})
        elif rest == "text":
            raw.append({"name": name, "type": "text"})
        else:
            raw.append({"name": name, "type": "choice", "choices": rest.split("|")})
    return specs_clean(raw)


def specs_to_text(specs: list[dict]) -> str:
    parts = []
    for spec in specs:
        kind = spec["type"]
        parts.append(
            spec["name"]
            if kind == "checkbox"
            else f"{spec['name']}: text"
            if kind == "text"
            else f"{spec['name']}: {'|'.join(spec['choices'])}"
        )
    return "; ".join(parts)


def values_clean(raw, specs: list[dict], *, strict: bool = True) -> dict:
    """A box's attribute values, checked against its label's definitions; only what is set is kept.
    ``strict=False`` (imports from other tools) drops what the label does not define instead of failing."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, Mapping):
        raise AttributeInvalid("A box's “attributes” must be an object.")
    by_name = {s["name"]: s for s in specs}
    out: dict = {}
    for name, value in raw.items():
        spec = {"type": "checkbox"} if name in FLAGS else by_name.get(name)
        if spec is None:
            if strict:
                raise AttributeInvalid(f"The box's label has no attribute “{name}”.")
            continue
        kept = _value(name, value, spec, strict)
        if kept not in (None, False, ""):
            out[name] = kept
    return out


def _value(name: str, value, spec: Mapping, strict: bool):
    kind = spec["type"]
    if kind == "checkbox":
        if isinstance(value, bool):
            return value
        if not strict and value in (0, 1, "0", "1", "true", "false"):
            return value in (1, "1", "true")
        raise AttributeInvalid(f"The attribute “{name}” is true or false.")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        if strict:
            raise AttributeInvalid(f"The attribute “{name}” is a text of at most {MAX_TEXT} characters.")
        return None
    if kind == "choice" and value and value not in spec["choices"]:
        if strict:
            raise AttributeInvalid(f"“{value}” is not one of the choices of “{name}”: {', '.join(spec['choices'])}.")
        return None
    return value
