"""`run_layer_test`: what every public tfvae layer and model block must do, checked in one call.

As Keras' and KerasHub's `run_layer_test`: the config round trip, a `.keras` save and load in safe mode, the dtype
policy reaching every sublayer, the same outputs as a TensorFlow graph and under XLA, and `compute_output_shape`
equal to the shape of what the layer returns.
"""

import keras
import numpy as np
import tensorflow as tf


def run_layer_test(make_layer, input_shape, tmp_path, *, atol=1e-5, mixed_atol=5e-2, seed=0):
    """Checks the layer `make_layer(dtype=None)` builds (or `make_layer(dtype="mixed_float16")`) on inputs of
    `input_shape` (batch first).

    Args:
        make_layer: a function of `dtype` (a policy name or None) returning a fresh layer.
        input_shape: the shape of the test batch.
        tmp_path: a folder for the `.keras` file.
        atol: the tolerance of the graph, XLA and reloaded outputs against the eager ones.
        mixed_atol: the tolerance of the `mixed_float16` layer's outputs against float32's.
    """
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, input_shape).astype(np.float32)
    layer = make_layer(dtype=None)
    expected = _as_array(layer(x))

    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config, "get_config -> from_config -> get_config is the identity"

    assert tuple(layer.compute_output_shape(input_shape)) == expected.shape, "compute_output_shape"
    symbolic = layer.compute_output_shape((None, *input_shape[1:]))
    assert symbolic[0] is None and tuple(symbolic[1:]) == expected.shape[1:], "compute_output_shape, unknown batch"

    for jit_compile in (False, True):
        compiled = tf.function(lambda inputs: layer(inputs), jit_compile=jit_compile)
        np.testing.assert_allclose(_as_array(compiled(x)), expected, atol=atol,
                                   err_msg=f"jit_compile={jit_compile} gives the eager outputs")

    inputs = keras.Input(input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / f"{type(layer).__name__}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_as_array(reloaded(x)), expected, atol=atol, err_msg="the .keras round trip")

    mixed = make_layer(dtype="mixed_float16")
    mixed_outputs = mixed(x)
    off_policy = [sublayer.name for sublayer in sublayers(mixed) if sublayer.dtype_policy.name != "mixed_float16"]
    assert not off_policy, f"sublayers that did not get the layer's dtype policy: {off_policy}"
    mixed.set_weights(layer.get_weights())
    np.testing.assert_allclose(_as_array(mixed(x)), expected, atol=mixed_atol,
                               err_msg="mixed_float16 computes what float32 does, to half precision")
    assert np.all(np.isfinite(_as_array(mixed_outputs)))


def sublayers(layer, seen=None):
    """Every layer that `layer` holds in its attributes (directly, or in lists, tuples and dicts), at any depth."""
    seen = set() if seen is None else seen
    values = list(vars(layer).values())
    while values:
        value = values.pop()
        if isinstance(value, (list, tuple)):
            values.extend(value)
        elif isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(value, keras.layers.Layer) and id(value) not in seen:
            seen.add(id(value))
            yield value
            yield from sublayers(value, seen)


def _as_array(outputs):
    return np.asarray(keras.ops.convert_to_numpy(tf.cast(tf.convert_to_tensor(outputs), tf.float32)))
