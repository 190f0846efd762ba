"""Lambda entry points, one module per function. Each is a thin adapter over conveyor.core."""
