"""What a pretraining may be configured with, and its defaults: the ONE place they come from.

The defaults are the preset of the worker's device (``labeling.ml.presets.PRESETS``: "cpu" or
"gpu"), with the PRETRAIN_* settings (from the environment) laid over them. A run's config is
completed from them when it is queued (``labeling.services.pretrain_start``) and stored on the
run, so the worker trains with exactly what was shown and confirmed; the worker fills in from the
same defaults only for a key an older run lacks. ``PretrainConfig``'s own field defaults
(labeling.ml.train) are the library's, for benches; no run ever falls back to them.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from labeling.ml.presets import COLOUR_STRENGTHS, DETECTOR_PRESETS, DETECTOR_RULES, PRESETS, SUGGEST_RULES, device_kind
from labeling.ml.presets import fitted_batch
from labeling.ml.files import replaced
from labeling.paths import worker_device_path

# What a pretraining run may be configured with, and the bounds a request must stay within
# (docs/api.md lists them; the error for an unknown key lists the valid ones). Tight enough that one
# request cannot hold a GPU for days: at most 1,000 epochs, a batch of 4,096, and a projector of
# at most 3 layers of 8,192. time_budget_s (seconds, or null): train for that long instead of for
# ``epochs`` (which then caps it).
PRETRAIN_LIMITS = {
    "resolution": (16, 256),
    "epochs": (1, 1000),
    "batch_size": (8, 4096),
    "lr_weights": (1e-5, 10.0),
    "warmup_epochs": (0, 100),
    "seed": (0, 2**31 - 1),
    "crop_min": (0.05, 1.0),
}
PROJECTOR_LAYERS = (1, 3)
PROJECTOR_WIDTH = (16, 8192)
TIME_BUDGET_LIMITS = (10, 7 * 24 * 3600)
FEATURES = ("last", "multi", "multi_tta")  # how images become probe features (labeling.ml.presets.feature_options)
COLOURS = tuple(COLOUR_STRENGTHS)  # how hard the views' colours are distorted (labeling.ml.presets)
PRETRAIN_OTHER_KEYS = ("projector", "small_stem", "profile", "time_budget_s", "features", "colour")
# settings name -> config key: set in the environment, they override the device's preset.
_OVERRIDES = {
    "PRETRAIN_RESOLUTION": "resolution",
    "PRETRAIN_EPOCHS": "epochs",
    "PRETRAIN_BATCH_SIZE": "batch_size",
    "PRETRAIN_PROJECTOR": "projector",
    "PRETRAIN_CROP_MIN": "crop_min",
    "PRETRAIN_TIME_BUDGET_S": "time_budget_s",
    "PRETRAIN_COLOUR": "colour",
}

# Progress (and so the ETA) reaches the database at least this often, however slow a step is.
PROGRESS_EVERY_S = 5.0
# At most this many images on the embedding map (an evenly spaced sample of the project).
PROJECTION_POINTS = 20_000


def pretrain_defaults(*, kind: str | None = None, images: int | None = None) -> dict:
    """The preset of the worker's device ("cpu" or "gpu"), with the settings' overrides. ``images``:
    the project's, when known; the preset's batch is fitted to them (``fitted_batch``), a
    PRETRAIN_BATCH_SIZE setting is not."""
    kind = kind or worker_device_kind()
    preset = PRESETS[kind]
    defaults = {**preset, "projector": list(preset["projector"])}
    if images is not None:
        defaults["batch_size"] = fitted_batch(preset["batch_size"], images, kind)
    return {**defaults, **_set_settings(_OVERRIDES)}


_DETECTOR_OVERRIDES = {"DETECTOR_TIME_BUDGET_S": "time_budget_s", "DETECTOR_SIZE": "size"}


def detector_defaults(*, kind: str | None = None) -> dict:
    """A detector fit's settings for the worker's device (labeling.ml.presets.DETECTOR_PRESETS), with
    the DETECTOR_* settings' overrides."""
    return {**DETECTOR_PRESETS[kind or worker_device_kind()], **_set_settings(_DETECTOR_OVERRIDES)}


def detector_rules(*, kind: str | None = None) -> dict:
    """How a detector fit adapts to its number of images with boxes (labeling.ml.presets.DETECTOR_RULES),
    for the worker's device, with DETECTOR_FINETUNE_FROM's override."""
    return {
        **DETECTOR_RULES[kind or worker_device_kind()],
        **_set_settings({"DETECTOR_FINETUNE_FROM": "finetune_from"}),
    }


def suggest_rules(*, kind: str | None = None) -> dict:
    """When a probe fit fine-tunes (labeling.ml.presets.SUGGEST_RULES) for the worker's device, with
    SUGGEST_FINETUNE_FROM's override (0: never)."""
    rules = dict(SUGGEST_RULES[kind or worker_device_kind()])
    if settings.SUGGEST_FINETUNE_FROM is not None:
        rules["finetune_from"] = settings.SUGGEST_FINETUNE_FROM or None
    return rules


def _set_settings(names: dict[str, str]) -> dict:
    """{key: the setting's value} for each (setting name -> key) the environment set (not None)."""
    return {key: getattr(settings, name) for name, key in names.items() if getattr(settings, name, None) is not None}


def worker_device_kind() -> str:
    """ "cpu" or "gpu": PRETRAIN_DEVICE, else what the worker reported when it started, else "cpu"
    (the estimate then errs long, never short)."""
    if settings.PRETRAIN_DEVICE in ("cpu", "gpu"):
        return settings.PRETRAIN_DEVICE
    try:
        return device_kind(json.loads(worker_device_path().read_text())["device"])
    except (OSError, ValueError, KeyError, TypeError):
        return "cpu"  # no worker has started yet


def note_worker_device() -> None:
    """Tell the web process which device pretraining runs on here (its presets and estimates
    depend on it): written when a worker starts."""
    import torch  # only in a worker, which has it loaded anyway

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    with replaced(worker_device_path()) as f:
        f.write(json.dumps({"device": device, "at": timezone.now().isoformat()}).encode())


def pretrain_config_check(config: dict) -> None:
    """A complete pretraining config within PRETRAIN_LIMITS, or a ValidationError that says what to fix."""
    unknown = set(config) - set(PRETRAIN_LIMITS) - set(PRETRAIN_OTHER_KEYS)
    if unknown:
        valid = ", ".join([*PRETRAIN_LIMITS, *PRETRAIN_OTHER_KEYS])
        raise ValidationError(
            f"Unknown pretraining setting(s): {', '.join(sorted(unknown))}. "
            f"The settings are: {valid} (see docs/api.md for their bounds)."
        )
    for key, (low, high) in PRETRAIN_LIMITS.items():
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValidationError(f"“{key}” must be a number from {low} to {high}.")
    budget = config.get("time_budget_s")
    low, high = TIME_BUDGET_LIMITS
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, (int, float)) or not low <= budget <= high
    ):
        raise ValidationError(
            f"“time_budget_s” must be null (train for “epochs”) or a number of seconds from {low} to {high}."
        )
    if config.get("features", "last") not in FEATURES:
        raise ValidationError(f"“features” must be one of {', '.join(FEATURES)}.")
    if config.get("colour", "reference") not in COLOURS:
        raise ValidationError(f"“colour” must be one of {', '.join(COLOURS)}.")
    if config["small_stem"] not in (None, True, False):
        raise ValidationError("“small_stem” must be true, false or null (automatic: small images get the small stem).")
    if not isinstance(config.get("profile", False), bool):
        raise ValidationError("“profile” must be true (record a profiler trace of a few steps) or false.")
    projector = config["projector"]
    (few, many), (narrow, wide) = PROJECTOR_LAYERS, PROJECTOR_WIDTH
    if (
        not isinstance(projector, list)
        or not few <= len(projector) <= many
        or not all(isinstance(d, int) and not isinstance(d, bool) and narrow <= d <= wide for d in projector)
    ):
        raise ValidationError(f"“projector” must be a list of {few} to {many} layer widths from {narrow} to {wide}.")
