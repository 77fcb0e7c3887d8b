import keras
import numpy as np
from helpers import run_python
from scipy.stats import multivariate_normal

from tfvae import VAE, diagnostics
from tfvae.layers import GaussianHead

DATA_SIZE, LATENT_SIZE, NOISE_VAR = 6, 2, 0.3


def linear_gaussian_model(rng, posterior_error=0.0):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s2 I): p(x) = N(b, WW^T + s2 I), and q(z|x) is the exact posterior.

    W has orthogonal columns, so the posterior covariance is diagonal; `posterior_error` moves q away from it.
    """
    basis, _ = np.linalg.qr(rng.normal(size=(DATA_SIZE, LATENT_SIZE)))
    weights, bias = basis * np.array([2.0, 0.7]), rng.normal(size=DATA_SIZE)
    covariance = np.linalg.inv(np.eye(LATENT_SIZE) + weights.T @ weights / NOISE_VAR)
    gain = covariance @ weights.T / NOISE_VAR
    encoder = keras.Sequential([keras.Input((DATA_SIZE,)), GaussianHead(LATENT_SIZE, name="head")])
    decoder = keras.Sequential([keras.Input((LATENT_SIZE,)), GaussianHead(DATA_SIZE, name="head")])
    head = encoder.get_layer("head")
    head.mean_dense.kernel.assign(gain.T * (1 + posterior_error))
    head.mean_dense.bias.assign(-gain @ bias)
    head.logvar_dense.kernel.assign(np.zeros((DATA_SIZE, LATENT_SIZE)))
    head.logvar_dense.bias.assign(np.log(np.diag(covariance)) + posterior_error)
    head = decoder.get_layer("head")
    head.mean_dense.kernel.assign(weights.T)
    head.mean_dense.bias.assign(bias)
    head.logvar_dense.kernel.assign(np.zeros((LATENT_SIZE, DATA_SIZE)))
    head.logvar_dense.bias.assign(np.full(DATA_SIZE, np.log(NOISE_VAR)))
    marginal = multivariate_normal(bias, weights @ weights.T + NOISE_VAR * np.eye(DATA_SIZE))
    x = marginal.rvs(size=200, random_state=np.random.default_rng(1)).astype(np.float32)
    return VAE(encoder, decoder, likelihood="gaussian", seed=0), x, marginal.logpdf(x)


def test_with_the_exact_posterior_the_estimate_is_the_exact_log_likelihood(rng):
    model, x, exact = linear_gaussian_model(rng)
    estimate, standard_error = diagnostics.importance_weighted_log_likelihood(model, x, num_samples=64, chunk_size=20)
    np.testing.assert_allclose(estimate, exact, atol=1e-4)
    assert standard_error.max() < 1e-3


def test_the_estimate_rises_with_k_from_the_elbo_towards_the_log_likelihood(rng):
    model, x, exact = linear_gaussian_model(rng, posterior_error=0.6)
    model.compile()
    elbo = np.mean([model.evaluate(x, verbose=0, return_dict=True)["elbo"] for _ in range(20)])
    means = {}
    for k in (1, 10, 100, 1000):
        estimate, standard_error = diagnostics.importance_weighted_log_likelihood(model, x, num_samples=k, seed=k)
        means[k] = estimate.mean()
    gap = exact.mean() - elbo
    assert gap > 0.5, "the perturbed posterior must leave a gap for the test to mean anything"
    assert abs(means[1] - elbo) < 0.1 * gap, "K = 1 is the ELBO"
    assert means[1] < means[10] < means[100] < means[1000] <= exact.mean() + 0.01
    assert exact.mean() - means[1000] < 0.2 * gap


def test_active_units_count_the_varying_posterior_means(rng):
    means = np.concatenate([rng.normal(size=(500, 3)), 0.01 * rng.normal(size=(500, 2))], axis=1)
    assert diagnostics.active_units(means) == 3
    assert diagnostics.active_units(means, threshold=1e-6) == 5


def test_memory_stays_bounded_for_many_samples():
    """Chunks keep the working set at batch_size * chunk_size rows whatever K: six times the samples of one chunk
    raise the peak by less than one chunk's tensors would (100 x 250 x 784 float32 values are 78 MB; all 1500
    samples at once would hold several 470 MB tensors). The peak is compared within one process: its absolute value
    depends on the allocator (1.15 GiB alone, 2.2 GiB was seen once inside the test suite)."""
    output = run_python("""
import resource, numpy as np
from tfvae import VAE, networks, diagnostics
model = VAE(networks.gaussian_mlp_encoder(784, 20, 500), networks.bernoulli_mlp_decoder(20, 784, 500), seed=0)
x = (np.random.default_rng(0).random((100, 784)) < 0.2).astype("float32")
diagnostics.importance_weighted_log_likelihood(model, x, num_samples=250, chunk_size=250)
print("one chunk MiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
estimate, _ = diagnostics.importance_weighted_log_likelihood(model, x, num_samples=1500, chunk_size=250)
assert np.isfinite(estimate).all()
print("six chunks MiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""")
    one_chunk = float(output.split("one chunk MiB")[1].split()[0])
    six_chunks = float(output.split("six chunks MiB")[1])
    assert six_chunks - one_chunk < 256, (one_chunk, six_chunks)
