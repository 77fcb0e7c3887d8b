"""`python -m tfvae`: the `tfvae` command."""

import sys

from tfvae.cli import main

sys.exit(main())
