"""`AutoencoderKLCogVideoX`: CogVideoX's 3D causal KL video autoencoder as a `keras.Model`, with diffusers' config
names."""

import keras
import numpy as np
import tensorflow as tf

from tfvae.autoencoder_kl.config_checks import check_block_out_channels, per_channel
from tfvae.autoencoder_kl.tiling import map_tiles
from tfvae.autoencoder_kl_cogvideox import chunks, tiling, weights
from tfvae.autoencoder_kl_cogvideox.blocks import Decoder3D, Encoder3D
from tfvae.distributions import DEFAULT_LOGVAR_RANGE
from tfvae.layers import DiagonalGaussianLambda
from tfvae.seeding import SeedState

DOWN_BLOCK = "CogVideoXDownBlock3D"
UP_BLOCK = "CogVideoXUpBlock3D"
ENCODER_CHUNK_FRAMES = 8  # diffusers' num_sample_frames_batch_size
DECODER_CHUNK_FRAMES = 2  # diffusers' num_latent_frames_batch_size


@keras.saving.register_keras_serializable(package="tfvae")
class AutoencoderKLCogVideoX(SeedState, keras.Model):
    """The 3D causal KL video autoencoder of CogVideoX (Yang et al. 2024, "CogVideoX: Text-to-Video Diffusion Models
    with An Expert Transformer"), channels last: videos `[n, T, H, W, C]`, values in [-1, 1].

    The data path: `x -> Encoder3D (in chunks) -> quant_conv -> [mu, log sigma^2] -> q(z|x) -> z -> post_quant_conv
    -> Decoder3D (in chunks) -> video`. With `f = 2 ** (len(block_out_channels) - 1)` and `r =
    temporal_compression_ratio`, a video of `T = 1 + r k` frames has latents `[n, 1 + (T - 1) / r, H / f, W / f,
    latent_channels]`. Every 3x3x3 convolution is causal in time, padded before the first frame with copies of it.
    As in diffusers, `encode` runs the encoder on chunks of 8 frames (the first takes `8 + T mod 8`) and `decode`
    the decoder on chunks of 2 latent frames (the first takes `2 + T' mod 2`), each chunk passing the causal
    convolutions' last frames to the next; GroupNorm statistics span one chunk (see
    `tfvae.autoencoder_kl_cogvideox.chunks`). Decoding `T'` latent frames gives `1 + r (T' - 1)` frames for odd `T'`
    and `r T'` for even `T'`, as diffusers does: a round trip keeps the frame count for `T = 1 + 2 r k` (CogVideoX's
    49 frames, 13 latent frames).

    The arguments are diffusers' `AutoencoderKLCogVideoX` config with its defaults (CogVideoX-2b/5b), so a
    `config.json` means the same here; `down_block_types`/`up_block_types` must be CogVideoX's 3D blocks and
    `act_fn` SiLU. `force_upcast` is kept for the config (pipelines read it); this model runs in its dtype policy.

    Latents are unscaled, as in diffusers: `encode(x).sample()` and `decode(z)` work on `z`. `scale_latents` and
    `unscale_latents` map them to and from what a diffusion transformer works on, as CogVideoX pipelines do.

    Under a mixed-precision policy the GroupNorm statistics and the distribution are float32; `decode` and `call`
    return the policy's compute dtype.

    Args:
        in_channels: the channels of the input video.
        out_channels: the channels of the decoded video.
        down_block_types: one `"CogVideoXDownBlock3D"` per entry of `block_out_channels`.
        up_block_types: one `"CogVideoXUpBlock3D"` per entry of `block_out_channels`.
        block_out_channels: the channels of each resolution, finest first; its length sets `f`.
        latent_channels: the channels of `z`.
        layers_per_block: the ResNet blocks of each encoder resolution (the decoder has one more).
        act_fn: `"silu"` (or its alias `"swish"`).
        norm_eps: the GroupNorm epsilon of the ResNet blocks.
        norm_num_groups: the GroupNorm groups; every entry of `block_out_channels` must be divisible by it.
        temporal_compression_ratio: `r`, a power of two, at most `2 ** (len(block_out_channels) - 1)`.
        sample_height: the video height the model was made for; tiles are half of it (see `tiled_encode`).
        sample_width: the video width the model was made for; tiles are half of it.
        scaling_factor: `s` of `scale_latents`.
        shift_factor: subtracted by `scale_latents` before scaling; None for 0.
        latents_mean: per-channel means subtracted by `scale_latents`, or None.
        latents_std: per-channel deviations `scale_latents` divides by, or None.
        force_upcast: diffusers' flag that pipelines run this model in float32.
        use_quant_conv: whether a 1x1x1 convolution maps the encoder's output to the moments.
        use_post_quant_conv: whether a 1x1x1 convolution maps `z` to the decoder's input.
        invert_scale_latents: CogVideoX 1.5's quirk: `scale_latents` divides by `s` instead of multiplying.
        logvar_range: the clamp of the posterior's log-variance (`(-30, 20)`).
        seed: an int for the noise of `call(..., sample_posterior=True)` and of the exported `encode`, or None.
        **kwargs: passed to `keras.Model` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    import tfvae

    model = tfvae.AutoencoderKLCogVideoX(block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1,
                                         norm_num_groups=4)
    video = np.random.default_rng(0).uniform(-1, 1, (1, 9, 32, 32, 3)).astype("float32")
    posterior = model.encode(video)  # q(z|x), a tfvae.DiagonalGaussian over [1, 3, 4, 4, 4]
    reconstruction = model.decode(posterior.mode())  # [1, 9, 32, 32, 3]
    latents = model.scale_latents(posterior.sample(seed=1))  # what the diffusion transformer sees
    ```
    """

    def __init__(
        self,
        in_channels=3,
        out_channels=3,
        down_block_types=(DOWN_BLOCK,) * 4,
        up_block_types=(UP_BLOCK,) * 4,
        block_out_channels=(128, 256, 256, 512),
        latent_channels=16,
        layers_per_block=3,
        act_fn="silu",
        norm_eps=1e-6,
        norm_num_groups=32,
        temporal_compression_ratio=4,
        sample_height=480,
        sample_width=720,
        scaling_factor=1.15258426,
        shift_factor=None,
        latents_mean=None,
        latents_std=None,
        force_upcast=True,
        use_quant_conv=False,
        use_post_quant_conv=False,
        invert_scale_latents=False,
        logvar_range=DEFAULT_LOGVAR_RANGE,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.down_block_types = tuple(down_block_types)
        self.up_block_types = tuple(up_block_types)
        self.block_out_channels = tuple(int(channels) for channels in block_out_channels)
        self.latent_channels = int(latent_channels)
        self.layers_per_block = int(layers_per_block)
        self.act_fn = str(act_fn)
        self.norm_eps = float(norm_eps)
        self.norm_num_groups = int(norm_num_groups)
        self.temporal_compression_ratio = int(temporal_compression_ratio)
        self.sample_height = int(sample_height)
        self.sample_width = int(sample_width)
        self.scaling_factor = float(scaling_factor)
        self.shift_factor = None if shift_factor is None else float(shift_factor)
        self.latents_mean = per_channel("latents_mean", latents_mean, self.latent_channels)
        self.latents_std = per_channel("latents_std", latents_std, self.latent_channels)
        self.force_upcast = bool(force_upcast)
        self.use_quant_conv = bool(use_quant_conv)
        self.use_post_quant_conv = bool(use_post_quant_conv)
        self.invert_scale_latents = bool(invert_scale_latents)
        self.seed = seed
        self._check_config()
        network = {
            "block_out_channels": self.block_out_channels,
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "norm_eps": self.norm_eps,
            "temporal_compression_ratio": self.temporal_compression_ratio,
            "dtype": self.dtype_policy,
        }
        self.encoder = Encoder3D(latent_channels=self.latent_channels, name="encoder", **network)
        self.decoder = Decoder3D(out_channels=self.out_channels, name="decoder", **network)
        self.quant_conv = self._pointwise_conv(2 * self.latent_channels, "quant_conv", self.use_quant_conv)
        self.post_quant_conv = self._pointwise_conv(self.latent_channels, "post_quant_conv", self.use_post_quant_conv)
        # The model draws its own noise: the layer only builds q(z|x).
        self.posterior = DiagonalGaussianLambda(
            logvar_range, convert_to_tensor_fn="mode", dtype="float32", name="posterior"
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.build((None, None, None, None, self.in_channels))

    def _check_config(self):
        check_block_out_channels(self.block_out_channels, self.norm_num_groups, example=(128, 256, 256, 512))
        blocks = len(self.block_out_channels)
        problems = []
        if self.down_block_types != (DOWN_BLOCK,) * blocks or self.up_block_types != (UP_BLOCK,) * blocks:
            problems.append(f"down_block_types/up_block_types must be {blocks} x {DOWN_BLOCK}/{UP_BLOCK}")
        if self.act_fn not in ("silu", "swish"):
            problems.append(f"act_fn must be 'silu', got {self.act_fn!r}")
        ratio = self.temporal_compression_ratio
        if ratio < 1 or ratio & (ratio - 1) or ratio > 2 ** max(blocks - 1, 0):
            problems.append(f"temporal_compression_ratio must be a power of two up to 2 ** {blocks - 1}, got {ratio}")
        if problems:
            raise ValueError("AutoencoderKLCogVideoX: " + "; ".join(problems) + ".")

    def _pointwise_conv(self, filters, name, enabled):
        if not enabled:
            return keras.layers.Identity(dtype=self.dtype_policy, name=name)
        return keras.layers.Conv3D(filters, 1, dtype=self.dtype_policy, name=name)

    @property
    def downsampling_factor(self):
        """`f`: how many video pixels one latent pixel spans along height and along width."""
        return 2 ** (len(self.block_out_channels) - 1)

    def build(self, input_shape):
        """Builds every layer from `input_shape` `[n, T, H, W, in_channels]` (all but the channels may be None)."""
        self.encoder.build(input_shape)
        moments_shape = (None, None, None, None, 2 * self.latent_channels)
        self.quant_conv.build(moments_shape)
        latent_shape = (None, None, None, None, self.latent_channels)
        self.post_quant_conv.build(latent_shape)
        self.decoder.build(latent_shape)

    def encode(self, x, training=None):
        """q(z|x): a `tfvae.DiagonalGaussian` over `[n, 1 + (T - 1) / r, H / f, W / f, latent_channels]`; its `kl()`
        and `nll()` sum over every axis but the batch.

        Args:
            x: videos `[n, T, H, W, in_channels]` in [-1, 1], `H` and `W` divisible by `f`.
            training: passed to the layers.
        """
        return self.posterior.distribution(self.encode_moments(x, training=training))

    def encode_moments(self, x, training=None):
        """The concatenated `[mu, log sigma^2]`, `[n, T', H / f, W / f, 2 * latent_channels]`, before the clamp.

        Raises:
            ValueError: when a known height or width of `x` is not divisible by `f`.
        """
        size = tuple(x.shape[2:4])
        if any(side is not None and side % self.downsampling_factor for side in size):
            raise ValueError(
                f"AutoencoderKLCogVideoX needs video height and width divisible by f = {self.downsampling_factor}, "
                f"got {size}; pad or crop the video."
            )

        def step(chunk, cache):
            moments, cache = self.encoder(chunk, cache, training=training)
            return self.quant_conv(moments), cache

        return chunks.map_chunks(step, x, ENCODER_CHUNK_FRAMES)

    def decode(self, z, training=None):
        """Videos `[n, T, f H, f W, out_channels]` from unscaled latents `z` `[n, T', H, W, latent_channels]`:
        `T = 1 + r (T' - 1)` for odd `T'`, `r T'` for even `T'`."""

        def step(chunk, cache):
            return self.decoder(self.post_quant_conv(chunk), cache, training=training)

        return chunks.map_chunks(step, z, DECODER_CHUNK_FRAMES)

    def call(self, x, training=None, sample_posterior=False):
        """The reconstruction `decode(z)`, with `z` the posterior's mode (its mean) or, if `sample_posterior`, one
        draw `z = mu + sigma * epsilon` from the model's seed generator (diffusers' `forward`)."""
        posterior = self.encode(x, training=training)
        z = self.sample_posterior(posterior) if sample_posterior else posterior.mode()
        return self.decode(z, training=training)

    def _latent_statistics(self, dtype, invert):
        """`(offset, scale)` of `scale_latents(z) = (z - offset) * scale`, `scale` with `1 / scaling_factor` if
        `invert`."""
        offset = np.float32(self.shift_factor or 0.0)
        if self.latents_mean is not None:
            offset = offset + np.asarray(self.latents_mean, "float32")
        scale = np.float32(1 / self.scaling_factor if invert else self.scaling_factor)
        if self.latents_std is not None:
            scale = scale / np.asarray(self.latents_std, "float32")
        return tf.constant(offset, dtype), tf.constant(scale, dtype)

    def scale_latents(self, z):
        """`(z - shift_factor - latents_mean) * s / latents_std`: unscaled latents to what a diffusion transformer
        works on (absent terms are 0 and 1). `s = scaling_factor`, or `1 / scaling_factor` with
        `invert_scale_latents`, as CogVideoX 1.5's image-to-video pipeline scales the image latents."""
        offset, scale = self._latent_statistics(z.dtype, self.invert_scale_latents)
        return (z - offset) * scale

    def unscale_latents(self, latents):
        """`latents * latents_std / scaling_factor + latents_mean + shift_factor`: the transformer's latents back to
        `z`, before `decode`. CogVideoX pipelines always divide by `scaling_factor` here, `invert_scale_latents` or
        not, so with it this is not the inverse of `scale_latents`."""
        offset, scale = self._latent_statistics(latents.dtype, invert=False)
        return latents / scale + offset

    def tiled_encode(self, x, tile_height=None, tile_width=None, overlap_height=1 / 6, overlap_width=1 / 5):
        """q(z|x) for videos too large for one pass, as diffusers' `tiled_encode` with `enable_tiling()`.

        Tiles of `tile_height x tile_width` pixels start every `int(tile * (1 - overlap))` pixels along each axis;
        each tile is encoded on its own (in frame chunks, as `encode`), and neighbouring tiles' moments are blended
        linearly over `int(tile / f * overlap)` latent pixels (see `tfvae.autoencoder_kl_cogvideox.tiling`). A video
        no larger than one tile is encoded whole. Every tile has its own GroupNorm statistics, so the result differs
        from `encode` where the video has more than one tile.

        Args:
            x: videos `[n, T, H, W, in_channels]`.
            tile_height: the tile height in pixels; None for `sample_height // 2` (diffusers' default).
            tile_width: the tile width in pixels; None for `sample_width // 2`.
            overlap_height: the fraction of a tile's height shared with its neighbour (diffusers' 1/6).
            overlap_width: the fraction of a tile's width shared with its neighbour (diffusers' 1/5).

        Raises:
            ValueError: unless the tile sizes and the steps between tiles are multiples of `f` (diffusers' defaults
                are: tiles of 240 x 360 pixels every 200 x 288).
        """
        grid = tiling.encoder_grid(self._tile(tile_height, tile_width), (overlap_height, overlap_width),
                                   self.downsampling_factor)
        return self.posterior.distribution(map_tiles(self.encode_moments, x, grid))

    def tiled_decode(self, z, tile_height=None, tile_width=None, overlap_height=1 / 6, overlap_width=1 / 5):
        """`decode` for latents too large for one pass, as diffusers' `tiled_decode`: float32 videos.

        Latent tiles of `int(tile / f)` pixels start every `int(tile / f * (1 - overlap))` latent pixels; decoded
        tiles are blended linearly over `int(tile * overlap)` pixels.

        Args:
            z: unscaled latents `[n, T', H, W, latent_channels]`.
            tile_height: the decoded tile height in pixels; None for `sample_height // 2`.
            tile_width: the decoded tile width in pixels; None for `sample_width // 2`.
            overlap_height: the fraction of a tile's height shared with its neighbour.
            overlap_width: the fraction of a tile's width shared with its neighbour.
        """
        grid = tiling.decoder_grid(self._tile(tile_height, tile_width), (overlap_height, overlap_width),
                                   self.downsampling_factor)
        return map_tiles(self.decode, z, grid)

    def _tile(self, tile_height, tile_width):
        return (tile_height or self.sample_height // 2, tile_width or self.sample_width // 2)

    @classmethod
    def from_pretrained(cls, path, **config):
        """An `AutoencoderKLCogVideoX` with the weights of a diffusers folder.

        Args:
            path: a folder holding diffusers' `config.json` and `diffusion_pytorch_model.safetensors` (or sharded
                `diffusion_pytorch_model-*.safetensors` with their `.index.json`), or a pipeline folder whose `vae/`
                folder holds them. float32, float16 and bfloat16 tensors are read (as float32).
            **config: constructor arguments; they override the folder's `config.json`.

        Raises:
            weights.WeightsError: for a missing file, an unknown config key, and missing, unexpected or mis-shaped
                tensors (all named in one error).
        """
        return weights.load_pretrained(cls, path, **config)

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "down_block_types": list(self.down_block_types),
            "up_block_types": list(self.up_block_types),
            "block_out_channels": list(self.block_out_channels),
            "latent_channels": self.latent_channels,
            "layers_per_block": self.layers_per_block,
            "act_fn": self.act_fn,
            "norm_eps": self.norm_eps,
            "norm_num_groups": self.norm_num_groups,
            "temporal_compression_ratio": self.temporal_compression_ratio,
            "sample_height": self.sample_height,
            "sample_width": self.sample_width,
            "scaling_factor": self.scaling_factor,
            "shift_factor": self.shift_factor,
            "latents_mean": None if self.latents_mean is None else list(self.latents_mean),
            "latents_std": None if self.latents_std is None else list(self.latents_std),
            "force_upcast": self.force_upcast,
            "use_quant_conv": self.use_quant_conv,
            "use_post_quant_conv": self.use_post_quant_conv,
            "invert_scale_latents": self.invert_scale_latents,
            "logvar_range": list(self.posterior.logvar_range),
            "seed": self.seed,
        }
