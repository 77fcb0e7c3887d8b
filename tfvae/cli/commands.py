"""The `tfvae` command's subcommands (`train`, `evaluate`, `export`, `encode`, `serving-config`), run once `tfvae.cli`
has parsed the command line and imported TensorFlow.

A user's mistake (a missing or corrupt file, a bad setting, a run directory in use, a full disk) ends the command with
one line on stderr, `tfvae COMMAND: what is wrong and what to do`, and exit status 1; Ctrl-C with exit status 130. Any
other exception is a bug, and shows its traceback.
"""

import dataclasses
import errno
import json
import os
import sys

import numpy as np

from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, WeightsError
from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from tfvae.cli.parser import EVALUATE_DATA_FIELDS, VIDEO_FIELDS, train_settings
from tfvae.data import DataError, open_images, open_training_images, open_videos, raising_data_errors
from tfvae.data.videos import list_videos
from tfvae.diagnostics import summarize
from tfvae.files.run_lock import RunLockedError
from tfvae.input_checks import InputError
from tfvae.run.callbacks import NonFiniteLossError
from tfvae.run.config import ConfigError, RunConfig, VideoClipSettings, make_config
from tfvae.run.latent_shards import MANIFEST, LatentShardsError, encode_to_shards
from tfvae.run.model_files import ModelFileError, load_model
from tfvae.run.recipes import recipe_for
from tfvae.run.resumable_run import BackupMismatchError
from tfvae.run.training import train
from tfvae.serving.export import SignatureChangeError, export_saved_model, write_server_config
from tfvae.serving.model_server import ServingConfigError
from tfvae.vae import VAE

USER_ERRORS = (
    BackupMismatchError, ConfigError, DataError, FileExistsError, InputError, LatentShardsError, ModelFileError,
    NonFiniteLossError, RunLockedError, ServingConfigError, SignatureChangeError, WeightsError,
)
# File-system errors that the user's machine causes, not tfvae: reported in one line like the USER_ERRORS.
USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOSPC,
               errno.EDQUOT, errno.EFBIG}
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as shells report a process that Ctrl-C ended


def run(args):
    """Runs the subcommand `args` (parsed by `tfvae.cli.parser`) describe; returns the exit status."""
    try:
        commands = {"train": _train, "evaluate": _evaluate, "export": _export, "encode": _encode,
                    "serving-config": _serving_config}
        return commands[args.command_name](args)
    except KeyboardInterrupt as interrupt:
        message, status = str(interrupt) or "interrupted.", INTERRUPTED_STATUS
    except OSError as error:  # before USER_ERRORS: a FileExistsError of the file system has its errno
        if error.errno not in USER_ERRNOS and not isinstance(error, USER_ERRORS):
            raise
        message, status = (_describe_os_error(error) if error.errno else str(error)), 1
    except USER_ERRORS as error:
        message, status = str(error), 1
    print(f"tfvae {args.command_name}: {message}", file=sys.stderr)
    return status


def _describe_os_error(error):
    where = f"{error.filename}: " if error.filename else ""
    if error.errno in DISK_FULL_ERRNOS:
        return (f"{where}{error.strerror} while saving; the files saved before are intact. Free some space and run the "
                "same command again (training resumes from its last finished epoch).")
    return f"{where}{error.strerror}; choose a folder you can write to."


def _train(args):
    config = make_config(**train_settings(args))
    model, history, export_path = train(config)
    recipe = recipe_for(config)
    metric, _ = recipe.monitored
    label, digits = recipe.final_report
    for prefix, split in (("", "training"), ("val_", "validation")):
        if prefix + metric in history.history:
            print(f"final {split} {label}: {history.history[prefix + metric][-1]:.{digits}f}")
    print(f"run directory: {config.output_dir}")
    if export_path:
        print(f"SavedModel: {export_path}")
    return 0


def _evaluation_images(args):
    """The `--limit` first images of the split `args` ask for, in memory."""
    options = _data_options(args)
    if args.validation_split and args.split in ("train", "validation"):
        parts = open_training_images(_dataset(args), args.validation_split, args.seed, **options)
        return parts[args.split == "validation"].take(args.limit)
    return open_images(_dataset(args), args.split, **options).take(args.limit)


def _evaluate(args):
    model = load_model(args.model)
    images = _evaluation_images(args)
    if args.binarize:
        images = (np.random.default_rng(args.seed).random(images.shape) < images).astype(np.float32)
    _check_image_size(model, images, args)
    x = images.reshape(len(images), -1) if len(model.data_shape) == 1 else images
    model.check_data(x)
    result = summarize(model, x, args.samples, args.batch_size, args.seed, verbose=0 if args.quiet else 1)
    print(f"{_dataset(args)} {args.split}: {result['examples']} examples")
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


def _encode(args):
    autoencoder = _load_autoencoder(args.model)
    if isinstance(autoencoder, AutoencoderKLCogVideoX):
        data, examples, description = _video_examples(autoencoder, args)
    else:
        data, examples, description = _image_examples(autoencoder, args)
    example_shape = examples.element_spec.shape.as_list()
    _check_encodable_size(autoencoder, example_shape, args)
    with raising_data_errors(data):
        paths = encode_to_shards(autoencoder, examples, args.output_dir, description=description,
                                 count=getattr(data, "count", None), batch_size=args.batch_size,
                                 shard_size=args.shard_size, verbose=0 if args.quiet else 1)
    print(f"{len(paths)} shard(s) of latents in {args.output_dir} (read them as {MANIFEST} says)")
    skipped = sorted(getattr(data, "skipped", ()))
    if skipped:
        print(f"skipped {len(skipped)} video(s) that cannot be decoded: {', '.join(skipped)}")
    return 0


def _image_examples(autoencoder, args):
    """`(image set, its images in order, what latents.json says of them)` for an image autoencoder."""
    given = [name for name in VIDEO_FIELDS if hasattr(args, name)]
    if given:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(f"{flags} cut videos into clips for a video autoencoder (AutoencoderKLCogVideoX), but "
                         f"{args.model} holds an {type(autoencoder).__name__}, which encodes images: leave them out.")
    try:
        options = {**_data_options(args), "cache": getattr(args, "cache", "none")}
        images = open_images(_dataset(args), args.split, **options)
    except DataError as error:
        if _holds_videos(_dataset(args)):
            raise DataError(f"{error} It holds videos: encode them with a video autoencoder (AutoencoderKLCogVideoX); "
                            f"{args.model} holds an {type(autoencoder).__name__}, which encodes images.") from error
        raise
    _check_encodable_channels(autoencoder, images.image_shape[-1], args)
    description = {"model": os.path.abspath(args.model), "dataset": _dataset(args), "split": args.split,
                   "image_shape": list(images.image_shape)}
    return images, images.batches(args.batch_size, shuffle=False, flatten=False).unbatch(), description


def _video_examples(autoencoder, args):
    """`(clip set, its clips in order, what latents.json says of them)` for a video autoencoder."""
    settings = VideoClipSettings(**{name: getattr(args, name) for name in VIDEO_FIELDS if hasattr(args, name)})
    options = _data_options(args)
    try:
        clips = open_videos(_dataset(args), frames=settings.frames, frame_stride=settings.frame_stride,
                            image_size=options["image_size"], channels=options["channels"] or autoencoder.in_channels,
                            skip_bad_videos=options["skip_bad_images"])
    except DataError as error:
        raise DataError(f"{args.model} holds a video autoencoder (AutoencoderKLCogVideoX), which encodes clips of "
                        f"videos: {error}") from error
    _check_encodable_channels(autoencoder, clips.clip_shape[-1], args)
    description = {"model": os.path.abspath(args.model), "dataset": _dataset(args), "frames": settings.frames,
                   "frame_stride": settings.frame_stride, "clip_shape": list(clips.clip_shape)}
    return clips, clips.clips(), description


def _holds_videos(path):
    """Whether `path` is a folder holding video files."""
    try:
        return os.path.isdir(path) and bool(list_videos(path))
    except DataError:
        return False


def _check_encodable_channels(autoencoder, channels, args):
    if channels != autoencoder.in_channels:
        raise InputError(f"{args.model} takes {autoencoder.in_channels} channel(s), but {_dataset(args)} gives "
                         f"{channels}: pass --channels {autoencoder.in_channels}.")


def _check_encodable_size(autoencoder, example_shape, args):
    """Raises `InputError` naming `--image-size` when the frames' sides are not divisible by the autoencoder's `f`."""
    height, width = example_shape[-3:-1]
    factor = autoencoder.downsampling_factor
    if height % factor or width % factor:
        raise InputError(f"{_dataset(args)} gives {height}x{width} pixels, but {args.model} downsamples by {factor}: "
                         f"pass an --image-size whose sides are divisible by {factor} (e.g. "
                         f"{height // factor * factor or factor}x{width // factor * factor or factor}).")


def _load_autoencoder(path):
    """The `AutoencoderKL` or `AutoencoderKLCogVideoX` of a `.keras` file (a final model, or a run's `best.keras`
    trainer) or of a diffusers folder (its `config.json`'s `_class_name` says which)."""
    config = _diffusers_config(path) if os.path.isdir(path) else None
    if config is not None:
        is_video = config.get("_class_name") == AutoencoderKLCogVideoX.__name__
        return (AutoencoderKLCogVideoX if is_video else AutoencoderKL).from_pretrained(path)
    model = load_model(path, (AutoencoderKL, AutoencoderKLCogVideoX, AutoencoderKLTrainer))
    return model.autoencoder if isinstance(model, AutoencoderKLTrainer) else model


def _diffusers_config(folder):
    """The `config.json` of a diffusers folder (or of a pipeline's `vae/`) as a dict; {} when it cannot be read (the
    loader then says why); None when there is none."""
    for config_path in (os.path.join(folder, "config.json"), os.path.join(folder, "vae", "config.json")):
        if os.path.isfile(config_path):
            try:
                with open(config_path) as file:
                    config = json.load(file)
            except (OSError, ValueError):
                return {}
            return config if isinstance(config, dict) else {}
    return None


def _check_image_size(model, images, args):
    """Raises `InputError` naming `--image-size`/`--channels` when the images do not have the model's size."""
    image_shape, data_shape = tuple(images.shape[1:]), tuple(model.data_shape)
    if len(data_shape) == 1:
        fits = int(np.prod(image_shape)) == data_shape[0]
        takes = f"rows of {data_shape[0]} values"
    else:
        fits = all(want is None or have == want for have, want in zip(image_shape, data_shape, strict=False))
        takes = f"{data_shape[0]}x{data_shape[1]} images with {data_shape[2]} channel(s)"
    if not fits:
        given = "x".join(map(str, image_shape[:2])) + f" images with {image_shape[-1]} channel(s)"
        raise InputError(f"{args.model} takes {takes}, but {_dataset(args)} gives {given}: pass the --image-size "
                         "(and --channels) the model was trained with.")


def _dataset(args):
    return getattr(args, "dataset", RunConfig.dataset)


def _data_options(args):
    """`open_images`' options from the data flags of `args`; a flag not given takes the run config's default."""
    defaults = {field.name: field.default for field in dataclasses.fields(RunConfig)}
    return {name: getattr(args, name, defaults[name]) for name in EVALUATE_DATA_FIELDS if name != "dataset"}
