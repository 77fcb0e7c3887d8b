"""`AutoencoderKLTrainer`: its XLA train step against the objective's gradients worked out by hand, saving, resuming."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.autoencoder_kl import AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator
from tfvae.layers import DiagonalGaussianLambda

SHAPE = (16, 16, 3)


@keras.saving.register_keras_serializable(package="tfvae_tests")
class TinyAutoencoder(keras.Model):
    def __init__(self, latent_channels=2, **kwargs):
        super().__init__(**kwargs)
        self.latent_channels = latent_channels
        self.encoder = keras.Sequential([keras.layers.Conv2D(8, 3, 2, padding="same", activation="silu"),
                                         keras.layers.Conv2D(2 * latent_channels, 3, padding="same")], name="encoder")
        self.decoder = keras.Sequential([keras.layers.Conv2DTranspose(8, 3, 2, padding="same", activation="silu"),
                                         keras.layers.Conv2D(3, 3, padding="same", name="conv_out")], name="decoder")
        self.posterior = DiagonalGaussianLambda()

    def build(self, shape):
        self.encoder.build(shape)
        self.decoder.build((None, shape[1] // 2, shape[2] // 2, self.latent_channels))

    def encode(self, x, training=None):
        return self.posterior(self.encoder(x, training=training))

    def decode(self, z, training=None):
        return self.decoder(z, training=training)

    def get_config(self):
        return {**super().get_config(), "latent_channels": self.latent_channels}


def tiny_autoencoder():
    return TinyAutoencoder()


def make_trainer(discriminator_start=0, seed=3, learning_rate=0.1):
    keras.utils.set_random_seed(seed)
    trainer = AutoencoderKLTrainer(
        tiny_autoencoder(),
        LatentDiffusionLoss(kl_weight=1e-2, discriminator_start=discriminator_start, discriminator_weight=0.5),
        PatchDiscriminator(filters=4, num_layers=2),
        seed=seed,
    )
    trainer.build((None, *SHAPE))
    trainer.compile(keras.optimizers.SGD(learning_rate), keras.optimizers.SGD(learning_rate), jit_compile=True)
    return trainer


def expected_step(trainer, x, step, learning_rate=0.1):
    """The weights after one SGD step of both optimizers, from the objective's gradients taken one by one."""
    objective, discriminator = trainer.objective, trainer.discriminator
    x = 2 * tf.constant(x) - 1
    generator_variables = trainer.generator_variables
    with tf.GradientTape(persistent=True) as tape:
        posterior, x_hat = trainer.sampled_reconstruction(x, training=True)
        nll = objective.nll(objective.reconstruction_error(x, x_hat))
        kl = objective.kl(posterior)
        generator_loss = objective.generator_loss(discriminator(x_hat, training=True))
    kernel = trainer.decoder_kernel()
    nll_norm, generator_norm = (np.linalg.norm(tape.gradient(loss, kernel)) for loss in (nll, generator_loss))
    started = float(step >= objective.discriminator_start)
    adaptive_weight = 0.5 * min(nll_norm / (generator_norm + 1e-4), 1e4)
    weight = started * adaptive_weight
    gradients = [[0.0 if g is None else g for g in tape.gradient(loss, generator_variables)]
                 for loss in (nll, kl, generator_loss)]
    generator = [v.numpy() - learning_rate * (g_nll + 1e-2 * g_kl + weight * g_gen)
                 for v, g_nll, g_kl, g_gen in zip(generator_variables, *gradients, strict=True)]
    with tf.GradientTape() as tape:
        hinge = objective.discriminator_loss(discriminator(x, training=True),
                                             discriminator(tf.stop_gradient(x_hat), training=True))
    discriminator_gradients = tape.gradient(hinge, discriminator.trainable_variables)
    critic = [v.numpy() - learning_rate * started * g
              for v, g in zip(discriminator.trainable_variables, discriminator_gradients, strict=True)]
    return generator, critic, adaptive_weight


def test_xla_steps_update_both_networks_as_the_objective_says(rng):
    """Before `discriminator_start` the GAN terms weigh 0: the discriminator stays, the decoder ignores it."""
    trainer, reference = make_trainer(discriminator_start=1), make_trainer(discriminator_start=1)
    for step in range(2):
        x = rng.random((4, *SHAPE)).astype(np.float32)
        reference.set_weights(trainer.get_weights())
        generator, critic, adaptive_weight = expected_step(reference, x, step)
        logs = trainer.train_on_batch(x, return_dict=True)
        assert logs["adaptive_weight"] == pytest.approx(adaptive_weight, rel=1e-3)
        for variable, value in zip(trainer.generator_variables, generator, strict=True):
            np.testing.assert_allclose(variable.numpy(), value, rtol=1e-3, atol=1e-5, err_msg=variable.path)
        for variable, value in zip(trainer.discriminator.trainable_variables, critic, strict=True):
            np.testing.assert_allclose(variable.numpy(), value, rtol=1e-3, atol=1e-5, err_msg=variable.path)
    assert float(trainer.objective.logvar) != 0.0, "the log-variance learns"
    assert int(trainer.optimizer.iterations) == int(trainer.discriminator_optimizer.iterations) == 2
