"""The `tfvae` command: `tfvae train`, `tfvae evaluate`, `tfvae export` and `tfvae serving-config`.

A user's mistake (a missing or corrupt file, a bad setting, a run directory in use, a full disk) ends the command with
one line on stderr, `tfvae COMMAND: what is wrong and what to do`, and exit status 1; Ctrl-C with exit status 130. Any
other exception is a bug, and shows its traceback.
"""

import argparse
import dataclasses
import errno
import os
import sys

import numpy as np

from tfvae import __version__
from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer
from tfvae.autoencoder_kl.objective import RECONSTRUCTION_LOSSES
from tfvae.data import CACHE_IN_MEMORY_BYTES, DataError, open_images, open_training_images
from tfvae.diagnostics import summarize
from tfvae.files.run_lock import RunLockedError
from tfvae.input_checks import InputError
from tfvae.run.callbacks import NonFiniteLossError
from tfvae.run.model_files import ModelFileError, load_model
from tfvae.run.resumable_run import BackupMismatchError
from tfvae.run.training import (
    JIT_COMPILE_CHOICES,
    LIKELIHOODS,
    MODEL_FAMILIES,
    PRECISIONS,
    STRATEGIES,
    ConfigError,
    TrainConfig,
    check_seed,
    monitored_metric,
    train,
)
from tfvae.serving.export import WARMUP_IMAGE_SIZE, SignatureChangeError, export_saved_model, write_server_config
from tfvae.serving.model_server import ServingConfigError, parse_versions
from tfvae.vae import VAE

# Flag help for every TrainConfig field; the flag is the field's name with dashes.
TRAIN_FLAGS = {
    "dataset": "frey_face (shipped), or any tfds image set (mnist, cifar10, celeb_a, ...), or a path: a folder of "
    "images (PNG, JPEG, BMP, GIF; searched recursively), TFRecord files (a glob, a folder of *.tfrecord* shards, or "
    "a file), a folder of MNIST-style IDX files, an IDX file, or a .npz/.npy file of images",
    "data_dir": "where tfds keeps prepared data sets (default: tfds' own)",
    "download": "let tfds download a data set that is not prepared (needs network)",
    "image_size": "resize images to SIZE or HEIGHTxWIDTH (the short side fits, the centre is cropped); needed when "
    "the images have several sizes",
    "channels": "1 (grayscale) or 3 (RGB), converting images of the other kind (default: those of the first image)",
    "image_key": "the feature holding the encoded image in TFRecord examples or a tfds set (default: image, or the "
    "tfds set's only image feature)",
    "cache": f"keep decoded images in memory, decode them every epoch (none), or cache them in a folder; auto: memory "
    f"when they take at most {CACHE_IN_MEMORY_BYTES // 2**20} MiB as float32",
    "skip_bad_images": "skip images that cannot be decoded, and say how many at the end (default: stop at the first)",
    "model": "network family: appendix-C MLPs, convolutions with spatial latents, or latent diffusion's KL "
    "autoencoder (Stable Diffusion's VAE) trained with its GAN objective",
    "likelihood": "decoder likelihood (default: gaussian for frey_face, bernoulli otherwise)",
    "binarize": "dynamic binarization: resample binary pixels every epoch",
    "latent_size": "size of z (N_z); latent channels for --model conv and autoencoder_kl (4 in Stable Diffusion)",
    "hidden_units": "width of the MLPs' tanh layers",
    "epochs": "passes over the training data",
    "batch_size": "examples per step",
    "learning_rate": "Adam's step size",
    "beta": "weight of the KL term (beta-VAE)",
    "kl_warmup_steps": "steps over which the KL weight rises from 0 to beta",
    "free_bits": "KL (nats) per latent dimension below which it is not penalised",
    "block_out_channels": "autoencoder_kl: channels of each resolution, finest first (N entries downsample 2^(N-1) "
    "times)",
    "layers_per_block": "autoencoder_kl: ResNet blocks per encoder resolution (the decoder has one more)",
    "norm_num_groups": "autoencoder_kl: GroupNorm groups (divides every --block-out-channels entry)",
    "reconstruction_loss": "autoencoder_kl: per-pixel error of the NLL with a learned variance",
    "kl_weight": "autoencoder_kl: weight of the KL term",
    "discriminator_layers": "autoencoder_kl: stride-2 layers of the PatchGAN discriminator (0: no discriminator)",
    "discriminator_start": "autoencoder_kl: optimizer step from which the GAN losses count",
    "discriminator_weight": "autoencoder_kl: factor of the adaptive weight of the generator's GAN loss",
    "validation_split": "fraction of the training split held out for validation (0: none); for folders and "
    "TFRecords chosen by a hash of each file path (record index), so it never moves between runs",
    "early_stopping_patience": "stop after this many epochs without a better validation ELBO (reconstruction error "
    "for autoencoder_kl) (0: never)",
    "tensorboard": "write TensorBoard logs to OUTPUT_DIR/tensorboard",
    "image_every": "epochs between TensorBoard images",
    "seed": "seed of weights, data order, binarization and noise",
    "jit_compile": "XLA for the train step (auto: on, unless tf.distribute is in use)",
    "steps_per_execution": "train steps per call into TensorFlow; more means less Python overhead per step (callbacks "
    "then see every N-th batch)",
    "strategy": "tf.distribute strategy: one device, all local devices (mirrored), or the machines of TF_CONFIG "
    "(multiworker); --batch-size stays the global batch",
    "precision": "Keras dtype policy: mixed precision computes layers in 16 bits, the distribution math in float32",
    "output_dir": "the run directory (default: runs/MODEL_NAME)",
    "export_root": "root of the SavedModel versions",
    "model_name": "exports go to EXPORT_ROOT/MODEL_NAME/<version> (default: from the data set)",
    "allow_signature_change": "export even if the signatures differ from those of the newest version of MODEL_NAME",
}
EVALUATE_DATA_FLAGS = ("image_size", "channels", "image_key", "cache", "skip_bad_images")
CHOICES = {
    "model": MODEL_FAMILIES,
    "channels": (1, 3),
    "likelihood": LIKELIHOODS,
    "reconstruction_loss": RECONSTRUCTION_LOSSES,
    "jit_compile": JIT_COMPILE_CHOICES,
    "strategy": STRATEGIES,
    "precision": PRECISIONS,
}
USER_ERRORS = (
    BackupMismatchError, ConfigError, DataError, FileExistsError, InputError, ModelFileError, NonFiniteLossError,
    RunLockedError, ServingConfigError, SignatureChangeError,
)
# File-system errors that the user's machine causes, not tfvae: reported in one line like the USER_ERRORS.
USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOSPC,
               errno.EDQUOT, errno.EFBIG}
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as shells report a process that Ctrl-C ended


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run_command(argv)
    except KeyboardInterrupt as interrupt:
        message, status = str(interrupt) or "interrupted.", INTERRUPTED_STATUS
    except OSError as error:  # before USER_ERRORS: a FileExistsError of the file system has its errno
        if error.errno not in USER_ERRNOS and not isinstance(error, USER_ERRORS):
            raise
        message, status = (_describe_os_error(error) if error.errno else str(error)), 1
    except USER_ERRORS as error:
        message, status = str(error), 1
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    print(f"tfvae {command}: {message}" if command else f"tfvae: {message}", file=sys.stderr)
    return status


def _run_command(argv):
    parser = _build_parser(_config_defaults(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


def _describe_os_error(error):
    where = f"{error.filename}: " if error.filename else ""
    if error.errno in DISK_FULL_ERRNOS:
        return (f"{where}{error.strerror} while saving; the files saved before are intact. Free some space and run the "
                "same command again (training resumes from its last finished epoch).")
    return f"{where}{error.strerror}; choose a folder you can write to."


def _config_defaults(argv):
    """The settings of `--config FILE`, if given: they replace the defaults, and flags on the command line win."""
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--config")
    known, _ = pre_parser.parse_known_args(argv)
    return dataclasses.asdict(TrainConfig.from_json(known.config)) if known.config else {}


def _build_parser(config_defaults):
    # Read by tfvae.cli.tensorflow_logs while tfvae is imported (TensorFlow logs before any parsing); listed for --help.
    logging = argparse.ArgumentParser(add_help=False)
    logging.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="show TensorFlow's C++ log lines (hidden by default, as TF_CPP_MIN_LOG_LEVEL=3 would)")
    parser = argparse.ArgumentParser(
        prog="tfvae", description="Variational autoencoders with TensorFlow, Keras 3 and TensorFlow Probability.",
        parents=[logging],
    )
    parser.add_argument("--version", action="version", version=f"tfvae {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train_parser = commands.add_parser(
        "train",
        parents=[logging],
        help="train a VAE (or latent diffusion's autoencoder) and export a SavedModel",
        description="Train a VAE (by default the AEVB appendix-C Gaussian VAE on Frey Face, which ships with "
        "tfvae), keep its run directory (config, logs, checkpoints, summary PNG), and export a SavedModel for TF "
        "Serving. Killed mid-run, the same command resumes from the last finished epoch.",
        formatter_class=_HelpFormatter,
    )
    train_parser.add_argument("--config", help="a run's config.json: repeat that run (flags given here win)")
    for field in dataclasses.fields(TrainConfig):
        if field.name in TRAIN_FLAGS:
            _add_field_flag(train_parser, field)
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.set_defaults(run=_train, **config_defaults)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[logging],
        help="ELBO, KL per latent channel, active units and importance-weighted log-likelihood of a saved VAE",
        formatter_class=_HelpFormatter,
    )
    evaluate.add_argument("model", help="a .keras file saved by tfvae")
    evaluate.add_argument("--dataset", default="frey_face", help=TRAIN_FLAGS["dataset"])
    evaluate.add_argument("--split", default="test", help="train, test, or a tfds split name")
    evaluate.add_argument("--data-dir", help=TRAIN_FLAGS["data_dir"])
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    for name in EVALUATE_DATA_FLAGS:
        _add_field_flag(evaluate, fields[name])
    evaluate.add_argument("--validation-split", type=float, default=0.0,
                          help="with --split train or validation: the part of the training split that a run with "
                          "this --validation-split trained on, or held out (a folder or TFRecords are one split)")
    evaluate.add_argument("--samples", type=_positive_int, default=5000, help="importance samples per example (K)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=100, help="examples per step")
    evaluate.add_argument("--limit", type=_positive_int, help="evaluate only the first LIMIT examples")
    evaluate.add_argument("--binarize", action="store_true", help="binarize pixels once (seeded), as for training")
    evaluate.add_argument("--seed", type=_seed, default=0, help="seed of the importance samples and of --binarize")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser(
        "export",
        parents=[logging],
        help="export a saved .keras VAE or AutoencoderKL (a final model or a checkpoint) as a new SavedModel version",
        formatter_class=_HelpFormatter,
    )
    export.add_argument("model", help="a .keras file saved by tfvae (model.keras or the checkpoint best.keras)")
    export.add_argument("--model-dir", required=True, help="EXPORT_ROOT/MODEL_NAME; the version goes below it")
    export.add_argument("--version", type=_positive_int, default=None, help="default: one more than the newest")
    export.add_argument("--keep", type=_positive_int, default=None, help="keep only the newest KEEP versions")
    export.add_argument("--allow-signature-change", action="store_true",
                        help="export even if the signatures differ from those of the newest version in MODEL_DIR")
    export.add_argument("--serve-versions", type=_versions, metavar="POLICY",
                        help="versions TF Serving loads: latest:N, all or specific:V1,V2 (default: the model's "
                        "setting, latest:1 at first)")
    export.add_argument("--label", type=_label, action="append", metavar="LABEL=VERSION",
                        help="give VERSION the label LABEL in models.config (stable, canary, ...); repeatable")
    export.add_argument("--measure-batching", action="store_true",
                        help="choose the batching parameters from serving_default's latency measured on this machine "
                        "(default: the model family's defaults)")
    export.add_argument("--warmup-image-size", type=_positive_int, default=WARMUP_IMAGE_SIZE,
                        help="AutoencoderKL: side of the square images of the warm-up requests and of "
                        "--measure-batching")
    export.set_defaults(run=_export)

    serving_config = commands.add_parser(
        "serving-config",
        parents=[logging],
        help="rewrite EXPORT_ROOT/models.config and batching_parameters.pbtxt for TF Serving from the folder",
    )
    serving_config.add_argument("export_root", help="the folder holding MODEL_NAME/<version> folders")
    serving_config.set_defaults(run=_serving_config)
    return parser


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _versions(text):
    try:
        parse_versions(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def _label(text):
    label, _, version = text.partition("=")
    if not label or not version.isdigit() or int(version) < 1:
        raise argparse.ArgumentTypeError(f"must be LABEL=VERSION with a positive integer VERSION, got {text!r}")
    return label, int(version)


def _seed(text):
    try:
        return check_seed(int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _add_field_flag(parser, field):
    flag = "--" + field.name.replace("_", "-")
    if field.type is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default,
                            help=TRAIN_FLAGS[field.name])
        return
    if field.type is tuple:
        parser.add_argument(flag, type=int, nargs="+", default=field.default, help=TRAIN_FLAGS[field.name])
        return
    kind = {int: int, float: float}.get(field.type, str)
    parser.add_argument(flag, type=kind, default=field.default, choices=CHOICES.get(field.name),
                        help=TRAIN_FLAGS[field.name])


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds an option's default to its help, unless there is none to show (None, a flag that is off, a required
    option) or the help already says what it is."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.required or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _train(args):
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    options = {name: value for name, value in vars(args).items() if name in fields}
    try:
        config = TrainConfig(**{**options, "verbose": 0 if args.quiet else 1})
    except ValueError as error:
        raise ConfigError(str(error)) from error
    model, history, export_path = train(config)
    metric, _ = monitored_metric(config)
    label, digits = {"elbo": ("ELBO per example", 2), "reconstruction": ("reconstruction error per pixel", 4)}[metric]
    for prefix, split in (("", "training"), ("val_", "validation")):
        if prefix + metric in history.history:
            print(f"final {split} {label}: {history.history[prefix + metric][-1]:.{digits}f}")
    print(f"run directory: {config.output_dir}")
    if export_path:
        print(f"SavedModel: {export_path}")
    return 0


def _evaluation_images(args):
    """The `--limit` first images of the split `args` ask for, in memory."""
    options = {name: getattr(args, name) for name in (*EVALUATE_DATA_FLAGS, "data_dir")}
    if args.validation_split and args.split in ("train", "validation"):
        parts = open_training_images(args.dataset, args.validation_split, args.seed, **options)
        return parts[args.split == "validation"].take(args.limit)
    return open_images(args.dataset, args.split, **options).take(args.limit)


def _evaluate(args):
    model = load_model(args.model)
    images = _evaluation_images(args)
    if args.binarize:
        images = (np.random.default_rng(args.seed).random(images.shape) < images).astype(np.float32)
    x = images.reshape(len(images), -1) if len(model.data_shape) == 1 else images
    model.check_data(x)
    result = summarize(model, x, args.samples, args.batch_size, args.seed, verbose=0 if args.quiet else 1)
    print(f"{args.dataset} {args.split}: {result['examples']} examples")
    print(f"ELBO per example: {result['elbo']:.3f} (KL {result['kl']:.3f})")
    print("KL per latent channel: " + " ".join(f"{value:.3f}" for value in result["kl_per_channel"]))
    print(f"active units: {result['active_units']}")
    print(f"log-likelihood (importance-weighted, K={args.samples}): {result['log_likelihood']:.3f} "
          f"+- {result['standard_error']:.3f} (standard error)")
    return 0


def _export(args):
    model = load_model(args.model, (VAE, AutoencoderKL, AutoencoderKLTrainer))
    if isinstance(model, AutoencoderKLTrainer):  # the best.keras of an autoencoder_kl run
        model = model.autoencoder
    path = export_saved_model(model, args.model_dir, version=args.version, keep=args.keep,
                              allow_signature_change=args.allow_signature_change, serve_versions=args.serve_versions,
                              labels=dict(args.label or ()), measure_batching=args.measure_batching,
                              warmup_image_size=args.warmup_image_size)
    print(f"SavedModel: {path}")
    return 0


def _serving_config(args):
    if not os.path.isdir(args.export_root):
        raise ServingConfigError(f"{args.export_root} is not a folder; give the export root (--export-root of tfvae "
                                 "train).")
    print(f"model config: {write_server_config(args.export_root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
