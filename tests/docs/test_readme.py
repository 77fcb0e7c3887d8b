"""Every code block of README.md works as pasted: the Python blocks run, the `tfvae` commands parse."""

import json
import os
import re
import shlex
import subprocess
import sys

from tfvae.cli import parser

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# Each block in a fresh namespace, in order, in one process: a block that forgets an import or uses a name defined
# nowhere in it fails, as it would for a reader who pastes it.
RUN_EACH_BLOCK = """
import json, sys, traceback
for line, code in json.loads(sys.argv[1]):
    try:
        exec(compile(code, f"README.md, block at line {line}", "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        sys.exit(f"the python block at line {line} of README.md failed")
"""


def readme_blocks(language):
    """`[(line, code)]` of the README's fenced blocks in `language`; `line` is that of the block's first line."""
    with open(README) as file:
        text = file.read()
    return [(text.count("\n", 0, match.start(2)) + 1, match.group(2))
            for match in FENCED_BLOCK.finditer(text) if match.group(1) == language]


def test_every_python_block_runs_as_pasted(tmp_path):
    blocks = readme_blocks("python")
    assert blocks, "the README has Python examples"
    result = subprocess.run([sys.executable, "-c", RUN_EACH_BLOCK, json.dumps(blocks)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]


def test_every_tfvae_command_of_the_bash_blocks_parses(capsys):
    commands = [part.strip() for _, code in readme_blocks("bash") for line in code.replace("\\\n", " ").splitlines()
                for part in line.split("&&") if part.strip().startswith("tfvae ")]
    assert len(commands) >= 6
    command_parser = parser.build_parser()
    for command in commands:
        try:
            command_parser.parse_args(shlex.split(command, comments=True)[1:])
        except SystemExit:
            raise AssertionError(f"README command {command!r}: {capsys.readouterr().err}") from None
