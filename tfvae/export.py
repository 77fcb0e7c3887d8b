"""Kept so that `tfvae.export` goes on importing: SavedModel export lives in `tfvae.serving.export`."""

from tfvae.serving.export import (
    SignatureChangeError,
    build_export_archive,
    export_saved_model,
    list_versions,
    read_signatures,
    signature_differences,
)

__all__ = [
    "SignatureChangeError", "build_export_archive", "export_saved_model", "list_versions", "read_signatures",
    "signature_differences",
]
