"""A training run from a `TrainConfig`: data, model, `fit`, and the saved results."""

import dataclasses
import json
import os
import time

import keras

from tfvae import data, networks
from tfvae.export import export_saved_model
from tfvae.model import VAE

JIT_COMPILE_CHOICES = ("auto", "on", "off")


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved beside its results as `config.json`.

    Defaults follow AEVB on Frey Face: a Gaussian decoder whose means pass through a sigmoid, 200 hidden units,
    minibatches of 100.
    """

    latent_size: int = 10
    hidden_units: int = networks.PAPER_HIDDEN_UNITS
    epochs: int = 100
    batch_size: int = 100
    learning_rate: float = 1e-3
    seed: int = 0
    jit_compile: str = "auto"
    output_dir: str = "runs/frey_face"
    export_root: str = "saved_models"
    model_name: str = "frey_face"
    verbose: int = 1

    def __post_init__(self):
        if self.jit_compile not in JIT_COMPILE_CHOICES:
            raise ValueError(f"jit_compile must be one of {JIT_COMPILE_CHOICES}, got {self.jit_compile!r}.")
        for field in ("latent_size", "hidden_units", "epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")


def build_frey_face_vae(config):
    """The appendix-C Gaussian VAE for Frey Face: Gaussian MLP encoder, Gaussian MLP decoder with sigmoid means."""
    data_size = data.FREY_FACE_SHAPE[0] * data.FREY_FACE_SHAPE[1]
    encoder = networks.gaussian_mlp_encoder(data_size, config.latent_size, config.hidden_units)
    decoder = networks.gaussian_mlp_decoder(
        config.latent_size, data_size, config.hidden_units, mean_activation="sigmoid"
    )
    return VAE(encoder, decoder, likelihood="gaussian", seed=config.seed, name="frey_face_vae")


def train(config):
    """Trains the Frey Face VAE, saves `model.keras`, `history.json`, `config.json`, and exports a SavedModel.

    Returns:
        `(model, history, export_path)`.
    """
    keras.utils.set_random_seed(config.seed)
    images = data.load_frey_face()
    model = build_frey_face_vae(config)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        jit_compile={"auto": "auto", "on": True, "off": False}[config.jit_compile],
    )
    os.makedirs(config.output_dir, exist_ok=True)
    timer = EpochTimer()
    history = model.fit(
        images,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=[timer],
        verbose=config.verbose,
    )
    model.save(os.path.join(config.output_dir, "model.keras"))
    with open(os.path.join(config.output_dir, "history.json"), "w") as file:
        json.dump({**history.history, "epoch_seconds": timer.seconds}, file, indent=1)
    with open(os.path.join(config.output_dir, "config.json"), "w") as file:
        json.dump(dataclasses.asdict(config), file, indent=1)
    export_path = export_saved_model(model, os.path.join(config.export_root, config.model_name))
    return model, history, export_path


class EpochTimer(keras.callbacks.Callback):
    """Records the wall-clock seconds of each epoch in `seconds`."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
