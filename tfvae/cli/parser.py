"""The `tfvae` command's arguments: `tfvae train`'s flags come from the config fields (`tfvae.run.config`).

Each field of a run config is a flag (`latent_size` -> `--latent-size`) with the field's help and choices; a flag of
another model family than the one chosen is refused with one line. This module imports no TensorFlow, so `tfvae
--help` and `tfvae --version` answer at once.
"""

import argparse
import dataclasses

from tfvae import __version__
from tfvae.run.config import RunConfig, VideoClipSettings, all_fields, check_seed, field_families, load_config

TRAIN_ONLY_FIELDS = ("verbose",)  # settings without a flag of their own (`--quiet` sets verbose)
WARMUP_IMAGE_SIZE = 256  # tfvae.serving.export's, which a test keeps equal
EVALUATE_DATA_FIELDS = ("dataset", "data_dir", "image_size", "channels", "image_key", "cache", "skip_bad_images")
VIDEO_FIELDS = tuple(field.name for field in dataclasses.fields(VideoClipSettings))


def build_parser(argv=()):
    """The `tfvae` parser; `--config FILE` in `argv` makes that run's settings the train flags' defaults."""
    logging = argparse.ArgumentParser(add_help=False)
    logging.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="show TensorFlow's C++ log lines (hidden by default, as TF_CPP_MIN_LOG_LEVEL=3 would)")
    parser = argparse.ArgumentParser(
        prog="tfvae", description="Variational autoencoders with TensorFlow, Keras 3 and TensorFlow Probability.",
        parents=[logging],
    )
    parser.add_argument("--version", action="version", version=f"tfvae {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(commands, logging, _config_settings(argv))
    _add_evaluate(commands, logging)
    _add_export(commands, logging)
    _add_encode(commands, logging)
    return parser


def train_settings(args):
    """The settings a `tfvae train` command line gives, by field name: its `--config` file's, then its flags'."""
    flags = {name: value for name, value in vars(args).items() if name in _field_names()}
    return {**args.config_settings, **flags, "verbose": 0 if args.quiet else 1}


def _config_settings(argv):
    """The settings of `--config FILE`, if `argv` gives one."""
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--config")
    known, _ = pre_parser.parse_known_args(argv)
    if not known.config:
        return {}
    config = load_config(known.config)
    return {name: value for name, value in dataclasses.asdict(config).items() if name not in TRAIN_ONLY_FIELDS}


def _add_train(commands, logging, config_settings):
    train = commands.add_parser(
        "train", parents=[logging], formatter_class=_HelpFormatter,
        help="train a VAE (or latent diffusion's autoencoder) and export a SavedModel",
        description="Train a VAE (by default the AEVB appendix-C Gaussian VAE on Frey Face, which ships with "
        "tfvae), keep its run directory (config, logs, checkpoints, summary PNG), and export a SavedModel for TF "
        "Serving. Killed mid-run, the same command resumes from the last finished epoch. Flags marked with a model "
        "family belong to that family only.",
    )
    train.add_argument("--config", help="a run's config.json: repeat that run (flags given here win)")
    for field in all_fields():
        if field.name not in TRAIN_ONLY_FIELDS:
            _add_field_flag(train, field, family_note=True)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(command_name="train", config_settings=config_settings)


def _add_evaluate(commands, logging):
    evaluate = commands.add_parser(
        "evaluate", parents=[logging], formatter_class=_HelpFormatter,
        help="ELBO, KL per latent channel, active units and importance-weighted log-likelihood of a saved VAE",
    )
    evaluate.add_argument("model", help="a .keras file saved by tfvae")
    fields = {field.name: field for field in dataclasses.fields(RunConfig)}
    for name in EVALUATE_DATA_FIELDS:
        _add_field_flag(evaluate, fields[name])
    evaluate.add_argument("--split", default="test", help="train, test, or a tfds split name")
    evaluate.add_argument("--validation-split", type=float, default=0.0,
                          help="with --split train or validation: the part of the training split that a run with "
                          "this --validation-split trained on, or held out (a folder or TFRecords are one split)")
    evaluate.add_argument("--samples", type=_positive_int, default=5000, help="importance samples per example (K)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=100, help="examples per step")
    evaluate.add_argument("--limit", type=_positive_int, help="evaluate only the first LIMIT examples")
    evaluate.add_argument("--binarize", action="store_true", help="binarize pixels once (seeded), as for training")
    evaluate.add_argument("--seed", type=_seed, default=0, help="seed of the importance samples and of --binarize")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(command_name="evaluate")


def _add_export(commands, logging):
    export = commands.add_parser(
        "export", parents=[logging], formatter_class=_HelpFormatter,
        help="export a saved .keras VAE or AutoencoderKL (a final model or a checkpoint) as a new SavedModel version",
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
    export.set_defaults(command_name="export")
    serving_config = commands.add_parser(
        "serving-config", parents=[logging],
        help="rewrite EXPORT_ROOT/models.config and batching_parameters.pbtxt for TF Serving from the folder",
    )
    serving_config.add_argument("export_root", help="the folder holding MODEL_NAME/<version> folders")
    serving_config.set_defaults(command_name="serving-config")


def _add_encode(commands, logging):
    encode = commands.add_parser(
        "encode", parents=[logging], formatter_class=_HelpFormatter,
        help="write the latents (posterior mean and log-variance) of images through an AutoencoderKL, or of video "
        "clips through an AutoencoderKLCogVideoX, as TFRecord shards for a diffusion model",
        description="Encode every image of a data set with an AutoencoderKL, or every clip of a set of videos with "
        "an AutoencoderKLCogVideoX (a .keras file saved by tfvae, or a diffusers folder; the model decides which), "
        "and write the posterior moments as TFRecord shards, described by latents.json. Killed midway, the same "
        "command resumes after the last finished shard. For a video autoencoder --dataset is a folder of videos "
        "(MP4, WebM, MKV, AVI through PyAV: pip install \"tfvae[video]\"; GIF) or TFRecord files of videos, cut into "
        "clips in file order; flags marked [video] are for a video autoencoder only.",
    )
    encode.add_argument("model", help="an AutoencoderKL or AutoencoderKLCogVideoX: a .keras file (model.keras or "
                        "best.keras of a run), or a diffusers folder (config.json and its safetensors; its "
                        "_class_name says which)")
    fields = {field.name: field for field in dataclasses.fields(RunConfig)}
    for name in EVALUATE_DATA_FIELDS:
        _add_field_flag(encode, fields[name])
    for field in dataclasses.fields(VideoClipSettings):
        _add_field_flag(encode, field)
    encode.add_argument("--split", default="train", help="train, test, or a tfds split name (images only)")
    encode.add_argument("--output-dir", required=True, help="the folder of the shards and latents.json")
    encode.add_argument("--batch-size", type=_positive_int, default=16, help="images or clips per encode call")
    encode.add_argument("--shard-size", type=_positive_int, default=1024, help="images or clips per shard")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    encode.set_defaults(command_name="encode")


def _add_field_flag(parser, field, family_note=False):
    """Adds `--field-name` for a config field, with its type, choices and help; `family_note` marks a setting that
    not every model family has with the families that have it (`[mlp/conv]`).

    Nothing is stored for a flag that is not given (`argparse.SUPPRESS`): the config then takes its own default, and
    a setting of another family counts only when the user gives it.
    """
    help_text = field.metadata["help"]
    if family_note and field.name not in RunConfig.__dataclass_fields__:
        help_text = f"[{'/'.join(field_families(field.name))}] {help_text}"
    if field.default is not None and field.default is not False and "default" not in help_text:
        shown = " ".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
        help_text = f"{help_text} (default: {shown})"
    options = {"default": argparse.SUPPRESS, "help": help_text, "dest": field.name}
    if field.type is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif field.type is tuple:
        options.update(type=int, nargs="+")
    else:
        options.update(type={int: int, float: float}.get(field.type, str), choices=field.metadata.get("choices"))
    parser.add_argument("--" + field.name.replace("_", "-"), **options)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds an option's default to its help, unless there is none to show (None, a flag that is off, a required or
    suppressed default) or the help already says what it is."""

    def _get_help_string(self, action):
        shown = all(action.default is not value for value in (None, False, argparse.SUPPRESS)) and not action.required
        if not shown or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _field_names():
    return {field.name for field in all_fields()}


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _versions(text):
    from tfvae.serving.model_server import parse_versions  # here: only when the flag is given (it imports TensorFlow)

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
