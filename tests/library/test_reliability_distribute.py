"""Posterior noise under tf.distribute when a batch splits unevenly across replicas: each example still gets the
noise it gets on one device (`SeedState.sample_posterior`), called directly or in `evaluate`."""

import numpy as np
from helpers import run_python

# 7 examples in one batch: two replicas take 4 and 3. Prints the samples of one device and of the two replicas.
UNEVEN_BATCH = """
import keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfvae import VAE, networks

x = np.random.default_rng(0).random((7, 5)).astype("float32")

def make_vae():
    keras.utils.set_random_seed(0)
    return VAE(networks.gaussian_mlp_encoder(5, 3, 8), networks.bernoulli_mlp_decoder(3, 5, 8), seed=1)

def draw(model, batch):
    posterior = model.encode(batch)
    return posterior.mean(), model.sample_posterior(posterior)

one_device = make_vae()
mean, z = draw(one_device, x)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    replicated = make_vae()
batch = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(7))))
means, samples = tf.function(lambda batch: strategy.run(draw, args=(replicated, batch)))(batch)
sizes = [len(part) for part in strategy.experimental_local_results(samples)]

def evaluate(strategy):  # the ELBO of one sample per example: the same only when every example has its own noise
    with strategy.scope():
        model = make_vae()
        model.compile(keras.optimizers.SGD(0.05))
    return model.evaluate(tf.data.Dataset.from_tensor_slices(x).batch(8), return_dict=True, verbose=0)["elbo"]

np.savez(OUT, mean=mean, z=z, sizes=sizes, replicas_mean=np.concatenate(strategy.experimental_local_results(means)),
         replicas_z=np.concatenate(strategy.experimental_local_results(samples)),
         elbo=evaluate(tf.distribute.get_strategy()), replicas_elbo=evaluate(strategy))
"""


def test_an_uneven_batch_gives_each_example_its_one_device_noise(tmp_path):
    out = tmp_path / "samples.npz"
    run_python(f"OUT = {str(out)!r}\n" + UNEVEN_BATCH, timeout=300)
    samples = np.load(out)
    assert list(samples["sizes"]) == [4, 3]
    np.testing.assert_allclose(samples["replicas_mean"], samples["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(samples["replicas_z"], samples["z"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(samples["replicas_elbo"], samples["elbo"], rtol=1e-5)  # through `evaluate`
