"""A SavedModel archive whose signatures answer in float32, the dtype tfvae's serving contracts promise."""

import keras
import tensorflow as tf


def float32_archive(model, endpoints):
    """A `keras.export.ExportArchive` holding `model`'s variables, with one endpoint per entry of `endpoints`.

    The SavedModel lists the variables as `archive.track(model)` would (`variables`, `trainable_variables`,
    `non_trainable_variables`), without what `track` does besides: walking the model for lookup tables (tfvae's
    models have none), which traces the model's `call` as Keras' default signature though no endpoint uses it.

    Args:
        model: the Keras model whose variables the endpoints read.
        endpoints: `{signature name: (function, input TensorSpec)}`; each function returns a dict of tensors, cast
            here to float32 whatever the model's dtype policy (mixed precision computes in 16 bits).
    """
    archive = keras.export.ExportArchive()
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        archive.add_variable_collection(collection, getattr(model, collection))
    for name, (function, spec) in endpoints.items():
        archive.add_endpoint(name, _float32_outputs(function), input_signature=[spec])
    return archive


def _float32_outputs(function):
    def endpoint(inputs):
        return {name: tf.cast(value, tf.float32) for name, value in function(inputs).items()}

    return endpoint
