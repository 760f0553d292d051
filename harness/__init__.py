"""qdbench's harness: contracts, registry, reference, metrics, store and the `harness` CLI."""

__version__ = "0.1.0"
