"""SavedModel export for TF Serving: named signatures, integer versions, atomic writes.

Layout, as TF Serving reads it: `<export_root>/<model_name>/<version>/` with `<version>` a positive integer. A version
is written to a hidden staging folder beside it and renamed into place only when complete, so a crash or a kill
never leaves a partial version that a server could load; an existing version is never overwritten.

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

A `tfvae.AutoencoderKL` has its own signatures on images of any size: see `tfvae.autoencoder_kl.serving`.
"""

import os
import re
import shutil

import keras
import tensorflow as tf

from tfvae.autoencoder_kl import AutoencoderKL, serving

SIGNATURE_NAMES = ("serving_default", "encode", "decode", "sample", "sample_from_noise", "elbo")
_STAGING_PREFIX = ".staging-"


def export_saved_model(model, model_dir, version=None, keep=None):
    """Writes `model` as a new SavedModel version under `model_dir` and returns its path.

    Args:
        model: a built `tfvae.VAE` whose encoder has a known input shape, or a `tfvae.AutoencoderKL`.
        model_dir: `<export_root>/<model_name>`; created if missing.
        version: a positive integer; None takes one more than the newest version present (1 for the first).
        keep: if given, only the newest `keep` versions remain after the export.

    Returns:
        The path of the new version folder.

    Raises:
        FileExistsError: when `version` already exists.
    """
    os.makedirs(model_dir, exist_ok=True)
    _remove_abandoned_staging(model_dir)
    version = _next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"A SavedModel version must be a positive integer, got {version}.")
    final_path = os.path.join(model_dir, str(version))
    if os.path.exists(final_path):
        raise FileExistsError(f"Version {version} exists at {final_path}; versions are never overwritten.")
    staging_path = os.path.join(model_dir, f"{_STAGING_PREFIX}{version}-{os.getpid()}")
    try:
        build_export_archive(model).write_out(staging_path, verbose=False)
        os.rename(staging_path, final_path)
    except BaseException:
        shutil.rmtree(staging_path, ignore_errors=True)
        raise
    if keep is not None:
        _keep_newest(model_dir, keep)
    return final_path


def build_export_archive(model):
    """A `keras.export.ExportArchive` holding `model` and the endpoints listed in this module's docstring."""
    if isinstance(model, AutoencoderKL):
        return serving.build_export_archive(model)
    data_shape, latent_shape = model.data_shape, model.latent_shape()
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

    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = {
        "serving_default": (reconstruct, data_spec),
        "encode": (encode, data_spec),
        "decode": (decode, latent_spec),
        "sample": (sample, tf.TensorSpec((), tf.int32, name="num_samples")),
        "sample_from_noise": (sample_from_noise, tf.TensorSpec((None, *latent_shape), tf.float32, name="noise")),
        "elbo": (elbo, data_spec),
    }
    for name in SIGNATURE_NAMES:
        function, spec = endpoints[name]
        archive.add_endpoint(name, function, input_signature=[spec])
    return archive


def list_versions(model_dir):
    """The integer versions present under `model_dir`, oldest first."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir) if re.fullmatch(r"[1-9][0-9]*", entry))


def _next_version(model_dir):
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _keep_newest(model_dir, keep):
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}.")
    for version in list_versions(model_dir)[:-keep]:
        shutil.rmtree(os.path.join(model_dir, str(version)))


def _remove_abandoned_staging(model_dir):
    """Deletes staging folders whose exporting process is gone (it was killed mid-export)."""
    for entry in os.listdir(model_dir):
        match = re.fullmatch(re.escape(_STAGING_PREFIX) + r"[0-9]+-([0-9]+)", entry)
        if match and not _process_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(model_dir, entry), ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
