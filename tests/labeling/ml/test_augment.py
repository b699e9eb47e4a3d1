import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import RandomResizedCrop

from labeling.ml import augment as A
from labeling.ml.augment import VIEW1, VIEW2, apply_params, sample_params, two_views


def _images(n=8, size=16, seed=0):
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _float(n=8, size=16, seed=0):
    return A.to_float(_images(n, size, seed))


def test_it_is_deterministic_under_a_seed():
    images = _images()
    a = two_views(images, torch.Generator().manual_seed(3))
    b = two_views(images, torch.Generator().manual_seed(3))
    c = two_views(images, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_its_views_are_normalised_floats_of_the_requested_size():
    v1, v2 = two_views(_images(4, 16), torch.Generator().manual_seed(0), out_size=12)
    assert v1.shape == v2.shape == (4, 3, 12, 12) and v1.dtype == torch.float32
    assert not torch.equal(v1, v2)


@pytest.mark.parametrize("cfg", [VIEW1, VIEW2])
def test_its_draws_have_the_configured_probabilities(cfg):
    n = 20000
    p = sample_params(n, 64, 64, 64, cfg, torch.Generator().manual_seed(0))
    for mask, prob in [
        (p.flip, 0.5),
        (p.jitter, cfg.jitter_p),
        (p.grayscale, cfg.grayscale_p),
        (p.blur, cfg.blur_p),
        (p.solarize, cfg.solarize_p),
    ]:
        tolerance = 4 * math.sqrt(prob * (1 - prob) / n) + 1e-9  # 4 sigma of a binomial
        assert abs(mask.float().mean().item() - prob) <= tolerance
    # Each of the 24 jitter orders about equally often.
    orders = torch.unique(p.order, dim=0, return_counts=True)[1]
    assert len(orders) == 24 and orders.min() > n / 24 * 0.8


def test_its_draws_respect_their_ranges():
    n, res = 20000, 64
    p = sample_params(n, res, res, res, VIEW1, torch.Generator().manual_seed(1))
    x0, y0, w, h = p.crop.unbind(dim=1)
    area, ratio = w * h, w / h
    assert area.min() >= 0.2 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-6 and ratio.max() <= 4 / 3 + 1e-6
    assert x0.min() >= 0 and y0.min() >= 0 and (x0 + w).max() <= 1 + 1e-6 and (y0 + h).max() <= 1 + 1e-6
    # Rejecting boxes that do not fit skews the area below uniform's 0.6, the same way as in
    # torchvision's RandomResizedCrop (whose boxes are whole pixels, hence the tolerance).
    torch.manual_seed(0)
    image = torch.zeros(3, res, res)
    boxes = [RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)]
    reference_area = sum(bh * bw for _, _, bh, bw in boxes) / len(boxes) / res**2
    assert abs(area.mean().item() - reference_area) < 0.02
    b, c, s, hue = p.factors.unbind(dim=1)
    assert 0.6 <= b.min() and b.max() <= 1.4 and 0.6 <= c.min() and c.max() <= 1.4
    assert 0.8 <= s.min() and s.max() <= 1.2 and -0.1 <= hue.min() and hue.max() <= 0.1
    scale = res / 224  # sigma 0.1-2.0 at 224 px, scaled to the resolution
    assert p.sigma.min() >= 0.1 * scale and p.sigma.max() <= 2.0 * scale


def test_its_draws_are_independent_across_samples():
    p = sample_params(20000, 32, 32, 32, VIEW1, torch.Generator().manual_seed(2))
    area = p.crop[:, 2] * p.crop[:, 3]
    neighbours = torch.corrcoef(torch.stack([area[:-1], area[1:]]))[0, 1]
    assert abs(neighbours.item()) < 0.05
    flips = p.flip.float()
    assert abs(torch.corrcoef(torch.stack([flips[:-1], flips[1:]]))[0, 1].item()) < 0.05


def test_each_sample_depends_only_on_its_own_image_and_parameters():
    x = _float(6, 16)
    p = sample_params(6, 16, 16, 16, VIEW2, torch.Generator().manual_seed(5))
    batch = apply_params(x, p, 16)
    for i in range(6):
        alone = apply_params(x[i : i + 1], p[i : i + 1], 16)
        assert torch.allclose(batch[i : i + 1], alone, atol=1e-6)


def test_a_full_crop_is_the_identity_and_a_flip_mirrors():
    x = _float(2, 16)
    crop = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2)
    same = A.resized_crop(x, crop, torch.tensor([False, False]), 16)
    flipped = A.resized_crop(x, crop, torch.tensor([True, True]), 16)
    assert torch.allclose(same, x, atol=1e-6)
    assert torch.allclose(flipped, torch.flip(x, dims=[3]), atol=1e-6)


def test_a_crop_matches_torchvision_resized_crop_away_from_the_box_edges():
    x = _float(1, 32)
    # box x0=8, y0=4, w=16, h=16 pixels, upsampled 2x to 32
    crop = torch.tensor([[8 / 32, 4 / 32, 16 / 32, 16 / 32]])
    ours = A.resized_crop(x, crop, torch.tensor([False]), 32)
    ref = TF.resized_crop(x, 4, 8, 16, 16, [32, 32], antialias=False)
    assert torch.allclose(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


def test_its_colour_ops_match_torchvision_per_sample():
    x = _float(4, 16)
    f = torch.tensor([0.6, 0.9, 1.2, 1.4])
    hue = torch.tensor([-0.1, -0.03, 0.05, 0.1])
    for i in range(4):
        xi = x[i : i + 1]
        assert torch.allclose(A.adjust_brightness(xi, f[i : i + 1]), TF.adjust_brightness(xi, f[i].item()), atol=1e-6)
        assert torch.allclose(A.adjust_contrast(xi, f[i : i + 1]), TF.adjust_contrast(xi, f[i].item()), atol=1e-6)
        assert torch.allclose(A.adjust_saturation(xi, f[i : i + 1]), TF.adjust_saturation(xi, f[i].item()), atol=1e-6)
        assert torch.allclose(A.adjust_hue(xi, hue[i : i + 1]), TF.adjust_hue(xi, hue[i].item()), atol=1e-5)
    assert torch.allclose(A.grayscale(x), TF.rgb_to_grayscale(x), atol=1e-6)


def test_its_colour_jitter_applies_the_ops_in_each_samples_order():
    x = _float(3, 8)
    factors = torch.tensor([[1.3, 0.7, 1.2, 0.08], [0.8, 1.3, 0.9, -0.05], [1.1, 1.1, 0.8, 0.02]])
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 0, 3], [0, 1, 2, 3]])
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    ours = A.colour_jitter(x, factors, order)
    for i in range(3):
        ref = x[i : i + 1]
        for op in order[i].tolist():
            ref = ops[op](ref, factors[i, op].item())
        assert torch.allclose(ours[i : i + 1], ref, atol=1e-5)


def test_its_blur_matches_torchvision_gaussian_blur():
    x = _float(2, 16)
    sigma = torch.tensor([0.5, 1.0])
    ours = A.gaussian_blur(x, sigma, radius=3)
    for i in range(2):
        ref = TF.gaussian_blur(x[i : i + 1], kernel_size=[7, 7], sigma=[sigma[i].item()] * 2)
        assert torch.allclose(ours[i : i + 1], ref, atol=1e-5)


def test_it_solarizes_only_pixels_at_or_above_half():
    x = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    p = sample_params(
        1,
        2,
        2,
        2,
        A.ViewConfig(solarize_p=1.0, jitter_p=0, grayscale_p=0, blur_p=0, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0),
        torch.Generator().manual_seed(0),
    )
    out = apply_params(x, p, 2)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.2, 0.5, 0.1]), atol=1e-6)
