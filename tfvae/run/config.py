"""The settings of a `tfvae train` run: one dataclass per model family, each field with its flag's help and choices.

`RunConfig` holds what every run has (data, training loop, distribution, run directory, export); `VAEConfig`
(`--model mlp` or `conv`) and `AutoencoderKLConfig` (`--model autoencoder_kl`) add their family's own settings.
`make_config(**settings)` builds the config of the family `settings["model"]` names and refuses, in one line, a
setting of another family. The `tfvae train` flags are made from these fields (`tfvae.cli.parser`), and a run saves
its config as `config.json`, which `load_config` (and `tfvae train --config`) reads back.

This module imports no TensorFlow: `tfvae --help` reads it.
"""

import dataclasses
import json
import os
import re

JIT_COMPILE_CHOICES = ("auto", "on", "off")
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
VAE_FAMILIES = ("mlp", "conv")
AUTOENCODER_KL = "autoencoder_kl"
MODEL_FAMILIES = (*VAE_FAMILIES, AUTOENCODER_KL)
LIKELIHOODS = ("bernoulli", "gaussian")
RECONSTRUCTION_LOSSES = ("l1", "l2")  # tfvae.autoencoder_kl.objective's, which a test keeps equal
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TYPE_NAMES = {
    int: "an integer", float: "a number", bool: "true or false", str: "a string", tuple: "a list of integers"
}


class ConfigError(ValueError):
    """Settings of a run that cannot be used: a value out of range, a setting of another model family, or a config
    file that is missing or malformed."""


def setting(default, help, choices=None):
    """A config field whose flag says `help` and takes one of `choices` (None: any value of the field's type)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass
class RunConfig:
    """Everything a training run has whatever its model family; saved in the run directory as `config.json`.

    `batch_size` is the global batch: under a `strategy` with R replicas each replica takes `batch_size / R`
    examples of every step, and the result is the same as one device taking all of them. Under `multiworker` one
    step runs per call whatever `steps_per_execution` says: Keras' loop of several steps per call cannot hold the
    workers' collective ops.
    """

    dataset: str = setting(
        "frey_face",
        "frey_face (shipped), or any tfds image set (mnist, cifar10, celeb_a, ...), or a path: a folder of images "
        "(PNG, JPEG, BMP, GIF; searched recursively), TFRecord files (a glob, a folder of *.tfrecord* shards, or a "
        "file), a folder of MNIST-style IDX files, an IDX file, or a .npz/.npy file of images")
    data_dir: str = setting(None, "where tfds keeps prepared data sets (default: tfds' own)")
    download: bool = setting(False, "let tfds download a data set that is not prepared (needs network)")
    image_size: str = setting(
        None, "resize images to SIZE or HEIGHTxWIDTH (the short side fits, the centre is cropped); needed when the "
        "images have several sizes")
    channels: int = setting(
        None, "1 (grayscale) or 3 (RGB), converting images of the other kind (default: those of the first image)",
        choices=(1, 3))
    image_key: str = setting(
        None, "the feature holding the encoded image in TFRecord examples or a tfds set (default: image, or the tfds "
        "set's only image feature)")
    cache: str = setting(
        "auto", "keep decoded images in memory, decode them every epoch (none), or cache them in a folder; auto: "
        "memory when they take at most 1024 MiB as float32")
    skip_bad_images: bool = setting(
        False, "skip images that cannot be decoded, and say how many at the end (default: stop at the first)")
    model: str = setting(
        "mlp", "network family: appendix-C MLPs, convolutions with spatial latents, or latent diffusion's KL "
        "autoencoder (Stable Diffusion's VAE) trained with its GAN objective", choices=MODEL_FAMILIES)
    latent_size: int = setting(
        10, "size of z (N_z); latent channels for --model conv and autoencoder_kl (4 in Stable Diffusion's VAE)")
    epochs: int = setting(100, "passes over the training data")
    batch_size: int = setting(100, "examples per step")
    learning_rate: float = setting(1e-3, "Adam's step size")
    validation_split: float = setting(
        0.1, "fraction of the training split held out for validation (0: none); for folders and TFRecords chosen by "
        "a hash of each file path (record index), so it never moves between runs")
    early_stopping_patience: int = setting(
        0, "stop after this many epochs without a better validation ELBO (reconstruction error for autoencoder_kl) "
        "(0: never)")
    tensorboard: bool = setting(False, "write TensorBoard logs to OUTPUT_DIR/tensorboard")
    image_every: int = setting(5, "epochs between TensorBoard images")
    seed: int = setting(0, "seed of weights, data order, binarization and noise")
    jit_compile: str = setting(
        "auto", "XLA for the train step (auto: on where a GPU or TPU is present, unless tf.distribute is in use)",
        choices=JIT_COMPILE_CHOICES)
    steps_per_execution: int = setting(
        10, "train steps per call into TensorFlow; more means less Python overhead per step (callbacks then see every "
        "N-th batch)")
    strategy: str = setting(
        "default", "tf.distribute strategy: one device, all local devices (mirrored), or the machines of TF_CONFIG "
        "(multiworker); --batch-size stays the global batch", choices=STRATEGIES)
    precision: str = setting(
        "float32", "Keras dtype policy: mixed precision computes layers in 16 bits, the distribution math in float32",
        choices=PRECISIONS)
    output_dir: str = setting(None, "the run directory (default: runs/MODEL_NAME)")
    export_root: str = setting("saved_models", "root of the SavedModel versions")
    model_name: str = setting(
        None, "exports go to EXPORT_ROOT/MODEL_NAME/<version> (default: from the data set)")
    allow_signature_change: bool = setting(
        False, "export even if the signatures differ from those of the newest version of MODEL_NAME")
    verbose: int = setting(1, None)  # the progress bar: `tfvae train --quiet` sets 0

    def __post_init__(self):
        from tfvae.data import check_channels, parse_image_size  # here: `tfvae --help` imports no TensorFlow

        if self.model_name is None:
            self.model_name = _name_of(self.dataset)
        if not _MODEL_NAME.fullmatch(self.model_name):
            raise ConfigError(f"model_name may hold letters, digits, '_', '.' and '-' (it names the model and its "
                              f"folders), and must start with a letter or digit; got {self.model_name!r}.")
        if self.output_dir is None:
            self.output_dir = os.path.join("runs", self.model_name)
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            if choices and getattr(self, field.name) is not None and getattr(self, field.name) not in choices:
                raise ConfigError(f"{field.name} must be one of {choices}, got {getattr(self, field.name)!r}.")
        _check_at_least(self, 1, "latent_size", "epochs", "batch_size", "image_every", "steps_per_execution")
        _check_at_least(self, 0, "early_stopping_patience")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}.")
        check_seed(self.seed)
        try:
            size = parse_image_size(self.image_size)
            check_channels(self.channels)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        self.image_size = None if size is None else f"{size[0]}x{size[1]}"  # as config.json and the flag spell it
        if not 0 <= self.validation_split < 1:
            raise ConfigError(f"validation_split must be in [0, 1), got {self.validation_split}.")

    def to_json(self, path):
        with open(path, "w") as file:
            json.dump(dataclasses.asdict(self), file, indent=1)


@dataclasses.dataclass
class VAEConfig(RunConfig):
    """A `tfvae.VAE` run (`--model mlp` or `conv`).

    The defaults follow AEVB on Frey Face: a Gaussian decoder whose means pass through a sigmoid, 200 hidden units,
    minibatches of 100. `likelihood=None` picks Gaussian for Frey Face and Bernoulli for the others. For the
    convolutional family `latent_size` counts latent channels (the latent is `[h / 4, w / 4, latent_size]`).
    """

    likelihood: str = setting(
        None, "decoder likelihood (default: gaussian for frey_face, bernoulli otherwise)", choices=LIKELIHOODS)
    binarize: bool = setting(False, "dynamic binarization: resample binary pixels every epoch")
    hidden_units: int = setting(200, "width of the MLPs' tanh layers (appendix C's 200)")
    beta: float = setting(1.0, "weight of the KL term (beta-VAE)")
    kl_warmup_steps: int = setting(0, "steps over which the KL weight rises from 0 to beta")
    free_bits: float = setting(0.0, "KL (nats) per latent dimension below which it is not penalised")

    def __post_init__(self):
        if self.likelihood is None:
            self.likelihood = "gaussian" if self.dataset == "frey_face" else "bernoulli"
        super().__post_init__()
        _check_at_least(self, 1, "hidden_units")
        _check_at_least(self, 0, "beta", "kl_warmup_steps", "free_bits")


@dataclasses.dataclass
class AutoencoderKLConfig(RunConfig):
    """A `tfvae.AutoencoderKL` run (`--model autoencoder_kl`), trained with latent diffusion's objective.

    Stable Diffusion's VAE architecture by default (`block_out_channels`, `layers_per_block`, `norm_num_groups`;
    `latent_size` latent channels, 4 in Stable Diffusion): `reconstruction_loss`, `kl_weight`, and a PatchGAN of
    `discriminator_layers` layers (0: none) whose loss counts from step `discriminator_start` with the adaptive
    weight times `discriminator_weight`. Both of its optimizers are Adam with latent-diffusion's `beta_1 = 0.5`,
    `beta_2 = 0.9`.
    """

    block_out_channels: tuple = setting(
        (128, 256, 512, 512), "channels of each resolution, finest first (N entries downsample 2^(N-1) times)")
    layers_per_block: int = setting(2, "ResNet blocks per encoder resolution (the decoder has one more)")
    norm_num_groups: int = setting(32, "GroupNorm groups (divides every --block-out-channels entry)")
    reconstruction_loss: str = setting(
        "l1", "per-pixel error of the NLL with a learned variance", choices=RECONSTRUCTION_LOSSES)
    kl_weight: float = setting(1e-6, "weight of the KL term")
    discriminator_layers: int = setting(3, "stride-2 layers of the PatchGAN discriminator (0: no discriminator)")
    discriminator_start: int = setting(50001, "optimizer step from which the GAN losses count")
    discriminator_weight: float = setting(0.5, "factor of the adaptive weight of the generator's GAN loss")

    def __post_init__(self):
        super().__post_init__()
        self.block_out_channels = tuple(self.block_out_channels)
        if not self.block_out_channels or min(self.block_out_channels) < 1:
            raise ConfigError(f"block_out_channels must be positive widths, got {self.block_out_channels}.")
        _check_at_least(self, 1, "norm_num_groups", "layers_per_block")
        if any(channels % self.norm_num_groups for channels in self.block_out_channels):
            raise ConfigError(
                f"Every entry of block_out_channels {self.block_out_channels} must be divisible by norm_num_groups "
                f"({self.norm_num_groups})."
            )
        _check_at_least(self, 0, "kl_weight", "discriminator_layers", "discriminator_start", "discriminator_weight")


@dataclasses.dataclass
class VideoClipSettings:
    """How `tfvae encode` cuts the videos of a set into clips for a video autoencoder (`AutoencoderKLCogVideoX`):
    `tfvae.data.open_videos`' arguments of the same names. Not a training setting: `tfvae train` reads images."""

    frames: int = setting(
        17, "[video] frames per clip, 1 + 4k (1, 5, 9, 17, ..., CogVideoX's 49): the causal video autoencoder keeps "
        "the first frame and compresses the others 4x")
    frame_stride: int = setting(1, "[video] take every N-th frame of a video (1: every frame)")

    def __post_init__(self):
        from tfvae.data.videos import check_clip_length  # here: `tfvae --help` imports no TensorFlow

        try:
            check_clip_length(self.frames)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        _check_at_least(self, 1, "frame_stride")


CONFIGS = {"mlp": VAEConfig, "conv": VAEConfig, AUTOENCODER_KL: AutoencoderKLConfig}


def make_config(**settings):
    """The config of the model family `settings["model"]` names (`"mlp"` when absent), from `settings`.

    Raises:
        ConfigError: for an unknown setting, one that belongs to another family, or a value out of range.
    """
    family = settings.get("model", RunConfig.model)
    if family not in CONFIGS:
        raise ConfigError(f"model must be one of {MODEL_FAMILIES}, got {family!r}.")
    config_class = CONFIGS[family]
    own = {field.name for field in dataclasses.fields(config_class)}
    foreign = sorted(settings.keys() - own)
    if foreign:
        raise ConfigError(_describe_foreign(foreign, family))
    return config_class(**settings)


def field_families(name):
    """The model families that have the setting `name`."""
    return [family for family, config_class in CONFIGS.items()
            if name in {field.name for field in dataclasses.fields(config_class)}]


def all_fields():
    """Every setting of every family, once, in declaration order: what `tfvae train` has flags for."""
    fields = {}
    for config_class in CONFIGS.values():
        for field in dataclasses.fields(config_class):
            fields.setdefault(field.name, field)
    return list(fields.values())


def load_config(path):
    """The config saved at `path` by `RunConfig.to_json`.

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
    fields = {field.name: field for field in all_fields()}
    unknown = sorted(settings.keys() - fields.keys())
    if unknown:
        raise ConfigError(f"--config {path}: unknown settings {unknown}; known ones: {sorted(fields)}.")
    for name, value in settings.items():
        if not _has_type(value, fields[name]):
            raise ConfigError(f"--config {path}: {name} must be {_TYPE_NAMES[fields[name].type]}, got {value!r}.")
    try:
        return make_config(**settings)
    except ConfigError as error:
        raise ConfigError(f"--config {path}: {error}") from error


def check_seed(seed):
    """Returns `seed`, raising `ConfigError` unless it is in [0, 2**31): a seed NumPy, Keras and TensorFlow's int32
    seed tensors all take."""
    if not 0 <= seed < 2**31:
        raise ConfigError(f"seed must be in [0, 2**31), got {seed}.")
    return seed


def _describe_foreign(names, family):
    described = []
    for name in names:
        families = field_families(name)
        owners = f"of --model {' and '.join(families)}" if families else "that no model family has"
        described.append(f"{name} is a setting {owners}")
    return f"{'; '.join(described)}, not of --model {family}."


def _check_at_least(config, low, *names):
    for name in names:
        if getattr(config, name) < low:
            bound = "at least 1" if low == 1 else f">= {low}"
            raise ConfigError(f"{name} must be {bound}, got {getattr(config, name)}.")


def _has_type(value, field):
    """Whether a JSON value fits a config field: its type (an int for a float), or None where that is the default."""
    if value is None:
        return field.default is None
    if field.type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if field.type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if field.type is tuple:
        return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    return isinstance(value, field.type)


def _name_of(dataset):
    """A model name from a data set's name or path: the file or folder name without its extension, with what a model
    name cannot hold (`*` of a pattern, spaces) made `_` (`shards/train-*.tfrecord` -> `train`, `My Photos` ->
    `My_Photos`)."""
    stem = os.path.splitext(os.path.basename(os.path.normpath(dataset)))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-") or "images"
