"""The package version: a leaf, so every stage can stamp what it writes without importing the package."""

__version__ = "0.1.0"
