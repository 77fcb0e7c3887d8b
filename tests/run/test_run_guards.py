"""What guards a run: the stop at a non-finite loss, the noise state a resume restores, the best model by `mode`."""

import math

import keras
import numpy as np
import pytest

from tfvae import VAE, networks
from tfvae.run.callbacks import NonFiniteLossError, StopOnNonFiniteLoss
from tfvae.run.resumable_run import ResumableRun


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_loss_stops_training_at_its_batch(loss):
    guard = StopOnNonFiniteLoss()
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 1e30})
    with pytest.raises(NonFiniteLossError, match=f"became {loss} in epoch 3, batch 5"):
        guard.on_train_batch_end(4, {"loss": np.float32(loss)})


def tiny_vae():
    keras.utils.set_random_seed(0)
    model = VAE(networks.gaussian_mlp_encoder(6, 2, 8), networks.bernoulli_mlp_decoder(2, 6, 8), seed=0)
    model.compile(keras.optimizers.Adam(0.05), jit_compile=False)
    return model


class Stop(Exception):
    pass


class NoiseStates(keras.callbacks.Callback):
    """Records the noise state at each epoch's start and end; raises `Stop` at the start of epoch `stop_at`."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at, self.begin, self.end = stop_at, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.begin[epoch] = self.model.seed_generator.state.numpy()
        if epoch == self.stop_at:
            raise Stop

    def on_epoch_end(self, epoch, logs=None):
        self.end[epoch] = self.model.seed_generator.state.numpy()


def test_a_resumed_run_goes_on_with_the_noise_state_of_its_backup(tmp_path, rng):
    data = rng.integers(0, 2, (48, 6)).astype("float32")
    stopped = NoiseStates(stop_at=2)
    with pytest.raises(Stop):
        tiny_vae().fit(data, epochs=3, batch_size=16, verbose=0, callbacks=[ResumableRun(str(tmp_path)), stopped])
    resumed = NoiseStates()
    tiny_vae().fit(data, epochs=3, batch_size=16, verbose=0, callbacks=[ResumableRun(str(tmp_path)), resumed])
    assert list(resumed.begin) == [2]
    assert not np.array_equal(stopped.end[1], stopped.begin[0]), "training drew noise"
    np.testing.assert_array_equal(resumed.begin[2], stopped.end[1])


class ScriptedMetric(keras.callbacks.Callback):
    """Logs `values[epoch]` as `score` and keeps each epoch's weights (callbacks after it see the logged value)."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize("mode, best", [("min", 1), ("max", 2)])
def test_best_keras_holds_the_epoch_with_the_best_value_for_the_mode(tmp_path, rng, mode, best):
    scripted = ScriptedMetric([2.0, 1.0, 3.0, 1.5])
    tiny_vae().fit(rng.integers(0, 2, (32, 6)).astype("float32"), epochs=4, batch_size=16, verbose=0,
                   callbacks=[scripted, ResumableRun(str(tmp_path), monitor="score", mode=mode)])
    saved = keras.saving.load_model(tmp_path / "best.keras", compile=False).get_weights()
    for weights, expected in zip(saved, scripted.weights[best], strict=True):
        np.testing.assert_array_equal(weights, expected)
