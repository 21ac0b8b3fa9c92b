"""Reference GANs: a run killed mid-training resumes to the same weights; sizes; interpolations."""

import numpy as np
import pytest
import torch

import audit.models.gan as gan_module
from audit.io import AuditInputError
from audit.models.gan import Discriminator, Generator, interpolation_strips, load_generator, train_gan


class Killed(Exception):
    pass


@pytest.mark.parametrize("loss", ["dcgan", "wgan-gp"])
def test_killed_run_resumes_to_identical_weights(tmp_path, monkeypatch, digits_prepared, loss):
    images, _ = digits_prepared.subset("train")
    options = dict(loss=loss, steps=30, checkpoint_every=10, width=16, latent_dim=8, batch_size=16, seed=5,
                   progress=False, critic_steps=2 if loss == "wgan-gp" else 1)
    train_gan(images, tmp_path / "straight.pt", **options)

    calls = {"n": 0}
    real_latents = gan_module.latents

    def dying_latents(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 45:  # dies during step ~16-23, after the checkpoint at step 10
            raise Killed
        return real_latents(*args, **kwargs)

    monkeypatch.setattr(gan_module, "latents", dying_latents)
    with pytest.raises(Killed):
        train_gan(images, tmp_path / "resumed.pt", **options)
    assert torch.load(tmp_path / "resumed.pt", weights_only=False)["step"] in (10, 20)
    monkeypatch.setattr(gan_module, "latents", real_latents)
    history = train_gan(images, tmp_path / "resumed.pt", **options)
    assert len(history) == 30

    straight = torch.load(tmp_path / "straight.pt", weights_only=False)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)
    for part in ("generator", "discriminator"):
        for key, value in straight[part].items():
            torch.testing.assert_close(resumed[part][key], value, rtol=0, atol=0, msg=f"{part}.{key}")


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path, digits_prepared):
    images, _ = digits_prepared.subset("train")
    train_gan(images, tmp_path / "c.pt", steps=5, width=8, latent_dim=4, batch_size=8, progress=False)
    history = train_gan(images, tmp_path / "c.pt", steps=5, width=8, latent_dim=4, batch_size=8, lr=1e-3,
                        progress=False)
    assert len(history) == 5 and torch.load(tmp_path / "c.pt", weights_only=False)["config"]["lr"] == 1e-3


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_networks_fit_every_supported_size(shape):
    generator, critic = Generator(shape, latent_dim=8, width=8), Discriminator(shape, width=8)
    generator.eval()
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, shape[2], shape[0], shape[1])
    assert critic(images).shape == (2,)


def test_unsupported_size_is_a_one_line_error():
    with pytest.raises(AuditInputError, match="4 or 7 times a power of two"):
        Generator((10, 10, 1))


def test_interpolation_endpoints_are_the_sampled_latents(tmp_path, digits_prepared):
    images, _ = digits_prepared.subset("train")
    train_gan(images, tmp_path / "g.pt", steps=3, width=8, latent_dim=4, batch_size=8, progress=False)
    generator = load_generator(tmp_path / "g.pt")
    strips = interpolation_strips(generator, n_rows=3, n_steps=5, seed=1)
    assert strips.shape == (15, 8, 8, 1) and strips.dtype == np.uint8
    np.testing.assert_array_equal(strips, interpolation_strips(generator, n_rows=3, n_steps=5, seed=1))
    # the first column decodes the row's start latent a_i
    rng = torch.Generator().manual_seed(1)
    starts = gan_module.latents(6, 4, rng)[:3]
    with torch.no_grad():
        np.testing.assert_array_equal(strips[::5], gan_module.to_uint8(generator(starts)))
