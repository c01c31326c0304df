"""``mnist-mlp predict``: classify image files without a server, through the service's own core
(preprocessing, model repository, versions) and no web framework."""
