"""Request signals: each evaluates one aspect of a request into a SignalResult."""

# The signal config models extend switchyard.config.signals.SignalBase, and that module imports
# the semantic ones back: loading it first keeps the import order valid from either side.
import switchyard.config.signals  # noqa: F401
