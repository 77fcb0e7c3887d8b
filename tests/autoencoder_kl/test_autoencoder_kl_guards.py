"""What keeps an `AutoencoderKL` and its training sound: the log-variance clamp, a float32 attention softmax under
mixed precision, and the adaptive weight taken where latent-diffusion takes it (the decoder's last kernel)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator, blocks

SHAPE = (16, 16, 3)


def tiny_autoencoder(**kwargs):
    keras.utils.set_random_seed(3)
    return AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2, seed=3, **kwargs)


def test_the_posterior_log_variance_is_clamped_to_minus_30_and_20():
    model = tiny_autoencoder()
    model.quant_conv.kernel.assign(tf.zeros_like(model.quant_conv.kernel))
    model.quant_conv.bias.assign([0.0, 0.0, 100.0, -100.0])  # the moments: means 0, log-variances 100 and -100
    x = np.zeros((1, *SHAPE), np.float32)
    moments, logvar = np.asarray(model.encode_moments(x)), np.asarray(model.encode(x).logvar)
    assert np.all(moments[..., 2:] == [100, -100]), "the encoder gives log-variances of 100 and -100"
    assert np.all(logvar == [20, -30])
    assert np.isfinite(model.sample_posterior(model.encode(x))).all()


def test_the_attention_softmax_runs_in_float32_under_mixed_precision():
    layer = blocks.AttentionBlock(groups=4, dtype="mixed_float16")
    layer.build((None, 4, 4, 8))
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((1, 4, 4, 8), tf.float16)).graph
    softmaxes = [op for op in graph.get_operations() if op.type == "Softmax"]
    assert softmaxes and all(op.inputs[0].dtype == tf.float32 for op in softmaxes)
    assert layer(np.ones((1, 4, 4, 8), np.float16)).dtype == tf.float16


def test_the_adaptive_weight_compares_the_gradients_at_the_kernel_that_makes_the_images(rng):
    """`lambda = 0.5 * ||d nll / d W|| / (||d L_gen / d W|| + 1e-4)` with W the kernel of the decoder's `conv_out`."""
    keras.utils.set_random_seed(3)
    trainer = AutoencoderKLTrainer(
        tiny_autoencoder(mid_block_add_attention=False), LatentDiffusionLoss(discriminator_start=0),
        PatchDiscriminator(filters=4, num_layers=2),
    )
    trainer.build((None, *SHAPE))
    trainer.compile(keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3), jit_compile=False)
    x = rng.random((2, *SHAPE)).astype(np.float32)
    noise_state = trainer.autoencoder.seed_generator.state.numpy()
    kernel = trainer.autoencoder.decoder.conv_out.kernel
    with tf.GradientTape(persistent=True) as tape:
        _, x_hat = trainer.sampled_reconstruction(2 * x - 1, training=True)
        nll = trainer.objective.nll(trainer.objective.reconstruction_error(2 * x - 1, x_hat))
        generator_loss = trainer.objective.generator_loss(trainer.discriminator(x_hat, training=True))
    norms = [np.linalg.norm(tape.gradient(loss, kernel)) for loss in (nll, generator_loss)]
    trainer.autoencoder.seed_generator.state.assign(noise_state)  # the train step draws the same noise
    logs = trainer.train_on_batch(x, return_dict=True)
    assert logs["adaptive_weight"] == pytest.approx(0.5 * norms[0] / (norms[1] + 1e-4), rel=1e-4)
