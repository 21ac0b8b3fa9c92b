"""Reference GANs trained in the DAG: DCGAN (Radford et al. 2016) and WGAN-GP (Gulrajani et al. 2017).

One convolutional generator/discriminator pair serves every image size of the form
base * 2^n with base in {4, 7} (8, 16, 28, 32, 64, ...), grayscale or RGB. Generator output is
tanh in [-1, 1], matching :func:`audit.models.classifier.to_tensor`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from audit.io import AuditInputError, save_torch

LOSSES = ("dcgan", "wgan-gp")


def _upsampling_plan(size: int) -> tuple[int, int]:
    """(base resolution, number of 2x steps) with base * 2^steps == size, base in {4, 7}."""
    base, steps = size, 0
    while base > 7 and base % 2 == 0:
        base, steps = base // 2, steps + 1
    if base not in (4, 7) or steps == 0:
        raise AuditInputError(f"GAN image size must be 4 or 7 times a power of two (8, 16, 28, 32, 64, ...), got {size}")
    return base, steps


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int = 64, width: int = 64):
        super().__init__()
        height, _, channels = image_shape
        base, steps = _upsampling_plan(height)
        top = width * 2 ** (steps - 1)
        self.latent_dim, self.top, self.base = latent_dim, top, base
        self.project = nn.Sequential(nn.Linear(latent_dim, top * base * base, bias=False),
                                     nn.BatchNorm1d(top * base * base), nn.ReLU(True))
        layers: list[nn.Module] = [nn.Conv2d(top, top, 3, padding=1, bias=False), nn.BatchNorm2d(top), nn.ReLU(True)]
        c = top
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, self.top, self.base, self.base))


class Discriminator(nn.Module):
    """images (N, C, H, W) -> (N,) real-vs-fake logits (DCGAN) or critic scores (WGAN-GP).

    WGAN-GP's gradient penalty is per-sample, so its critic uses LayerNorm-free plain convs
    instead of BatchNorm (Gulrajani et al. 2017, section 4).
    """

    def __init__(self, image_shape: tuple[int, int, int], width: int = 64, batch_norm: bool = True):
        super().__init__()
        height, _, channels = image_shape
        base, steps = _upsampling_plan(height)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(steps):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(c * 2)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * base * base, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def latents(n: int, latent_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Standard normal latents, the prior every reference GAN is trained with."""
    return torch.randn(n, latent_dim, generator=generator)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), rounding to the nearest level."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] on random interpolates of real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def train_gan(
    real_images: np.ndarray,
    checkpoint_path: str | Path,
    loss: str = "dcgan",
    steps: int = 2000,
    batch_size: int = 64,
    latent_dim: int = 64,
    width: int = 64,
    lr: float = 2e-4,
    critic_steps: int = 1,
    disc_width: int | None = None,
    gp_weight: float = 10.0,
    checkpoint_every: int = 500,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict]:
    """Train a GAN on uint8 (N, H, W, C) images; resume from ``checkpoint_path`` if it exists.

    Every ``checkpoint_every`` steps the networks, optimisers, the step count, the loss history
    and every random-number state are written atomically, so a killed run resumes where it
    left off and reaches the same weights as an uninterrupted one (on the CPU); a grid of 64
    samples from fixed latents goes to ``samples_step<N>.png`` beside the checkpoint.
    Returns the loss history (one dict per step: step, d_loss, g_loss). ``disc_width``: the
    discriminator's width (its first layer's channels), ``width`` when None; Arora & Zhang's
    support-vs-discriminator-size experiment varies it alone.
    """
    if loss not in LOSSES:
        raise AuditInputError(f"gan loss: unknown '{loss}', expected one of {LOSSES}")
    image_shape = tuple(real_images.shape[1:])
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    gen = Generator(image_shape, latent_dim, width).to(device)
    disc_width = width if disc_width is None else disc_width
    disc = Discriminator(image_shape, disc_width, batch_norm=(loss == "dcgan")).to(device)
    betas = (0.5, 0.999) if loss == "dcgan" else (0.5, 0.9)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas)
    history: list[dict] = []
    start = 0
    checkpoint_path = Path(checkpoint_path)
    config = {"image_shape": list(image_shape), "latent_dim": latent_dim, "width": width, "disc_width": disc_width,
              "loss": loss,
              "batch_size": batch_size, "lr": lr, "critic_steps": critic_steps, "gp_weight": gp_weight,
              "seed": seed, "n_train": int(real_images.shape[0])}
    state = torch.load(checkpoint_path, map_location=device, weights_only=False) if checkpoint_path.is_file() else None
    # a checkpoint of another configuration is not a state of this run: start afresh
    if state is not None and state["config"] == config and state["step"] <= steps:
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history, start = state["history"], state["step"]

    fixed_latents = latents(64, latent_dim, torch.Generator().manual_seed(seed + 1))

    def save(step: int) -> None:
        from audit.plots import save_grid

        gen.eval()
        with torch.no_grad():
            save_grid(to_uint8(gen(fixed_latents.to(device))), checkpoint_path.parent / f"samples_step{step}.png")
        save_torch(checkpoint_path, {"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                                     "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng.get_state(),
                                     "torch_rng": torch.get_rng_state(), "history": history, "step": step,
                                     "config": config})

    from audit.models.classifier import to_tensor

    step_iter = range(start, steps)
    if progress:
        from tqdm import tqdm

        step_iter = tqdm(step_iter, desc=f"train {loss}", initial=start, total=steps, mininterval=5)
    n = real_images.shape[0]
    for step in step_iter:
        gen.train()
        disc.train()
        for _ in range(critic_steps):
            idx = np.sort(torch.randint(0, n, (batch_size,), generator=rng).numpy())
            real = to_tensor(real_images[idx], device)
            fake = gen(latents(batch_size, latent_dim, rng).to(device)).detach()
            if loss == "dcgan":
                d_loss = (F.binary_cross_entropy_with_logits(disc(real), torch.ones(batch_size, device=device))
                          + F.binary_cross_entropy_with_logits(disc(fake), torch.zeros(batch_size, device=device)))
            else:
                d_loss = disc(fake).mean() - disc(real).mean() + gp_weight * gradient_penalty(disc, real, fake, rng)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        scores = disc(gen(latents(batch_size, latent_dim, rng).to(device)))
        # non-saturating generator loss (Goodfellow et al. 2014) for DCGAN
        g_loss = (F.binary_cross_entropy_with_logits(scores, torch.ones(batch_size, device=device))
                  if loss == "dcgan" else -scores.mean())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        history.append({"step": step + 1, "d_loss": d_loss.item(), "g_loss": g_loss.item()})
        if progress and (step + 1) % 100 == 0:
            step_iter.set_postfix(d_loss=f"{d_loss.item():.3f}", g_loss=f"{g_loss.item():.3f}")
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            save(step + 1)
    return history


def latent_paths(ends: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Straight lines between pairs of latents: ``ends`` (2, R, latent_dim) -> (R * n_steps,
    latent_dim), row-major (row i walks from ends[0, i] to ends[1, i])."""
    t = torch.linspace(0, 1, n_steps).view(1, n_steps, 1)
    path = (1 - t) * ends[0][:, None, :] + t * ends[1][:, None, :]
    return path.reshape(-1, ends.shape[-1])


@torch.no_grad()
def interpolation_strips(generator: Generator, n_rows: int = 8, n_steps: int = 10, seed: int = 0) -> np.ndarray:
    """Images along straight lines between pairs of random latents (Radford et al. 2016, sec. 6.1).

    Returns uint8 (n_rows * n_steps, H, W, C), row-major: row i walks from latent a_i to b_i.
    Smooth rows suggest the generator learned a continuous map; sharp jumps or repeated
    images along a row suggest memorisation or collapse.
    """
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    ends = latents(2 * n_rows, generator.latent_dim, rng).view(2, n_rows, -1)
    return to_uint8(generator(latent_paths(ends, n_steps).to(device)))


def save_generator(checkpoint_path: str | Path, generator_path: str | Path) -> None:
    """Keep only the generator (weights and architecture) of a training checkpoint."""
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    save_torch(generator_path, {"generator": state["generator"], "config": state["config"], "step": state["step"]})


def load_generator(checkpoint_path: str | Path, device: str = "cpu") -> Generator:
    """The generator of a file written by :func:`train_gan` or :func:`save_generator`, in eval mode."""
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.is_file():
        raise AuditInputError(f"{checkpoint_path}: GAN checkpoint not found")
    state = torch.load(checkpoint_path, map_location=device, weights_only=False)
    config = state["config"]
    gen = Generator(tuple(config["image_shape"]), config["latent_dim"], config["width"])
    gen.load_state_dict(state["generator"])
    return gen.to(device).eval()
