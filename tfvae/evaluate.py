"""Measures of a trained VAE's latent space."""

import numpy as np

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
