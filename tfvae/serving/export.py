"""SavedModel export for TF Serving: named signatures, integer versions, atomic writes.

Layout, as TF Serving reads it: `<export_root>/<model_name>/<version>/` with `<version>` a positive integer. A version
is written to a hidden staging folder beside it and renamed into place only when complete, so a crash or a kill
never leaves a partial version that a server could load; an existing version is never overwritten.

Each version also holds what TF Serving reads beside the SavedModel: `batching_params.pbtxt` (`tfvae.serving.
batching`) and `assets.extra/tf_serving_warmup_requests` (`tfvae.serving.warmup`). Each export rewrites the export
root's `models.config` (`tfvae.serving.model_server`) and `batching_parameters.pbtxt` for every model there.

Signatures (inputs and outputs are float32 with an unknown batch dimension, except `num_samples`):

| signature | inputs | outputs |
|---|---|---|
| `serving_default` | `x [n, *data]` | `reconstruction [n, *data]`: E[x given z] at the posterior mean |
| `encode` | `x [n, *data]` | `mean`, `logvar`, `z` `[n, *latent]`: q(z given x) and one sample `z = mean + exp(logvar / 2) * eps` |
| `decode` | `z [n, *latent]` | the likelihood's parameters: `probs` (Bernoulli) or `mean`, `logvar` (Gaussian) `[n, *data]` |
| `sample` | `num_samples []` int32 | `z [n, *latent]` drawn from N(0, I), `sample [n, *data]`: E[x given z] |
| `sample_from_noise` | `noise [n, *latent]` | the same, with `z = noise` given by the caller |
| `elbo` | `x [n, *data]` | `elbo`, `kl`, `reconstruction` `[n]`: one-sample ELBO terms per example |

Random signatures (`encode`, `sample`, `elbo`) draw from the model's seed generator, whose state is saved with the
model: a freshly loaded SavedModel gives the same draws in the same order, and each call advances the state.

TF Serving moves every client to the newest version as soon as it appears, so a version whose signatures (names, input
and output keys, shapes, dtypes) differ from the newest one's is refused unless the change is asked for: clients
would get requests refused that the previous version took.

A `tfvae.AutoencoderKL` has its own signatures on images of any size (`tfvae.serving.autoencoder_kl_signatures`), and
a `tfvae.AutoencoderKLCogVideoX` on videos of any frame count and size
(`tfvae.serving.autoencoder_kl_cogvideox_signatures`).
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfvae.autoencoder_kl import AutoencoderKL
from tfvae.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
from tfvae.files.atomic import save_atomically
from tfvae.files.run_lock import process_alive
from tfvae.serving import autoencoder_kl_cogvideox_signatures, autoencoder_kl_signatures, model_server
from tfvae.serving.batching import (
    BATCHING_FILE,
    BatchingParameters,
    batch_sizes_up_to,
    choose_batching,
    latency_curve,
)
from tfvae.serving.endpoints import float32_archive
from tfvae.serving.model_server import list_versions
from tfvae.serving.warmup import write_warmup_requests
from tfvae.vae import VAE

SIGNATURE_NAMES = ("serving_default", "encode", "decode", "sample", "sample_from_noise", "elbo")
_STAGING_PREFIX = ".staging-"
_DIFFERENCES_SHOWN = 3
SERVER_BATCHING_FILE = "batching_parameters.pbtxt"
WARMUP_IMAGE_SIZE = 256
# The largest batch `measure_batching` times; an AutoencoderKL's batches hold few large images, so its defaults and
# its largest batch measured are smaller.
VAE_LARGEST_MEASURED_BATCH = 256
AUTOENCODER_KL_BATCHING = BatchingParameters(max_batch_size=4, allowed_batch_sizes=(1, 2, 4))
AUTOENCODER_KL_LARGEST_MEASURED_BATCH = 16


class SignatureChangeError(ValueError):
    """A new version whose signatures differ from those of the newest version of the same model."""


def export_saved_model(model, model_dir, version=None, keep=None, allow_signature_change=False, serve_versions=None,
                       labels=None, measure_batching=False, warmup_image_size=WARMUP_IMAGE_SIZE):
    """Writes `model` as a new SavedModel version under `model_dir`, with TF Serving's files, and returns its path.

    Besides the SavedModel, the version holds its batching parameters (`batching_params.pbtxt`, see
    `tfvae.serving.batching`) and warm-up requests (`assets.extra/tf_serving_warmup_requests`, see
    `tfvae.serving.warmup`); the export root, `model_dir`'s parent, gets `models.config` and
    `batching_parameters.pbtxt` rewritten for every model there (see `write_server_config`).

    Args:
        model: a built `tfvae.VAE` whose encoder has a known input shape, or a `tfvae.AutoencoderKL`.
        model_dir: `<export_root>/<model_name>`; created if missing.
        version: a positive integer; None takes one more than the newest version present (1 for the first).
        keep: if given, only the newest `keep` versions remain after the export.
        allow_signature_change: write the version even if its signatures differ from the newest version's.
        serve_versions: the versions TF Serving loads, `latest:N`, `all` or `specific:V1,V2`; None keeps the model's
            setting (`latest:1` at first).
        labels: `{label: version}` to set, such as `{"stable": 3, "canary": 4}`; other labels stay.
        measure_batching: choose the batching parameters from the latency of `serving_default` measured here
            (`batching.choose_batching`) instead of the model family's defaults.
        warmup_image_size: an `AutoencoderKL`'s warm-up requests (and `measure_batching`) use square images of this
            side; a VAE's use its data shape.

    Returns:
        The path of the new version folder.

    Raises:
        FileExistsError: when `version` already exists.
        SignatureChangeError: when the signatures differ from the newest version's and `allow_signature_change` is
            False; nothing is written.
        TypeError: when `model` is neither, naming Keras' own `model.export`.
        ValueError: when the model's data shape has an unknown size (`sample` needs to know the latent's).
        ServingConfigError: when `serve_versions` and `labels` do not fit the versions there would be; nothing is
            written.
    """
    _check_servable(model)
    version = _next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"A SavedModel version must be a positive integer, got {version}.")
    final_path = os.path.join(model_dir, str(version))
    if os.path.exists(final_path):
        raise FileExistsError(f"Version {version} exists at {final_path}; versions are never overwritten.")
    settings = model_server.updated_settings(model_dir, serve_versions, labels)
    model_server.check_settings(settings, _versions_after(model_dir, version, keep), model_dir)
    os.makedirs(model_dir, exist_ok=True)
    _remove_abandoned_staging(model_dir)
    staging_path = os.path.join(model_dir, f"{_STAGING_PREFIX}{version}-{os.getpid()}")
    try:
        build_export_archive(model).write_out(staging_path, verbose=False)
        if not allow_signature_change:
            _check_signatures_unchanged(model_dir, staging_path)
        _write_serving_files(model, staging_path, os.path.basename(os.path.abspath(model_dir)), measure_batching,
                             warmup_image_size)
        os.rename(staging_path, final_path)
    except BaseException:
        shutil.rmtree(staging_path, ignore_errors=True)
        raise
    if keep is not None:
        _keep_newest(model_dir, keep)
    if serve_versions is not None or labels:
        model_server.save_settings(model_dir, settings)
    write_server_config(os.path.dirname(os.path.abspath(model_dir)))
    return final_path


def check_signatures_accepted(model, model_dir):
    """Raises the `SignatureChangeError` that exporting `model` to `model_dir` would raise for its signatures (the
    newest version there has other ones), without writing a version: `tfvae train` asks before it trains, so that a
    run is not refused its export only once it has trained."""
    if not list_versions(model_dir):
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "signatures")
        try:
            build_export_archive(model).write_out(path, verbose=False)
        except (OSError, tf.errors.OpError):  # no room for a scratch SavedModel: the export itself will check
            return
        _check_signatures_unchanged(model_dir, path)


def write_server_config(export_root):
    """Rewrites `<export_root>/models.config` (`tfvae.serving.model_server`) and `batching_parameters.pbtxt`, the
    default `BatchingParameters` for `--batching_parameters_file`, from the model folders there.

    Returns:
        The path of `models.config`.
    """
    save_atomically(BatchingParameters().write, os.path.join(export_root, SERVER_BATCHING_FILE))
    return model_server.write_model_server_config(export_root)


def build_export_archive(model):
    """A `keras.export.ExportArchive` holding `model` and the endpoints listed in this module's docstring."""
    if isinstance(model, AutoencoderKL):
        return autoencoder_kl_signatures.build_export_archive(model)
    if isinstance(model, AutoencoderKLCogVideoX):
        return autoencoder_kl_cogvideox_signatures.build_export_archive(model)
    data_shape, latent_shape = model.data_shape, model.latent_shape()
    if None in data_shape:
        raise ValueError(
            f"The encoder takes examples of shape {data_shape}; a SavedModel needs every size but the batch's known "
            "(its `sample` signature draws latents of a fixed shape). Build the encoder on keras.Input of the "
            "serving image size; a fully convolutional model's weights load into it unchanged."
        )
    if not model.built:
        model.build((None, *data_shape))
    data_spec = tf.TensorSpec((None, *data_shape), tf.float32, name="x")
    latent_spec = tf.TensorSpec((None, *latent_shape), tf.float32, name="z")

    def reconstruct(x):
        return {"reconstruction": model.reconstruct(x)}

    def encode(x):
        posterior = model.encode(x)
        z = posterior.sample(seed=model.next_seed())
        return {"mean": posterior.mean(), "logvar": posterior.logvar, "z": z}

    def decode(z):
        return model.likelihood.named_parameters(model.decode(z))

    def sample_from_noise(noise):
        return {"z": noise, "sample": model.generate(noise)}

    def sample(num_samples):
        noise = keras.random.normal((num_samples, *latent_shape), seed=model.seed_generator)
        return sample_from_noise(noise)

    def elbo(x):
        reconstruction, posterior, _ = model.elbo_terms(x)
        kl = posterior.kl()
        return {"elbo": -(reconstruction + kl), "kl": kl, "reconstruction": reconstruction}

    endpoints = {
        "serving_default": (reconstruct, data_spec),
        "encode": (encode, data_spec),
        "decode": (decode, latent_spec),
        "sample": (sample, tf.TensorSpec((), tf.int32, name="num_samples")),
        "sample_from_noise": (sample_from_noise, tf.TensorSpec((None, *latent_shape), tf.float32, name="noise")),
        "elbo": (elbo, data_spec),
    }
    return float32_archive(model, {name: endpoints[name] for name in SIGNATURE_NAMES})


def warmup_example_shapes(model, image_size=WARMUP_IMAGE_SIZE):
    """`{signature: {input: shape of one example}}` of the warm-up requests: every signature but `sample` (see
    `tfvae.serving.warmup`); an `AutoencoderKL`'s on square images of side `image_size`."""
    if isinstance(model, AutoencoderKL):
        return autoencoder_kl_signatures.warmup_example_shapes(model, image_size)
    if isinstance(model, AutoencoderKLCogVideoX):
        return autoencoder_kl_cogvideox_signatures.warmup_example_shapes(model, image_size)
    data, latent = model.data_shape, model.latent_shape()
    return {"serving_default": {"x": data}, "encode": {"x": data}, "decode": {"z": latent},
            "sample_from_noise": {"noise": latent}, "elbo": {"x": data}}


def read_signatures(path):
    """The signatures of the SavedModel at `path`, read from its `saved_model.pb` without loading it.

    Returns:
        `{signature: {"inputs": {key: (dtype, shape)}, "outputs": {key: (dtype, shape)}}}`, with -1 for a dimension
        of unknown size.
    """
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        saved_model.ParseFromString(file.read())
    return {
        name: {"inputs": _tensor_specs(signature.inputs), "outputs": _tensor_specs(signature.outputs)}
        for name, signature in saved_model.meta_graphs[0].signature_def.items()
        if not name.startswith("__")  # TensorFlow's own entries, such as __saved_model_init_op
    }


def signature_differences(old, new):
    """What differs between two `read_signatures` results, as readable phrases, `serving_default` first (empty when
    they are the same)."""
    differences = [f"signature {name} {'removed' if name in old else 'added'}"
                   for name in sorted(old.keys() ^ new.keys())]
    for name in sorted(old.keys() & new.keys(), key=lambda name: (name != "serving_default", name)):
        for kind in ("inputs", "outputs"):
            before, after = old[name][kind], new[name][kind]
            for key in sorted(before.keys() | after.keys()):
                if before.get(key) != after.get(key):
                    differences.append(
                        f"{name} {kind[:-1]} {key}: {_describe(before.get(key))} -> {_describe(after.get(key))}"
                    )
    return differences


def _check_servable(model):
    if not isinstance(model, (VAE, AutoencoderKL, AutoencoderKLCogVideoX)):
        raise TypeError(
            f"export_saved_model writes the signatures of a tfvae.VAE, tfvae.AutoencoderKL or "
            f"tfvae.AutoencoderKLCogVideoX, not of a "
            f"{type(model).__name__}; for another Keras model use its own model.export(path), whose `serve` "
            "endpoint is its call."
        )


def _write_serving_files(model, version_path, model_name, measure_batching, warmup_image_size):
    """Writes the version's `batching_params.pbtxt` and warm-up requests (at the batch sizes it allows)."""
    example_shapes = warmup_example_shapes(model, warmup_image_size)
    autoencoder_kl = isinstance(model, (AutoencoderKL, AutoencoderKLCogVideoX))
    if measure_batching:
        measured = "serving_default" if "serving_default" in example_shapes else "encode"
        signature = tf.saved_model.load(version_path).signatures[measured]
        examples = {name: np.zeros(shape, np.float32) for name, shape in example_shapes[measured].items()}
        largest = AUTOENCODER_KL_LARGEST_MEASURED_BATCH if autoencoder_kl else VAE_LARGEST_MEASURED_BATCH
        parameters = choose_batching(latency_curve(signature, examples, batch_sizes_up_to(largest)))
    else:
        parameters = AUTOENCODER_KL_BATCHING if autoencoder_kl else BatchingParameters()
    parameters.write(os.path.join(version_path, BATCHING_FILE))
    write_warmup_requests(version_path, model_name, example_shapes, parameters.allowed_batch_sizes)


def _versions_after(model_dir, version, keep):
    """The versions `model_dir` will hold once `version` is added and only the newest `keep` are kept."""
    versions = sorted({*list_versions(model_dir), version})
    return versions[-keep:] if keep else versions


def _next_version(model_dir):
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _check_signatures_unchanged(model_dir, staging_path):
    versions = list_versions(model_dir)
    if not versions:
        return
    newest = versions[-1]
    differences = signature_differences(read_signatures(os.path.join(model_dir, str(newest))),
                                        read_signatures(staging_path))
    if differences:
        shown = "; ".join(differences[:_DIFFERENCES_SHOWN])
        if len(differences) > _DIFFERENCES_SHOWN:
            shown += f"; {len(differences) - _DIFFERENCES_SHOWN} more"
        raise SignatureChangeError(
            f"not exporting to {model_dir}: the signatures differ from those of version {newest} "
            f"({shown}), and TF Serving would send that version's clients to a model that refuses "
            "their requests. Choose another model name (--model-name, or --model-dir for tfvae export), or pass "
            "--allow-signature-change."
        )


def _tensor_specs(tensor_infos):
    return {
        key: (tf.dtypes.as_dtype(info.dtype).name, tuple(dim.size for dim in info.tensor_shape.dim))
        for key, info in tensor_infos.items()
    }


def _describe(spec):
    if spec is None:
        return "none"
    dtype, shape = spec
    return f"{dtype} [{', '.join('?' if size < 0 else str(size) for size in shape)}]"


def _keep_newest(model_dir, keep):
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}.")
    for version in list_versions(model_dir)[:-keep]:
        shutil.rmtree(os.path.join(model_dir, str(version)))


def _remove_abandoned_staging(model_dir):
    """Deletes staging folders whose exporting process is gone (it was killed mid-export)."""
    for entry in os.listdir(model_dir):
        match = re.fullmatch(re.escape(_STAGING_PREFIX) + r"[0-9]+-([0-9]+)", entry)
        if match and not process_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(model_dir, entry), ignore_errors=True)
