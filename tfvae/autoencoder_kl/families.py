"""The latent scaling of the autoencoder of each latent-diffusion family, for `.safetensors` files that carry none.

A diffusers folder states `scaling_factor`, `shift_factor` and `latents_mean` / `latents_std` in its `config.json`;
a single file (a Stable Diffusion checkpoint, SDXL's `sdxl_vae.safetensors`, FLUX.1's `ae.safetensors`) does not.
`settings` recognises the family where the file tells it, else takes it from a `family` argument:

| family | models | latent channels | `scaling_factor` | `shift_factor` |
|---|---|---|---|---|
| `"sd"` | Stable Diffusion 1.x / 2.x | 4 | 0.18215 | - |
| `"sdxl"` | Stable Diffusion XL | 4 | 0.13025 | - |
| `"sd3"` | Stable Diffusion 3 / 3.5 | 16 | 1.5305 | 0.0609 |
| `"flux"` | FLUX.1 | 16 | 0.3611 | 0.1159 |

What tells the family, as diffusers' single-file loader reads it:

- a whole checkpoint's other models: SD3's `joint_blocks.`, FLUX.1's `double_blocks.`, SDXL's second text encoder
  `conditioner.embedders.1.`, else Stable Diffusion's `model.diffusion_model.`;
- Playground v2.5's `edm_mean` / `edm_std` tensors: they are `latents_mean` / `latents_std`, with scaling 0.5;
- an autoencoder alone with 4 latent channels is read as Stable Diffusion 1.x/2.x (diffusers' default; SDXL's VAE
  has the same shapes: pass `family="sdxl"`). One with 16 latent channels is SD3's or FLUX.1's (same shapes,
  different scaling): it needs `family`.
"""

import numpy as np

FAMILIES = {
    "sd": {"scaling_factor": 0.18215},
    "sdxl": {"scaling_factor": 0.13025},
    "sd3": {"scaling_factor": 1.5305, "shift_factor": 0.0609},
    "flux": {"scaling_factor": 0.3611, "shift_factor": 0.1159},
}
# Keys found only in a whole checkpoint of the family (diffusers' `infer_diffusers_model_type` looks for them too).
_MARKERS = (("joint_blocks.", "sd3"), ("double_blocks.", "flux"), ("conditioner.embedders.1.", "sdxl"))
_STATISTICS_KEYS = ("edm_mean", "edm_std")  # Playground v2.5's latents_mean / latents_std
_PLAYGROUND_SCALING_FACTOR = 0.5


class FamilyError(ValueError):
    """A single file whose family the tensors do not tell and no `family` argument names."""


def settings(keys, statistics, latent_channels, family=None, source="the file"):
    """The `AutoencoderKL` arguments of the latent scaling of a single file.

    Args:
        keys: every key of the file (the checkpoint's other models included).
        statistics: `{"edm_mean": array, "edm_std": array}` when the file holds them, else `{}`.
        latent_channels: the autoencoder's latent channels, from its tensors.
        family: one of `FAMILIES`' names, or None to recognise it.
        source: the file's name, for errors.

    Returns:
        A dict of `scaling_factor` and `shift_factor`, or of `scaling_factor`, `latents_mean` and `latents_std`.

    Raises:
        FamilyError: for an unknown `family`, and for a 16-channel autoencoder alone without `family`.
    """
    if family is not None:
        if family not in FAMILIES:
            raise FamilyError(f"Unknown family={family!r}; choose one of {', '.join(map(repr, FAMILIES))}.")
        return {"shift_factor": None, **FAMILIES[family]}
    if all(key in statistics for key in _STATISTICS_KEYS):
        return {
            "scaling_factor": _PLAYGROUND_SCALING_FACTOR,
            "shift_factor": None,
            "latents_mean": np.ravel(statistics["edm_mean"]).tolist(),
            "latents_std": np.ravel(statistics["edm_std"]).tolist(),
        }
    recognised = next((name for marker, name in _MARKERS if any(marker in key for key in keys)), None)
    if recognised is None and latent_channels == 16:
        raise FamilyError(
            f"{source} holds a 16-channel autoencoder, which SD3 and FLUX.1 scale differently: pass family='sd3' "
            "or family='flux' (or scaling_factor= and shift_factor=)."
        )
    return {"shift_factor": None, **FAMILIES[recognised or "sd"]}
