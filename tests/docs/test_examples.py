"""The worked examples of scripts/examples: each trains a few steps, reloads its .keras file and exports."""

import importlib.util
import os

import keras
import numpy as np
import pytest
from helpers import reload_and_serve

from tfvae.layers import distribution_of

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "options"), [("tfp_probabilistic_layers_vae", {"encoded_size": 4, "base_depth": 4}),
                          ("keras_io_vae", {"latent_dim": 2})]
)
def test_example_trains_reloads_and_exports(name, options, rng, tmp_path):
    images = rng.random((16, 28, 28, 1)).astype(np.float32)
    keras.utils.set_random_seed(0)
    vae, encoder, _ = load_example(name).build_vae(**options)
    losses = vae.fit(images, images, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    latent_size = next(iter(options.values()))
    assert distribution_of(encoder(images)).mean().shape == (16, latent_size)
    loaded, served = reload_and_serve(vae, images, str(tmp_path))
    predicted = loaded.predict(images, batch_size=16, verbose=0)
    assert predicted.shape == images.shape and np.all((predicted > 0) & (predicted < 1))
    np.testing.assert_allclose(predicted, vae.predict(images, batch_size=16, verbose=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(served, predicted, rtol=1e-4, atol=1e-5)
