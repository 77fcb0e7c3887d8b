"""Kept so that `tfvae.evaluate`'s functions go on importing: they live in `tfvae.diagnostics`."""

from tfvae.diagnostics import active_units, importance_weighted_log_likelihood, kl_per_channel, summarize

__all__ = ["active_units", "importance_weighted_log_likelihood", "kl_per_channel", "summarize"]
