"""Data generators: PostgreSQL source tables in bulk (`python -m datagen.postgres`) and
user-registration events on Kafka (`python -m datagen.kafka`)."""
