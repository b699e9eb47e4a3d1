from labeling.ml.presets import PRESETS, describe_seconds, device_kind, estimate_seconds, images_per_s


def test_the_cpu_preset_is_sized_by_time_and_the_gpu_preset_by_epochs():
    assert PRESETS["cpu"]["time_budget_s"] == 600 and PRESETS["gpu"]["time_budget_s"] is None
    # Throughput is quality on a CPU: the CPU preset is far cheaper per image than the GPU one.
    assert images_per_s(config=PRESETS["cpu"], kind="cpu") > 30 * images_per_s(config=PRESETS["gpu"], kind="cpu")


def test_a_cpu_detector_fit_is_sized_by_time_and_both_presets_are_valid_configs():
    from labeling.ml.detector import DetectorConfig
    from labeling.ml.presets import DETECTOR_PRESETS

    cpu, gpu = (DetectorConfig(num_classes=3, **DETECTOR_PRESETS[k]) for k in ("cpu", "gpu"))
    # The measured CPU recipe: 600 s at 192 px; the steps only cap it.
    assert (cpu.time_budget_s, cpu.size) == (600, 192) and cpu.steps > 5000
    assert gpu.time_budget_s is None


def test_a_detector_fit_trains_the_backbone_from_enough_images_and_its_time_follows_their_number():
    from labeling.ml.presets import DETECTOR_PRESETS, DETECTOR_RULES, detector_fit

    cpu, rules = DETECTOR_PRESETS["cpu"], DETECTOR_RULES["cpu"]
    few, many = detector_fit(cpu, rules, 12), detector_fit(cpu, rules, 200)
    assert few["trainable_layers"] == 0 and many["trainable_layers"] == 2
    assert detector_fit(cpu, rules, rules["finetune_from"])["trainable_layers"] == 2
    assert detector_fit(cpu, rules, rules["finetune_from"] - 1)["trainable_layers"] == 0
    # Seconds per image, between a floor and the preset's budget (the measured recipe at 200 images).
    assert few["time_budget_s"] == rules["min_seconds"] and many["time_budget_s"] == 600
    assert (
        detector_fit(cpu, rules, 100)["time_budget_s"] == 300 and detector_fit(cpu, rules, 5000)["time_budget_s"] == 600
    )
    # What the run was queued with is kept: an explicit trainable_layers, and a budget-less GPU fit.
    assert detector_fit({**cpu, "trainable_layers": 1}, rules, 500)["trainable_layers"] == 1
    gpu = detector_fit(DETECTOR_PRESETS["gpu"], DETECTOR_RULES["gpu"], 200)
    assert gpu == {**DETECTOR_PRESETS["gpu"], "trainable_layers": 0}
    assert cpu == DETECTOR_PRESETS["cpu"] and "trainable_layers" not in cpu  # the preset is not changed


def test_strong_colour_is_the_cpu_presets_and_the_gpu_keeps_the_reference_until_measured_there():
    assert (PRESETS["cpu"]["colour"], PRESETS["gpu"]["colour"]) == ("strong", "reference")


def test_the_issue_13_default_on_a_cpu_is_estimated_at_two_days_not_minutes():
    # 64 px, small stem, 100 epochs of 3,000 images: measured 1.6-1.8 img/s on 2 cores (about 49 h).
    old_default = {"resolution": 64, "small_stem": None, "epochs": 100, "batch_size": 256}
    seconds = estimate_seconds(config=old_default, images=3000, kind="cpu")
    assert 40 * 3600 < seconds < 60 * 3600 and describe_seconds(seconds).endswith(" h")


def test_a_time_budget_bounds_the_estimate_and_a_measured_rate_beats_the_table():
    budgeted = {**PRESETS["cpu"], "epochs": 2000}
    assert 600 <= estimate_seconds(config=budgeted, images=3000, kind="cpu") <= 700
    config = {"resolution": 32, "small_stem": False, "epochs": 10, "batch_size": 100}
    assert estimate_seconds(config=config, images=1000, kind="cpu", measured_images_per_s=100.0) == 100 + 10


def test_it_tells_gpu_from_cpu_devices():
    assert device_kind("cpu") == "cpu" and device_kind("") == "cpu"
    assert device_kind("NVIDIA H200") == "gpu" and device_kind("cuda:0") == "gpu"


def test_compile_only_on_one_gpu_when_the_eager_run_repays_it():
    from labeling.ml.presets import COMPILE_MIN_EAGER_S, should_compile

    assert round(COMPILE_MIN_EAGER_S) == 173  # 40 s of compilation for a 1.3x faster step
    assert should_compile(kind="gpu", eager_estimate_s=600)
    assert not should_compile(kind="gpu", eager_estimate_s=120)  # finishes sooner eager
    assert not should_compile(kind="cpu", eager_estimate_s=10_000)
    assert not should_compile(kind="gpu", eager_estimate_s=10_000, processes=2)  # DDP stays eager
