"""``python -m training`` runs the same command as the ``mnist-mlp-train`` console script."""

from training.cli import main

raise SystemExit(main())
