"""Built-in solver backends: every module (or package) here defining a Solver subclass is found
by name (folder discovery); third-party solvers come through entry points or --plugin."""
