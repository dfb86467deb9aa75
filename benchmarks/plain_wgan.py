"""A plain, straightforward WGAN-GP step, as public code writes it: the yardstick.

Separate critic passes for real, fake and interpolates; the generator's forward keeps
its graph (then detaches); the generator step also computes critic weight gradients;
PyTorch's default optimiser settings; the penalty every critic step.
"""

from __future__ import annotations

import torch
from torch import nn


class PlainWGAN:
    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        draw_real,
        z_dim: int,
        batch: int,
        penalty_weight: float | None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        n_critic: int = 5,
    ) -> None:
        self.generator, self.critic = generator, critic
        self.draw_real, self.z_dim, self.batch = draw_real, z_dim, batch
        self.penalty_weight, self.n_critic = penalty_weight, n_critic
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(x_hat).sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def iteration(self) -> None:
        for _ in range(self.n_critic):
            real = self.draw_real(self.batch)
            fake = self.generator(torch.randn(self.batch, self.z_dim)).detach()
            loss = self.critic(fake).mean() - self.critic(real).mean()
            if self.penalty_weight is not None:
                loss = loss + self.penalty_weight * self.gradient_penalty(real, fake)
            self.opt_d.zero_grad()
            loss.backward()
            self.opt_d.step()
        loss_g = -self.critic(self.generator(torch.randn(self.batch, self.z_dim))).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
