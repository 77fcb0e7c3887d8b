"""What `tfvae train` runs: configs, the training run, its callbacks, backups and summary figure.

Library users do not need this package: it is the machinery behind the command.
"""
