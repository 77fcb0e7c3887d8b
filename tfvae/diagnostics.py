"""Measures of a trained VAE's latent space."""

import keras
import numpy as np
import tensorflow as tf

from tfvae import tensor_math

ACTIVE_UNIT_THRESHOLD = 0.01


def active_units(posterior_means, threshold=ACTIVE_UNIT_THRESHOLD):
    """The number of active latent units (Burda et al., "Importance Weighted Autoencoders").

    A unit `u` is active when `A_u = Cov_x(E_q(u|x)[u]) > threshold`: the variance over the data of its posterior
    mean. A unit the decoder ignores keeps q(u|x) at the prior for every x, so its mean does not vary.

    Args:
        posterior_means: `[N, ...]`, the posterior means of N examples.
        threshold: the variance above which a unit counts as active.

    Returns:
        An int: the number of active units among all latent units.
    """
    means = np.asarray(posterior_means, np.float64).reshape(len(posterior_means), -1)
    return int(np.sum(np.var(means, axis=0) > threshold))


def kl_per_channel(posterior):
    """KL(q(z|x) || N(0, I)) of each latent channel, averaged over the examples, summed over spatial positions.

    For an MLP latent a channel is a latent dimension; the channels' values add up to the mean KL per example.

    Args:
        posterior: a `DiagonalGaussian` over a batch of examples.

    Returns:
        A NumPy array `[channels]`.
    """
    terms = np.asarray(posterior.kl_terms())
    return terms.reshape(-1, terms.shape[-1]).sum(axis=0) / len(terms)


def importance_weighted_log_likelihood(model, x, num_samples=5000, batch_size=100, chunk_size=250, seed=0, verbose=0):
    """Estimates log p(x) per example by importance sampling with the posterior as proposal (Burda et al.).

    `log p(x) ~ log (1/K) sum_k w_k`, `log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)`, `z_k ~ q(z|x)`.
    The estimate is a lower bound in expectation that rises with K towards log p(x); K = 1 is the ELBO. Examples go
    through in batches of `batch_size` and samples in chunks of `chunk_size`, and the sums are kept as running
    log-sum-exps, so memory grows with `batch_size * chunk_size`, not with K.

    The standard error of each estimate is the delta-method one: `sqrt((mean(w^2) / mean(w)^2 - 1) / K)`.

    Args:
        model: a trained `tfvae.VAE`.
        x: examples `[N, ...]` as the model takes them.
        num_samples: K, importance samples per example.
        batch_size: examples per step.
        chunk_size: samples per step: memory grows with it, speed hardly (the default suits an MNIST-sized model
            with batches of 100).
        seed: seeds the samples.
        verbose: 1 for a progress bar over the examples.

    Returns:
        `(log_likelihood, standard_error)`: two float64 arrays `[N]`.
    """
    x = np.asarray(x, np.float32)
    estimates, errors = [], []
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="example")
    for start in range(0, len(x), batch_size):
        batch = tf.constant(x[start : start + batch_size])
        sum_weights = sum_squared_weights = tf.fill([len(batch)], -np.inf)
        for chunk_index, chunk_start in enumerate(range(0, num_samples, chunk_size)):
            chunk = min(chunk_size, num_samples - chunk_start)
            chunk_seed = tf.constant([seed, start * num_samples + chunk_index], tf.int32)
            log_weights = _log_importance_weights(model, batch, chunk, chunk_seed)
            sum_weights = tf.reduce_logsumexp([sum_weights, tf.reduce_logsumexp(log_weights, 0)], axis=0)
            sum_squared_weights = tf.reduce_logsumexp(
                [sum_squared_weights, tf.reduce_logsumexp(2.0 * log_weights, 0)], axis=0
            )
        log_mean = sum_weights.numpy().astype(np.float64) - np.log(num_samples)
        log_mean_square = sum_squared_weights.numpy().astype(np.float64) - np.log(num_samples)
        relative_variance = np.maximum(np.expm1(log_mean_square - 2.0 * log_mean), 0.0)
        estimates.append(log_mean)
        errors.append(np.sqrt(relative_variance / num_samples))
        progress.add(len(batch))
    return np.concatenate(estimates), np.concatenate(errors)


@tf.function(reduce_retracing=True)
def _log_importance_weights(model, x, num_samples, seed):
    """`log w` for `num_samples` draws per example: a `[num_samples, batch]` tensor."""
    tiled = model.posterior.distribution(tf.tile(model.encoder(x), [num_samples] + [1] * (len(x.shape) - 1)))
    z = tiled.sample(seed=seed)
    log_q = -tiled.nll(z)
    log_prior = -tensor_math.sum_per_example(0.5 * (np.log(2.0 * np.pi) + tf.square(z)))
    x_tiled = tf.tile(x, [num_samples] + [1] * (len(x.shape) - 1))
    log_likelihood = -model.likelihood.negative_log_likelihood(x_tiled, model.decode(z))
    return tf.reshape(log_likelihood + log_prior - log_q, [num_samples, -1])


def summarize(model, x, num_samples=5000, batch_size=100, seed=0, verbose=0):
    """The measures a VAE is judged by, on examples `x` (as the model takes them); `verbose=1` shows progress.

    Returns:
        A dict: `elbo` (mean one-sample ELBO per example), `kl` (mean KL per example), `kl_per_channel`,
        `active_units`, `log_likelihood` (mean importance-weighted estimate with `num_samples` samples) and
        `standard_error` (its Monte Carlo standard error, `sqrt(sum_i se_i^2) / N`).
    """
    metrics = model.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
    posteriors = [model.encode(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    means = np.concatenate([np.asarray(posterior.mean()) for posterior in posteriors])
    kl_per_channel_sums = sum(kl_per_channel(posterior) * len(posterior.mean()) for posterior in posteriors)
    log_likelihood, errors = importance_weighted_log_likelihood(
        model, x, num_samples, batch_size, seed=seed, verbose=verbose
    )
    return {
        "examples": len(x),
        "elbo": metrics["elbo"],
        "kl": metrics["kl"],
        "kl_per_channel": (kl_per_channel_sums / len(x)).tolist(),
        "active_units": active_units(means),
        "log_likelihood": float(log_likelihood.mean()),
        "standard_error": float(np.sqrt(np.sum(errors**2)) / len(x)),
    }
