"""TFP's "Probabilistic Layers VAE" example in Keras 3: tfvae's layers where `tfp.layers` stood.

The model of TensorFlow Probability's tutorial (which needs Keras 2): a convolutional encoder to a 16-dimensional
Gaussian q(z|x) whose layer adds `KL(q || N(0, I))` to the losses, a transposed-convolution decoder to independent
Bernoullis over the pixels, and the loss `-log p(x|z)`, so that `fit` minimises the negative ELBO. Two differences:
the posterior is diagonal (`DiagonalGaussianLambda`, where the tutorial used a full-covariance
`MultivariateNormalTriL`), and the KL is exact rather than a one-sample estimate.

In Keras 3 a model's output is a tensor, so the loss cannot be `lambda x, rv: -rv.log_prob(x)`: the output carries
its distribution, and `tfvae.losses.NegativeLogLikelihood()` (or `lambda x, rv:
-tfvae.layers.distribution_of(rv).log_prob(x)`, which cannot be saved with `safe_mode=True`) scores it.

    python scripts/examples/tfp_probabilistic_layers_vae.py --epochs 15 --out tfp_vae
"""

import argparse
import os

import keras
import numpy as np

from tfvae import data
from tfvae.layers import DiagonalGaussianLambda, GaussianHead, IndependentBernoulli
from tfvae.losses import NegativeLogLikelihood

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_SHAPE = (28, 28, 1)


def conv(filters, kernel_size, strides=1, padding="same", transpose=False):
    layer = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    return layer(filters, kernel_size, strides=strides, padding=padding, activation="leaky_relu")


def build_vae(encoded_size=16, base_depth=32):
    """The tutorial's encoder and decoder, joined into one functional model from images to `E[x|z]`.

    Returns:
        `(vae, encoder, decoder)`; `vae` is compiled with Adam 1e-3 and `NegativeLogLikelihood`.
    """
    encoder = keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            keras.layers.Rescaling(1.0, offset=-0.5),
            conv(base_depth, 5),
            conv(base_depth, 5, strides=2),
            conv(2 * base_depth, 5),
            conv(2 * base_depth, 5, strides=2),
            conv(4 * encoded_size, 7, padding="valid"),
            keras.layers.Flatten(),
            GaussianHead(encoded_size),
            DiagonalGaussianLambda(kl_weight=1.0, name="q_z"),  # outputs a sample of z, adds the KL
        ],
        name="encoder",
    )
    decoder = keras.Sequential(
        [
            keras.Input((encoded_size,)),
            keras.layers.Reshape((1, 1, encoded_size)),
            conv(2 * base_depth, 7, padding="valid", transpose=True),
            conv(2 * base_depth, 5, transpose=True),
            conv(2 * base_depth, 5, strides=2, transpose=True),
            conv(base_depth, 5, transpose=True),
            conv(base_depth, 5, strides=2, transpose=True),
            conv(base_depth, 5, transpose=True),
            keras.layers.Conv2D(1, 5, padding="same"),  # logits
            IndependentBernoulli(name="p_x"),  # outputs the probabilities E[x|z]
        ],
        name="decoder",
    )
    images = keras.Input(IMAGE_SHAPE)
    vae = keras.Model(images, decoder(encoder(images)), name="vae")
    vae.compile(keras.optimizers.Adam(1e-3), loss=NegativeLogLikelihood())
    return vae, encoder, decoder


def load_binarized_mnist(folder, split):
    """MNIST thresholded at 0.5, as the tutorial does, `[N, 28, 28, 1]` float32."""
    return (data.load_images(folder, split) > 0.5).astype(np.float32).reshape(-1, *IMAGE_SHAPE)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "mnist"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default="tfp_vae", help="folder for vae.keras and the SavedModel")
    args = parser.parse_args()
    train, test = (load_binarized_mnist(args.mnist_dir, split) for split in ("train", "test"))
    vae, _, _ = build_vae()
    vae.fit(train, train, epochs=args.epochs, batch_size=100, validation_data=(test, test))
    os.makedirs(args.out, exist_ok=True)
    vae.save(os.path.join(args.out, "vae.keras"))
    vae.export(os.path.join(args.out, "saved_model"))


if __name__ == "__main__":
    main()
