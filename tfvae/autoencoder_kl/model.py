"""`AutoencoderKL`: latent diffusion's KL-regularised autoencoder as a `keras.Model`, with diffusers' config names."""

import keras
import numpy as np

from tfvae._keras.eager import compiled_when_eager
from tfvae.autoencoder_kl import tiling, weights
from tfvae.autoencoder_kl.blocks import Decoder, Encoder
from tfvae.autoencoder_kl.config_checks import check_block_out_channels, per_channel
from tfvae.distributions import DEFAULT_LOGVAR_RANGE
from tfvae.layers import DiagonalGaussianLambda
from tfvae.seeding import SeedState


@keras.saving.register_keras_serializable(package="tfvae")
class AutoencoderKL(SeedState, keras.Model):
    """The KL autoencoder of latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
    Diffusion Models"), the VAE of Stable Diffusion, channels last (NHWC).

    The data path: `x -> Encoder -> quant_conv -> [mu, log sigma^2] -> DiagonalGaussianLambda -> q(z|x) -> z ->
    post_quant_conv -> Decoder -> images`. With `f = 2 ** (len(block_out_channels) - 1)` the latents are
    `[n, h / f, w / f, latent_channels]`. The architecture and the argument names are diffusers' `AutoencoderKL`
    (its `down_block_types` / `up_block_types` are always `DownEncoderBlock2D` / `UpDecoderBlock2D` here, and the
    activation is SiLU); the defaults are diffusers' defaults, so a `config.json` means the same here. Stable
    Diffusion 1.x/2.x use `block_out_channels=(128, 256, 512, 512)`, `layers_per_block=2` (f = 8).

    Latents are unscaled, as in diffusers: `encode(x).sample()` and `decode(z)` work on `z`. A diffusion model works
    on `scale_latents(z)`, as diffusers' pipelines compute it: `(z - latents_mean) * scaling_factor / latents_std`
    per channel when the model has `latents_mean` and `latents_std` (SDXL-style Playground v2.5), else
    `(z - shift_factor) * scaling_factor` (SD3 and FLUX.1 have a shift, Stable Diffusion none); `unscale_latents`
    inverts it. The exported SavedModel's `encode` and `decode` signatures apply them (see
    `tfvae.serving.autoencoder_kl_signatures`).

    Under a mixed-precision policy the GroupNorm statistics, the attention's softmax and the distribution are
    float32, and so is the decoder when `force_upcast` is set; `decode` and `call` return the decoder's compute
    dtype. Under a float32 policy the GroupNorm sums are taken in levels (see `blocks.PreciseGroupNormalization`).

    Called eagerly, `encode` (through `encode_moments`) and `decode` run as TensorFlow graphs, not XLA, traced once
    per image size and dtype for batches of any size (`tfvae._keras.eager.compiled_when_eager`).

    Args:
        in_channels: the channels of the input images.
        out_channels: the channels of the decoded images.
        block_out_channels: the channels of each resolution, finest first; its length sets `f`.
        layers_per_block: the ResNet blocks of each encoder resolution (the decoder has one more).
        latent_channels: the channels of `z`.
        norm_num_groups: the GroupNorm groups; every entry of `block_out_channels` must be divisible by it.
        sample_size: the side, in image pixels, of the tiles of `tiled_encode` and `tiled_decode` (diffusers'
            `tile_sample_min_size`), an int or a `(height, width)` pair whose first entry is used.
        scaling_factor: the `scaling_factor` of `scale_latents`.
        shift_factor: the `shift_factor` of `scale_latents`; None for 0.
        latents_mean: per-channel means of `z` (`latent_channels` floats) for `scale_latents`, or None; given
            together with `latents_std`, and then without `shift_factor`.
        latents_std: per-channel standard deviations of `z` for `scale_latents`, or None.
        force_upcast: whether, under a 16-bit policy, the decoder (`post_quant_conv` and `Decoder`) computes in
            float32, as diffusers' pipelines upcast a float16 VAE to decode. diffusers' default is True and
            `from_pretrained` keeps it when `config.json` leaves it out; the constructor's default is False, so that
            a model built to train under mixed precision trains its decoder in 16 bits.
        use_quant_conv: whether a 1x1 convolution maps the encoder's output to the moments.
        use_post_quant_conv: whether a 1x1 convolution maps `z` to the decoder's input.
        mid_block_add_attention: whether the encoder's and decoder's mid blocks have their attention block.
        logvar_range: the clamp of the posterior's log-variance (latent-diffusion's `(-30, 20)`).
        seed: an int for the noise of `call(..., sample_posterior=True)` and of the exported `encode`, or None.
        **kwargs: passed to `keras.Model` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    import tfvae

    model = tfvae.AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    posterior = model.encode(images)  # q(z|x), a tfvae.DiagonalGaussian over [2, 8, 8, 4]
    reconstruction = model.decode(posterior.mode())  # [2, 16, 16, 3]
    latents = model.scale_latents(posterior.sample(seed=1))  # what a diffusion model sees
    ```
    """

    def __init__(
        self,
        in_channels=3,
        out_channels=3,
        block_out_channels=(64,),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
        scaling_factor=0.18215,
        shift_factor=None,
        latents_mean=None,
        latents_std=None,
        force_upcast=False,
        use_quant_conv=True,
        use_post_quant_conv=True,
        mid_block_add_attention=True,
        logvar_range=DEFAULT_LOGVAR_RANGE,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.block_out_channels = tuple(int(channels) for channels in block_out_channels)
        self.layers_per_block = int(layers_per_block)
        self.latent_channels = int(latent_channels)
        self.norm_num_groups = int(norm_num_groups)
        self.sample_size = int(sample_size) if isinstance(sample_size, int) else tuple(int(s) for s in sample_size)
        self.scaling_factor = float(scaling_factor)
        self.shift_factor = None if shift_factor is None else float(shift_factor)
        self.latents_mean = per_channel("latents_mean", latents_mean, self.latent_channels)
        self.latents_std = per_channel("latents_std", latents_std, self.latent_channels)
        self.force_upcast = bool(force_upcast)
        self.use_quant_conv = bool(use_quant_conv)
        self.use_post_quant_conv = bool(use_post_quant_conv)
        self.mid_block_add_attention = bool(mid_block_add_attention)
        self.seed = seed
        check_block_out_channels(self.block_out_channels, self.norm_num_groups, example=(128, 256, 512, 512))
        _check_latent_statistics(self.latents_mean, self.latents_std, self.shift_factor)
        decoder_policy = self._decoder_policy()
        self.encoder = Encoder(
            self.block_out_channels,
            self.layers_per_block,
            self.latent_channels,
            self.norm_num_groups,
            self.mid_block_add_attention,
            dtype=self.dtype_policy,
            name="encoder",
        )
        self.decoder = Decoder(
            self.block_out_channels,
            self.layers_per_block,
            self.out_channels,
            self.norm_num_groups,
            self.mid_block_add_attention,
            dtype=decoder_policy,
            name="decoder",
        )
        self.quant_conv = self._pointwise_conv(
            2 * self.latent_channels, "quant_conv", self.use_quant_conv, self.dtype_policy
        )
        self.post_quant_conv = self._pointwise_conv(
            self.latent_channels, "post_quant_conv", self.use_post_quant_conv, decoder_policy
        )
        # The model draws its own noise and the objective adds the KL: the layer only builds q(z|x), in float32 at
        # least (float64 in a float64 model, the reference of accuracy tests).
        distribution_dtype = "float64" if self.dtype_policy.compute_dtype == "float64" else "float32"
        self.posterior = DiagonalGaussianLambda(
            logvar_range, convert_to_tensor_fn="mode", dtype=distribution_dtype, name="posterior"
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.build((None, None, None, self.in_channels))

    def _decoder_policy(self):
        """float32 when `force_upcast` and the policy computes in 16 bits, else the model's policy."""
        if self.force_upcast and self.dtype_policy.compute_dtype in ("float16", "bfloat16"):
            return "float32"
        return self.dtype_policy

    @staticmethod
    def _pointwise_conv(filters, name, enabled, dtype):
        if not enabled:
            return keras.layers.Identity(dtype=dtype, name=name)
        return keras.layers.Conv2D(filters, 1, dtype=dtype, name=name)

    @property
    def downsampling_factor(self):
        """`f`: how many image pixels one latent pixel spans along height and along width."""
        return 2 ** (len(self.block_out_channels) - 1)

    def build(self, input_shape):
        """Builds every layer from `input_shape` `[n, h, w, in_channels]` (h and w may be None)."""
        self.encoder.build(input_shape)
        moments_shape = self.encoder.compute_output_shape(input_shape)
        self.quant_conv.build(moments_shape)
        latent_shape = (*moments_shape[:-1], self.latent_channels)
        self.post_quant_conv.build(latent_shape)
        self.decoder.build(latent_shape)

    def encode(self, x, training=None):
        """q(z|x): a `tfvae.DiagonalGaussian` over `[n, h / f, w / f, latent_channels]`.

        Args:
            x: images `[n, h, w, in_channels]`, `h` and `w` divisible by `f` (diffusers' models expect [-1, 1]).
            training: passed to the layers.
        """
        return self.posterior.distribution(self.encode_moments(x, training=training))

    @compiled_when_eager
    def encode_moments(self, x, training=None):
        """The concatenated `[mu, log sigma^2]`, `[n, h / f, w / f, 2 * latent_channels]`, before the clamp.

        Raises:
            ValueError: when a known height or width of `x` is not divisible by `f`.
        """
        size = tuple(x.shape[1:3])
        if any(side is not None and side % self.downsampling_factor for side in size):
            raise ValueError(
                f"AutoencoderKL needs image height and width divisible by f = {self.downsampling_factor}, got {size}; "
                "pad or crop the images."
            )
        return self.quant_conv(self.encoder(x, training=training))

    @compiled_when_eager
    def decode(self, z, training=None):
        """Images `[n, f h, f w, out_channels]` from unscaled latents `z` `[n, h, w, latent_channels]`."""
        return self.decoder(self.post_quant_conv(z), training=training)

    def call(self, x, training=None, sample_posterior=False):
        """The reconstruction `decode(z)`, with `z` the posterior's mode (its mean) or, if `sample_posterior`, one
        draw `z = mu + sigma * epsilon` from the model's seed generator (diffusers' `forward`)."""
        posterior = self.encode(x, training=training)
        z = self.sample_posterior(posterior) if sample_posterior else posterior.mode()
        return self.decode(z, training=training)

    def scale_latents(self, z):
        """Unscaled latents `z` to the latents a diffusion model works on: `(z - latents_mean) * scaling_factor /
        latents_std` when the model has per-channel statistics, else `(z - shift_factor) * scaling_factor`."""
        center, spread = self._latent_statistics()
        return (z - center) * (self.scaling_factor / spread)

    def unscale_latents(self, latents):
        """The inverse of `scale_latents`, before `decode`: `latents * latents_std / scaling_factor + latents_mean`,
        else `latents / scaling_factor + shift_factor`."""
        center, spread = self._latent_statistics()
        return latents * (spread / self.scaling_factor) + center

    def _latent_statistics(self):
        """`(center, spread)` of `scale_latents`: per-channel arrays, or the scalar shift and 1."""
        if self.latents_mean is None:
            return self.shift_factor or 0.0, 1.0
        return np.array(self.latents_mean, "float32"), np.array(self.latents_std, "float32")

    def _tile_cells(self, tile_size, overlap):
        """`(tile, blend)` in latent pixels (`tiling.tile_geometry`), `tile_size` None for `sample_size`."""
        if tile_size is None:
            tile_size = self.sample_size if isinstance(self.sample_size, int) else self.sample_size[0]
        return tiling.tile_geometry(tile_size, overlap, self.downsampling_factor)

    def tiled_encode(self, x, tile_size=None, overlap=0.25):
        """q(z|x) for images too large for one pass: the encoder runs on overlapping tiles of `tile_size` pixels,
        one at a time, and their moments are blended linearly across the overlaps, as diffusers' `tiled_encode` does
        (the fixtures test that both agree within 1e-4).

        Every tile is normalized on its own (GroupNorm statistics and attention span a tile, not the image), so the
        result differs from `encode` where the image has more than one tile; see `tfvae.autoencoder_kl.tiling`.

        Args:
            x: images `[n, h, w, in_channels]`, `h` and `w` divisible by `f`.
            tile_size: the side of a tile in image pixels, divisible by `f` (diffusers' `tile_sample_min_size`);
                None for `sample_size`.
            overlap: the fraction of a tile shared with its neighbour, in [0, 1) (`tile_overlap_factor`).
        """
        grid = tiling.TileGrid.of_cells(*self._tile_cells(tile_size, overlap), self.downsampling_factor, 1)
        tiling.check_divisible(x, self.downsampling_factor)
        return self.posterior.distribution(tiling.map_tiles(self.encode_moments, x, grid))

    def tiled_decode(self, z, tile_size=None, overlap=0.25):
        """`decode` for latents too large for one pass: overlapping tiles of `z` decoded one at a time to
        `tile_size` pixels and blended linearly across the overlaps, as diffusers' `tiled_decode`; float32 images.

        Args:
            z: unscaled latents `[n, h, w, latent_channels]`.
            tile_size: the side of a decoded tile in image pixels, divisible by `f`; None for `sample_size`.
            overlap: the fraction of a tile shared with its neighbour, in [0, 1).
        """
        grid = tiling.TileGrid.of_cells(*self._tile_cells(tile_size, overlap), 1, self.downsampling_factor)
        return tiling.map_tiles(self.decode, z, grid)

    @classmethod
    def from_pretrained(cls, path, subfolder=None, revision=None, family=None, **config):
        """An `AutoencoderKL` with the weights of a diffusers folder (local or on the Hugging Face Hub) or of one
        latent-diffusion `.safetensors` file.

        Args:
            path: a folder holding diffusers' `config.json` and `diffusion_pytorch_model.safetensors` (or a
                diffusers pipeline folder, whose `vae/` folder holds them); a Hub repository id `"owner/name"`
                (needs `pip install "tfvae[hub]"`; files go through the Hugging Face cache, and `HF_HUB_OFFLINE=1`
                reads the cache only); or one `.safetensors` file in either diffusers' or the original
                latent-diffusion key layout (Stable Diffusion 1.x/2.x/XL VAE files, SD3's and FLUX.1's
                `ae.safetensors`, optionally inside a whole checkpoint under `first_stage_model.` or `vae.`).
            subfolder: the folder of `path` holding the autoencoder (`"vae"` in a pipeline repository), or None.
            revision: for a Hub id, the branch, tag or commit; None for `main`.
            family: for a single file, the model family whose latent scaling it has (`"sd"`, `"sdxl"`, `"sd3"`,
                `"flux"`; see `tfvae.autoencoder_kl.families`), or None to recognise it from the file.
            **config: constructor arguments; they override the folder's `config.json`. For a single file,
                arguments not given are read from the tensors' shapes where the shapes tell them (`in_channels`,
                `out_channels`, `block_out_channels`, `layers_per_block`, `latent_channels`, `use_quant_conv`,
                `use_post_quant_conv`, `mid_block_add_attention`), the latent scaling from the family, else
                diffusers' defaults (`norm_num_groups=32`, `force_upcast=True`, ...).

        Raises:
            weights.WeightsError: for a missing file, an unknown `config.json` entry, and for missing, unexpected or
                mis-shaped tensors (named).
            families.FamilyError: for a single file whose latent scaling needs `family`.
            ImportError: for a Hub id without huggingface_hub.

        Example:

        ```python
        import tfvae

        vae = tfvae.AutoencoderKL.from_pretrained("stabilityai/sd-vae-ft-mse")
        flux = tfvae.AutoencoderKL.from_pretrained("ae.safetensors", family="flux")
        ```
        """
        return weights.load_pretrained(cls, path, subfolder, revision, family, **config)

    def save_pretrained(self, folder):
        """Writes diffusers' `config.json` and `diffusion_pytorch_model.safetensors` into `folder`, which
        `diffusers.AutoencoderKL.from_pretrained(folder)` loads (and `from_pretrained` here).

        Raises:
            ValueError: for a `logvar_range` other than diffusers' (`(-30, 20)`), which its config cannot say.
        """
        weights.save_pretrained(self, folder)

    def get_config(self):
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "block_out_channels": list(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "latent_channels": self.latent_channels,
            "norm_num_groups": self.norm_num_groups,
            "sample_size": self.sample_size if isinstance(self.sample_size, int) else list(self.sample_size),
            "scaling_factor": self.scaling_factor,
            "shift_factor": self.shift_factor,
            "latents_mean": None if self.latents_mean is None else list(self.latents_mean),
            "latents_std": None if self.latents_std is None else list(self.latents_std),
            "force_upcast": self.force_upcast,
            "use_quant_conv": self.use_quant_conv,
            "use_post_quant_conv": self.use_post_quant_conv,
            "mid_block_add_attention": self.mid_block_add_attention,
            "logvar_range": list(self.posterior.logvar_range),
            "seed": self.seed,
        }


def _check_latent_statistics(latents_mean, latents_std, shift_factor):
    if (latents_mean is None) != (latents_std is None):
        raise ValueError("Give latents_mean and latents_std together (diffusers uses them only as a pair), or neither.")
    if latents_mean is not None and shift_factor is not None:
        raise ValueError(
            "latents_mean replaces shift_factor in scale_latents; give shift_factor=None with latents_mean/latents_std."
        )
