"""SavedModels for TF Serving: export with versions and staging, and each model family's signatures."""

from tfvae.serving.export import SignatureChangeError, export_saved_model

__all__ = ["SignatureChangeError", "export_saved_model"]
