"""Property-based checks of DiagonalGaussian over random and extreme parameters."""

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfvae import DiagonalGaussian

means = st.floats(-1e4, 1e4, width=32)
logvars = st.one_of(st.floats(-1e6, 1e6, width=32), st.sampled_from([-30.0, 20.0, 0.0, -1e-7, 1e-7]))


@st.composite
def two_gaussians(draw):
    """Parameters `[count, 2 * size]` of two diagonal Gaussians of the same shape."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)))

    def params():
        mean = draw(hnp.arrays(np.float32, shape, elements=means))
        return np.concatenate([mean, draw(hnp.arrays(np.float32, shape, elements=logvars))], axis=-1)

    return params(), params()


@settings(max_examples=100, deadline=None)
@given(two_gaussians(), st.integers(0, 2**31 - 1))
def test_kl_nll_samples_and_gradients_are_finite_and_kl_is_a_divergence(pair, seed):
    params, other_params = (tf.Variable(p) for p in pair)
    with tf.GradientTape(persistent=True) as tape:
        q, other = DiagonalGaussian(params), DiagonalGaussian(other_params)
        values = {"kl": q.kl(), "kl_other": q.kl(other), "nll": q.nll(other.mean()),
                  "sample": q.sample(seed=[seed, 1]), "kl_self": q.kl(q)}
    for name, value in values.items():
        assert np.isfinite(value).all(), name
        for variable in (params, other_params):
            gradient = tape.gradient(value, variable)
            assert gradient is None or np.isfinite(gradient).all(), name
    assert (values["kl"].numpy() >= 0).all() and (values["kl_other"].numpy() >= 0).all()
    np.testing.assert_array_equal(values["kl_self"], np.zeros(len(pair[0])))
