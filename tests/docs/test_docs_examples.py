"""Every example of the documentation works as pasted: README.md and every page under docs/.

The convention (docs/contributing/docs-examples.md): a `python` block runs, a `bash` block's `tfvae` commands parse
with the command's own parser and read only data a user has, and a block in any other language (`text`, `console`,
`json`, ...) is shown, not run.
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tfvae.cli import parser

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PAGES = sorted(
    os.path.relpath(path, ROOT)
    for path in [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)]
)
FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# One process for every page (TensorFlow is imported once), each page in its own empty folder with Keras' default
# dtype policy, each block in a fresh namespace, in order: a block that forgets an import or uses a name defined nowhere
# in it fails, as it would for a reader who pastes it; a block may read the files an earlier block of its page wrote.
# Prints one JSON line: {page: the traceback of its first failing block, or null}.
RUN_EVERY_PAGE = """
import json, os, sys, traceback
failures = {}
for page, folder, blocks in json.loads(sys.argv[1]):
    os.chdir(folder)
    if "keras" in sys.modules:
        sys.modules["keras"].config.set_dtype_policy("float32")
    failures[page] = None
    for line, code in blocks:
        try:
            exec(compile(code, f"{page}, block at line {line}", "exec"), {"__name__": "__main__"})
        except BaseException:
            failures[page] = traceback.format_exc()[-4000:]
            break
print(json.dumps(failures))
"""


def blocks(page, language):
    """`[(line, code)]` of the page's fenced blocks in `language`; `line` is that of the block's first line."""
    with open(os.path.join(ROOT, page)) as file:
        text = file.read()
    return [(text.count("\n", 0, match.start(2)) + 1, match.group(2))
            for match in FENCED_BLOCK.finditer(text) if match.group(1) == language]


def tfvae_commands(page):
    """The `tfvae` commands of the page's `bash` blocks, continuation lines joined, `&&` chains split."""
    return [part.strip() for _, code in blocks(page, "bash") for line in code.replace("\\\n", " ").splitlines()
            for part in line.split("&&") if part.strip().startswith("tfvae ")]


def test_the_docs_have_examples_of_both_kinds():
    assert "README.md" in PAGES and len(PAGES) > 10
    assert sum(bool(blocks(page, "python")) for page in PAGES) >= 6
    assert sum(len(tfvae_commands(page)) for page in PAGES) >= 20


PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]


@pytest.fixture(scope="module")
def python_failures(tmp_path_factory):
    """`{page: traceback or None}` from running every page's python blocks in one process."""
    pages = [(page, str(tmp_path_factory.mktemp("page")), blocks(page, "python")) for page in PYTHON_PAGES]
    result = subprocess.run([sys.executable, "-c", RUN_EVERY_PAGE, json.dumps(pages)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_every_python_block_runs_as_pasted(page, python_failures):
    assert python_failures[page] is None, python_failures[page]


@pytest.mark.parametrize("page", [page for page in PAGES if tfvae_commands(page)])
def test_every_tfvae_command_parses(page, capsys):
    command_parser = parser.build_parser()
    for command in tfvae_commands(page):
        try:
            command_parser.parse_args(shlex.split(command, comments=True)[1:])
        except SystemExit as exit:
            if exit.code == 0:  # --help, --version
                continue
            raise AssertionError(f"{page}: {command!r}: {capsys.readouterr().err}") from None


@pytest.mark.parametrize("page", [page for page in PAGES if tfvae_commands(page)])
def test_every_dataset_is_one_a_user_has(page):
    """`--dataset` is shipped (frey_face), downloaded by tfds (`--download`), or a path a python block of the same
    page writes: a reader who clones or pip-installs tfvae has all three."""
    written = "\n".join(code for _, code in blocks(page, "python"))
    for command in tfvae_commands(page):
        arguments = shlex.split(command, comments=True)
        if "--dataset" not in arguments:
            continue
        dataset = arguments[arguments.index("--dataset") + 1]
        written_here = re.search(rf"[\"']{re.escape(dataset.split('/')[0])}[\"'/]", written)
        assert dataset == "frey_face" or "--download" in arguments or written_here, (
            f"{page}: {command!r} reads {dataset!r}, which the reader does not have: use frey_face, a tfds name with "
            f"--download, or write the files in a python block of the page first")
