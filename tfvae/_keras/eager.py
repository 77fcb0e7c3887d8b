"""Model methods that run as one compiled `tf.function` when called eagerly.

Called eagerly, a Keras network and the TFP objects around it dispatch every op from Python, many times slower for
one example than the same computation as a graph (`docs/benchmarks.md`). `compiled_when_eager` wraps a
method so that an eager call runs a `tf.function` traced once per model, per shape of one example and per
keyword arguments, with the batch dimension left unknown: batches of any size share one trace. Calls inside a
`tf.function` (`fit`, `predict`, SavedModel export) and calls before the model is built run the method as written.

The functions run as TensorFlow graphs, not XLA: XLA compiles anew for every batch size, and an eager caller's batch
sizes vary (one example, then a last partial batch, ...).
"""

import functools
import weakref

import tensorflow as tf

_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> {(method, example shape, dtype, kwargs): tf.function}


def compiled_when_eager(method=None, *, jit_compile=False):
    """Decorates a method `method(self, x, **kwargs)` of a Keras model so that eager calls run compiled.

    `x` is a batch (a tensor or an array, batch first); keyword arguments must be hashable Python values (such as
    `training=None`), each value getting its own trace. The method's result may hold tensors and composite tensors
    (a TFP distribution comes back rebuilt from its tensors).

    Args:
        method: the method to wrap (or a function of a model and a batch).
        jit_compile: compile with XLA; only for callers that keep the batch size fixed (XLA compiles once per
            size).

    Returns:
        The wrapped method; `@compiled_when_eager` and `@compiled_when_eager(jit_compile=True)` both work.
    """
    if method is None:
        return functools.partial(compiled_when_eager, jit_compile=jit_compile)

    # Not converted by AutoGraph: the four wrapped methods share this function's code, and inside a user's
    # `tf.function` AutoGraph once ran `encode` where `decode` was called (a conversion keyed by that code).
    @tf.autograph.experimental.do_not_convert
    @functools.wraps(method)
    def wrapper(model, x, **kwargs):
        if not (tf.executing_eagerly() and model.built):
            return method(model, x, **kwargs)
        x = tf.convert_to_tensor(x)
        key = (method, tuple(x.shape[1:]), x.dtype, tuple(sorted(kwargs.items())))
        functions = _FUNCTIONS.setdefault(model, {})
        if key not in functions:
            spec = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
            functions[key] = _trace_once(model, method, spec, kwargs, jit_compile)
        return functions[key](x)

    return wrapper


def tracing_count(model):
    """How many times the compiled methods of `model` have been traced, all methods and shapes together."""
    return sum(function.experimental_get_tracing_count() for function in _FUNCTIONS.get(model, {}).values())


def _trace_once(model, method, spec, kwargs, jit_compile):
    model = weakref.ref(model)  # the cache must not keep the model alive

    def run(x):
        return method(model(), x, **kwargs)

    function = tf.function(run, input_signature=[spec], jit_compile=jit_compile, autograph=False)
    # TensorFlow counts the traces of all functions made from `run`'s code together and warns of "excessive
    # retracing" at the fifth: one model's methods and shapes reach that, each traced once as it should be.
    # PRIVATE: `tf.function`'s `_omit_frequent_tracing_warning` (TensorFlow 2.18-2.21); where TensorFlow does not
    # read it, the warning shows and nothing else changes.
    function._omit_frequent_tracing_warning = True
    return function
