"""pipeline: stages, artifacts, manifest, recipes, data loading and the ``compress`` CLI."""
