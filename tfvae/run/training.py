"""A training run from a `TrainConfig`: data, model, callbacks, `fit`, and what the run directory keeps.

A run directory (`output_dir`) ends up holding
`config.json` (the run's settings; `tfvae train --config` repeats the run), `history.csv` (per-epoch metrics),
`history.json` (the same, with each epoch's seconds), `best.keras` (the best model by validation ELBO, or by
validation reconstruction error for `autoencoder_kl`), `model.keras` (the final model), `summary.png` (learning
curves, reconstructions, samples; VAEs only), `backup/` (while a run is unfinished: what the same command resumes
from, see `resumable_run`), `lock` (while a run writes there: its pid and host) and, with TensorBoard on,
`tensorboard/`.

`--model autoencoder_kl` trains a `tfvae.AutoencoderKL` with the latent-diffusion objective through an
`AutoencoderKLTrainer`: `best.keras` holds that trainer (autoencoder, discriminator, objective, both optimizers),
`model.keras` and the export the autoencoder alone.
"""

import csv
import dataclasses
import json
import os
import re
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfvae import data, networks
from tfvae._keras.fused_adam import FusedAdam
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator
from tfvae.autoencoder_kl.objective import RECONSTRUCTION_LOSSES
from tfvae.files.run_lock import RunLock
from tfvae.input_checks import InputError
from tfvae.run import callbacks as tfvae_callbacks
from tfvae.run import model_files, summary_figure
from tfvae.run.resumable_run import BACKUP, ResumableEarlyStopping, ResumableRun, newest_backup
from tfvae.serving.export import SignatureChangeError, export_saved_model
from tfvae.vae import VAE

JIT_COMPILE_CHOICES = ("auto", "on", "off")
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUTOENCODER_KL = "autoencoder_kl"
MODEL_FAMILIES = ("mlp", "conv", AUTOENCODER_KL)
LIKELIHOODS = ("bernoulli", "gaussian")
DIAGNOSTIC_EXAMPLES = 1000
SUMMARY_EXAMPLES = 8
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TYPE_NAMES = {
    int: "an integer", float: "a number", bool: "true or false", str: "a string", tuple: "a list of integers"
}


class ConfigError(ValueError):
    """Settings of a run that cannot be used: a value out of range, or a config file that is missing or malformed."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT); the run directory keeps what resuming needs."""


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved in the run directory as `config.json`.

    The defaults follow AEVB on Frey Face: a Gaussian decoder whose means pass through a sigmoid, 200 hidden
    units, minibatches of 100. `likelihood=None` picks Gaussian for Frey Face and Bernoulli for the others. For the
    convolutional family `latent_size` counts latent channels (the latent is `[h / 4, w / 4, latent_size]`).

    `autoencoder_kl` is Stable Diffusion's VAE architecture by default (`block_out_channels`, `layers_per_block`,
    `norm_num_groups`; `latent_size` latent channels, 4 in Stable Diffusion), trained with latent-diffusion's
    objective: `reconstruction_loss`, `kl_weight`, and a PatchGAN of `discriminator_layers` layers (0: none) whose
    loss counts from step `discriminator_start` with the adaptive weight times `discriminator_weight`. Both of its
    optimizers are Adam with latent-diffusion's `beta_1 = 0.5`, `beta_2 = 0.9`.

    `batch_size` is the global batch: under a `strategy` with R replicas each replica takes `batch_size / R`
    examples of every step, and the result is the same as one device taking all of them.
    Under `multiworker` one step runs per call whatever `steps_per_execution` says: Keras' loop of several steps
    per call fails there (its `tf.cond` around the step cannot hold the workers' collective ops).
    """

    dataset: str = "frey_face"
    data_dir: str = None
    download: bool = False
    image_size: str = None
    channels: int = None
    image_key: str = None
    cache: str = "auto"
    skip_bad_images: bool = False
    model: str = "mlp"
    likelihood: str = None
    binarize: bool = False
    latent_size: int = 10
    hidden_units: int = networks.PAPER_HIDDEN_UNITS
    epochs: int = 100
    batch_size: int = 100
    learning_rate: float = 1e-3
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    block_out_channels: tuple = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_num_groups: int = 32
    reconstruction_loss: str = "l1"
    kl_weight: float = 1e-6
    discriminator_layers: int = 3
    discriminator_start: int = 50001
    discriminator_weight: float = 0.5
    validation_split: float = 0.1
    early_stopping_patience: int = 0
    tensorboard: bool = False
    image_every: int = 5
    seed: int = 0
    jit_compile: str = "auto"
    steps_per_execution: int = 10
    strategy: str = "default"
    precision: str = "float32"
    output_dir: str = None
    export_root: str = "saved_models"
    model_name: str = None
    allow_signature_change: bool = False
    verbose: int = 1

    def __post_init__(self):
        if self.likelihood is None:
            self.likelihood = "gaussian" if self.dataset == "frey_face" else "bernoulli"
        if self.model_name is None:
            self.model_name = _name_of(self.dataset)
        if not _MODEL_NAME.fullmatch(self.model_name):
            raise ValueError(f"model_name may hold letters, digits, '_', '.' and '-' (it names the model and its "
                             f"folders), and must start with a letter or digit; got {self.model_name!r}.")
        if self.output_dir is None:
            self.output_dir = os.path.join("runs", self.model_name)
        _check_choice("jit_compile", self.jit_compile, JIT_COMPILE_CHOICES)
        _check_choice("model", self.model, MODEL_FAMILIES)
        _check_choice("likelihood", self.likelihood, LIKELIHOODS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("precision", self.precision, PRECISIONS)
        for field in ("latent_size", "hidden_units", "epochs", "batch_size", "image_every", "steps_per_execution"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        for field in ("beta", "kl_warmup_steps", "free_bits", "early_stopping_patience"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)}.")
        check_seed(self.seed)
        size = data.parse_image_size(self.image_size)
        self.image_size = None if size is None else f"{size[0]}x{size[1]}"  # as config.json and the flag spell it
        data.check_channels(self.channels)
        if not 0 <= self.validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split}.")
        self.block_out_channels = tuple(self.block_out_channels)
        if self.model == AUTOENCODER_KL:
            _check_autoencoder_kl(self)

    @classmethod
    def from_json(cls, path):
        """The config saved at `path` by `to_json`.

        Raises:
            ConfigError: for a missing or unreadable file, or one that is not a JSON object of known settings of the
                right types and values.
        """
        try:
            with open(path) as file:
                settings = json.load(file)
        except FileNotFoundError as error:
            raise ConfigError(f"--config {path}: no such file.") from error
        except (OSError, ValueError) as error:
            raise ConfigError(f"--config {path}: cannot read it as a JSON config file: {error}") from error
        if not isinstance(settings, dict):
            raise ConfigError(f"--config {path}: expected a JSON object of settings, got {type(settings).__name__}.")
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(settings.keys() - fields.keys())
        if unknown:
            raise ConfigError(f"--config {path}: unknown settings {unknown}; known ones: {sorted(fields)}.")
        for name, value in settings.items():
            if not _has_type(value, fields[name]):
                raise ConfigError(f"--config {path}: {name} must be {_TYPE_NAMES[fields[name].type]}, got {value!r}.")
        try:
            return cls(**settings)
        except ValueError as error:
            raise ConfigError(f"--config {path}: {error}") from error

    def to_json(self, path):
        with open(path, "w") as file:
            json.dump(dataclasses.asdict(self), file, indent=1)


def train(config):
    """Runs the training that `config` describes, then saves the run directory and exports a SavedModel.

    Under a multi-worker strategy every worker runs this; the chief writes the run directory and the export, the
    other workers write theirs to `<output_dir>/.worker-<index>` and export nothing.

    Returns:
        `(model, history, export_path)`; `history` is the whole run's, resumed epochs included.

    Raises:
        callbacks.NonFiniteLossError: when the loss becomes NaN or infinite (the last good state is kept).
        run_lock.RunLockedError: when another run writes to the same run directory.
        TrainingInterrupted: on Ctrl-C; the backup of the last finished epoch is kept, and training again with the
            same config resumes from it.
    """
    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy must exist before other TF work
    chief = _is_chief(strategy)
    run_dir = config.output_dir if chief else os.path.join(config.output_dir, f".worker-{_task_index(strategy)}")
    with RunLock(run_dir):
        try:
            return _run(dataclasses.replace(config, output_dir=run_dir), strategy, chief)
        except KeyboardInterrupt as interrupt:
            raise TrainingInterrupted(
                f"interrupted; {os.path.join(run_dir, BACKUP)} keeps the last finished epoch, and the same command "
                "resumes from it."
            ) from interrupt


def _run(config, strategy, chief):
    """`train` for the run directory `config.output_dir`, once its lock is held."""
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    train_images, validation_images = load_training_images(config)
    flatten = config.model == "mlp"
    examples = {"train": train_images, "validation": validation_images}
    shown = DIAGNOSTIC_EXAMPLES if config.tensorboard and config.model != AUTOENCODER_KL else SUMMARY_EXAMPLES
    inputs = {name: _as_inputs(images.take(shown), flatten) for name, images in examples.items() if images is not None}
    image_shape = train_images.image_shape
    with strategy.scope():
        model = build_model(config, image_shape)
        model.compile(
            **make_optimizers(config),
            jit_compile={"auto": "auto", "on": True, "off": False}[config.jit_compile],
            steps_per_execution=1 if config.strategy == "multiworker" else config.steps_per_execution,
        )
    run_dir = config.output_dir
    config_path = os.path.join(run_dir, "config.json")
    resuming = newest_backup(os.path.join(run_dir, BACKUP)) is not None
    if not resuming:  # a resumed run keeps the config its backup was made with until it has trained
        config.to_json(config_path)

    def batches(images, training):
        # Training batches all have batch_size examples (a static shape: the train step compiles once); the
        # examples of a last partial batch are left out of that epoch, and shuffling leaves out others the next.
        # A training split smaller than one batch is one batch. Validation keeps every example. TFRecords (and some
        # tfds splits) do not say how many examples they hold: their count is None.
        drop_remainder = training and (images.count is None or images.count >= config.batch_size)
        arguments = (config.batch_size, training, config.binarize, flatten, config.seed, drop_remainder,
                     data_epochs[training])
        if config.strategy == "multiworker" and isinstance(images, data.StreamedImages):
            # Each worker reads and decodes only its own files.
            return strategy.distribute_datasets_from_function(
                lambda input_context: images.batches(*arguments, input_context=input_context))
        return images.batches(*arguments)

    # Each epoch's order and noise are drawn for `fit`'s epoch, so a resumed run draws what an uninterrupted one does.
    data_epochs = {True: data.EpochCounter(), False: data.EpochCounter()}

    interrupts = tfvae_callbacks.RaiseOnInterrupt()
    with data.raising_data_errors(train_images, validation_images), warnings.catch_warnings(), interrupts:
        # Keras learns the size of a set that does not know it (TFRecords) when its first epoch runs out of data,
        # and warns as if steps were missing: none are.
        warnings.filterwarnings("ignore", "Your input ran out of data", UserWarning)
        history = model.fit(
            batches(train_images, training=True),
            validation_data=None if validation_images is None else batches(validation_images, training=False),
            epochs=config.epochs,
            shuffle=False,  # the pipeline shuffles
            callbacks=[*make_callbacks(config, inputs, image_shape=image_shape), interrupts, *data_epochs.values()],
            verbose=config.verbose,
        )
    _report_skipped(train_images, validation_images)
    if resuming:
        config.to_json(config_path)
    history.history = read_history(os.path.join(run_dir, "history.csv"))
    trained = model.autoencoder if config.model == AUTOENCODER_KL else model
    model_files.save_model(trained, os.path.join(run_dir, "model.keras"))
    save_summary(model, history.history, inputs.get("validation", inputs["train"]), image_shape,
                 os.path.join(run_dir, "summary.png"), monitored_metric(config)[0])
    export_path = _export(trained, config) if chief else None
    return trained, history, export_path


def _export(model, config):
    try:
        return export_saved_model(model, os.path.join(config.export_root, config.model_name),
                                  allow_signature_change=config.allow_signature_change)
    except SignatureChangeError as error:
        model_path = os.path.join(config.output_dir, "model.keras")
        raise SignatureChangeError(f"{error} The trained model stays in {model_path} for tfvae export.") from error


def make_strategy(name):
    """The `tf.distribute` strategy called `name`: `default` (one device), `mirrored` (every local device), or
    `multiworker` (machines described by the `TF_CONFIG` environment variable)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def read_history(path):
    """The per-epoch metrics of a `history.csv` file as `{metric: [values]}`, every epoch of every resumed run.

    The file holds `NA` where an epoch lacks a metric (all validation columns, when there is no validation
    data): such a value reads as NaN, and a column that is all `NA` is left out.
    """
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    names = [name for name in (rows[0] if rows else []) if name != "epoch" and any(row[name] != "NA" for row in rows)]
    return {name: [float("nan") if row[name] == "NA" else float(row[name]) for row in rows] for name in names}


def load_training_images(config):
    """The training and validation image sets of `config` (validation None when `validation_split` is 0); see
    `data.open_training_images` for how the validation part is chosen."""
    return data.open_training_images(
        config.dataset, config.validation_split, config.seed, image_size=config.image_size, channels=config.channels,
        image_key=config.image_key, cache=config.cache, skip_bad_images=config.skip_bad_images,
        data_dir=config.data_dir, download=config.download)


def build_model(config, image_shape):
    """The VAE of `config` for images of `image_shape`: appendix-C MLPs, or the convolutional pair; or, for
    `autoencoder_kl`, the trainer of an `AutoencoderKL` (see `build_autoencoder_kl_trainer`)."""
    if config.model == AUTOENCODER_KL:
        return build_autoencoder_kl_trainer(config, image_shape)
    mean_activation = "sigmoid" if config.likelihood == "gaussian" else None
    if config.model == "mlp":
        size = int(np.prod(image_shape))
        encoder = networks.gaussian_mlp_encoder(size, config.latent_size, config.hidden_units)
        if config.likelihood == "bernoulli":
            decoder = networks.bernoulli_mlp_decoder(config.latent_size, size, config.hidden_units)
        else:
            decoder = networks.gaussian_mlp_decoder(config.latent_size, size, config.hidden_units, mean_activation)
    else:
        _check_conv_images(image_shape, config.dataset)
        encoder = networks.conv_encoder(image_shape, config.latent_size)
        latent_shape = encoder.output_shape[1:-1] + (config.latent_size,)
        decoder = networks.conv_decoder(latent_shape, image_shape, config.likelihood, mean_activation=mean_activation)
    return VAE(
        encoder,
        decoder,
        likelihood=config.likelihood,
        beta=config.beta,
        kl_warmup_steps=config.kl_warmup_steps,
        free_bits=config.free_bits,
        seed=config.seed,
        name=f"{config.model_name}_vae",
    )


def _check_conv_images(image_shape, dataset):
    """Raises `InputError` unless the convolutional VAE takes images of `image_shape`."""
    if len(image_shape) != 3:
        raise InputError(f"{dataset} holds examples of shape {tuple(image_shape)}, not images: --model conv needs "
                         "images [height, width, channels]; use --model mlp for other data.")
    factor = 2 ** len(networks.CONV_FILTERS)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise InputError(
            f"The images are {image_shape[0]}x{image_shape[1]} pixels, but the convolutional VAE halves them "
            f"{len(networks.CONV_FILTERS)} times: height and width must be divisible by {factor}. Resize them with "
            "--image-size."
        )


def build_autoencoder_kl_trainer(config, image_shape):
    """An `AutoencoderKLTrainer` of `config` for images of `image_shape`, built.

    Raises:
        InputError: when the images are too small for the model, or their sides not divisible by its downsampling.
    """
    autoencoder = AutoencoderKL(
        in_channels=image_shape[-1], out_channels=image_shape[-1], block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block, latent_channels=config.latent_size,
        norm_num_groups=config.norm_num_groups, seed=config.seed, name=f"{config.model_name}_autoencoder_kl",
    )
    factor, sides = autoencoder.downsampling_factor, image_shape[:2]
    if any(side % factor for side in sides):
        raise InputError(
            f"The images are {sides[0]}x{sides[1]} pixels, but an AutoencoderKL with {len(config.block_out_channels)} "
            f"block_out_channels halves them {len(config.block_out_channels) - 1} times: height and width must be "
            f"divisible by {factor}. Resize them with --image-size, or give fewer --block-out-channels."
        )
    discriminator = None
    if config.discriminator_layers:
        # Under a strategy its BatchNorm takes global-batch statistics, so the step is one device's (as README says).
        discriminator = PatchDiscriminator(num_layers=config.discriminator_layers,
                                           synchronized=config.strategy != "default")
        if min(sides) < 2 ** (config.discriminator_layers + 2):
            raise InputError(
                f"--discriminator-layers {config.discriminator_layers} needs images of at least "
                f"{2 ** (config.discriminator_layers + 2)} pixels a side, got {sides[0]}x{sides[1]}: use fewer "
                "discriminator layers, larger --image-size, or --discriminator-layers 0 for no discriminator."
            )
    objective = LatentDiffusionLoss(
        reconstruction_loss=config.reconstruction_loss, kl_weight=config.kl_weight,
        discriminator_start=config.discriminator_start, discriminator_weight=config.discriminator_weight,
    )
    trainer = AutoencoderKLTrainer(autoencoder, objective, discriminator, name=f"{config.model_name}_trainer")
    trainer.build((None, *image_shape))
    return trainer


def make_optimizers(config):
    """The optimizers of a run, as `compile` arguments: Adam; latent-diffusion's Adam(beta_1=0.5, beta_2=0.9) for
    the autoencoder and for its discriminator. Each is a `FusedAdam`: Adam's steps in fewer ops."""
    if config.model != AUTOENCODER_KL:
        return {"optimizer": FusedAdam(config.learning_rate)}
    optimizers = [FusedAdam(config.learning_rate, beta_1=0.5, beta_2=0.9) for _ in range(2)]
    return dict(zip(("optimizer", "discriminator_optimizer"), optimizers, strict=True))


def monitored_metric(config):
    """`(name, mode)` of the metric that picks `best.keras` and stops early: the ELBO (`"max"`) for a VAE, the
    reconstruction error (`"min"`) for `autoencoder_kl`."""
    return ("reconstruction", "min") if config.model == AUTOENCODER_KL else ("elbo", "max")


def make_callbacks(config, inputs, image_shape):
    """Checkpoints, resumption, logs, early stopping and TensorBoard for a run of `config`.

    Args:
        inputs: `{"train": examples, "validation": examples}` as the model takes them (validation optional).
        image_shape: the shape of one image, to show flat examples as pictures.
    """
    run = config.output_dir
    metric, mode = monitored_metric(config)
    monitor = f"val_{metric}" if "validation" in inputs else metric
    resumable = ResumableRun(run, monitor, mode)
    callbacks = [tfvae_callbacks.StopOnNonFiniteLoss(), resumable]
    if config.early_stopping_patience:
        callbacks.append(ResumableEarlyStopping(resumable, monitor=monitor, mode=mode, restore_best_weights=True,
                                                patience=config.early_stopping_patience))
    if config.tensorboard:
        log_dir = os.path.join(run, "tensorboard")
        shown = inputs.get("validation", inputs["train"])[:8]
        callbacks.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
        if config.model == AUTOENCODER_KL:  # reconstructions only: N(0, I) is not its latents' distribution
            callbacks.append(tfvae_callbacks.SampleImages(log_dir, shown, image_shape, config.image_every,
                                                          num_samples=0))
        else:
            callbacks += [
                tfvae_callbacks.LatentDiagnostics(log_dir, inputs["train"][:DIAGNOSTIC_EXAMPLES],
                                                  _first(inputs.get("validation"), DIAGNOSTIC_EXAMPLES)),
                tfvae_callbacks.SampleImages(log_dir, shown, image_shape, config.image_every, seed=config.seed),
            ]
    return callbacks


def save_summary(model, history, examples, image_shape, path, metric="elbo"):
    """Writes the run's summary PNG: learning curves of `metric`, 8 examples with their reconstructions and, for a
    VAE, 32 samples from the prior (not for an autoencoder: N(0, I) is not its latents' distribution)."""
    inputs, reconstructions = (summary_figure.as_images(values, image_shape)
                               for values in (examples[:8], model.reconstruct(examples[:8])))
    samples = None
    if isinstance(model, VAE):
        noise = np.random.default_rng(0).standard_normal((32, *model.latent_shape())).astype(np.float32)
        samples = summary_figure.as_images(model.generate(noise), image_shape)
    summary_figure.save_run_summary(path, history, inputs, reconstructions, samples, metric)


def _report_skipped(*image_sets):
    skipped = sorted(set().union(*(images.skipped for images in image_sets if images is not None)))
    if skipped:
        print(f"Skipped {len(skipped)} bad image(s) that could not be decoded: {', '.join(skipped[:5])}"
              + (", ..." if len(skipped) > 5 else "") + ".")


def _as_inputs(images, flatten):
    return images.reshape(len(images), -1) if flatten else images


def _first(values, count):
    return None if values is None else values[:count]


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_id == 0)


def _task_index(strategy):
    return strategy.cluster_resolver.task_id


def _has_type(value, field):
    """Whether a JSON value fits a `TrainConfig` field: its type (an int for a float), or None where that is the
    default."""
    if value is None:
        return field.default is None
    if field.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if field.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if field.type is tuple:
        return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    return isinstance(value, field.type)


def check_seed(seed):
    """Returns `seed`, raising ValueError unless it is in [0, 2**31): a seed NumPy, Keras and TensorFlow's int32
    seed tensors all take."""
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must be in [0, 2**31), got {seed}.")
    return seed


def _name_of(dataset):
    """A model name from a data set's name or path: the file or folder name without its extension, with what a model
    name cannot hold (`*` of a pattern, spaces) made `_` (`shards/train-*.tfrecord` -> `train`, `My Photos` ->
    `My_Photos`)."""
    stem = os.path.splitext(os.path.basename(os.path.normpath(dataset)))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-") or "images"


def _check_autoencoder_kl(config):
    _check_choice("reconstruction_loss", config.reconstruction_loss, RECONSTRUCTION_LOSSES)
    if not config.block_out_channels or min(config.block_out_channels) < 1:
        raise ValueError(f"block_out_channels must be positive widths, got {config.block_out_channels}.")
    if config.norm_num_groups < 1:
        raise ValueError(f"norm_num_groups must be at least 1, got {config.norm_num_groups}.")
    if any(channels % config.norm_num_groups for channels in config.block_out_channels):
        raise ValueError(
            f"Every entry of block_out_channels {config.block_out_channels} must be divisible by norm_num_groups "
            f"({config.norm_num_groups})."
        )
    if config.layers_per_block < 1:
        raise ValueError(f"layers_per_block must be at least 1, got {config.layers_per_block}.")
    for field in ("kl_weight", "discriminator_layers", "discriminator_start", "discriminator_weight"):
        if getattr(config, field) < 0:
            raise ValueError(f"{field} must be >= 0, got {getattr(config, field)}.")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
