"""File utilities below every other part of tfvae: atomic writes and the lock of a folder in use."""
