"""`AutoencoderKLTrainer` under a MirroredStrategy on two logical CPUs, and under a MultiWorkerMirroredStrategy of two
worker processes, against one device on the same global batches.

What must be equal follows from the train step (tfvae/autoencoder_kl/trainer.py): the posterior noise is drawn for
the global batch and sliced per replica (`SeedState.sample_posterior`), every loss is a batch mean whose gradient is
divided by the number of replicas, and the adaptive weight comes from the replicas' mean gradients. What the
discriminator `D` computes in training mode also depends on its BatchNorm statistics:

- per replica (`PatchDiscriminator(synchronized=False)`, the default, as latent-diffusion under PyTorch's data
  parallelism), each replica normalizes its own two examples, so `D`'s logits, hence `generator_loss`,
  `discriminator_loss`, the adaptive weight and `D`'s moving statistics, are not one device's. Before
  `discriminator_start` the factor `f` is 0 and none of them reaches a weight: the autoencoder's losses and weights
  (with the log-variance), and `D`'s trainable weights (still at their start), are one device's. From the start on,
  the gradient of `L_gen` carries the per-replica statistics into the autoencoder, so nothing is compared there;
- over the global batch (`synchronized=True`, what `tfvae train --strategy ...` builds), every log and every weight,
  `D`'s moving statistics included, is one device's before and after the start.
"""

import sys

import numpy as np
import pytest
from helpers import run_command, run_workers

from tfvae.run.training import build_model, make_config

STEPS, START = 4, 2  # global batches of 4 images (2 per replica); the discriminator counts from step 2
GENERATOR_LOGS = ("loss", "reconstruction", "nll", "kl", "logvar")
GROUPS = ("generator", "discriminator", "statistics")  # trainable weights of each optimizer; D's moving statistics

# `train(strategy, synchronized)` trains on the same global batches and returns every step's logs and weights as
# `{log name: [steps]}` and `{"<group>/<index>": [steps, ...]}`. Graph mode throughout (Keras turns XLA off under a
# strategy; the one-device run does the same to compare the same computation). The batches are sharded by data, so
# that each of two workers reads its half of every global batch, as one of two replicas on one worker does.
DEFINITIONS = f"""
import sys
import tensorflow as tf
import keras, numpy as np
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator

def train(strategy, synchronized):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        trainer = AutoencoderKLTrainer(
            AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, latent_channels=2,
                          seed=1),
            LatentDiffusionLoss(kl_weight=1e-2, discriminator_start={START}, discriminator_weight=0.5),
            PatchDiscriminator(filters=4, num_layers=2, synchronized=synchronized),
        )
        trainer.compile(keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3), jit_compile=False,
                        steps_per_execution=1)
    groups = {{"generator": trainer.generator_variables, "discriminator": trainer.discriminator.trainable_variables,
              "statistics": trainer.discriminator.non_trainable_variables}}
    steps = []
    def record(batch, logs):
        steps.append(({{name: float(value) for name, value in logs.items()}},
                      {{group: [v.numpy() for v in variables] for group, variables in groups.items()}}))
    images = np.random.default_rng(0).random(({STEPS} * 4, 16, 16, 3)).astype("float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = tf.data.Dataset.from_tensor_slices(images).batch(4).with_options(options)
    trainer.fit(batches, epochs=1, verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=record)])
    out = {{name: np.array([logs[name] for logs, _ in steps]) for name in steps[0][0]}}
    for group, variables in groups.items():
        for index in range(len(variables)):
            out[f"{{group}}/{{index}}"] = np.stack([weights[group][index] for _, weights in steps])
    return out
"""

# One device, then two replicas on two logical CPUs with per-replica and with synchronized BatchNorm, saved as
# `<run>/<log name>` and `<run>/<group>/<index>`.
TRAINING = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + DEFINITIONS + """
runs = {"one_device": train(tf.distribute.get_strategy(), synchronized=False)}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # one for both runs: a second one's collective
assert strategy.num_replicas_in_sync == 2                          # ops would meet the first one's cached shapes
runs["per_replica"] = train(strategy, synchronized=False)
runs["synchronized"] = train(strategy, synchronized=True)
np.savez(sys.argv[1], **{f"{run}/{key}": value for run, out in runs.items() for key, value in out.items()})
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("autoencoder_kl_distribute") / "runs.npz")
    run_command([sys.executable, "-c", TRAINING, path], timeout=600)
    saved = np.load(path)
    runs = {}
    for key in saved.files:
        run, name = key.split("/", 1)
        runs.setdefault(run, {})[name] = saved[key]
    return runs


def weights(run, group):
    return [run[f"{group}/{index}"] for index in range(sum(key.startswith(group + "/") for key in run))]


def assert_same_steps(reference, distributed, logs, groups, steps):
    for name in logs:
        np.testing.assert_allclose(distributed[name][steps], reference[name][steps], rtol=1e-4, err_msg=name)
    for group in groups:
        for index, (expected, actual) in enumerate(zip(weights(reference, group), weights(distributed, group),
                                                       strict=True)):
            # atol: the attention's key bias has a zero gradient in exact arithmetic, so it holds rounding only.
            np.testing.assert_allclose(actual[steps], expected[steps], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{group} {index}")


def test_per_replica_batch_norm_trains_the_autoencoder_as_one_device_until_the_discriminator_starts(runs):
    reference, distributed = runs["one_device"], runs["per_replica"]
    assert len(reference["loss"]) == len(distributed["loss"]) == STEPS
    before = slice(0, START)
    assert_same_steps(reference, distributed, GENERATOR_LOGS, ("generator", "discriminator"), before)
    first = weights(reference, "discriminator")[0]
    np.testing.assert_array_equal(first[START - 1], first[0], err_msg="D waits for its start")


def test_synchronized_batch_norm_trains_everything_as_one_device(runs):
    reference, distributed = runs["one_device"], runs["synchronized"]
    assert sorted(distributed) == sorted(reference)
    logs = [name for name in reference if "/" not in name]
    assert {*GENERATOR_LOGS, "generator_loss", "discriminator_loss", "adaptive_weight"} <= set(logs)
    assert_same_steps(reference, distributed, logs, GROUPS, slice(0, STEPS))
    first = weights(reference, "discriminator")[0]
    assert np.abs(first[-1] - first[START - 1]).max() > 0, "D trains after its start: the comparison covers it"


def test_two_workers_with_synchronized_batch_norm_train_everything_as_one_device(runs, tmp_path):
    worker = DEFINITIONS + """
import json, os
strategy = tf.distribute.MultiWorkerMirroredStrategy()
assert strategy.num_replicas_in_sync == 2
out = train(strategy, synchronized=True)
np.savez(os.path.join(sys.argv[1], f"worker{json.loads(os.environ['TF_CONFIG'])['task']['index']}.npz"), **out)
"""
    run_workers([sys.executable, "-c", worker, str(tmp_path)], timeout=600)
    reference = runs["one_device"]
    logs = [name for name in reference if "/" not in name]
    for index in range(2):
        trained = dict(np.load(tmp_path / f"worker{index}.npz"))
        assert sorted(trained) == sorted(reference)
        assert_same_steps(reference, trained, logs, GROUPS, slice(0, STEPS))


def test_the_train_command_synchronizes_the_discriminator_under_a_strategy():
    def discriminator(strategy):
        config = make_config(dataset="faces", model="autoencoder_kl", block_out_channels=(8,), norm_num_groups=4,
                             discriminator_layers=1, strategy=strategy)
        return build_model(config, (16, 16, 3)).discriminator

    assert discriminator("mirrored").synchronized and discriminator("multiworker").synchronized
    assert not discriminator("default").synchronized
