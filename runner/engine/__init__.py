"""How a run runs: one SparkSession, the sources it registers, the files it executes, the run itself."""
