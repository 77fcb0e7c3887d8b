"""The SavedModel signatures of an `AutoencoderKLCogVideoX`, for `tfvae.serving.export_saved_model`.

Videos are `[n, T, H, W, in_channels]` float32 with any frame count `T` and any `H` and `W` divisible by the
downsampling factor `f` (another size fails with an InvalidArgumentError that says so); latents are `[n, T', H / f,
W / f, latent_channels]`, `T' = 1 + (T - 1) / r` for `T = 1 + r k`. The frame chunks run in a `tf.while_loop`, so one
signature serves every frame count. Every output is float32, whatever the model's dtype policy.

| signature | inputs | outputs |
|---|---|---|
| `encode` | `x` videos | `mean`, `logvar` (clamped), `z = mean + exp(logvar / 2) * eps`, `latents = scale_latents(z)` |
| `decode` | `latents`, scaled as the diffusion transformer gives them | `videos = decode(unscale_latents(latents))` |

`encode` draws `eps` from the model's seed generator, saved with the model: a freshly loaded SavedModel gives the
same draws in the same order. (Keras adds its own `serving_default`, the model's `call`: the reconstruction at the
posterior's mode, for the shapes the model was built with.)
"""

import tensorflow as tf

from tfvae.serving.endpoints import float32_archive


def build_export_archive(model):
    """A `keras.export.ExportArchive` holding `model` (an `AutoencoderKLCogVideoX`) and the signatures in the
    docstring."""
    factor = model.downsampling_factor
    videos_spec = tf.TensorSpec((None, None, None, None, model.in_channels), tf.float32, name="x")
    latents_spec = tf.TensorSpec((None, None, None, None, model.latent_channels), tf.float32, name="latents")

    def checked(x):
        """`x`, after asserting that its height and width are divisible by `f`."""
        size = tf.shape(x)[2:4]
        check = tf.debugging.assert_equal(
            size % factor, tf.zeros_like(size), message=f"Video height and width must be divisible by {factor}"
        )
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def encode(x):
        posterior = model.encode(checked(x))
        z = posterior.sample(seed=model.next_seed())
        return {"mean": posterior.mean(), "logvar": posterior.logvar, "z": z, "latents": model.scale_latents(z)}

    def decode(latents):
        return {"videos": model.decode(model.unscale_latents(latents))}

    return float32_archive(model, {
        "encode": (encode, videos_spec),
        "decode": (decode, latents_spec),
    })


WARMUP_FRAMES = 9  # the frames of a warm-up request's clip: 1 + 4k, two latent frames past the first


def warmup_example_shapes(model, image_size):
    """`{signature: {input: shape of one example}}` for warm-up requests on clips of `WARMUP_FRAMES` square frames of
    side `image_size`."""
    factor = model.downsampling_factor
    if image_size % factor:
        raise ValueError(f"The warm-up image size must be divisible by f = {factor}, got {image_size}.")
    latent_frames = 1 + (WARMUP_FRAMES - 1) // model.temporal_compression_ratio
    videos = (WARMUP_FRAMES, image_size, image_size, model.in_channels)
    latents = (latent_frames, image_size // factor, image_size // factor, model.latent_channels)
    return {"encode": {"x": videos}, "decode": {"latents": latents}}
