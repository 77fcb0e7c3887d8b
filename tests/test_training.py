import math

from tfvae import training


def test_history_reads_every_logged_epoch_and_leaves_out_empty_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,elbo,val_elbo,learning_rate\n0,1.5,NA,0.1\n1,2.5,NA,NA\n")
    history = training.read_history(str(path))
    assert sorted(history) == ["elbo", "learning_rate"]
    assert history["elbo"] == [1.5, 2.5] and history["learning_rate"][0] == 0.1
    assert math.isnan(history["learning_rate"][1])
