"""The MLPs of AEVB appendix C, as Keras models that emit the parameters a likelihood or `DiagonalGaussian` reads.

Encoder and decoder each have their own hidden layer and their own heads: nothing is shared between them. Their
weights and biases start from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (`fan_in_uniform`), the candidate that reached the
highest held-out likelihood in `scripts/compare_initializations.py`; `initialization=` picks another.
"""

import math

import keras

from tfvae.layers import GaussianHead

PAPER_HIDDEN_UNITS = 200
CONV_FILTERS = (32, 64)  # the convolutional encoder's widths, halving the image at each; the decoder's reversed


def fan_in_uniform(fan_in):
    """Kernel and bias both drawn from `U(-1 / sqrt(fan_in), 1 / sqrt(fan_in))`: the default of the MLPs.

    For a Dense layer with `fan_in` inputs (PyTorch's `nn.Linear` starts the same way). It reached a higher
    importance-weighted test log-likelihood than Glorot-uniform kernels with zero biases and than AEVB's N(0, 0.01^2),
    on MNIST and Frey Face, with Adam and with Adagrad (`scripts/compare_initializations.py`; the runs are on the
    benchmarks page of the documentation, `docs/benchmarks.md`).

    Returns:
        `(kernel_initializer, bias_initializer)`, new instances (an unseeded Keras initializer draws the same values
        at every use, so no two layers may share one).
    """
    limit = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-limit, limit), keras.initializers.RandomUniform(-limit, limit)


def glorot_uniform(fan_in):
    """Glorot-uniform kernels and zero biases: Keras's Dense default, and the MLPs' default before `fan_in_uniform`."""
    del fan_in  # the Glorot limit reads both fans from the kernel's shape
    return keras.initializers.GlorotUniform(), keras.initializers.Zeros()


def aevb_normal(fan_in):
    """Kernel and bias drawn from N(0, 0.01^2): AEVB's "Parameters are initialized by random sampling from
    N(0, 0.01)", with 0.01 as the standard deviation.

    The paper writes a Gaussian as `N(mean, variance)` elsewhere (`N(x; mu, sigma^2 I)`), which would make 0.01 the
    variance (standard deviation 0.1); `scripts/compare_initializations.py` measures both readings, and the
    standard deviation 0.01 is the better of the two on MNIST and Frey Face.
    """
    del fan_in
    return keras.initializers.RandomNormal(stddev=0.01), keras.initializers.RandomNormal(stddev=0.01)


INITIALIZATIONS = {"fan_in_uniform": fan_in_uniform, "glorot_uniform": glorot_uniform, "aevb_normal": aevb_normal}


def dense_initializers(initialization, fan_in):
    """`{"kernel_initializer": ..., "bias_initializer": ...}` for a Dense layer (or a `GaussianHead`).

    Args:
        initialization: a name in `INITIALIZATIONS`, or a callable `fan_in -> (kernel_initializer, bias_initializer)`.
        fan_in: the number of the layer's inputs.
    """
    if not callable(initialization):
        if initialization not in INITIALIZATIONS:
            raise ValueError(f"Unknown initialization {initialization!r}; choose one of {sorted(INITIALIZATIONS)}.")
        initialization = INITIALIZATIONS[initialization]
    kernel_initializer, bias_initializer = initialization(fan_in)
    return {"kernel_initializer": kernel_initializer, "bias_initializer": bias_initializer}


def gaussian_mlp_encoder(
    data_size, latent_size, hidden_units=PAPER_HIDDEN_UNITS, initialization="fan_in_uniform", name="encoder"
):
    """q(z|x): `h = tanh(W3 x + b3)`, then the heads `mu = W4 h + b4`, `log sigma^2 = W5 h + b5` (appendix C.2).

    Args:
        data_size: the number of values in one flattened example, `D`.
        latent_size: the size of `z`, `J` (N_z in the paper's figures).
        hidden_units: the width of `h`.
        initialization: how the weights and biases start, a name in `INITIALIZATIONS` or a callable (see
            `dense_initializers`); `fan_in_uniform` by default.
        name: the model's name.

    Returns:
        A `keras.Sequential` from `[batch, D]` to `[batch, 2 * J]` (`[mu, log sigma^2]`).
    """
    return keras.Sequential(
        [
            keras.Input((data_size,), name="x"),
            keras.layers.Dense(
                hidden_units, activation="tanh", name="hidden", **dense_initializers(initialization, data_size)
            ),
            GaussianHead(latent_size, name="gaussian_head", **dense_initializers(initialization, hidden_units)),
        ],
        name=name,
    )


def bernoulli_mlp_decoder(
    latent_size, data_size, hidden_units=PAPER_HIDDEN_UNITS, initialization="fan_in_uniform", name="decoder"
):
    """p(x|z), Bernoulli: the logits `W2 tanh(W1 z + b1) + b2`, so that `y = sigmoid(logits)` (appendix C.1).

    Args: as `gaussian_mlp_encoder`'s, with `z` and `x` swapped.

    Returns:
        A `keras.Sequential` from `[batch, J]` to `[batch, D]` logits, for `likelihoods.Bernoulli`.
    """
    return keras.Sequential(
        [
            keras.Input((latent_size,), name="z"),
            keras.layers.Dense(
                hidden_units, activation="tanh", name="hidden", **dense_initializers(initialization, latent_size)
            ),
            keras.layers.Dense(data_size, name="logits", **dense_initializers(initialization, hidden_units)),
        ],
        name=name,
    )


def gaussian_mlp_decoder(
    latent_size,
    data_size,
    hidden_units=PAPER_HIDDEN_UNITS,
    mean_activation=None,
    initialization="fan_in_uniform",
    name="decoder",
):
    """p(x|z), Gaussian: `h = tanh(W3 z + b3)`, `mu = W4 h + b4`, `log sigma^2 = W5 h + b5` (appendix C.2).

    Args:
        latent_size: J, the size of `z`.
        data_size: D, the size of `x`.
        hidden_units: the width of the tanh layer.
        mean_activation: applied to `mu` only; the paper uses `"sigmoid"` for Frey Face, whose pixels lie in [0, 1].
        initialization: as `gaussian_mlp_encoder`'s.
        name: the network's name.

    Returns:
        A `keras.Sequential` from `[batch, J]` to `[batch, 2 * D]` (`[mu, log sigma^2]`), for
        `likelihoods.Gaussian`.
    """
    return keras.Sequential(
        [
            keras.Input((latent_size,), name="z"),
            keras.layers.Dense(
                hidden_units, activation="tanh", name="hidden", **dense_initializers(initialization, latent_size)
            ),
            GaussianHead(
                data_size,
                mean_activation=mean_activation,
                name="gaussian_head",
                **dense_initializers(initialization, hidden_units),
            ),
        ],
        name=name,
    )


def conv_encoder(image_shape, latent_channels, filters=CONV_FILTERS, name="encoder"):
    """q(z|x) with spatial latents: strided 3x3 convolutions, then `GaussianHead` at every position.

    Each convolution halves height and width, so the latent is `[h / 2^k, w / 2^k, latent_channels]` for `k` layers;
    the head's two Dense layers act as 1x1 convolutions giving `[mu, log sigma^2]` on the channel axis, the layout
    of latent-diffusion's diagonal Gaussian.

    Args:
        image_shape: `(height, width, channels)`, both sides divisible by `2 ** len(filters)`.
        latent_channels: channels of `z`.
        filters: the channels of the convolutions, in order.

    Returns:
        A `keras.Sequential` from `[batch, h, w, c]` to `[batch, h', w', 2 * latent_channels]`.
    """
    _check_divisible(image_shape, len(filters))
    layers = [keras.Input(tuple(image_shape), name="x")]
    for index, width in enumerate(filters):
        layers.append(keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", name=f"conv{index}"))
    layers.append(GaussianHead(latent_channels, name="gaussian_head"))
    return keras.Sequential(layers, name=name)


def conv_decoder(latent_shape, image_shape, likelihood="bernoulli", filters=CONV_FILTERS[::-1], mean_activation=None,
                 name="decoder"):
    """p(x|z) for spatial latents: strided 3x3 transposed convolutions back to the image size, then the output head.

    Args:
        latent_shape: `(h', w', latent_channels)`, as `conv_encoder` makes it.
        image_shape: `(height, width, channels)` of the data.
        likelihood: `"bernoulli"` (a 3x3 convolution to logits) or `"gaussian"` (`GaussianHead` per pixel).
        filters: the channels of the transposed convolutions, in order; as many as the encoder's convolutions.
        mean_activation: with a Gaussian likelihood, applied to `mu` only.

    Returns:
        A `keras.Sequential` from `[batch, h', w', c']` to the likelihood's parameters per pixel.
    """
    layers = [keras.Input(tuple(latent_shape), name="z")]
    for index, width in enumerate(filters):
        layers.append(
            keras.layers.Conv2DTranspose(
                width, 3, strides=2, padding="same", activation="relu", name=f"deconv{index}"
            )
        )
    channels = image_shape[-1]
    if likelihood == "bernoulli":
        layers.append(keras.layers.Conv2D(channels, 3, padding="same", name="logits"))
    elif likelihood == "gaussian":
        layers.append(GaussianHead(channels, mean_activation=mean_activation, name="gaussian_head"))
    else:
        raise ValueError(f"conv_decoder knows the likelihoods 'bernoulli' and 'gaussian', not {likelihood!r}.")
    return keras.Sequential(layers, name=name)


def _check_divisible(image_shape, halvings):
    factor = 2**halvings
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(
            f"Height and width {tuple(image_shape[:2])} must be divisible by {factor} for {halvings} strided "
            "convolutions; pad or crop the images, or use fewer filters."
        )
