"""Diffusers folders on the Hugging Face Hub, through `huggingface_hub` (the `hub` extra: `pip install "tfvae[hub]"`).

Files are fetched into, and read from, the user's Hugging Face cache (`HF_HUB_CACHE`, by default
`~/.cache/huggingface/hub`: `models--{owner}--{name}/snapshots/{commit}/...`, with `refs/{branch}` naming the
commit of a branch); with `HF_HUB_OFFLINE=1` only the cache is read.
"""

import os
import re

_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def is_repo_id(path):
    """Whether `path`, which names no local file or folder, has the form of a Hub repository id `owner/name`."""
    return not os.path.exists(path) and bool(_REPO_ID.fullmatch(path))


def download_folder(repo_id, filenames, subfolder=None, revision=None):
    """The local folder, in the Hugging Face cache, holding `filenames` of `repo_id`'s `subfolder` at `revision`.

    Args:
        repo_id: `"owner/name"`.
        filenames: the files to fetch (each is fetched only when the cache lacks it).
        subfolder: the folder inside the repository (`"vae"` in a pipeline's repository), or None.
        revision: a branch, tag or commit; None for `main`.

    Raises:
        ImportError: when `huggingface_hub` is not installed.
        huggingface_hub's errors, which say why, when a file is neither in the cache nor downloadable (for example
        `LocalEntryNotFoundError` offline).
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ImportError(
            f'Loading {repo_id!r} from the Hugging Face Hub needs huggingface_hub: pip install "tfvae[hub]".'
        ) from None
    paths = [hf_hub_download(repo_id, name, subfolder=subfolder, revision=revision) for name in filenames]
    return os.path.dirname(paths[0])
