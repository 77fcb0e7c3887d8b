"""`AutoencoderKL.from_pretrained("owner/name", subfolder=..., revision=...)` reads the Hugging Face cache, laid out
here as huggingface_hub lays it out, offline (`HF_HUB_OFFLINE`): no network is used."""

import json
import os
import shutil
import sys

import pytest

from tfvae import AutoencoderKL

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import constants  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "autoencoder_kl")
MAIN, OLD = "a" * 40, "b" * 40  # commit hashes


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache holding `owner/pipeline`'s `vae/` at two commits: `main` (the fixture) and an
    older one whose config.json has another scaling_factor."""
    repository = tmp_path / "models--owner--pipeline"
    for commit, scaling_factor in ((MAIN, 0.5), (OLD, 0.25)):
        vae = repository / "snapshots" / commit / "vae"
        shutil.copytree(os.path.join(FIXTURES, "diffusers"), str(vae))
        config = json.loads((vae / "config.json").read_text())
        (vae / "config.json").write_text(json.dumps({**config, "scaling_factor": scaling_factor}))
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(MAIN)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path


def test_a_hub_id_loads_from_the_cache_at_the_revision_asked(offline_cache):
    model = AutoencoderKL.from_pretrained("owner/pipeline", subfolder="vae")
    assert (model.scaling_factor, model.block_out_channels) == (0.5, (16, 32, 32))
    assert AutoencoderKL.from_pretrained("owner/pipeline", subfolder="vae", revision=OLD).scaling_factor == 0.25


def test_offline_a_repository_not_in_the_cache_fails_without_the_network(offline_cache):
    with pytest.raises(huggingface_hub.errors.LocalEntryNotFoundError):
        AutoencoderKL.from_pretrained("owner/other", subfolder="vae")


def test_without_huggingface_hub_a_hub_id_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r'needs huggingface_hub: pip install "tfvae\[hub\]"'):
        AutoencoderKL.from_pretrained("owner/pipeline", subfolder="vae")


def test_local_folders_take_a_subfolder_but_no_revision(tmp_path):
    shutil.copytree(os.path.join(FIXTURES, "diffusers"), str(tmp_path / "models" / "vae"))
    assert AutoencoderKL.from_pretrained(str(tmp_path / "models"), subfolder="vae").scaling_factor == 0.5
    with pytest.raises(ValueError, match="revision='main' selects a Hub commit"):
        AutoencoderKL.from_pretrained(str(tmp_path / "models"), subfolder="vae", revision="main")
