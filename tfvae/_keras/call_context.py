"""Whether a layer is being called by another layer (a model running its graph) or by the user directly."""

try:  # PRIVATE: Keras' per-thread call context (keras/src/backend/common/global_state.py); checked on Keras 3.15.1.
    from keras.src.backend.common import global_state as _keras_state
except ImportError:  # another Keras layout: every call counts as one from within a model, as before
    _keras_state = None

_CALL_CONTEXT = "current_call_ctx"  # set by `Layer.__call__` of the outermost layer being called, None between calls


def within_a_layer_call():
    """Whether a Keras layer's `__call__` is running: True inside a model's (or another layer's) call.

    Keras' `Layer.__call__` sets its per-thread call context when the outermost layer's call begins and clears it
    when that call ends; a layer that asks this before its own `super().__call__` learns whether it was called
    directly. Without Keras' state (another Keras layout) it answers True.
    """
    if _keras_state is None:
        return True
    return _keras_state.get_global_attribute(_CALL_CONTEXT) is not None
