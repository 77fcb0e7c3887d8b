"""`AutoencoderKLTrainer`: its XLA train step against the objective's gradients worked out by hand, saving, resuming."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from small_models import SHAPE, make_trainer

from tfvae.run.resumable_run import ResumableRun


def trainable(trainer):
    return trainer.generator_variables + trainer.discriminator.trainable_variables


def expected_step(trainer, x, step, learning_rate=1e-3):
    """The changes of the weights in one SGD step of both optimizers, from the objective's gradients one by one."""
    objective, discriminator = trainer.objective, trainer.discriminator
    x = 2 * tf.constant(x) - 1
    generator_variables = trainer.generator_variables
    with tf.GradientTape(persistent=True) as tape:
        posterior, x_hat = trainer.sampled_reconstruction(x, training=True)
        nll = objective.nll(objective.reconstruction_error(x, x_hat))
        kl = objective.kl(posterior)
        generator_loss = objective.generator_loss(discriminator(x_hat, training=True))
    kernel = trainer.autoencoder.decoder.conv_out.kernel  # the layer that makes the images
    nll_norm, generator_norm = (np.linalg.norm(tape.gradient(loss, kernel)) for loss in (nll, generator_loss))
    started = float(step >= objective.discriminator_start)
    adaptive_weight = 0.5 * min(nll_norm / (generator_norm + 1e-4), 1e4)
    weight = started * adaptive_weight
    gradients = [[0.0 if g is None else g for g in tape.gradient(loss, generator_variables)]
                 for loss in (nll, kl, generator_loss)]
    generator = [-learning_rate * (g_nll + 1e-2 * g_kl + weight * g_gen)
                 for g_nll, g_kl, g_gen in zip(*gradients, strict=True)]
    with tf.GradientTape() as tape:
        hinge = objective.discriminator_loss(discriminator(x, training=True),
                                             discriminator(tf.stop_gradient(x_hat), training=True))
    discriminator_gradients = tape.gradient(hinge, discriminator.trainable_variables)
    critic = [-learning_rate * started * g for g in discriminator_gradients]
    return generator, critic, adaptive_weight


def test_xla_steps_update_both_networks_as_the_objective_says(rng):
    """Before `discriminator_start` the GAN terms weigh 0: the discriminator stays, the decoder ignores it."""
    trainer, reference = make_trainer(discriminator_start=1), make_trainer(discriminator_start=1)
    for step in range(2):
        x = rng.random((4, *SHAPE)).astype(np.float32)
        reference.set_weights(trainer.get_weights())
        before = [variable.numpy() for variable in trainable(trainer)]
        expected_generator, expected_critic, adaptive_weight = expected_step(reference, x, step)
        logs = trainer.train_on_batch(x, return_dict=True)
        assert logs["adaptive_weight"] == pytest.approx(adaptive_weight, rel=1e-3)
        for variable, old, change in zip(trainable(trainer), before, expected_generator + expected_critic, strict=True):
            tolerance = 1e-3 * np.max(np.abs(change)) + 2 * np.max(np.spacing(np.abs(old)))  # and float32 rounding
            np.testing.assert_allclose(variable.numpy() - old, change, atol=tolerance, err_msg=variable.path)
    assert float(trainer.objective.logvar) != 0.0, "the log-variance learns"
    assert int(trainer.optimizer.iterations) == int(trainer.discriminator_optimizer.iterations) == 2


def test_a_seeded_fit_is_the_same_with_and_without_xla(rng):
    """`jit_compile="auto"` picks the graph on CPU and XLA on accelerators: a seed trains the same way on both."""
    x = rng.random((8, *SHAPE)).astype(np.float32)
    histories, weights = {}, {}
    for jit_compile in (False, True):
        trainer = make_trainer(discriminator_start=2, optimizer=keras.optimizers.Adam, jit_compile=jit_compile)
        history = trainer.fit(x, batch_size=4, epochs=3, shuffle=False, verbose=0).history
        names = ("loss", "reconstruction", "kl", "discriminator_loss")
        histories[jit_compile] = {name: history[name] for name in names}
        weights[jit_compile] = [variable.numpy() for variable in trainable(trainer)]
    for name, values in histories[True].items():
        np.testing.assert_allclose(values, histories[False][name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert len(set(np.round(histories[True]["loss"], 4))) == 3, "the loss must move for the comparison to mean anything"
    for with_xla, without in zip(weights[True], weights[False], strict=True):
        np.testing.assert_allclose(with_xla, without, rtol=1e-3, atol=1e-5)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


class StateAtEpochBegin(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.state = [variable.numpy() for variable in state_of(self.model)]


def state_of(trainer):
    return [*trainer.weights, *trainer.optimizer.variables, *trainer.discriminator_optimizer.variables]


def test_a_resumed_run_restores_both_optimizers_and_the_trainer_saves_as_keras(tmp_path, rng):
    """Without XLA, to keep the test short: the step is the same function."""
    x = rng.random((8, *SHAPE)).astype(np.float32)
    interrupted = make_trainer(optimizer=keras.optimizers.Adam, learning_rate=1e-3, jit_compile=False)
    run_dir = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(x, batch_size=4, epochs=2, verbose=0,
                        callbacks=[ResumableRun(run_dir, "reconstruction", "min"), Interrupt()])
    resumed = make_trainer(optimizer=keras.optimizers.Adam, learning_rate=1e-3, jit_compile=False)
    seen = StateAtEpochBegin()
    history = resumed.fit(x, batch_size=4, epochs=2, verbose=0,
                          callbacks=[ResumableRun(run_dir, "reconstruction", "min"), seen])
    assert history.epoch == [1]
    for restored, saved in zip(seen.state, state_of(interrupted), strict=True):
        np.testing.assert_array_equal(restored, saved.numpy(), err_msg=saved.path)
    assert int(resumed.optimizer.iterations) == int(resumed.discriminator_optimizer.iterations) == 4

    resumed.save(tmp_path / "trainer.keras")
    loaded = keras.models.load_model(tmp_path / "trainer.keras", safe_mode=True)
    assert json.dumps(loaded.get_config()) == json.dumps(resumed.get_config())
    for restored, saved in zip(state_of(loaded), state_of(resumed), strict=True):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_allclose(loaded.reconstruct(x[:2]), resumed.reconstruct(x[:2]), atol=1e-6)


def test_reconstructions_are_images_in_the_unit_interval(rng):
    trainer = make_trainer()
    for variable in trainer.autoencoder.decoder.trainable_variables[-2:]:  # the last convolution: outputs far off
        variable.assign(3.0 * tf.ones_like(variable))
    x = rng.random((2, *SHAPE)).astype(np.float32)
    decoded = (trainer.autoencoder.decode(trainer.autoencoder.encode(2 * x - 1).mode()).numpy() + 1) / 2
    assert decoded.max() > 1, "the decoder puts values outside [0, 1]"
    np.testing.assert_allclose(trainer.reconstruct(x), np.clip(decoded, 0, 1), atol=1e-6)
    assert 0 <= np.min(trainer(x)) and np.max(trainer(x)) <= 1
