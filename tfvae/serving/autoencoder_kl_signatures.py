"""The SavedModel signatures of an `AutoencoderKL`, for `tfvae.serving.export.export_saved_model`.

Images are `[n, H, W, in_channels]` float32 with any `H` and `W` divisible by the downsampling factor `f` (another
size fails with an InvalidArgumentError that says so); latents are `[n, H / f, W / f, latent_channels]`. Every output
is float32, whatever the model's dtype policy. `scale_latents(z) = (z - shift_factor) * scaling_factor`, and
`unscale_latents` is its inverse.

| signature | inputs | outputs |
|---|---|---|
| `serving_default` | `x` images | `reconstruction = decode(mean)`, the images at the posterior's mode |
| `encode` | `x` images | `mean`, `logvar` (clamped), `z = mean + exp(logvar / 2) * eps`, `latents = scale_latents(z)` |
| `decode` | `latents`, scaled as a diffusion model gives them | `images` = `decode(unscale_latents(latents))` |

`encode` draws `eps` from the model's seed generator, saved with the model: a freshly loaded SavedModel gives the
same draws in the same order.
"""

import tensorflow as tf

from tfvae.serving.endpoints import float32_archive


def build_export_archive(model):
    """A `keras.export.ExportArchive` holding `model` (an `AutoencoderKL`) and the signatures in the docstring."""
    factor = model.downsampling_factor
    images_spec = tf.TensorSpec((None, None, None, model.in_channels), tf.float32, name="x")
    latents_spec = tf.TensorSpec((None, None, None, model.latent_channels), tf.float32, name="latents")

    def checked(x):
        """`x`, after asserting that its height and width are divisible by `f`."""
        size = tf.shape(x)[1:3]
        check = tf.debugging.assert_equal(
            size % factor, tf.zeros_like(size), message=f"Image height and width must be divisible by {factor}"
        )
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def reconstruct(x):
        return {"reconstruction": model.decode(model.encode(checked(x)).mode())}

    def encode(x):
        posterior = model.encode(checked(x))
        z = posterior.sample(seed=model.next_seed())
        return {"mean": posterior.mean(), "logvar": posterior.logvar, "z": z, "latents": model.scale_latents(z)}

    def decode(latents):
        return {"images": model.decode(model.unscale_latents(latents))}

    return float32_archive(model, {
        "serving_default": (reconstruct, images_spec),
        "encode": (encode, images_spec),
        "decode": (decode, latents_spec),
    })


def warmup_example_shapes(model, image_size):
    """`{signature: {input: shape of one example}}` for warm-up requests on square images of side `image_size`."""
    factor = model.downsampling_factor
    if image_size % factor:
        raise ValueError(f"The warm-up image size must be divisible by f = {factor}, got {image_size}.")
    images = (image_size, image_size, model.in_channels)
    latents = (image_size // factor, image_size // factor, model.latent_channels)
    return {"serving_default": {"x": images}, "encode": {"x": images}, "decode": {"latents": latents}}
