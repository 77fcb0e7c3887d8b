"""Images whose sides the model cannot halve: the advice fits what the user passed (`--image-size` or not)."""

import pytest

from tfvae.input_checks import InputError
from tfvae.run import training


def test_a_given_image_size_that_does_not_divide_asks_for_a_multiple():
    config = training.make_config(dataset="photos", model="conv", image_size="30")
    with pytest.raises(InputError) as refusal:
        training.build_model(config, (30, 30, 1))
    assert "--image-size 30x30 you gave is not a multiple of 4: choose one that is, such as 28 or 32." in str(
        refusal.value)
    assert "Resize them with" not in str(refusal.value)


def test_an_autoencoder_kl_names_the_multiple_of_its_downsampling():
    config = training.make_config(dataset="photos", model="autoencoder_kl", image_size="32x17",
                                  block_out_channels=(8, 16), norm_num_groups=4, discriminator_layers=0)
    with pytest.raises(InputError, match=r"divisible by 2\. The --image-size 32x17 you gave is not a multiple of 2: "
                                         r"choose one that is, such as 16 or 18\. Or give fewer --block-out-channels"):
        training.build_model(config, (32, 17, 3))


def test_without_an_image_size_the_advice_is_to_give_one():
    config = training.make_config(dataset="photos", model="conv")
    with pytest.raises(InputError, match=r"Resize them with --image-size \(image_size=\), a multiple of 4 such as 16"):
        training.build_model(config, (30, 30, 1))


def test_a_size_below_the_multiple_suggests_the_multiple_once():
    config = training.make_config(dataset="photos", model="conv", image_size="2")
    with pytest.raises(InputError, match=r"is not a multiple of 4: choose one that is, such as 4\.$"):
        training.build_model(config, (2, 2, 1))
