"""Pictures of samples: 2-D points over the critic's value surface, image grids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.runio import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bounds(*sets: np.ndarray, margin: float = 0.3) -> tuple[float, float, float, float]:
    """A square view around the real data and most of the fakes (outliers cut at 1%)."""
    points = np.concatenate([s[np.isfinite(s).all(axis=1)] for s in sets])
    if len(points) == 0:
        return (-2.0, 2.0, -2.0, 2.0)
    low = np.percentile(points, 1, axis=0) - margin
    high = np.percentile(points, 99, axis=0) + margin
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 0.5)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


@torch.no_grad()
def critic_surface(
    critic: nn.Module, bounds: tuple[float, float, float, float], steps: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, D(x, y)) on a grid, for contour plots."""
    x0, x1, y0, y1 = bounds
    xs, ys = np.linspace(x0, x1, steps), np.linspace(y0, y1, steps)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    param = next(critic.parameters())
    was_training = critic.training
    critic.eval()
    values = critic(torch.as_tensor(grid, dtype=param.dtype, device=param.device))
    critic.train(was_training)
    return xs, ys, values.float().cpu().numpy().reshape(steps, steps)


def draw_points(
    ax, real: np.ndarray, fake: np.ndarray, critic: nn.Module | None, title: str = ""
) -> None:
    """Real (orange) and generated (green) points over the critic's contours."""
    bounds = plot_bounds(real, fake)
    if critic is not None:
        xs, ys, values = critic_surface(critic, bounds)
        if np.isfinite(values).all():
            contour = ax.contourf(xs, ys, values, levels=20, cmap="Blues", alpha=0.8)
            ax.figure.colorbar(contour, ax=ax, fraction=0.046, pad=0.04, label="D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:orange", label="real", alpha=0.6)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:green", label="generated", alpha=0.6)
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """PNG through one atomic write, then close the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_points(
    path: Path, real: Tensor, fake: Tensor, critic: nn.Module | None, title: str = ""
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    draw_points(
        ax,
        real.detach().float().cpu().numpy(),
        fake.detach().float().cpu().numpy(),
        critic,
        title,
    )
    save_figure(fig, path)


def image_grid(
    images: np.ndarray,
    nrow: int = 8,
    padding: int = 2,
    value_range: tuple[float, float] = (-1.0, 1.0),
    scale: int = 1,
) -> np.ndarray:
    """(n, C, H, W) floats -> one uint8 (H', W', C) grid; ``scale`` upscales by
    nearest neighbour so tiny images stay visible."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]
    n, c, h, w = images.shape
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0, 1)
    images = np.nan_to_num(images, nan=0.0)
    if scale > 1:
        images = images.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = np.ones((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding))
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    grid = (grid * 255).round().astype(np.uint8).transpose(1, 2, 0)
    return grid[:, :, 0] if c == 1 else grid


def save_image_grid(path: Path, images: np.ndarray, **kwargs) -> None:
    from PIL import Image

    grid = image_grid(images, **kwargs)
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
