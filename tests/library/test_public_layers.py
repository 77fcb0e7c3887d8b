"""Every public layer of `tfvae.layers` through the shared harness (`layer_harness.run_layer_test`)."""

import pytest
from layer_harness import run_layer_test

from tfvae import layers

LAYERS = {
    "GaussianHead": (lambda dtype: layers.GaussianHead(3, mean_activation="sigmoid", dtype=dtype), (4, 5)),
    "DiagonalGaussianLambda": (lambda dtype: layers.DiagonalGaussianLambda(convert_to_tensor_fn="mean", dtype=dtype),
                               (4, 6)),
    "IndependentBernoulli": (lambda dtype: layers.IndependentBernoulli(dtype=dtype), (4, 6)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_public_layer(name, tmp_path):
    make_layer, input_shape = LAYERS[name]
    run_layer_test(make_layer, input_shape, tmp_path)
