"""Samplers for the reference GANs trained in the DAG (:mod:`audit.models.gan`)."""

from __future__ import annotations

import numpy as np

from audit.gans import SampleBatch, Sampler, SamplerContext

BATCH = 500


def make_trained(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    import torch

    from audit.models.gan import latents, load_generator, to_uint8

    generator = load_generator(context.checkpoint, context.device)

    @torch.no_grad()
    def sample(n: int, seed: int) -> SampleBatch:
        rng = torch.Generator().manual_seed(seed)
        chunks = [to_uint8(generator(latents(min(BATCH, n - s), generator.latent_dim, rng).to(context.device)))
                  for s in range(0, n, BATCH)]
        return SampleBatch(np.concatenate(chunks))

    return Sampler(name, sample)
