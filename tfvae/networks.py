"""The MLPs of AEVB appendix C, as Keras models that emit the parameters a likelihood or `DiagonalGaussian` reads.

Encoder and decoder each have their own hidden layer and their own heads: nothing is shared between them.
"""

import keras

from tfvae.layers import GaussianHead

PAPER_HIDDEN_UNITS = 200


def gaussian_mlp_encoder(data_size, latent_size, hidden_units=PAPER_HIDDEN_UNITS, name="encoder"):
    """q(z|x): `h = tanh(W3 x + b3)`, then the heads `mu = W4 h + b4`, `log sigma^2 = W5 h + b5` (appendix C.2).

    Args:
        data_size: the number of values in one flattened example, `D`.
        latent_size: the size of `z`, `J` (N_z in the paper's figures).
        hidden_units: the width of `h`.
        name: the model's name.

    Returns:
        A `keras.Sequential` from `[batch, D]` to `[batch, 2 * J]` (`[mu, log sigma^2]`).
    """
    return keras.Sequential(
        [
            keras.Input((data_size,), name="x"),
            keras.layers.Dense(hidden_units, activation="tanh", name="hidden"),
            GaussianHead(latent_size, name="gaussian_head"),
        ],
        name=name,
    )


def bernoulli_mlp_decoder(latent_size, data_size, hidden_units=PAPER_HIDDEN_UNITS, name="decoder"):
    """p(x|z), Bernoulli: the logits `W2 tanh(W1 z + b1) + b2`, so that `y = sigmoid(logits)` (appendix C.1).

    Returns:
        A `keras.Sequential` from `[batch, J]` to `[batch, D]` logits, for `likelihoods.Bernoulli`.
    """
    return keras.Sequential(
        [
            keras.Input((latent_size,), name="z"),
            keras.layers.Dense(hidden_units, activation="tanh", name="hidden"),
            keras.layers.Dense(data_size, name="logits"),
        ],
        name=name,
    )


def gaussian_mlp_decoder(
    latent_size, data_size, hidden_units=PAPER_HIDDEN_UNITS, mean_activation=None, name="decoder"
):
    """p(x|z), Gaussian: `h = tanh(W3 z + b3)`, `mu = W4 h + b4`, `log sigma^2 = W5 h + b5` (appendix C.2).

    Args:
        mean_activation: applied to `mu` only; the paper uses `"sigmoid"` for Frey Face, whose pixels lie in [0, 1].

    Returns:
        A `keras.Sequential` from `[batch, J]` to `[batch, 2 * D]` (`[mu, log sigma^2]`), for
        `likelihoods.Gaussian`.
    """
    return keras.Sequential(
        [
            keras.Input((latent_size,), name="z"),
            keras.layers.Dense(hidden_units, activation="tanh", name="hidden"),
            GaussianHead(data_size, mean_activation=mean_activation, name="gaussian_head"),
        ],
        name=name,
    )
