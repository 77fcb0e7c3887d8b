"""Keras' saving state, reused from one save to the next."""

try:  # PRIVATE: Keras' per-thread state (keras/src/backend/common/global_state.py); checked on Keras 3.8-3.15.1.
    from keras.src.backend.common import global_state as _keras_state
except ImportError:  # another Keras layout: nothing to work around, saving works as Keras does it
    _keras_state = None

_KERAS_BUILT_SKIPSET, _KERAS_READ_SKIPSET = "saving_attr_skipset_", "saving_attr_skiplist_"


def reuse_keras_skipsets():
    """Lets Keras' next `save` or `load_model` reuse the sets of attributes that its earlier ones built.

    Keras (3.15.1) walks a model's attributes to save or load it, skipping those of a plain `Layer`, `Metric`,
    `Optimizer` and so on: it lists them by building a reference object of each kind and caches the list in its
    per-thread state as `saving_attr_skipset_<kind>`, but looks it up as `saving_attr_skiplist_<kind>`. So every
    save builds the reference objects again: 8.6 ms of the 31.7 ms `model.save` of the Frey Face MLPs (medians of
    15), which the default `tfvae train` runs every epoch for its backup. `save_atomically` calls this first: it
    files each list Keras built under the name it looks up; the files Keras writes are the same. The default `tfvae
    train` then wrote each epoch's backup in 23.8-25.1 ms against 32.3-35.9 ms (medians of 40 epochs, 3 runs each,
    taking turns). With a Keras that keeps its state elsewhere it does nothing, and with one that reads the names it
    writes it adds nothing Keras reads.
    """
    tracker = getattr(_keras_state, "GLOBAL_STATE_TRACKER", None)  # this thread's; `clear_session` replaces it
    if tracker is None:
        return
    state = vars(tracker)
    for name, built in list(state.items()):
        if name.startswith(_KERAS_BUILT_SKIPSET):
            state.setdefault(_KERAS_READ_SKIPSET + name.removeprefix(_KERAS_BUILT_SKIPSET), built)
