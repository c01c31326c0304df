"""``python -m service.offline`` runs the ``mnist-mlp`` console script."""

import sys

from service.offline.cli import main

sys.exit(main())
