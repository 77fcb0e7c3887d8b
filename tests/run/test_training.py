import math

import numpy as np
import pytest

from tfvae.input_checks import InputError
from tfvae.run import summary_figure, training


def test_history_reads_every_logged_epoch_and_leaves_out_empty_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,elbo,val_elbo,learning_rate\n0,1.5,NA,0.1\n1,2.5,NA,NA\n")
    history = training.read_history(str(path))
    assert sorted(history) == ["elbo", "learning_rate"]
    assert history["elbo"] == [1.5, 2.5] and history["learning_rate"][0] == 0.1
    assert math.isnan(history["learning_rate"][1])


def test_the_convolutional_vae_refuses_rows_and_sides_it_cannot_halve():
    config = training.make_config(dataset="rows.npy", model="conv")
    with pytest.raises(InputError, match=r"rows.npy holds examples of shape \(64,\), not images: --model conv"):
        training.build_model(config, (64,))
    with pytest.raises(InputError, match=r"7x9 pixels.*must be divisible by 4\. Resize them with --image-size "
                                         r"\(image_size=\), a multiple of 4 such as 16\.$"):
        training.build_model(config, (7, 9, 1))


def test_the_summary_of_a_vae_of_flat_rows_shows_them_as_strips(tmp_path, rng):
    config = training.make_config(dataset="rows.npy", latent_size=2, hidden_units=4)
    model = training.build_model(config, (6,))
    rows = rng.random((8, 6)).astype(np.float32)
    path = tmp_path / "summary.png"
    training.save_summary(config, model, {"elbo": [-5.0, -4.0]}, rows, (6,), str(path))
    assert path.stat().st_size > 0
    assert summary_figure.as_images(rows, (6,)).shape == (8, 1, 6, 1)
