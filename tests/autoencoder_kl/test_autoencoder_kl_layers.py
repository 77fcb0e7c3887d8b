"""Every block of `tfvae.autoencoder_kl` through the shared harness (`layer_harness.run_layer_test`)."""

import pytest
from layer_harness import run_layer_test

from tfvae.autoencoder_kl import blocks, objective

BLOCKS = {
    "ResnetBlock": (lambda dtype: blocks.ResnetBlock(8, groups=4, dtype=dtype), (2, 8, 8, 4)),
    "AttentionBlock": (lambda dtype: blocks.AttentionBlock(groups=4, dtype=dtype), (2, 4, 4, 8)),
    "Downsample": (lambda dtype: blocks.Downsample(8, dtype=dtype), (2, 8, 8, 4)),
    "Upsample": (lambda dtype: blocks.Upsample(8, dtype=dtype), (2, 4, 4, 8)),
    "MidBlock": (lambda dtype: blocks.MidBlock(8, groups=4, dtype=dtype), (2, 4, 4, 8)),
    "DownEncoderBlock": (lambda dtype: blocks.DownEncoderBlock(8, 1, groups=4, dtype=dtype), (2, 8, 8, 4)),
    "UpDecoderBlock": (lambda dtype: blocks.UpDecoderBlock(8, 1, groups=4, dtype=dtype), (2, 4, 4, 8)),
    "Encoder": (lambda dtype: blocks.Encoder((8, 8), 1, 2, norm_num_groups=4, dtype=dtype), (2, 8, 8, 3)),
    "Decoder": (lambda dtype: blocks.Decoder((8, 8), 1, 3, norm_num_groups=4, dtype=dtype), (2, 4, 4, 2)),
    "PatchDiscriminator": (lambda dtype: objective.PatchDiscriminator(4, 1, dtype=dtype), (2, 8, 8, 3)),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_autoencoder_kl_block(name, tmp_path):
    make_layer, input_shape = BLOCKS[name]
    run_layer_test(make_layer, input_shape, tmp_path, atol=1e-4)
