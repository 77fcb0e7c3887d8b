"""The validation hold-out of a folder: chosen by each file's path, so files added or removed move no other file."""

import os

import numpy as np
import tensorflow as tf

from tfvae import data


def write_pngs(folder, names):
    for name in names:
        pixels = np.full((2, 2, 1), len(name), np.uint8)
        tf.io.write_file(os.path.join(folder, name), tf.io.encode_png(pixels))


def validation_names(folder, fraction=0.25):
    train, validation = data.open_training_images(str(folder), fraction)
    assert train.count + validation.count == len(os.listdir(folder))
    return {os.path.relpath(path, folder) for path in validation.source.paths}


def test_files_added_before_the_others_move_none_of_them_between_train_and_validation(tmp_path):
    names = [f"b{index:02d}.png" for index in range(40)]
    write_pngs(tmp_path, names)
    before = validation_names(tmp_path)
    assert 4 <= len(before) <= 18, "about a quarter of 40 files"
    write_pngs(tmp_path, [f"a{index:02d}.png" for index in range(15)])  # sorted first: every position shifts
    after = validation_names(tmp_path)
    assert after & set(names) == before, "a file's part depends on its path, not on its position"
    for name in names[:20]:
        os.remove(tmp_path / name)
    assert validation_names(tmp_path) == after - set(names[:20])
