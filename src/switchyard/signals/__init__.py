"""Request signals: each evaluates one aspect of a request into a SignalResult."""
