"""Frame chunks: how `AutoencoderKLCogVideoX` runs its causal encoder and decoder over a video, as diffusers does.

A video of `T` frames is cut into chunks of `size` frames along axis 1, except the first, which takes the remainder
too: frames `[0, size + T mod size)`, then `[size + T mod size + k size, ...)` for `k = 0, 1, ...` (a video shorter
than `size` is one chunk). The encoder takes chunks of 8 frames and the decoder chunks of 2 latent frames. Each chunk
is normalized on its own (GroupNorm statistics span one chunk) and receives the causal convolutions' cache of the
chunk before; the outputs are concatenated along the frames.

When the frame count is known (always eagerly, and in a graph traced for one clip length, as `fit`'s train step
is) the chunks are unrolled in Python: the graph has no loop, so its gradient is cheap to build. When it is unknown
(a SavedModel signature takes any frame count) they run in a `tf.while_loop`.
"""

import tensorflow as tf


def first_chunk_frames(frames, size):
    """The frames of the first chunk of a `frames`-frame video (an int, or a scalar tensor)."""
    if tf.is_tensor(frames):
        return tf.minimum(size + frames % size, frames)
    return min(size + frames % size, frames)


def map_chunks(step, inputs, size):
    """`step` applied to the chunks of `inputs` in order, the cache passed from one to the next.

    Args:
        step: `(chunk, cache) -> (outputs, cache)`, with `cache` None for the first chunk; the outputs' axis 1 holds
            frames.
        inputs: `[n, T, ...]`.
        size: the frames of a chunk after the first.

    Returns:
        The chunks' outputs concatenated along axis 1.
    """
    if inputs.shape[1] is not None:
        return _unrolled(step, inputs, size)
    frames = tf.shape(inputs)[1]
    start = first_chunk_frames(frames, size)
    outputs, cache = step(inputs[:, :start], None)

    def body(start, outputs, cache):
        chunk_outputs, cache = step(inputs[:, start : start + size], cache)
        return start + size, tf.concat([outputs, chunk_outputs], axis=1), cache

    invariants = (
        start.shape,
        tf.TensorShape([outputs.shape[0], None, *outputs.shape[2:]]),
        tf.nest.map_structure(lambda tensor: tensor.shape, cache),
    )
    _, outputs, _ = tf.while_loop(
        lambda start, *_: start < frames, body, (start, outputs, cache), shape_invariants=invariants
    )
    return outputs


def _unrolled(step, inputs, size):
    """`map_chunks` for a known frame count, the chunks in a Python loop."""
    frames = inputs.shape[1]
    starts = range(first_chunk_frames(frames, size), frames, size)
    bounds = list(zip([0, *starts], [*starts, frames], strict=True))
    outputs, cache = [], None
    for start, end in bounds:
        chunk_outputs, cache = step(inputs[:, start:end], cache)
        outputs.append(chunk_outputs)
    return tf.concat(outputs, axis=1)
