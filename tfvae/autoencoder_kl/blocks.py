"""The blocks of latent diffusion's KL autoencoder (Rombach et al. 2022), channels last, as diffusers names them.

Every block is a Keras layer built from shapes: `build` chains the sublayers' `compute_output_shape`, so a block built
once takes any height and width (divisible by the encoder's downsampling factor, for the `Encoder`). Every
convolution keeps the spatial size except `Downsample` (halves it) and `Upsample` (doubles it). Normalizations are
`PreciseGroupNormalization`, whose float32 statistics are summed in levels (as accurate as PyTorch's) and are float32
for 16-bit inputs; the attention's softmax runs in float32.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

EPSILON = 1e-6  # the GroupNorm epsilon of every block of the autoencoder, as in latent-diffusion and diffusers


def _conv(owner, filters, kernel_size=3, padding="same", **kwargs):
    """A `Conv2D` that follows `owner`'s dtype policy ("same" padding keeps the size of a stride-1 convolution)."""
    return keras.layers.Conv2D(filters, kernel_size, padding=padding, dtype=owner.dtype_policy, **kwargs)


def _group_norm(owner, groups, name):
    """A `PreciseGroupNormalization` that follows `owner`'s dtype policy."""
    return PreciseGroupNormalization(groups, epsilon=EPSILON, dtype=owner.dtype_policy, name=name)


@keras.saving.register_keras_serializable(package="tfvae")
class PreciseGroupNormalization(keras.layers.GroupNormalization):
    """`keras.layers.GroupNormalization` over channels last whose statistics stay accurate over large images.

    For each example and group of `c / groups` channels, with `m` and `v` the mean and the centered (two-pass)
    variance over the group's `h * w * c / groups` values: `y = x * s + (beta - m * s)` with
    `s = gamma / sqrt(v + epsilon)` per example and channel (`(x - m) / sqrt(v + epsilon) * gamma + beta`, as
    PyTorch's kernel computes it: two passes over `x` for the output). One float32 sum over the 262,144 values of a
    group of a 256x256 image drifts by ~1e-4 relative (Keras' `ops.moments`); here each sum is taken in three
    levels, over every row's `w` values of a channel, then over the `h` rows, then over the group's `c / groups`
    channels, so the rounding grows with `w + h + c / groups` instead of `h * w * c / groups`. The first level reads
    the whole input once; the others sum small tensors. Statistics and normalization are float32 for 16-bit inputs.

    Args:
        groups: the number of groups; the channels must be divisible by it.
        epsilon: added to the variance.
        **kwargs: passed to `keras.layers.GroupNormalization` (`axis` must stay -1).

    Input shape: `[n, h, ..., c]` (rank 3 or more). Output shape: the same.

    Example:

    ```python
    import numpy as np
    from tfvae.autoencoder_kl.blocks import PreciseGroupNormalization

    layer = PreciseGroupNormalization(groups=2)
    y = layer(np.random.default_rng(0).normal(size=(1, 64, 64, 4)).astype("float32"))  # [1, 64, 64, 4]
    ```
    """

    def __init__(self, groups=32, epsilon=1e-3, **kwargs):
        super().__init__(groups=groups, epsilon=epsilon, **kwargs)
        if self.axis != -1:
            raise ValueError(f"PreciseGroupNormalization normalizes channels last (axis=-1), got axis={self.axis}.")

    def call(self, inputs):
        if keras.backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16"):
            inputs = ops.cast(inputs, "float32")
        shape = ops.shape(inputs)
        rows = ops.reshape(inputs, (shape[0], shape[1], -1, inputs.shape[-1]))  # [n, rows, values of a row, c]
        mean = self._group_mean(rows)
        scale = ops.rsqrt(self._group_mean(tf.math.squared_difference(rows, mean)) + self.epsilon)
        shift = -mean * scale
        if self.scale:
            gamma = ops.cast(self.gamma, inputs.dtype)
            scale, shift = scale * gamma, shift * gamma
        if self.center:
            shift = shift + ops.cast(self.beta, inputs.dtype)
        return ops.cast(ops.reshape(rows * scale + shift, shape), self.compute_dtype)

    def _group_mean(self, rows):
        """The mean of `rows` `[n, rows, k, c]` over rows, `k` and each group's channels, as `[n, 1, 1, c]`: means
        over `k`, then over rows, then over the group's channels (a product with the channels' group membership)."""
        channels = rows.shape[-1]
        size = channels // self.groups
        membership = np.repeat(np.eye(self.groups, dtype=rows.dtype.name), size, axis=0)  # [c, groups]
        channel_means = ops.mean(ops.mean(rows, axis=2), axis=1)  # [n, c]
        group_means = ops.matmul(channel_means, membership / size)  # [n, groups]
        return ops.reshape(ops.matmul(group_means, membership.T), (-1, 1, 1, channels))


@keras.saving.register_keras_serializable(package="tfvae")
class ResnetBlock(keras.layers.Layer):
    """`y = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`: diffusers' `ResnetBlock2D` without a time input.

    `norm1`, `norm2` are GroupNorms, `conv1`, `conv2` 3x3 convolutions; `shortcut` is the identity when the input
    already has `filters` channels, else a 1x1 convolution (`conv_shortcut`, latent-diffusion's `nin_shortcut`).

    Args:
        filters: the output channels.
        groups: the GroupNorm groups; both the input's channels and `filters` must be divisible by it.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, c]`. Output shape: `[n, h, w, filters]`.
    """

    def __init__(self, filters, groups=32, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.groups = int(groups)
        self.norm1 = _group_norm(self, self.groups, "norm1")
        self.conv1 = _conv(self, self.filters, name="conv1")
        self.norm2 = _group_norm(self, self.groups, "norm2")
        self.conv2 = _conv(self, self.filters, name="conv2")
        self.conv_shortcut = None

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.conv1.build(input_shape)
        output_shape = self.compute_output_shape(input_shape)
        self.norm2.build(output_shape)
        self.conv2.build(output_shape)
        if input_shape[-1] != self.filters:
            self.conv_shortcut = _conv(self, self.filters, kernel_size=1, name="conv_shortcut")
            self.conv_shortcut.build(input_shape)

    def call(self, inputs):
        hidden = self.conv1(ops.silu(self.norm1(inputs)))
        hidden = self.conv2(ops.silu(self.norm2(hidden)))
        shortcut = inputs if self.conv_shortcut is None else self.conv_shortcut(inputs)
        return shortcut + hidden

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "groups": self.groups}


@keras.saving.register_keras_serializable(package="tfvae")
class AttentionBlock(keras.layers.Layer):
    """Single-head self-attention over the `h * w` positions, with a residual connection (latent-diffusion's
    `AttnBlock`, diffusers' mid-block `Attention`).

    With `u = GroupNorm(x)` as a `[h * w, c]` sequence, `q = u W_q + b_q`, `k = u W_k + b_k`, `v = u W_v + b_v`:
    `y = x + softmax(q k^T / sqrt(c)) v W_o + b_o`, the softmax over the keys and in float32 (float64 for float64).

    Args:
        groups: the GroupNorm groups.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, c]`. Output shape: the same.
    """

    def __init__(self, groups=32, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.group_norm = _group_norm(self, self.groups, "group_norm")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.group_norm.build(input_shape)
        for name in ("to_q", "to_k", "to_v", "to_out"):
            projection = keras.layers.Dense(channels, dtype=self.dtype_policy, name=name)
            projection.build(input_shape)
            setattr(self, name, projection)

    def call(self, inputs):
        channels = inputs.shape[-1]
        normalized = self.group_norm(inputs)
        batch_size = ops.shape(inputs)[0]

        def sequence(projection):
            return ops.reshape(projection(normalized), (batch_size, -1, channels))

        query = sequence(self.to_q) * ops.cast(channels**-0.5, self.compute_dtype)
        scores = ops.einsum("nqc,nkc->nqk", query, sequence(self.to_k))
        softmax_dtype = keras.backend.result_type(self.compute_dtype, "float32")  # float32 at least
        weights = ops.cast(ops.softmax(ops.cast(scores, softmax_dtype), axis=-1), self.compute_dtype)
        attended = ops.einsum("nqk,nkc->nqc", weights, sequence(self.to_v))
        return inputs + self.to_out(ops.reshape(attended, ops.shape(inputs)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="tfvae")
class Downsample(keras.layers.Layer):
    """Halves height and width: zero padding of one row at the bottom and one column at the right, then a 3x3
    convolution of stride 2 (diffusers' `Downsample2D` with `padding=0`).

    Args:
        filters: the output channels.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, c]`, `h` and `w` even. Output shape: `[n, h / 2, w / 2, filters]`.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.pad = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), dtype=self.dtype_policy, name="pad")
        self.conv = _conv(self, self.filters, strides=2, padding="valid", name="conv")

    def build(self, input_shape):
        self.conv.build(self.pad.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.conv(self.pad(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self.pad.compute_output_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="tfvae")
class Upsample(keras.layers.Layer):
    """Doubles height and width: nearest-neighbour repetition, then a 3x3 convolution (diffusers' `Upsample2D`).

    Args:
        filters: the output channels.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, c]`. Output shape: `[n, 2 h, 2 w, filters]`.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.repeat = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=self.dtype_policy, name="repeat")
        self.conv = _conv(self, self.filters, name="conv")

    def build(self, input_shape):
        self.conv.build(self.repeat.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.conv(self.repeat(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self.repeat.compute_output_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class _Stack(keras.layers.Layer):
    """A layer that applies its sublayers one after another (listed by `stack`), built by chaining their shapes."""

    def stack(self):
        """The sublayers in the order `call` applies them."""
        raise NotImplementedError

    def build(self, input_shape):
        for layer in self.stack():
            layer.build(input_shape)
            input_shape = layer.compute_output_shape(input_shape)

    def call(self, inputs):
        for layer in self.stack():
            inputs = layer(inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        for layer in self.stack():
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape


@keras.saving.register_keras_serializable(package="tfvae")
class MidBlock(_Stack):
    """`ResnetBlock`, `AttentionBlock` (optional), `ResnetBlock` at the lowest resolution (diffusers' `UNetMidBlock2D`).

    Args:
        filters: the channels of the input and the output.
        groups: the GroupNorm groups.
        add_attention: whether the attention block sits between the two ResNet blocks.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, groups=32, add_attention=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.groups = int(groups)
        self.add_attention = bool(add_attention)
        self.resnets = [
            ResnetBlock(self.filters, self.groups, dtype=self.dtype_policy, name=f"resnets_{index}") for index in (0, 1)
        ]
        self.attentions = []
        if self.add_attention:
            self.attentions.append(AttentionBlock(self.groups, dtype=self.dtype_policy, name="attentions_0"))

    def stack(self):
        return [self.resnets[0], *self.attentions, self.resnets[1]]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "add_attention": self.add_attention,
        }


class _ResnetStack(_Stack):
    """`num_layers` ResNet blocks of `filters` channels, followed by what a subclass adds."""

    def __init__(self, filters, num_layers, groups=32, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.groups = int(groups)
        self.resnets = [
            ResnetBlock(self.filters, self.groups, dtype=self.dtype_policy, name=f"resnets_{index}")
            for index in range(self.num_layers)
        ]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers, "groups": self.groups}


@keras.saving.register_keras_serializable(package="tfvae")
class DownEncoderBlock(_ResnetStack):
    """`num_layers` ResNet blocks, then `Downsample` unless it is the last block (diffusers' `DownEncoderBlock2D`).

    Args:
        filters: the output channels.
        num_layers: the number of ResNet blocks (`layers_per_block`).
        groups: the GroupNorm groups.
        add_downsample: whether the block halves height and width.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, num_layers, groups=32, add_downsample=True, **kwargs):
        super().__init__(filters, num_layers, groups, **kwargs)
        self.add_downsample = bool(add_downsample)
        self.downsamplers = []
        if self.add_downsample:
            self.downsamplers.append(Downsample(self.filters, dtype=self.dtype_policy, name="downsamplers_0"))

    def stack(self):
        return [*self.resnets, *self.downsamplers]

    def get_config(self):
        return {**super().get_config(), "add_downsample": self.add_downsample}


@keras.saving.register_keras_serializable(package="tfvae")
class UpDecoderBlock(_ResnetStack):
    """`num_layers` ResNet blocks, then `Upsample` unless it is the last block (diffusers' `UpDecoderBlock2D`).

    Args:
        filters: the output channels.
        num_layers: the number of ResNet blocks (`layers_per_block + 1` in the decoder).
        groups: the GroupNorm groups.
        add_upsample: whether the block doubles height and width.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, filters, num_layers, groups=32, add_upsample=True, **kwargs):
        super().__init__(filters, num_layers, groups, **kwargs)
        self.add_upsample = bool(add_upsample)
        self.upsamplers = []
        if self.add_upsample:
            self.upsamplers.append(Upsample(self.filters, dtype=self.dtype_policy, name="upsamplers_0"))

    def stack(self):
        return [*self.resnets, *self.upsamplers]

    def get_config(self):
        return {**super().get_config(), "add_upsample": self.add_upsample}


class _Network(_Stack):
    """The configuration shared by `Encoder` and `Decoder` (diffusers' names), and their output head
    `conv_out(silu(conv_norm_out(h)))`."""

    def __init__(self, block_out_channels, layers_per_block, norm_num_groups, mid_block_add_attention, **kwargs):
        super().__init__(**kwargs)
        self.block_out_channels = tuple(int(channels) for channels in block_out_channels)
        self.layers_per_block = int(layers_per_block)
        self.norm_num_groups = int(norm_num_groups)
        self.mid_block_add_attention = bool(mid_block_add_attention)
        self.mid_block = MidBlock(
            self.block_out_channels[-1],
            self.norm_num_groups,
            self.mid_block_add_attention,
            dtype=self.dtype_policy,
            name="mid_block",
        )
        self.conv_norm_out = _group_norm(self, self.norm_num_groups, "conv_norm_out")
        self.conv_act = keras.layers.Activation("silu", dtype=self.dtype_policy, name="conv_act")

    def get_config(self):
        return {
            **super().get_config(),
            "block_out_channels": list(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "mid_block_add_attention": self.mid_block_add_attention,
        }


@keras.saving.register_keras_serializable(package="tfvae")
class Encoder(_Network):
    """Images to the moments `[mu, log sigma^2]` of q(z|x) before the quant conv (diffusers' `Encoder`, `double_z`).

    `conv_in`, one `DownEncoderBlock` per entry of `block_out_channels` (all but the last halve height and width),
    `MidBlock`, then GroupNorm, SiLU and `conv_out` to `2 * latent_channels` channels. The downsampling factor is
    `f = 2 ** (len(block_out_channels) - 1)`.

    Args:
        block_out_channels: the channels of each resolution, finest first.
        layers_per_block: the ResNet blocks of each resolution.
        latent_channels: the channels of `z`; the output has twice as many.
        norm_num_groups: the GroupNorm groups; every entry of `block_out_channels` must be divisible by it.
        mid_block_add_attention: whether the mid block has its attention block.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, in_channels]`, `h` and `w` divisible by `f`. Output shape:
    `[n, h / f, w / f, 2 * latent_channels]`.
    """

    def __init__(
        self,
        block_out_channels,
        layers_per_block,
        latent_channels,
        norm_num_groups=32,
        mid_block_add_attention=True,
        **kwargs,
    ):
        super().__init__(block_out_channels, layers_per_block, norm_num_groups, mid_block_add_attention, **kwargs)
        self.latent_channels = int(latent_channels)
        self.conv_in = _conv(self, self.block_out_channels[0], name="conv_in")
        last = len(self.block_out_channels) - 1
        self.down_blocks = [
            DownEncoderBlock(
                channels,
                self.layers_per_block,
                self.norm_num_groups,
                add_downsample=index < last,
                dtype=self.dtype_policy,
                name=f"down_blocks_{index}",
            )
            for index, channels in enumerate(self.block_out_channels)
        ]
        self.conv_out = _conv(self, 2 * self.latent_channels, name="conv_out")

    def stack(self):
        return [self.conv_in, *self.down_blocks, self.mid_block, self.conv_norm_out, self.conv_act, self.conv_out]

    def get_config(self):
        return {**super().get_config(), "latent_channels": self.latent_channels}


@keras.saving.register_keras_serializable(package="tfvae")
class Decoder(_Network):
    """Latents (after the post-quant conv) to images (diffusers' `Decoder`).

    `conv_in` to `block_out_channels[-1]` channels, `MidBlock`, one `UpDecoderBlock` of `layers_per_block + 1` ResNet
    blocks per entry of `block_out_channels` from the coarsest (all but the last double height and width), then
    GroupNorm, SiLU and `conv_out` to `out_channels`.

    Args:
        block_out_channels: the channels of each resolution, finest first (as for the `Encoder`).
        layers_per_block: one less than the ResNet blocks of each resolution.
        out_channels: the channels of the images.
        norm_num_groups: the GroupNorm groups.
        mid_block_add_attention: whether the mid block has its attention block.
        **kwargs: passed to `keras.layers.Layer`.

    Input shape: `[n, h, w, latent_channels]`. Output shape: `[n, f h, f w, out_channels]`.
    """

    def __init__(
        self,
        block_out_channels,
        layers_per_block,
        out_channels,
        norm_num_groups=32,
        mid_block_add_attention=True,
        **kwargs,
    ):
        super().__init__(block_out_channels, layers_per_block, norm_num_groups, mid_block_add_attention, **kwargs)
        self.out_channels = int(out_channels)
        self.conv_in = _conv(self, self.block_out_channels[-1], name="conv_in")
        last = len(self.block_out_channels) - 1
        self.up_blocks = [
            UpDecoderBlock(
                channels,
                self.layers_per_block + 1,
                self.norm_num_groups,
                add_upsample=index < last,
                dtype=self.dtype_policy,
                name=f"up_blocks_{index}",
            )
            for index, channels in enumerate(reversed(self.block_out_channels))
        ]
        self.conv_out = _conv(self, self.out_channels, name="conv_out")

    def stack(self):
        return [self.conv_in, self.mid_block, *self.up_blocks, self.conv_norm_out, self.conv_act, self.conv_out]

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels}
