"""The package version: the one place it is written (read by pyproject.toml,
the package and the manifests of expert stores)."""
__version__ = "0.1.0"
