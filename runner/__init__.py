"""A thin PySpark runner for ordered, versioned SQL files: validate, plan, run, publish."""
