"""Fine-tuning `AutoencoderKLCogVideoX` with `AutoencoderKLTrainer` and latent diffusion's objective, on clips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import AutoencoderKLCogVideoX, InputError
from tfvae.autoencoder_kl import AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator

# Two blocks: f = 2 and r = 2, so clips of 5 frames (1 + 2r) keep their length through encode and decode.
TINY = dict(block_out_channels=(8, 8), latent_channels=2, layers_per_block=1, norm_num_groups=4,
            temporal_compression_ratio=2, down_block_types=("CogVideoXDownBlock3D",) * 2,
            up_block_types=("CogVideoXUpBlock3D",) * 2)


def clips(rng, count=4, frames=5, size=16):
    """Smooth clips in [0, 1]: a gradient that drifts from frame to frame, with a little noise."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    drift = np.linspace(0, 0.3, frames, dtype=np.float32)[:, None, None, None]
    base = 0.5 * (ramp[None, :, None, None] + ramp[None, None, :, None]) * np.ones((1, 1, 1, 3), np.float32)
    noise = 0.05 * rng.random((count, frames, size, size, 3)).astype(np.float32)
    return np.clip(0.6 * base + drift + noise, 0, 1)


def make_trainer(discriminator=None, run_eagerly=False, **objective):
    trainer = AutoencoderKLTrainer(AutoencoderKLCogVideoX(**TINY, seed=0),
                                   LatentDiffusionLoss(kl_weight=1e-6, **objective), discriminator)
    trainer.compile(keras.optimizers.Adam(2e-3), jit_compile=False, run_eagerly=run_eagerly)
    return trainer


def test_fit_on_clips_lowers_the_loss_moves_the_weights_and_round_trips_as_keras(tmp_path, rng):
    x = clips(rng)
    trainer = make_trainer()
    before = [variable.numpy() for variable in trainer.generator_variables]
    history = trainer.fit(x, batch_size=2, epochs=10, verbose=0).history  # 20 steps
    assert history["reconstruction"][-1] < 0.8 * history["reconstruction"][0], history["reconstruction"]
    assert history["loss"][-1] < history["loss"][0]
    unmoved = [variable.path for variable, old in zip(trainer.generator_variables, before, strict=True)
               if np.array_equal(variable.numpy(), old)]
    assert not unmoved, f"every weight trains: {unmoved}"
    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.models.load_model(tmp_path / "trainer.keras")
    assert isinstance(loaded.autoencoder, AutoencoderKLCogVideoX)
    assert loaded.reconstruct(x[:1]).shape == (1, 5, 16, 16, 3)
    np.testing.assert_allclose(loaded.reconstruct(x[:1]), trainer.reconstruct(x[:1]), atol=1e-6)
    assert float(loaded.objective.logvar) == float(trainer.objective.logvar)
    assert int(loaded.optimizer.iterations) == 20


def test_a_2d_discriminator_judges_the_frames_and_the_adaptive_weight_reads_the_causal_conv_out(rng):
    trainer = make_trainer(PatchDiscriminator(filters=4, num_layers=1), run_eagerly=True, discriminator_start=0)
    assert trainer.decoder_kernel() is trainer.autoencoder.decoder.conv_out.conv.kernel
    kernels = [variable for variable in trainer.discriminator.trainable_variables if "kernel" in variable.path]
    before = [kernel.numpy() for kernel in kernels]
    logs = trainer.train_on_batch(clips(rng, count=2), return_dict=True)
    assert np.isfinite(logs["adaptive_weight"]) and logs["adaptive_weight"] > 0
    assert np.isfinite(logs["discriminator_loss"]) and np.isfinite(logs["generator_loss"])
    assert all(not np.array_equal(kernel.numpy(), old) for kernel, old in zip(kernels, before, strict=True))


def test_a_perceptual_distance_is_added_to_each_frame_of_a_clip():
    x = np.zeros((2, 3, 4, 4, 1), np.float32)
    x_hat = x + np.arange(3, dtype=np.float32)[None, :, None, None, None]  # frame t is off by t everywhere
    loss = LatentDiffusionLoss(perceptual_loss=lambda a, b: tf.reduce_sum(b - a, axis=[1, 2, 3]), perceptual_weight=1)
    expected = x_hat + 16 * x_hat  # |x - x_hat| plus the frame's summed difference over its 16 pixels
    np.testing.assert_allclose(loss.reconstruction_error(x, x_hat), expected)


@pytest.mark.parametrize("frames", [3, 4])
def test_clips_whose_reconstruction_has_another_length_are_refused(rng, frames):
    with pytest.raises(InputError, match=rf"x holds clips of {frames} frames, but the autoencoder "
                       r"\(temporal_compression_ratio 2\) reconstructs only clips of 1 \+ 4k frames \(1, 5, 9, 13"):
        make_trainer().fit(clips(rng, frames=frames), batch_size=2, verbose=0)


def test_images_are_not_clips(rng):
    with pytest.raises(InputError, match=r"x has shape \(2, 16, 16, 3\): one example without a batch axis"):
        make_trainer().fit(rng.random((2, 16, 16, 3)).astype(np.float32), verbose=0)
