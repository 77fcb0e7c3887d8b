"""tfvae: variational autoencoders for TensorFlow, Keras 3 and TensorFlow Probability.

`import tfvae` imports the library (and so TensorFlow), which registers tfvae's Keras classes: a `.keras` file of a
tfvae model then loads with `keras.models.load_model`. It changes nothing else outside tfvae: TensorFlow's logging
and the process's file descriptors stay as they are.

The `tfvae` command (`tfvae_command`, or `python -m tfvae`) starts without the library, so that `--help` and
`--version` answer without importing TensorFlow and the command can quiet TensorFlow's start-up lines before importing
it; the public names below then import on first use (PEP 562).
"""

import importlib
import sys

__version__ = "0.1.0"

# public name -> the module that defines it
_NAMES = {
    "AutoencoderKL": "tfvae.autoencoder_kl",
    "AutoencoderKLCogVideoX": "tfvae.autoencoder_kl_cogvideox",
    "DiagonalGaussian": "tfvae.distributions",
    "InputError": "tfvae.input_checks",
    "VAE": "tfvae.vae",
}
_SUBMODULES = (
    "autoencoder_kl", "autoencoder_kl_cogvideox", "data", "diagnostics", "distributions", "evaluate", "export",
    "latents", "layers", "likelihoods", "losses", "networks", "optimizers", "serving",
)
__all__ = [*_NAMES, *_SUBMODULES]


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tfvae.{name}")
    else:
        raise AttributeError(f"module 'tfvae' has no attribute {name!r}")
    globals()[name] = value  # later lookups find it without calling here
    return value


def __dir__():
    return sorted({*globals(), *__all__})


def _imported_by_the_command():
    """Whether this import starts the `tfvae` command: the console script (`tfvae_command`), or `python -m tfvae`
    (or `-m tfvae.cli`), for which the interpreter imports this package while `sys.argv` is still `["-m"]`."""
    if "tfvae_command" in sys.modules:
        return True
    orig_argv = getattr(sys, "orig_argv", [])
    if sys.argv[:1] != ["-m"] or "-m" not in orig_argv[:-1]:
        return False
    return orig_argv[orig_argv.index("-m") + 1] in ("tfvae", "tfvae.cli")


if not _imported_by_the_command():  # a library user: import the public names now (see the module docstring)
    for _name in _NAMES:
        __getattr__(_name)
