"""Pictures of a VAE: image grids, the 2-D latent manifold, and a run's summary figure."""

import statistics

import numpy as np


def as_images(values, image_shape):
    """Model outputs or inputs `[N, ...]` as `[N, *image_shape]` images, clipped to [0, 1] for display.

    Examples that are flat rows of `D` values (`image_shape` is `(D,)`) are shown as strips one pixel high,
    `[N, 1, D, 1]`.
    """
    if len(image_shape) == 1:
        image_shape = (1, image_shape[0], 1)
    return np.clip(np.asarray(values), 0.0, 1.0).reshape(-1, *image_shape)


def tile(images, columns):
    """Lays `[N, h, w, c]` images out as one `[rows * h, columns * w, c]` image, row by row (blank cells are 0)."""
    images = np.asarray(images)
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * height, columns * width, channels), images.dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return grid


def manifold_latents(points_per_axis):
    """Latents on a `points_per_axis`^2 grid for a 2-D latent space, as in AEVB figures 4 and 5.

    Linearly spaced coordinates of the unit square are mapped through the inverse normal CDF, so that the grid
    covers N(0, I) evenly in probability. Rows go from high to low `z_2`, columns from low to high `z_1`.

    Returns:
        A float32 array `[points_per_axis ** 2, 2]`.
    """
    quantiles = np.array([statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, points_per_axis)])
    z1, z2 = np.meshgrid(quantiles, quantiles[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=-1).astype(np.float32)


CURVE_LABELS = {"elbo": "ELBO per example", "reconstruction": "reconstruction error per pixel"}


def save_run_summary(path, history, inputs, reconstructions, samples=None, metric="elbo"):
    """Writes a PNG with the learning curves, inputs above their reconstructions, and samples from the prior.

    Args:
        path: the PNG file to write.
        history: a Keras `History.history` dict (with `metric` and possibly `val_<metric>`).
        inputs, reconstructions, samples: `[N, h, w, c]` images in [0, 1]; `samples` None for none (an autoencoder
            has no prior to sample).
        metric: the logged metric whose learning curves to draw (`elbo` for a VAE, `reconstruction` for an
            autoencoder).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    panels = 2 if samples is None else 3
    figure, axes = pyplot.subplots(1, panels, figsize=(5 * panels, 4.5))
    curves = axes[0]
    epochs = np.arange(1, len(history[metric]) + 1)
    curves.plot(epochs, history[metric], label="train")
    if f"val_{metric}" in history:
        curves.plot(epochs, history[f"val_{metric}"], label="validation")
    curves.set(xlabel="epoch", ylabel=CURVE_LABELS.get(metric, metric), title="Learning curves")
    curves.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    curves.legend()
    columns = min(len(inputs), 8)
    paired = np.concatenate([tile(inputs[:columns], columns), tile(reconstructions[:columns], columns)], axis=0)
    pictures = [(paired, "Inputs (top) and reconstructions")]
    if samples is not None:
        pictures.append((tile(samples, 8), "Samples from the prior"))
    for panel, (image, title) in zip(axes[1:], pictures, strict=True):
        panel.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        panel.set(title=title, xticks=[], yticks=[])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
