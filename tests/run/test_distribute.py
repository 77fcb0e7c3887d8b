"""Training under tf.distribute gives the same losses and weights as one device on the same global batches.

The sampling noise is drawn for the whole global batch and sliced per replica (`VAE.sample_posterior`), and the added
losses are batch means that Keras divides by the number of replicas; a wrong scaling of either shows up here as
different losses or weights.
"""

import sys

import numpy as np
from helpers import run_python, run_workers

# Trains the same model on the same data and global batches of 32, returning per-step losses and final weights.
TRAINING = """
import keras, numpy as np, tensorflow as tf
from tfvae import VAE, networks

def train(strategy):
    x = (np.random.default_rng(0).random((256, 20)) < 0.3).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = VAE(networks.gaussian_mlp_encoder(20, 3, 16), networks.bernoulli_mlp_decoder(3, 20, 16), seed=1)
        model.compile(keras.optimizers.SGD(0.05), steps_per_execution=1)  # the callback records every step
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(32).with_options(options)
    losses = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs: losses.append(float(logs["loss"])))
    history = model.fit(dataset, epochs=2, verbose=0, callbacks=[record])
    return np.array(losses), [w.numpy() for w in model.trainable_weights], history.history


def evaluate_uneven(strategy):  # evaluate on 7 examples in one batch: two replicas take 4 and 3
    x = (np.random.default_rng(1).random((7, 20)) < 0.3).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = VAE(networks.gaussian_mlp_encoder(20, 3, 16), networks.bernoulli_mlp_decoder(3, 20, 16), seed=1)
        model.compile(keras.optimizers.SGD(0.05))
    logs = model.evaluate(tf.data.Dataset.from_tensor_slices(x).batch(8), return_dict=True, verbose=0)
    return np.array([logs["elbo"], logs["kl"]])
"""


def assert_same_training(reference, distributed):
    np.testing.assert_allclose(distributed[0], reference[0], rtol=1e-5)
    assert len(reference[0]) == 16
    for expected, actual in zip(reference[1], distributed[1], strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)


def test_mirrored_strategy_on_two_devices_matches_one_device(tmp_path):
    script = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + TRAINING + f"""
reference = train(tf.distribute.get_strategy())
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
mirrored = train(strategy)
np.savez({str(tmp_path / 'out.npz')!r}, ref_loss=reference[0], loss=mirrored[0],
         ref_uneven=evaluate_uneven(tf.distribute.get_strategy()), uneven=evaluate_uneven(strategy),
         **{{f"ref_w{{i}}": w for i, w in enumerate(reference[1])}},
         **{{f"w{{i}}": w for i, w in enumerate(mirrored[1])}})
"""
    run_python(script, timeout=300)
    out = np.load(tmp_path / "out.npz")
    # Keras once averaged the first batch across replicas (shapes [4, 20] and [3, 20]) before evaluating, and failed.
    # The ELBO and the KL are the one device's: each example gets its own noise rows however the batch splits.
    np.testing.assert_allclose(out["uneven"], out["ref_uneven"], rtol=1e-5)
    count = len([key for key in out.files if key.startswith("ref_w")])
    assert_same_training(
        (out["ref_loss"], [out[f"ref_w{i}"] for i in range(count)]),
        (out["loss"], [out[f"w{i}"] for i in range(count)]),
    )


def test_multi_worker_mirrored_strategy_with_two_workers_matches_one_device(tmp_path):
    worker_script = """
import json, os, sys
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
""" + TRAINING + """
losses, weights, _ = train(strategy)
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
np.savez(sys.argv[1] + f"/worker{task}.npz", loss=losses, **{f"w{i}": w for i, w in enumerate(weights)})
"""
    run_workers([sys.executable, "-c", worker_script, str(tmp_path)])
    reference_script = TRAINING + f"""
losses, weights, _ = train(tf.distribute.get_strategy())
np.savez({str(tmp_path / 'reference.npz')!r}, loss=losses, **{{f"w{{i}}": w for i, w in enumerate(weights)}})
"""
    run_python(reference_script, timeout=300)
    reference = np.load(tmp_path / "reference.npz")
    count = len(reference.files) - 1
    for index in range(2):
        worker = np.load(tmp_path / f"worker{index}.npz")
        assert_same_training(
            (reference["loss"], [reference[f"w{i}"] for i in range(count)]),
            (worker["loss"], [worker[f"w{i}"] for i in range(count)]),
        )
