"""One serving story: Keras' `model.export` of a VAE and `tfvae.export` serve the same deterministic reconstruction."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from serving_protos import DATA_SIZE, tiny_vae

from tfvae.serving import export


def test_keras_export_serves_the_reconstruction_that_tfvae_export_and_predict_give(tmp_path):
    model = tiny_vae()
    x = np.random.default_rng(0).random((4, DATA_SIZE)).astype("float32")
    model.export(str(tmp_path / "keras"), verbose=False)
    by_keras = tf.saved_model.load(str(tmp_path / "keras"))
    by_tfvae = tf.saved_model.load(export.export_saved_model(model, str(tmp_path / "tfvae" / "vae")))
    served = by_keras.serve(x).numpy()
    np.testing.assert_array_equal(served, by_keras.serve(x).numpy())
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(served, by_tfvae.signatures["serving_default"](x=x)["reconstruction"], atol=1e-6)
    np.testing.assert_allclose(by_keras.signatures["serving_default"](x=x)["output_0"], served, atol=1e-6)


def test_export_saved_model_names_the_fix_for_a_model_it_has_no_signatures_for(tmp_path):
    model = tiny_vae()
    functional = keras.Model(model.encoder.inputs, model.encoder.outputs)
    with pytest.raises(TypeError, match=r"not of a Functional; for another Keras model use its own model.export"):
        export.export_saved_model(functional, str(tmp_path / "encoder"))
    assert not os.listdir(tmp_path)
