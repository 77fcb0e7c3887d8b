"""`SeedState`: the sampling noise of a model, from a `keras.random.SeedGenerator` whose state is saved with it."""

import threading

import tensorflow as tf

_SEED_STATE_KEY = "seed_generator_state"
# Per replica (`tf.distribute` runs each replica in its own thread): `(first, total)`, the rows of the global batch
# that the examples of the model's current call are, or None.
_BATCH_ROWS = threading.local()


class SeedState:
    """A `keras.Model` mixin for a model with a `keras.random.SeedGenerator` in `self.seed_generator`.

    `.keras` files and weights keep the generator's state beside the model's own variables, so a reloaded model goes
    on with fresh noise instead of repeating the draws it already made.
    """

    def next_seed(self):
        """The next int32[2] seed of the model's seed generator, for TFP's `sample(seed=...)`."""
        return tf.cast(self.seed_generator.next(), tf.int32)

    def __call__(self, *args, **kwargs):
        """Keras' call; under a `tf.distribute` strategy of several replicas, the replicas first exchange their batch
        sizes (see `sample_posterior`).

        The exchange is done here, before Keras' call begins: the replicas stop and wait for each other at it, and
        in the middle of a call that would let one replica's `add_loss` reach another's losses (Keras keeps a
        layer's added losses in one list, which the replicas' threads share).
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1 or not args:
            return super().__call__(*args, **kwargs)
        _BATCH_ROWS.rows = _rows_in_global_batch(context, tf.shape(tf.nest.flatten(args[0])[0])[0])
        try:
            return super().__call__(*args, **kwargs)
        finally:
            _BATCH_ROWS.rows = None

    def sample_posterior(self, posterior):
        """`z = mu + sigma * epsilon`, one draw per example from q(z|x).

        Under a `tf.distribute` strategy each replica draws the noise of the whole global batch and keeps the rows
        of its own examples (`DiagonalGaussian.sample_in_batch`): the replicas' batch sizes, which differ when a
        batch does not split evenly, are exchanged when the model is called (or here, outside a call). So every
        example gets the noise it would get on one device and training does not depend on the number of replicas.
        """
        seed = self.next_seed()
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return posterior.sample(seed=seed)
        rows = getattr(_BATCH_ROWS, "rows", None) or _rows_in_global_batch(context, tf.shape(posterior.loc)[0])
        return posterior.sample_in_batch(seed, *rows)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        self.seed_generator.state.assign(store[_SEED_STATE_KEY])
        super().load_own_variables({key: store[key] for key in store.keys() if key != _SEED_STATE_KEY})


def _rows_in_global_batch(context, size):
    """`(first, total)`: the first row in the global batch of this replica's `size` examples, and the global batch
    size, from an all-gather of every replica's size (the replicas hold consecutive slices, in replica order)."""
    sizes = context.all_gather(tf.reshape(size, [1]), axis=0)
    return tf.reduce_sum(sizes[: context.replica_id_in_sync_group]), tf.reduce_sum(sizes)
