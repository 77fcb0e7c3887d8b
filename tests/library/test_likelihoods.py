import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import VAE, likelihoods, networks


def test_bernoulli_nll_is_the_cross_entropy_written_out(rng):
    logits = rng.normal(size=(4, 9)).astype(np.float32)
    x = rng.random((4, 9)).astype(np.float32)
    y = 1 / (1 + np.exp(-logits.astype(np.float64)))
    written_out = -np.sum(x * np.log(y) + (1 - x) * np.log(1 - y), axis=-1)
    bernoulli = likelihoods.get("bernoulli")
    np.testing.assert_allclose(bernoulli.negative_log_likelihood(x, tf.constant(logits)), written_out, rtol=1e-5)
    np.testing.assert_allclose(bernoulli.mean(tf.constant(logits)), y, rtol=1e-5)


def test_bernoulli_nll_stays_finite_for_saturated_logits():
    logits = tf.constant([[200.0, -200.0]])
    nll = likelihoods.Bernoulli().negative_log_likelihood(np.array([[0.0, 1.0]], np.float32), logits)
    np.testing.assert_allclose(nll, [400.0])


def test_gaussian_nll_is_the_seed_formula(rng):
    mean, logvar = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    x = rng.normal(size=(3, 5)).astype(np.float32)
    params = tf.constant(np.concatenate([mean, logvar], -1), tf.float32)
    written_out = 0.5 * np.sum(np.log(2 * np.pi) + logvar + (x - mean) ** 2 / np.exp(logvar), axis=-1)
    gaussian = likelihoods.get({"name": "gaussian", "logvar_range": [-30, 20]})
    np.testing.assert_allclose(gaussian.negative_log_likelihood(x, params), written_out, rtol=1e-5)
    named = gaussian.named_parameters(params)
    np.testing.assert_allclose(named["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(named["logvar"], logvar, rtol=1e-6)
    assert gaussian.params_size(5) == 10 and likelihoods.Bernoulli().params_size(5) == 5


def test_get_round_trips_configs_and_refuses_unknown_names():
    gaussian = likelihoods.Gaussian(logvar_range=(-4, 4))
    assert likelihoods.get(gaussian.get_config()).logvar_range == (-4.0, 4.0)
    assert likelihoods.get(gaussian) is gaussian
    with pytest.raises(ValueError, match="bernoulli"):
        likelihoods.get("poisson")


class Laplace:
    """A likelihood of the user's own: p(x|z) = prod_i exp(-|x_i - mu_i| / b) / (2 b), with `params = mu`."""

    name = "laplace"
    scale = 0.5

    def negative_log_likelihood(self, x, params):
        return tf.reduce_sum(tf.abs(x - params) / self.scale + np.log(2 * self.scale), axis=-1)

    def mean(self, params):
        return params

    def named_parameters(self, params):
        return {"mean": params}

    def params_size(self, data_size):
        return data_size


def test_get_takes_any_object_with_the_likelihood_interface_and_a_vae_trains_with_it(rng):
    laplace = Laplace()
    assert likelihoods.get(laplace) is laplace
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
    model = VAE(networks.gaussian_mlp_encoder(6, 2, 8), decoder, likelihood=laplace, seed=0)
    x = rng.random((5, 6)).astype(np.float32)
    seed_state = model.seed_generator.state.numpy()
    reconstruction, _, params = model.elbo_terms(x)
    written_out = np.sum(np.abs(x - params.numpy()) / 0.5 + np.log(1.0), axis=-1)
    np.testing.assert_allclose(reconstruction, written_out, rtol=1e-5)
    model.seed_generator.state.assign(seed_state)
    np.testing.assert_allclose(model(x), params, rtol=1e-6)


@keras.saving.register_keras_serializable(package="tests")
class SavableLaplace(Laplace):
    def __init__(self, scale=0.5):
        self.scale = scale

    def get_config(self):
        return {"scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def test_a_vae_with_a_registered_likelihood_of_the_users_own_saves_and_loads_it(rng, tmp_path):
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
    model = VAE(networks.gaussian_mlp_encoder(6, 2, 8), decoder, likelihood=SavableLaplace(0.25), seed=0)
    model.save(tmp_path / "laplace.keras")
    loaded = keras.saving.load_model(tmp_path / "laplace.keras", safe_mode=True)
    assert type(loaded.likelihood) is SavableLaplace and loaded.likelihood.scale == 0.25
    x = rng.random((5, 6)).astype(np.float32)
    np.testing.assert_allclose(loaded.reconstruct(x), model.reconstruct(x), rtol=1e-6)
    unsavable = VAE(networks.gaussian_mlp_encoder(6, 2, 8), decoder, likelihood=Laplace(), seed=0)
    with pytest.raises(TypeError, match=r"Laplace likelihood cannot be saved: give it get_config\(\) and from_config"):
        unsavable.save(tmp_path / "unsavable.keras")


def test_get_says_what_an_object_lacks_to_be_a_likelihood():
    class Incomplete:
        name = "incomplete"

        def mean(self, params):
            return params

    with pytest.raises(TypeError, match="Incomplete lacks negative_log_likelihood, named_parameters, params_size"):
        likelihoods.get(Incomplete())
    with pytest.raises(TypeError, match="int lacks name"):
        likelihoods.get(3)
    with pytest.raises(ValueError, match="A likelihood config needs a 'name'"):
        likelihoods.get({"logvar_range": [-4, 4]})


def test_bernoulli_probabilities_are_float32_for_half_precision_logits():
    logits = tf.constant([[-12.0, 0.0, 12.0]], tf.float16)
    probs = likelihoods.Bernoulli().mean(logits)
    assert probs.dtype == tf.float32
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-np.array([[-12.0, 0.0, 12.0]]))), rtol=1e-6)
