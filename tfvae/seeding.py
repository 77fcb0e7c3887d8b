"""`SeedState`: the sampling noise of a model, from a `keras.random.SeedGenerator` whose state is saved with it."""

import tensorflow as tf

_SEED_STATE_KEY = "seed_generator_state"


class SeedState:
    """A `keras.Model` mixin for a model with a `keras.random.SeedGenerator` in `self.seed_generator`.

    `.keras` files and weights keep the generator's state beside the model's own variables, so a reloaded model goes
    on with fresh noise instead of repeating the draws it already made.
    """

    def next_seed(self):
        """The next int32[2] seed of the model's seed generator, for TFP's `sample(seed=...)`."""
        return tf.cast(self.seed_generator.next(), tf.int32)

    def sample_posterior(self, posterior):
        """`z = mu + sigma * epsilon`, one draw per example from q(z|x).

        Under a `tf.distribute` strategy each replica draws the noise of the whole global batch and keeps its own
        slice, so every example gets the noise it would get on one device and training does not depend on the
        number of replicas.
        """
        seed = self.next_seed()
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return posterior.sample(seed=seed)
        global_draw = posterior.sample(context.num_replicas_in_sync, seed=seed)
        return tf.gather(global_draw, context.replica_id_in_sync_group)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        self.seed_generator.state.assign(store[_SEED_STATE_KEY])
        super().load_own_variables({key: store[key] for key in store.keys() if key != _SEED_STATE_KEY})
