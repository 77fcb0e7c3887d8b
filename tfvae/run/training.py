"""A training run from a config (`tfvae.run.config`): data, model, callbacks, `fit`, and what the run directory keeps.

A run directory (`output_dir`) ends up holding
`config.json` (the run's settings; `tfvae train --config` repeats the run), `history.csv` (per-epoch metrics),
`history.json` (the same, with each epoch's seconds), `best.keras` (the best model by validation ELBO, or by
validation reconstruction error for `autoencoder_kl`), `model.keras` (the final model), `summary.png` (learning
curves, reconstructions, samples; VAEs only), `backup/` (while a run is unfinished: what the same command resumes
from, see `resumable_run`), `lock` (while a run writes there: its pid and host) and, with TensorBoard on,
`tensorboard/`.

A run reads config -> recipe -> data -> model -> fit -> export whatever the model family: what differs between
families is in their recipes (`tfvae.run.recipes`).
"""

import csv
import dataclasses
import os
import warnings

import keras
import tensorflow as tf

from tfvae import data
from tfvae.files.run_lock import RunLock
from tfvae.run import callbacks, model_files, summary_figure
from tfvae.run.config import load_config, make_config
from tfvae.run.recipes import recipe_for
from tfvae.run.resumable_run import BACKUP, ResumableEarlyStopping, ResumableRun, newest_backup
from tfvae.serving.export import SignatureChangeError, check_signatures_accepted, export_saved_model

__all__ = ["TrainingInterrupted", "build_model", "load_config", "make_config", "train"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT); the run directory keeps what resuming needs."""


def train(config):
    """Runs the training that `config` describes, then saves the run directory and exports a SavedModel.

    Under a multi-worker strategy every worker runs this; the chief writes the run directory and the export, the
    other workers write theirs to `<output_dir>/.worker-<index>` and export nothing.

    Returns:
        `(model, history, export_path)`; `model` is what was exported (the autoencoder of an `autoencoder_kl` run),
        `history` the whole run's, resumed epochs included.

    Raises:
        callbacks.NonFiniteLossError: when the loss becomes NaN or infinite (the last good state is kept).
        files.run_lock.RunLockedError: when another run writes to the same run directory.
        TrainingInterrupted: on Ctrl-C; the backup of the last finished epoch is kept, and training again with the
            same config resumes from it.
    """
    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy must exist before other TF work
    chief = _is_chief(strategy)
    run_dir = config.output_dir if chief else os.path.join(config.output_dir, f".worker-{_task_index(strategy)}")
    with RunLock(run_dir):
        try:
            return _run(dataclasses.replace(config, output_dir=run_dir), strategy, chief)
        except KeyboardInterrupt as interrupt:
            raise TrainingInterrupted(
                f"interrupted; {os.path.join(run_dir, BACKUP)} keeps the last finished epoch, and the same command "
                "resumes from it."
            ) from interrupt


def _run(config, strategy, chief):
    """`train` for the run directory `config.output_dir`, once its lock is held."""
    recipe = recipe_for(config)
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    train_images, validation_images = load_training_images(config)
    splits = {"train": train_images, "validation": validation_images}
    shown = recipe.shown_examples(config)
    inputs = {name: _as_inputs(images.take(shown), recipe.flatten) for name, images in splits.items()
              if images is not None}
    image_shape = train_images.image_shape
    with strategy.scope():
        model = build_model(config, image_shape)
        model.compile(
            **recipe.optimizers(config),
            jit_compile={"auto": "auto", "on": True, "off": False}[config.jit_compile],
            steps_per_execution=1 if config.strategy == "multiworker" else config.steps_per_execution,
        )
    if chief and not config.allow_signature_change:
        check_signatures_accepted(recipe.trained_model(model), os.path.join(config.export_root, config.model_name))
    run_dir = config.output_dir
    config_path = os.path.join(run_dir, "config.json")
    resuming = newest_backup(os.path.join(run_dir, BACKUP)) is not None
    if not resuming:  # a resumed run keeps the config its backup was made with until it has trained
        config.to_json(config_path)

    def batches(images, training):
        # Training batches all have batch_size examples (a static shape: the train step compiles once); the
        # examples of a last partial batch are left out of that epoch, and shuffling leaves out others the next.
        # A training split smaller than one batch is one batch. Validation keeps every example. TFRecords (and some
        # tfds splits) do not say how many examples they hold: their count is None.
        drop_remainder = training and (images.count is None or images.count >= config.batch_size)
        arguments = (config.batch_size, training, recipe.binarize(config), recipe.flatten, config.seed,
                     drop_remainder, data_epochs[training])
        if config.strategy == "multiworker" and isinstance(images, data.StreamedImages):
            # Each worker reads and decodes only its own files.
            return strategy.distribute_datasets_from_function(
                lambda input_context: images.batches(*arguments, input_context=input_context))
        return images.batches(*arguments)

    # Each epoch's order and noise are drawn for `fit`'s epoch, so a resumed run draws what an uninterrupted one does.
    data_epochs = {True: data.EpochCounter(), False: data.EpochCounter()}

    interrupts = callbacks.RaiseOnInterrupt()
    with data.raising_data_errors(train_images, validation_images), warnings.catch_warnings(), interrupts:
        # Keras learns the size of a set that does not know it (TFRecords) when its first epoch runs out of data,
        # and warns as if steps were missing: none are.
        warnings.filterwarnings("ignore", "Your input ran out of data", UserWarning)
        history = model.fit(
            batches(train_images, training=True),
            validation_data=None if validation_images is None else batches(validation_images, training=False),
            epochs=config.epochs,
            shuffle=False,  # the pipeline shuffles
            callbacks=[*make_callbacks(config, inputs, image_shape), interrupts, *data_epochs.values()],
            verbose=config.verbose,
        )
    _report_skipped(train_images, validation_images)
    if resuming:
        config.to_json(config_path)
    history.history = read_history(os.path.join(run_dir, "history.csv"))
    trained = recipe.trained_model(model)
    model_files.save_model(trained, os.path.join(run_dir, "model.keras"))
    save_summary(config, model, history.history, inputs.get("validation", inputs["train"]), image_shape,
                 os.path.join(run_dir, "summary.png"))
    export_path = _export(trained, config) if chief else None
    return trained, history, export_path


def _export(model, config):
    try:
        return export_saved_model(model, os.path.join(config.export_root, config.model_name),
                                  allow_signature_change=config.allow_signature_change)
    except SignatureChangeError as error:
        model_path = os.path.join(config.output_dir, "model.keras")
        raise SignatureChangeError(f"{error} The trained model stays in {model_path} for tfvae export.") from error


def build_model(config, image_shape):
    """The model a run of `config` fits, for images of `image_shape` (its recipe's `build`)."""
    return recipe_for(config).build(config, image_shape)


def make_strategy(name):
    """The `tf.distribute` strategy called `name`: `default` (one device), `mirrored` (every local device), or
    `multiworker` (machines described by the `TF_CONFIG` environment variable)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def read_history(path):
    """The per-epoch metrics of a `history.csv` file as `{metric: [values]}`, every epoch of every resumed run.

    The file holds `NA` where an epoch lacks a metric (all validation columns, when there is no validation
    data): such a value reads as NaN, and a column that is all `NA` is left out.
    """
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    names = [name for name in (rows[0] if rows else []) if name != "epoch" and any(row[name] != "NA" for row in rows)]
    return {name: [float("nan") if row[name] == "NA" else float(row[name]) for row in rows] for name in names}


def load_training_images(config):
    """The training and validation image sets of `config` (validation None when `validation_split` is 0); see
    `data.open_training_images` for how the validation part is chosen."""
    return data.open_training_images(
        config.dataset, config.validation_split, config.seed, image_size=config.image_size, channels=config.channels,
        image_key=config.image_key, cache=config.cache, skip_bad_images=config.skip_bad_images,
        data_dir=config.data_dir, download=config.download)


def make_callbacks(config, inputs, image_shape):
    """Checkpoints, resumption, logs, early stopping and TensorBoard for a run of `config`.

    Args:
        inputs: `{"train": examples, "validation": examples}` as the model takes them (validation optional).
        image_shape: the shape of one image, to show flat examples as pictures.
    """
    recipe = recipe_for(config)
    metric, mode = recipe.monitored
    monitor = f"val_{metric}" if "validation" in inputs else metric
    resumable = ResumableRun(config.output_dir, monitor, mode)
    run_callbacks = [callbacks.StopOnNonFiniteLoss(), resumable]
    if config.early_stopping_patience:
        run_callbacks.append(ResumableEarlyStopping(resumable, monitor=monitor, mode=mode, restore_best_weights=True,
                                                    patience=config.early_stopping_patience))
    if config.tensorboard:
        log_dir = os.path.join(config.output_dir, "tensorboard")
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
        run_callbacks += recipe.tensorboard_callbacks(config, log_dir, inputs, image_shape)
    return run_callbacks


def save_summary(config, model, history, examples, image_shape, path):
    """Writes the run's summary PNG: learning curves of the monitored metric, 8 examples with their reconstructions
    by `model` (what `fit` trained: a VAE, or the autoencoder's trainer, both taking images in [0, 1]) and the
    recipe's prior samples, if any."""
    recipe = recipe_for(config)
    inputs, reconstructions = (summary_figure.as_images(values, image_shape)
                               for values in (examples[:8], model.reconstruct(examples[:8])))
    summary_figure.save_run_summary(path, history, inputs, reconstructions, recipe.prior_samples(model, image_shape),
                                    recipe.monitored[0])


def _report_skipped(*image_sets):
    skipped = sorted(set().union(*(images.skipped for images in image_sets if images is not None)))
    if skipped:
        print(f"Skipped {len(skipped)} bad image(s) that could not be decoded: {', '.join(skipped[:5])}"
              + (", ..." if len(skipped) > 5 else "") + ".")


def _as_inputs(images, flatten):
    return images.reshape(len(images), -1) if flatten else images


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_id == 0)


def _task_index(strategy):
    return strategy.cluster_resolver.task_id
