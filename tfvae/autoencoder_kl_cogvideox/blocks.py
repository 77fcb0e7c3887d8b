"""The blocks of CogVideoX's 3D causal KL video autoencoder (Yang et al. 2024), channels last, as diffusers names them.

Videos are `[n, t, h, w, c]`. Every 3x3x3 convolution is causal in time: frame `i` of its output sees input frames
`i - 2 .. i` only. Before the first frame of a video it sees copies of that first frame; when a video is processed in
frame chunks (as `AutoencoderKLCogVideoX` does, like diffusers), each causal convolution returns the last two frames
of its padded input, its *cache*, and the next chunk sees them in place of the copies. So every block's `call` takes
the cache of the previous chunk (None for the first chunk) and returns `(outputs, cache)`; a block's cache is the list
of its sublayers' caches.

Spatial downsampling and upsampling act on each frame; the temporal ones (`compress_time`) keep the first frame of a
chunk with an odd frame count apart. GroupNorm statistics span the frames, height and width of one chunk
(`keras.layers.GroupNormalization`, whose statistics are float32 under a mixed-precision policy).
"""

import keras
from keras import ops

SPATIAL_NORM_EPSILON = 1e-6  # diffusers' `CogVideoXSpatialNorm3D` and the encoder's `norm_out` ignore `norm_eps`


def _group_norm(owner, groups, epsilon, name):
    """A `GroupNormalization` that follows `owner`'s dtype policy (its statistics are float32 whatever the policy)."""
    return keras.layers.GroupNormalization(groups, epsilon=epsilon, dtype=owner.dtype_policy, name=name)


def _frame_conv(owner, filters, name, **kwargs):
    """A convolution of each frame on its own: a `Conv3D` with a kernel one frame deep (diffusers' `Conv2d`)."""
    return keras.layers.Conv3D(filters, (1, 3, 3), dtype=owner.dtype_policy, name=name, **kwargs)


def _pointwise_conv(owner, filters, name):
    """A 1x1x1 `Conv3D` that follows `owner`'s dtype policy."""
    return keras.layers.Conv3D(filters, 1, dtype=owner.dtype_policy, name=name)


def _shape(channels):
    return (None, None, None, None, channels)


@keras.saving.register_keras_serializable(package="tfvae")
class CausalConv3D(keras.layers.Layer):
    """A 3x3x3 convolution, causal in time (diffusers' `CogVideoXCausalConv3d`).

    With `c` the cache (the previous chunk's last two padded frames) or, for the first chunk, two copies of the first
    frame: `y = conv([c, x])`, zero-padded by one pixel along height and width, unpadded along time, so `y` has the
    frames of `x`. The returned cache is the last two frames of `[c, x]`.

    Args:
        filters: the output channels.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, t, h, w, c]` and the cache `[n, 2, h, w, c]` or None. Output shape: `([n, t, h, w, filters],
    [n, 2, h, w, c])`.
    """

    KERNEL_SIZE = 3

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv = keras.layers.Conv3D(self.filters, self.KERNEL_SIZE, dtype=self.dtype_policy, name="conv")

    def build(self, input_shape):
        self.conv.build(_shape(input_shape[-1]))

    def call(self, inputs, cache=None):
        context = self.KERNEL_SIZE - 1
        if cache is None:
            cache = ops.repeat(inputs[:, :1], context, axis=1)
        padded = ops.concatenate([cache, inputs], axis=1)
        spatial = (self.KERNEL_SIZE - 1) // 2
        outputs = self.conv(ops.pad(padded, ((0, 0), (0, 0), (spatial, spatial), (spatial, spatial), (0, 0))))
        return outputs, padded[:, -context:]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="tfvae")
class SpatialNorm3D(keras.layers.Layer):
    """`y = GroupNorm(f) * conv_y(z') + conv_b(z')`, the decoder's normalization conditioned on the latents
    (Zheng et al. 2022, "MoVQ"; diffusers' `CogVideoXSpatialNorm3D`).

    `z'` is the chunk's latents `z` resized to the frames, height and width of `f` by nearest-neighbour indexing
    (`index = floor(i * size_z / size_f)` along each axis); when `f` has an odd frame count above one, its first frame
    takes `z`'s first frame and the other frames are resized from the others. `conv_y` and `conv_b` are 1x1x1
    convolutions (applied before the resizing, which they commute with).

    Args:
        groups: the GroupNorm groups.
        epsilon: the GroupNorm epsilon.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `f` `[n, t, h, w, c]` and `zq` `[n, t', h', w', latent_channels]`. Output shape: that of `f`.
    """

    def __init__(self, groups=32, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.norm_layer = _group_norm(self, self.groups, self.epsilon, "norm_layer")

    def build(self, input_shape, zq_shape=None):
        channels = input_shape[-1]
        self.norm_layer.build(_shape(channels))
        self.conv_y = _pointwise_conv(self, channels, "conv_y")
        self.conv_b = _pointwise_conv(self, channels, "conv_b")
        for conv in (self.conv_y, self.conv_b):
            conv.build(_shape(zq_shape[-1]))

    def call(self, inputs, zq):
        size = ops.shape(inputs)
        scale, shift = (_resize_latents(conv(zq), size[1], size[2], size[3]) for conv in (self.conv_y, self.conv_b))
        return self.norm_layer(inputs) * scale + shift

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


def _nearest(values, size, axis):
    """Nearest-neighbour resizing of `values` along `axis` to `size` entries, as PyTorch's `interpolate` indexes."""
    source = ops.shape(values)[axis]
    return ops.take(values, ops.floor_divide(ops.arange(size) * source, size), axis=axis)


def _resize_latents(zq, frames, height, width):
    """`zq` resized to `[frames, height, width]`, the first frame apart when `frames` is odd (see `SpatialNorm3D`)."""
    zq = _nearest(_nearest(zq, height, 2), width, 3)
    first = frames % 2
    rest = _nearest(zq[:, first:], frames - first, 1)
    return ops.concatenate([zq[:, :first], rest], axis=1)


@keras.saving.register_keras_serializable(package="tfvae")
class ResnetBlock3D(keras.layers.Layer):
    """`y = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))` with causal convolutions (diffusers'
    `CogVideoXResnetBlock3D` without a time embedding).

    `norm1`, `norm2` are GroupNorms, or `SpatialNorm3D`s conditioned on the latents in the decoder; `shortcut` is the
    identity when the input has `filters` channels, else a 1x1x1 convolution (`conv_shortcut`).

    Args:
        filters: the output channels.
        groups: the GroupNorm groups.
        epsilon: the GroupNorm epsilon (`norm_eps`) of plain GroupNorms; `SpatialNorm3D`s always take 1e-6.
        spatial_norm: whether the norms are `SpatialNorm3D`s (the decoder's).
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, t, h, w, c]`, the cache (a list of two) or None, and `zq` for spatial norms. Output shape:
    `([n, t, h, w, filters], cache)`.
    """

    def __init__(self, filters, groups=32, epsilon=1e-6, spatial_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.spatial_norm = bool(spatial_norm)
        self.norm1, self.norm2 = (self._norm(name) for name in ("norm1", "norm2"))
        self.conv1 = CausalConv3D(self.filters, dtype=self.dtype_policy, name="conv1")
        self.conv2 = CausalConv3D(self.filters, dtype=self.dtype_policy, name="conv2")
        self.conv_shortcut = None

    def _norm(self, name):
        if self.spatial_norm:  # diffusers fixes its epsilon at 1e-6 whatever norm_eps is
            return SpatialNorm3D(self.groups, SPATIAL_NORM_EPSILON, dtype=self.dtype_policy, name=name)
        return _group_norm(self, self.groups, self.epsilon, name)

    def build(self, input_shape, zq_shape=None):
        extra = {"zq_shape": zq_shape} if self.spatial_norm else {}
        self.norm1.build(input_shape, **extra)
        self.conv1.build(input_shape)
        self.norm2.build(_shape(self.filters), **extra)
        self.conv2.build(_shape(self.filters))
        if input_shape[-1] != self.filters:
            self.conv_shortcut = _pointwise_conv(self, self.filters, "conv_shortcut")
            self.conv_shortcut.build(input_shape)

    def call(self, inputs, cache=None, zq=None):
        cache = cache or (None, None)
        condition = (zq,) if self.spatial_norm else ()
        hidden, cache1 = self.conv1(ops.silu(self.norm1(inputs, *condition)), cache[0])
        hidden, cache2 = self.conv2(ops.silu(self.norm2(hidden, *condition)), cache[1])
        shortcut = inputs if self.conv_shortcut is None else self.conv_shortcut(inputs)
        return shortcut + hidden, [cache1, cache2]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "epsilon": self.epsilon,
            "spatial_norm": self.spatial_norm,
        }


@keras.saving.register_keras_serializable(package="tfvae")
class Downsample3D(keras.layers.Layer):
    """Halves height and width of each frame, and with `compress_time` the frames (diffusers'
    `CogVideoXDownsample3D`).

    With `compress_time`, frames are averaged in pairs; an odd frame count keeps its first frame apart, so `t` frames
    become `ceil(t / 2)`. Then each frame gets one zero row at the bottom and one zero column at the right, and a 3x3
    convolution of stride 2.

    Args:
        filters: the output channels.
        compress_time: whether the frames are halved too.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, t, h, w, c]`, `h` and `w` even. Output shape: `[n, t', h / 2, w / 2, filters]`.
    """

    def __init__(self, filters, compress_time=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.compress_time = bool(compress_time)
        self.conv = _frame_conv(self, self.filters, "conv", strides=(1, 2, 2))

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs):
        if self.compress_time:
            inputs = _pool_frames(inputs)
        return self.conv(ops.pad(inputs, ((0, 0), (0, 0), (0, 1), (0, 1), (0, 0))))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "compress_time": self.compress_time}


def _pool_frames(inputs):
    """The mean of each pair of frames, the first frame kept apart when the count is odd."""
    shape = ops.shape(inputs)
    first = shape[1] % 2
    pairs = ops.reshape(inputs[:, first:], (shape[0], (shape[1] - first) // 2, 2, shape[2], shape[3], shape[4]))
    return ops.concatenate([inputs[:, :first], ops.mean(pairs, axis=2)], axis=1)


@keras.saving.register_keras_serializable(package="tfvae")
class Upsample3D(keras.layers.Layer):
    """Doubles height and width by nearest-neighbour repetition, and with `compress_time` the frames (each repeated
    twice; an odd frame count keeps its first frame single, so `t` frames become `2 t - t mod 2`), then a 3x3
    convolution of each frame (diffusers' `CogVideoXUpsample3D`).

    Args:
        filters: the output channels.
        compress_time: whether the frames are doubled too.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, t, h, w, c]`. Output shape: `[n, t', 2 h, 2 w, filters]`.
    """

    def __init__(self, filters, compress_time=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.compress_time = bool(compress_time)
        self.conv = _frame_conv(self, self.filters, "conv", padding="same")

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs):
        if self.compress_time:
            first = ops.shape(inputs)[1] % 2
            inputs = ops.concatenate([inputs[:, :first], ops.repeat(inputs[:, first:], 2, axis=1)], axis=1)
        return self.conv(ops.repeat(ops.repeat(inputs, 2, axis=2), 2, axis=3))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "compress_time": self.compress_time}


class _ResnetStack(keras.layers.Layer):
    """`num_layers` `ResnetBlock3D`s of `filters` channels, then an optional resampler; caches in order."""

    def __init__(self, filters, num_layers, groups=32, epsilon=1e-6, spatial_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.spatial_norm = bool(spatial_norm)
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.resnets = [
            ResnetBlock3D(
                self.filters,
                self.groups,
                self.epsilon,
                spatial_norm=self.spatial_norm,
                dtype=self.dtype_policy,
                name=f"resnets_{index}",
            )
            for index in range(self.num_layers)
        ]

    def samplers(self):
        """The resampling layers after the ResNet blocks (none or one)."""
        return []

    def build(self, input_shape, zq_shape=None):
        extra = {"zq_shape": zq_shape} if self.spatial_norm else {}
        for resnet in self.resnets:
            resnet.build(input_shape, **extra)
            input_shape = _shape(self.filters)
        for sampler in self.samplers():
            sampler.build(input_shape)

    def call(self, inputs, cache=None, zq=None):
        cache = cache or [None] * self.num_layers
        extra = {"zq": zq} if self.spatial_norm else {}
        caches = []
        for resnet, resnet_cache in zip(self.resnets, cache, strict=True):
            inputs, resnet_cache = resnet(inputs, resnet_cache, **extra)
            caches.append(resnet_cache)
        for sampler in self.samplers():
            inputs = sampler(inputs)
        return inputs, caches

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_layers": self.num_layers,
            "groups": self.groups,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="tfvae")
class DownBlock3D(_ResnetStack):
    """`num_layers` ResNet blocks, then `Downsample3D` unless it is the last block (diffusers'
    `CogVideoXDownBlock3D`).

    Args:
        filters: the output channels.
        num_layers: the ResNet blocks (`layers_per_block`).
        groups: the GroupNorm groups.
        epsilon: the GroupNorm epsilon.
        add_downsample: whether the block halves height and width.
        compress_time: whether its downsampler halves the frames too.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, num_layers, groups=32, epsilon=1e-6, add_downsample=True, compress_time=False,
                 **kwargs):
        super().__init__(filters, num_layers, groups, epsilon, **kwargs)
        self.add_downsample = bool(add_downsample)
        self.compress_time = bool(compress_time)
        self.downsamplers = []
        if self.add_downsample:
            self.downsamplers.append(
                Downsample3D(self.filters, self.compress_time, dtype=self.dtype_policy, name="downsamplers_0")
            )

    def samplers(self):
        return self.downsamplers

    def get_config(self):
        return {**super().get_config(), "add_downsample": self.add_downsample, "compress_time": self.compress_time}


@keras.saving.register_keras_serializable(package="tfvae")
class UpBlock3D(_ResnetStack):
    """`num_layers` ResNet blocks with `SpatialNorm3D`s, then `Upsample3D` unless it is the last block (diffusers'
    `CogVideoXUpBlock3D`).

    Args:
        filters: the output channels.
        num_layers: the ResNet blocks (`layers_per_block + 1`).
        groups: the GroupNorm groups.
        epsilon: the GroupNorm epsilon.
        add_upsample: whether the block doubles height and width.
        compress_time: whether its upsampler doubles the frames too.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, num_layers, groups=32, epsilon=1e-6, add_upsample=True, compress_time=False,
                 **kwargs):
        super().__init__(filters, num_layers, groups, epsilon, spatial_norm=True, **kwargs)
        self.add_upsample = bool(add_upsample)
        self.compress_time = bool(compress_time)
        self.upsamplers = []
        if self.add_upsample:
            self.upsamplers.append(
                Upsample3D(self.filters, self.compress_time, dtype=self.dtype_policy, name="upsamplers_0")
            )

    def samplers(self):
        return self.upsamplers

    def get_config(self):
        return {**super().get_config(), "add_upsample": self.add_upsample, "compress_time": self.compress_time}


@keras.saving.register_keras_serializable(package="tfvae")
class MidBlock3D(_ResnetStack):
    """`num_layers` ResNet blocks at the lowest resolution (diffusers' `CogVideoXMidBlock3D`), with `SpatialNorm3D`s
    in the decoder.

    Args:
        filters: the channels of the input and the output.
        num_layers: the ResNet blocks (two in CogVideoX).
        groups: the GroupNorm groups.
        epsilon: the GroupNorm epsilon.
        spatial_norm: whether the norms are conditioned on the latents (the decoder's mid block).
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, num_layers=2, groups=32, epsilon=1e-6, spatial_norm=False, **kwargs):
        super().__init__(filters, num_layers, groups, epsilon, spatial_norm, **kwargs)

    def get_config(self):
        return {**super().get_config(), "spatial_norm": self.spatial_norm}


class _Network(keras.layers.Layer):
    """The configuration shared by `Encoder3D` and `Decoder3D` (diffusers' names)."""

    def __init__(self, block_out_channels, layers_per_block, norm_num_groups=32, norm_eps=1e-6,
                 temporal_compression_ratio=4, **kwargs):
        super().__init__(**kwargs)
        self.block_out_channels = tuple(int(channels) for channels in block_out_channels)
        self.layers_per_block = int(layers_per_block)
        self.norm_num_groups = int(norm_num_groups)
        self.norm_eps = float(norm_eps)
        self.temporal_compression_ratio = int(temporal_compression_ratio)
        self.temporal_levels = self.temporal_compression_ratio.bit_length() - 1  # log2 of the ratio

    def get_config(self):
        return {
            **super().get_config(),
            "block_out_channels": list(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "norm_eps": self.norm_eps,
            "temporal_compression_ratio": self.temporal_compression_ratio,
        }


@keras.saving.register_keras_serializable(package="tfvae")
class Encoder3D(_Network):
    """One chunk of video to the moments `[mu, log sigma^2]` of q(z|x) (diffusers' `CogVideoXEncoder3D`).

    `conv_in`, one `DownBlock3D` per entry of `block_out_channels` (all but the last halve height and width, the
    first `log2(temporal_compression_ratio)` halve the frames too), `MidBlock3D`, then GroupNorm, SiLU and `conv_out`
    to `2 * latent_channels` channels; every 3x3x3 convolution is a `CausalConv3D`. With `f = 2 ** (len(
    block_out_channels) - 1)`, a chunk of `t` frames gives `[n, t', h / f, w / f, 2 * latent_channels]`, where `t'`
    halves `t` (rounding up) once per temporal level.

    Args:
        block_out_channels: the channels of each resolution, finest first.
        layers_per_block: the ResNet blocks of each resolution.
        latent_channels: the channels of `z`; the output has twice as many.
        norm_num_groups: the GroupNorm groups.
        norm_eps: the GroupNorm epsilon of the ResNet blocks.
        temporal_compression_ratio: a power of two, `2 ** temporal levels`.
        **kwargs: passed to `keras.layers.Layer`.

    Call: `(x, cache=None) -> (moments, cache)`.
    """

    def __init__(self, block_out_channels, layers_per_block, latent_channels, norm_num_groups=32, norm_eps=1e-6,
                 temporal_compression_ratio=4, **kwargs):
        super().__init__(block_out_channels, layers_per_block, norm_num_groups, norm_eps, temporal_compression_ratio,
                         **kwargs)
        self.latent_channels = int(latent_channels)
        self.conv_in = CausalConv3D(self.block_out_channels[0], dtype=self.dtype_policy, name="conv_in")
        last = len(self.block_out_channels) - 1
        self.down_blocks = [
            DownBlock3D(
                channels,
                self.layers_per_block,
                self.norm_num_groups,
                self.norm_eps,
                add_downsample=index < last,
                compress_time=index < self.temporal_levels,
                dtype=self.dtype_policy,
                name=f"down_blocks_{index}",
            )
            for index, channels in enumerate(self.block_out_channels)
        ]
        self.mid_block = MidBlock3D(self.block_out_channels[-1], 2, self.norm_num_groups, self.norm_eps,
                                    dtype=self.dtype_policy, name="mid_block")
        self.norm_out = _group_norm(self, self.norm_num_groups, SPATIAL_NORM_EPSILON, "norm_out")
        self.conv_out = CausalConv3D(2 * self.latent_channels, dtype=self.dtype_policy, name="conv_out")

    def build(self, input_shape):
        self.conv_in.build(input_shape)
        channels = self.block_out_channels[0]
        for block in self.down_blocks:
            block.build(_shape(channels))
            channels = block.filters
        self.mid_block.build(_shape(channels))
        self.norm_out.build(_shape(channels))
        self.conv_out.build(_shape(channels))

    def call(self, inputs, cache=None):
        cache = cache or [None] * (len(self.down_blocks) + 3)
        caches = []
        hidden, layer_cache = self.conv_in(inputs, cache[0])
        caches.append(layer_cache)
        for block, block_cache in zip([*self.down_blocks, self.mid_block], cache[1:-1], strict=True):
            hidden, layer_cache = block(hidden, block_cache)
            caches.append(layer_cache)
        hidden, layer_cache = self.conv_out(ops.silu(self.norm_out(hidden)), cache[-1])
        return hidden, [*caches, layer_cache]

    def get_config(self):
        return {**super().get_config(), "latent_channels": self.latent_channels}


@keras.saving.register_keras_serializable(package="tfvae")
class Decoder3D(_Network):
    """One chunk of latents to video (diffusers' `CogVideoXDecoder3D`).

    `conv_in` to `block_out_channels[-1]` channels, `MidBlock3D`, one `UpBlock3D` of `layers_per_block + 1` ResNet
    blocks per entry of `block_out_channels` from the coarsest (all but the last double height and width, the first
    `log2(temporal_compression_ratio)` double the frames too), then `SpatialNorm3D`, SiLU and `conv_out` to
    `out_channels`. Every norm is a `SpatialNorm3D` conditioned on the chunk's latents.

    Args:
        block_out_channels: the channels of each resolution, finest first (as for the `Encoder3D`).
        layers_per_block: one less than the ResNet blocks of each resolution.
        out_channels: the channels of the video.
        norm_num_groups: the GroupNorm groups.
        norm_eps: the GroupNorm epsilon of the ResNet blocks.
        temporal_compression_ratio: a power of two, `2 ** temporal levels`.
        **kwargs: passed to `keras.layers.Layer`.

    Call: `(z, cache=None) -> (video, cache)`.
    """

    def __init__(self, block_out_channels, layers_per_block, out_channels, norm_num_groups=32, norm_eps=1e-6,
                 temporal_compression_ratio=4, **kwargs):
        super().__init__(block_out_channels, layers_per_block, norm_num_groups, norm_eps, temporal_compression_ratio,
                         **kwargs)
        self.out_channels = int(out_channels)
        self.conv_in = CausalConv3D(self.block_out_channels[-1], dtype=self.dtype_policy, name="conv_in")
        self.mid_block = MidBlock3D(self.block_out_channels[-1], 2, self.norm_num_groups, self.norm_eps,
                                    spatial_norm=True, dtype=self.dtype_policy, name="mid_block")
        last = len(self.block_out_channels) - 1
        self.up_blocks = [
            UpBlock3D(
                channels,
                self.layers_per_block + 1,
                self.norm_num_groups,
                self.norm_eps,
                add_upsample=index < last,
                compress_time=index < self.temporal_levels,
                dtype=self.dtype_policy,
                name=f"up_blocks_{index}",
            )
            for index, channels in enumerate(reversed(self.block_out_channels))
        ]
        self.norm_out = SpatialNorm3D(self.norm_num_groups, SPATIAL_NORM_EPSILON, dtype=self.dtype_policy,
                                      name="norm_out")
        self.conv_out = CausalConv3D(self.out_channels, dtype=self.dtype_policy, name="conv_out")

    def build(self, input_shape):
        self.conv_in.build(input_shape)
        channels = self.block_out_channels[-1]
        for block in [self.mid_block, *self.up_blocks]:
            block.build(_shape(channels), zq_shape=input_shape)
            channels = block.filters
        self.norm_out.build(_shape(channels), zq_shape=input_shape)
        self.conv_out.build(_shape(channels))

    def call(self, inputs, cache=None):
        cache = cache or [None] * (len(self.up_blocks) + 3)
        caches = []
        hidden, layer_cache = self.conv_in(inputs, cache[0])
        caches.append(layer_cache)
        for block, block_cache in zip([self.mid_block, *self.up_blocks], cache[1:-1], strict=True):
            hidden, layer_cache = block(hidden, block_cache, zq=inputs)
            caches.append(layer_cache)
        hidden, layer_cache = self.conv_out(ops.silu(self.norm_out(hidden, inputs)), cache[-1])
        return hidden, [*caches, layer_cache]

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels}
