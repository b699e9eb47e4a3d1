import copy
import math

import pytest
import torch
from torch import nn, optim

from labeling.ml.lars import LARS, learning_rate, parameter_groups


class ReferenceLARS(optim.Optimizer):
    # verbatim from facebookresearch/barlowtwins main.py, in its own layout
    # fmt: off
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=False, lars_adaptation_filter=False):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        eta=eta, weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)
        super().__init__(params, defaults)
    # fmt: on

    def exclude_bias_and_norm(self, p):
        return p.ndim == 1

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad

                if dp is None:
                    continue

                if not g["weight_decay_filter"] or not self.exclude_bias_and_norm(p):
                    dp = dp.add(p, alpha=g["weight_decay"])

                if not g["lars_adaptation_filter"] or not self.exclude_bias_and_norm(p):
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(
                        param_norm > 0.0, torch.where(update_norm > 0, (g["eta"] * param_norm / update_norm), one), one
                    )
                    dp = dp.mul(q)

                param_state = self.state[p]
                if "mu" not in param_state:
                    param_state["mu"] = torch.zeros_like(p)
                mu = param_state["mu"]
                mu.mul_(g["momentum"]).add_(dp)

                p.add_(mu, alpha=-g["lr"])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


def test_it_matches_the_reference_optimiser_step_for_step():
    ours, ref = _model(), _model()
    opt = LARS(parameter_groups(ours), weight_decay=0.1)
    weights = [p for p in ref.parameters() if p.ndim != 1]
    biases = [p for p in ref.parameters() if p.ndim == 1]
    ref_opt = ReferenceLARS(
        [{"params": weights}, {"params": biases}],
        lr=0,
        weight_decay=0.1,
        weight_decay_filter=True,
        lars_adaptation_filter=True,
    )
    x = torch.randn(16, 6)
    for step in range(5):
        for model, o, lrs in [(ours, opt, (0.3, 0.01)), (ref, ref_opt, (0.3, 0.01))]:
            o.param_groups[0]["lr"], o.param_groups[1]["lr"] = lrs
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_it_excludes_biases_and_norms_from_decay_and_adaptation():
    model = _model()
    groups = parameter_groups(model)
    assert all(p.ndim > 1 for p in groups[0]["params"]) and groups[0]["lars"]
    assert all(p.ndim == 1 for p in groups[1]["params"]) and not groups[1]["lars"]
    assert groups[1]["weight_decay"] == 0.0
    # A bias with a zero gradient and no decay must not move.
    opt = LARS(groups, weight_decay=1.0)
    opt.param_groups[1]["lr"] = 1.0
    before = copy.deepcopy(model[1].bias.detach())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(model[1].bias.detach(), before)


def test_its_schedule_warms_up_then_decays_by_cosine():
    kw = dict(total_steps=100, warmup_steps=10, batch_size=512)
    assert learning_rate(0, **kw) == 0
    assert learning_rate(5, **kw) == pytest.approx(1.0)
    assert learning_rate(10, **kw) == pytest.approx(2.0)
    assert learning_rate(55, **kw) == pytest.approx(2.0 * (0.5 + 0.5 * 0.001))
    assert learning_rate(100, **kw) == pytest.approx(2.0 * 0.001)
    assert all(learning_rate(s, **kw) >= learning_rate(s + 1, **kw) for s in range(10, 100))
    assert not math.isnan(learning_rate(3, total_steps=3, warmup_steps=3, batch_size=8))
