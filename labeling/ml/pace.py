"""Wall-clock bookkeeping of a training session, shared by the pretraining (labeling.ml.train) and the
box detector (labeling.ml.detector): elapsed time (earlier sessions of a resumed run included), the
measured step rate, and, when the run is sized by a time budget, the number of steps the budget
buys, so that a warm-up + cosine schedule reaches its end when the time is up, whatever the device.

Pure Python: no torch.
"""

from __future__ import annotations

from collections.abc import Callable

# Steps that do not count towards the measured rate: the first steps pay for allocation,
# autotuning and compilation.
RATE_SKIP_STEPS = 1


class Pace:
    """``budget_s``: the run's time budget (None: sized by ``cap_steps`` alone); ``cap_steps``: the most
    steps the run may take; ``earlier_s``: training seconds of earlier sessions (from a checkpoint)."""

    def __init__(
        self, *, budget_s: float | None, cap_steps: int, clock: Callable[[], float], earlier_s: float = 0.0
    ) -> None:
        self.budget_s, self.cap_steps, self.clock, self.earlier_s = budget_s, cap_steps, clock, earlier_s
        self.start = self.clock()
        self.session_steps = 0
        self.rate_start: float | None = None  # clock when the rate's first counted step began

    def elapsed(self) -> float:
        return self.earlier_s + self.clock() - self.start

    def step_done(self) -> None:
        self.session_steps += 1
        if self.session_steps == RATE_SKIP_STEPS:
            self.rate_start = self.clock()

    def steps_per_s(self) -> float | None:
        counted = self.session_steps - RATE_SKIP_STEPS
        if self.rate_start is None or counted < 1:
            return None
        return counted / max(self.clock() - self.rate_start, 1e-9)

    def reported_steps_per_s(self) -> float | None:
        """The rate to show a user: the measured one, or before it exists (the first, uncounted steps can
        take longer than a progress interval on a slow device) the session's steps over its seconds, which
        counts the warm-up and so errs slow, never a rate of 0."""
        rate = self.steps_per_s()
        if rate is not None or self.session_steps == 0:
            return rate
        return self.session_steps / max(self.clock() - self.start, 1e-9)

    def out_of_time(self) -> bool:
        return self.budget_s is not None and self.elapsed() >= self.budget_s

    def total_steps(self, step: int) -> int:
        """The schedule's length: ``cap_steps``, or under a budget the steps done plus those the
        remaining time buys at the measured rate (capped by ``cap_steps``)."""
        if self.budget_s is None:
            return self.cap_steps
        rate = self.steps_per_s()
        if rate is None:
            return self.cap_steps  # not measured yet: the first steps are deep in the warm-up whatever the length
        left = max(self.budget_s - self.elapsed(), 0.0)
        return max(step + 1, min(self.cap_steps, step + int(left * rate)))

    def eta_s(self, step: int) -> float | None:
        """Seconds of training left after ``step`` steps (None: no rate measured yet, and no budget)."""
        rate = self.steps_per_s()
        by_steps = None if rate is None else max(self.total_steps(step) - step, 0) / rate
        if self.budget_s is None:
            return by_steps
        left = max(self.budget_s - self.elapsed(), 0.0)
        return left if by_steps is None else min(left, by_steps)
