"""What a pipeline is: its settings and SQL files, how their reads resolve, validation and the plan."""
