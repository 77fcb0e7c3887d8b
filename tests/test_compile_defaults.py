"""`VAE.compile`'s speed defaults, validation as one graph, and static training batches in `tfvae train`."""

import dataclasses
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context

from tfvae import VAE, data, networks
from tfvae._keras.compiled_steps import graph_optimizer_off
from tfvae.run import training
from tfvae.vae import STEPS_PER_EXECUTION

DATA_SIZE, LATENT_SIZE, HIDDEN = 16, 3, 8


def make_vae():
    keras.utils.set_random_seed(0)
    return VAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
               networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), seed=0)


def binary(rng, count):
    return (rng.random((count, DATA_SIZE)) < 0.3).astype(np.float32)


def test_compile_runs_several_steps_per_execution_unless_told_otherwise(tmp_path):
    model = make_vae()
    model.compile(keras.optimizers.Adam(1e-3))
    assert STEPS_PER_EXECUTION > 1 and model.steps_per_execution == STEPS_PER_EXECUTION
    model.save(tmp_path / "default.keras")
    assert keras.models.load_model(tmp_path / "default.keras").steps_per_execution == STEPS_PER_EXECUTION
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=1)
    assert model.steps_per_execution == 1
    model.save(tmp_path / "one.keras")
    assert keras.models.load_model(tmp_path / "one.keras").steps_per_execution == 1


class CountingVAE(VAE):
    """Counts the Python runs of `train_step`: one per trace."""

    traces = 0

    def train_step(self, data):
        CountingVAE.traces += 1
        return super().train_step(data)


def test_the_train_step_is_traced_once(rng):
    keras.utils.set_random_seed(0)
    model = CountingVAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
                        networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(binary(rng, 250), batch_size=100, epochs=2, verbose=0)
    assert CountingVAE.traces == 1, "the optimizer's slots exist before the trace, which therefore runs once"


def grappler_is_off():
    """Whether a function this thread calls now for the first time skips grappler (its call options say so)."""
    options = context.context().function_call_options.config_proto_serialized
    return config_pb2.ConfigProto.FromString(options).graph_options.rewrite_options.disable_meta_optimizer


class GrapplerRecordingVAE(VAE):
    """Records, when Keras traces each step, whether the function being built will be optimized by grappler."""

    def train_step(self, data):
        self.grappler_off_in = {**getattr(self, "grappler_off_in", {}), "train": grappler_is_off()}
        return super().train_step(data)

    def test_step(self, data):
        self.grappler_off_in = {**getattr(self, "grappler_off_in", {}), "test": grappler_is_off()}
        return super().test_step(data)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_grappler_is_skipped_for_the_steps_of_an_xla_model_only(rng, jit_compile):
    model = GrapplerRecordingVAE(networks.gaussian_mlp_encoder(DATA_SIZE, LATENT_SIZE, HIDDEN),
                                 networks.bernoulli_mlp_decoder(LATENT_SIZE, DATA_SIZE, HIDDEN))
    model.compile(jit_compile=jit_compile)
    assert not grappler_is_off()
    model.fit(binary(rng, 250), batch_size=100, epochs=1, validation_data=(binary(rng, 30),), verbose=0)
    on_gpu = bool(tf.config.list_logical_devices("GPU"))  # grappler's GPU layouts may speed validation up there
    assert model.grappler_off_in == {"train": jit_compile, "test": jit_compile and not on_gpu}
    assert not grappler_is_off(), "the thread's call options are restored after each call"


def test_graph_optimizer_off_changes_only_this_thread_and_only_inside():
    seen_by_other_thread = []
    with graph_optimizer_off():
        assert grappler_is_off()
        other = threading.Thread(target=lambda: seen_by_other_thread.append(grappler_is_off()))
        other.start()
        other.join()
    assert seen_by_other_thread == [False]
    assert not grappler_is_off()
    with pytest.raises(RuntimeError), graph_optimizer_off():
        raise RuntimeError("the step failed")
    assert not grappler_is_off()


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_a_last_partial_batch_counts_with_its_own_size(rng, jit_compile):
    """250 examples in batches of 100: three steps in one execution, the KL metric the mean over all 250."""
    x, validation = binary(rng, 250), binary(rng, 130)
    model = make_vae()
    model.compile(keras.optimizers.SGD(0.0), jit_compile=jit_compile)  # the weights stay, so the KL is known
    history = model.fit(x, batch_size=100, epochs=1, shuffle=False, validation_data=(validation,), verbose=0).history
    assert int(model.optimizer.iterations) == 3
    np.testing.assert_allclose(history["kl"][0], np.mean(model.encode(x).kl()), rtol=1e-5)
    np.testing.assert_allclose(history["val_kl"][0], np.mean(model.encode(validation).kl()), rtol=1e-5)
    assert model.jit_compile == jit_compile, "validation runs as a graph without changing the train step"


def test_a_given_number_of_steps_runs_exactly_those_steps(rng):
    """Keras 3 runs whole groups of `steps_per_execution` steps: on endless data 13 steps an epoch would train 20."""
    x = binary(rng, 80)
    batches = tf.data.Dataset.from_tensor_slices(x).batch(8).repeat()
    model = make_vae()
    model.compile(keras.optimizers.SGD(0.0))  # the weights stay, so the KL of the batches is known
    history = model.fit(batches, steps_per_epoch=13, epochs=2, validation_data=batches, validation_steps=3,
                        verbose=0).history
    assert int(model.optimizer.iterations) == 26
    np.testing.assert_allclose(history["val_kl"], np.mean(model.encode(x[:24]).kl()), rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(batches, steps=3, return_dict=True, verbose=0)["kl"],
                               np.mean(model.encode(x[:24]).kl()), rtol=1e-5)
    assert model.predict(batches, steps=3, verbose=0).shape == (24, DATA_SIZE)
    assert model.steps_per_execution == STEPS_PER_EXECUTION, "the compiled count is back for the calls after"
    calls = CountCalls(lambda model: model.evaluate(batches, steps=3, verbose=0))
    model.fit(batches, steps_per_epoch=20, epochs=2, validation_steps=3, callbacks=[calls], verbose=0)
    assert int(model.optimizer.iterations) == 66
    assert calls.train_calls == [2, 2], "10 steps a call: validation_steps without validation data do not count"
    train_function = model.train_function
    model.evaluate(batches, steps=3, verbose=0)
    assert model.train_function is train_function, "functions traced for the compiled count are kept"


class CountCalls(keras.callbacks.Callback):
    """Counts the train function's calls in each epoch, and calls `at_epoch_end(model)` at each epoch's end."""

    def __init__(self, at_epoch_end):
        super().__init__()
        self.at_epoch_end, self.train_calls = at_epoch_end, []

    def on_epoch_begin(self, epoch, logs=None):
        self.train_calls.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.train_calls[-1] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end(self.model)


def test_training_batches_have_one_static_size(tmp_path, rng):
    images = rng.random((50, 4, 4, 1)).astype(np.float32)
    dataset = data.pipeline(images, batch_size=16, drop_remainder=True)
    assert dataset.element_spec.shape.as_list() == [16, 16]
    assert [len(batch) for batch in dataset] == [16, 16, 16]
    assert data.pipeline(images, batch_size=16).element_spec.shape.as_list() == [None, 16]

    np.save(tmp_path / "images.npy", images)
    config = training.TrainConfig(dataset=str(tmp_path / "images.npy"), epochs=1, batch_size=16, latent_size=2,
                                  hidden_units=8, validation_split=0.2, output_dir=str(tmp_path / "run"),
                                  export_root=str(tmp_path / "exports"), jit_compile="off", verbose=0)
    model, history, _ = training.train(config)
    assert int(model.optimizer.iterations) == 2, "40 training examples make 2 batches of 16; the last 8 wait"
    assert np.isfinite(history.history["val_elbo"][0]), "the 10 validation examples are one partial batch"
    small, _, _ = training.train(dataclasses.replace(config, batch_size=64, output_dir=str(tmp_path / "small")))
    assert int(small.optimizer.iterations) == 1, "a training split smaller than a batch is one batch"
