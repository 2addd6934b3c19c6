"""Density grids of the flow pictures: what ``log_prob`` receives and what comes back."""

import math

import pytest
import torch

from hyperbolic import Lorentz
from hyperbolic.nn.flows.plot import poincare_density, sphere_density

pytestmark = pytest.mark.usefixtures("one_thread")


def test_poincare_density_is_the_model_density_inside_the_disk():
    """A constant log-density gives e^c inside ``max_norm`` and nan outside, in the Lorentz model."""
    seen = []

    def log_prob(x):
        seen.append(x)
        return torch.full(x.shape[:1], -1.0, dtype=x.dtype)

    image = poincare_density(log_prob, resolution=21, max_norm=0.9)
    axis = torch.linspace(-1, 1, 21, dtype=torch.float64)
    inside = (axis[None, :] ** 2 + axis[:, None] ** 2).sqrt() < 0.9
    assert image.shape == (21, 21) and image.dtype == torch.float64
    assert torch.equal(image.isnan(), ~inside)
    torch.testing.assert_close(image[inside], torch.full((int(inside.sum()),), math.exp(-1.0), dtype=torch.float64))
    points = torch.cat(seen)
    assert points.dtype == torch.float64 and bool(Lorentz(2).check_point_on_manifold(points))


@pytest.mark.parametrize("draw, sizes", [(poincare_density, (12,)), (sphere_density, (12, 8))])
def test_grids_go_to_the_requested_device_and_dtype(draw, sizes):
    """``log_prob`` gets its points on ``device`` in ``dtype``; the image comes back float64 on the CPU."""
    seen = []

    def log_prob(x):
        seen.append((x.device, x.dtype))
        return torch.zeros(x.shape[:1], dtype=torch.float32)

    image = draw(log_prob, *sizes, device="meta", dtype=torch.float32)
    assert seen and all(entry == (torch.device("meta"), torch.float32) for entry in seen)
    assert image.device.type == "cpu" and image.dtype == torch.float64
