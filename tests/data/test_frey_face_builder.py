import tensorflow_datasets as tfds

from tfvae.data import frey_face


def test_tfds_shows_the_metadata_and_prepares_without_a_download_message(tmp_path, capsys):
    builder = tfds.builder("frey_face", data_dir=str(tmp_path))
    info = builder.info
    assert "Brendan Frey" in info.description and info.homepage.startswith("https://")
    assert "Roweis" in info.citation and "@article" in info.citation
    assert {name: split.num_examples for name, split in info.splits.items()} == {"train": 1765, "test": 200}
    assert info.dataset_size == sum(frey_face.SPLIT_BYTES.values())

    builder.download_and_prepare()
    printed = capsys.readouterr().out
    assert "Preparing the Frey Face images shipped with tfvae (1.08 MiB)" in printed
    assert "Downloading" not in printed and "Unknown size" not in printed
    prepared = tfds.builder("frey_face", data_dir=str(tmp_path)).info
    assert {name: split.num_bytes for name, split in prepared.splits.items()} == frey_face.SPLIT_BYTES
