"""The keras-io "Variational AutoEncoder" example, functional, with tfvae's layers in place of its `Sampling` layer.

keras-io's encoder emits `z_mean` and `z_log_var` from two Dense layers and samples `z` with a hand-written
`Sampling` layer; a subclassed model adds the KL and the binary cross-entropy in its `train_step`. Here
`GaussianHead` gives `[z_mean, z_log_var]`, `DiagonalGaussianLambda(kl_weight=1.0)` samples `z` and adds the KL,
the decoder's logits go to `IndependentBernoulli`, and `NegativeLogLikelihood` is the reconstruction loss: the whole
VAE is one functional model trained by the stock `fit`, saved and exported like any Keras model. `z_mean` stays
reachable: `tfvae.layers.distribution_of(encoder(x)).mean()`.

    python scripts/examples/keras_io_vae.py --epochs 30 --out keras_io_vae
"""

import argparse
import os

import keras
import numpy as np

from tfvae import data
from tfvae.layers import DiagonalGaussianLambda, GaussianHead, IndependentBernoulli, distribution_of
from tfvae.losses import NegativeLogLikelihood

HERE = os.path.dirname(os.path.abspath(__file__))


def build_encoder(latent_dim=2):
    images = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(images)
    h = keras.layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(h)
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(h))
    z = DiagonalGaussianLambda(kl_weight=1.0, name="z")(GaussianHead(latent_dim, name="z_params")(h))
    return keras.Model(images, z, name="encoder")


def build_decoder(latent_dim=2):
    z = keras.Input((latent_dim,))
    h = keras.layers.Reshape((7, 7, 64))(keras.layers.Dense(7 * 7 * 64, activation="relu")(z))
    h = keras.layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(h)
    h = keras.layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(h)
    logits = keras.layers.Conv2DTranspose(1, 3, padding="same")(h)
    return keras.Model(z, IndependentBernoulli(name="x")(logits), name="decoder")


def build_vae(latent_dim=2):
    """Returns `(vae, encoder, decoder)`; `vae` maps images to `E[x|z]` and is compiled with Adam."""
    encoder, decoder = build_encoder(latent_dim), build_decoder(latent_dim)
    images = keras.Input((28, 28, 1))
    vae = keras.Model(images, decoder(encoder(images)), name="vae")
    vae.compile(keras.optimizers.Adam(), loss=NegativeLogLikelihood())
    return vae, encoder, decoder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "mnist"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="keras_io_vae", help="folder for vae.keras and the SavedModel")
    args = parser.parse_args()
    images = np.concatenate([data.load_images(args.mnist_dir, split) for split in ("train", "test")])
    images = images.reshape(-1, 28, 28, 1)
    vae, encoder, _ = build_vae()
    vae.fit(images, images, epochs=args.epochs, batch_size=128)
    z_mean = distribution_of(encoder(images[:1000])).mean()
    print("the first five posterior means:", np.round(np.asarray(z_mean[:5]), 2).tolist())
    os.makedirs(args.out, exist_ok=True)
    vae.save(os.path.join(args.out, "vae.keras"))
    vae.export(os.path.join(args.out, "saved_model"))


if __name__ == "__main__":
    main()
