"""Stream processors of the scorer and their runtime: engines, broker, monitors, CLI."""
