"""`AutoencoderKLTrainer` under mixed precision: float32 variables and losses, loss scaling, `.keras` resume."""

import keras
import numpy as np
import pytest

from tfvae.autoencoder_kl import AutoencoderKL, AutoencoderKLTrainer, LatentDiffusionLoss, PatchDiscriminator

SHAPE, STEPS, START = (16, 16, 3), 4, 2  # batches of 4 images; the discriminator counts from step 2
LEARNING_RATE = 1e-4  # at 1e-3 the adaptive weight (~1e3) makes the GAN steps diverge within 6 steps, in float32 too
UNIT_ROUNDOFF = {"mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}  # of the 16-bit compute dtype
# A float16 gradient here reaches ~1e6 times the loss scale: from Keras' 2^15 the first steps overflow and are
# skipped while the scale halves. Starting at 16 every step applies, so the run stays comparable with float32's.
INITIAL_LOSS_SCALE = 16


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((STEPS * 4, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def float32_logs(images):
    return fit_steps(make_trainer("float32"), images)


@pytest.fixture(scope="module", params=["mixed_float16", "mixed_bfloat16"])
def trained(request, images):
    """`(policy, trainer, logs)`: a trainer built under `policy` and its logs of `STEPS` steps on `images`."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        trainer = make_trainer(request.param)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return request.param, trainer, fit_steps(trainer, images)


def make_trainer(policy):
    """A trainer under the global policy; the discriminator's optimizer is left for the trainer to loss-scale."""
    keras.utils.set_random_seed(0)
    trainer = AutoencoderKLTrainer(
        AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, latent_channels=2, seed=1),
        LatentDiffusionLoss(kl_weight=1e-2, discriminator_start=START, discriminator_weight=0.5),
        PatchDiscriminator(filters=4, num_layers=2),
    )
    optimizer = keras.optimizers.SGD(LEARNING_RATE)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=INITIAL_LOSS_SCALE)
    # Graph mode: XLA would compile each 16-bit step for tens of seconds; the step is the same function.
    trainer.compile(optimizer, keras.optimizers.SGD(LEARNING_RATE), jit_compile=False, steps_per_execution=1)
    return trainer


def fit_steps(trainer, images):
    """Each step's logs, `{name: [steps]}`, of one epoch of `trainer` on `images` in order."""
    steps = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(dict(logs)))
    trainer.fit(images, batch_size=4, shuffle=False, epochs=1, verbose=0, callbacks=[record])
    return {name: np.array([float(logs[name]) for logs in steps]) for name in steps[0]}


def state_of(trainer):
    return [*trainer.weights, *trainer.optimizer.variables, *trainer.discriminator_optimizer.variables]


def test_trains_with_float32_variables_and_losses_close_to_float32(trained, float32_logs):
    policy, trainer, logs = trained
    assert trainer.autoencoder.decode(np.zeros((1, 8, 8, 2), np.float32)).dtype == policy.split("_")[1]
    assert {variable.dtype for variable in state_of(trainer)} <= {"float32", "int64"}
    assert all(np.isfinite(values).all() for values in logs.values())
    for optimizer in (trainer.optimizer, trainer.discriminator_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    assert int(trainer.optimizer.iterations) == STEPS, "no autoencoder step was skipped for an overflow"
    assert int(trainer.discriminator_optimizer.iterations) == STEPS
    # Step 0 has float32's weights: only the forward pass differs, each value rounded by u relative, and the losses
    # are float32 sums over 3,072 pixel errors whose roundings average out (measured: 1.3e-4 in float16, 6.4e-4 in
    # bfloat16, at most). The next steps add SGD steps on gradients so rounded; at this learning rate they keep the
    # losses within 7.1e-4 (measured over the 4 steps, before and after the discriminator's start, either dtype):
    # 4e-3, one bfloat16 u, leaves a margin of 5. (The KL, a sum of squared latent means, drifts faster: 6e-3.)
    for name in ("loss", "nll", "kl", "reconstruction"):
        np.testing.assert_allclose(logs[name][0], float32_logs[name][0], rtol=UNIT_ROUNDOFF[policy], err_msg=name)
    for name in ("loss", "nll", "reconstruction"):
        np.testing.assert_allclose(logs[name], float32_logs[name], rtol=4e-3, err_msg=name)


@pytest.mark.parametrize("trained", ["mixed_float16"], indirect=True)
def test_a_loss_scaled_trainer_reloads_from_keras_and_resumes_as_the_saved_one(trained, tmp_path):
    """float16 only, to keep the suite short: its loss-scale optimizers are the state bfloat16 has not."""
    _, trainer, _ = trained
    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.models.load_model(tmp_path / "trainer.keras", safe_mode=True)
    for restored, saved in zip(state_of(loaded), state_of(trainer), strict=True):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    assert not isinstance(loaded.discriminator_optimizer.inner_optimizer, keras.optimizers.LossScaleOptimizer)
    more = np.random.default_rng(1).random((8, *SHAPE)).astype(np.float32)
    resumed, continued = fit_steps(loaded, more), fit_steps(trainer, more)
    assert int(loaded.optimizer.iterations) == STEPS + 2
    for name, values in continued.items():
        np.testing.assert_allclose(resumed[name], values, rtol=1e-6, err_msg=name)
