from labeling.ml.pace import Pace


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_first_step_is_reported_at_the_sessions_rate_until_a_rate_is_measured():
    clock = Clock()
    pace = Pace(budget_s=None, cap_steps=10, clock=clock)
    assert pace.reported_steps_per_s() is None  # nothing done yet: no rate to show
    clock.now += 8.0  # the first step (allocation, autotuning) takes 8 s
    pace.step_done()
    assert pace.steps_per_s() is None  # not counted in the measured rate
    assert pace.reported_steps_per_s() == 1 / 8
    clock.now += 2.0
    pace.step_done()
    assert pace.steps_per_s() == pace.reported_steps_per_s() == 1 / 2


def test_a_budget_sizes_the_schedule_by_the_measured_rate_and_a_resumed_run_counts_its_earlier_time():
    clock = Clock()
    pace = Pace(budget_s=60.0, cap_steps=1000, clock=clock, earlier_s=30.0)
    assert pace.total_steps(0) == 1000  # no rate yet
    for _ in range(3):
        clock.now += 1.0
        pace.step_done()
    # 2 counted steps in 2 s: 1 step/s, 30 + 3 s spent, 27 s left.
    assert pace.elapsed() == 33.0 and pace.total_steps(3) == 30 and pace.eta_s(3) == 27.0
    clock.now += 27.0
    assert pace.out_of_time()
