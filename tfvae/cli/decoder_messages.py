"""libjpeg's own messages, kept off the terminal of the `tfvae` command.

TensorFlow's JPEG decoder lets libjpeg write its warnings and errors ("Corrupt JPEG data: 682 extraneous bytes before
marker 0xd9", "Improper call to JPEG library in state 201") straight to file descriptor 2, from tf.data's threads,
each time a bad file is decoded: once when it stops a run, again when tfvae looks for the files to name, and in every
epoch when bad images are skipped. tfvae names those files itself (`tfvae.data.pipeline.undecodable_message`), so the
lines only repeat it without saying which file. While the command runs, descriptor 2 is a pipe, and a thread writes
every line that reaches it to the terminal except libjpeg's. Only the command does this: `import tfvae` leaves the
process's file descriptors alone.
"""

import contextlib
import os
import re
import sys
import threading

# The beginnings of the libjpeg messages that a corrupt, truncated or unusual file brings (its warnings and its errors
# on the data); a message that starts otherwise reaches the terminal.
_LIBJPEG_MESSAGE = re.compile(
    rb"(Corrupt JPEG data|Premature end of JPEG file|Invalid JPEG file structure|Improper call to JPEG library"
    rb"|Not a JPEG file|JPEG datastream contains no image|Empty JPEG image|Bogus |Unsupported (JPEG|marker|color)"
    rb"|Unknown (APP0|APP14|Adobe)|Unexpected marker|Missing Huffman|Huffman table|Quantization table"
    rb"|Invalid (SOS|component|scan|crop)|Inconsistent progression|Sampling factors|Maximum supported image"
    rb"|Warning: thumbnail|Sorry, arithmetic|Arithmetic table|Application transferred too)"
)
_DRAIN_SECONDS = 2.0  # how long the end waits for the last lines (a child process could hold the pipe open)


@contextlib.contextmanager
def without_decoder_messages():
    """Within it, lines written to file descriptor 2 reach it unless they are libjpeg's messages (see the module)."""
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    terminal = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, terminal), name="tfvae-stderr", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last write end closes: the forwarder reads to its end
        forwarder.join(_DRAIN_SECONDS)
        if not forwarder.is_alive():
            os.close(terminal)


def _forward(read_end, terminal):
    """Writes each line of the pipe `read_end` to the descriptor `terminal`, except libjpeg's messages."""
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            if not _LIBJPEG_MESSAGE.match(line):
                os.write(terminal, line)
