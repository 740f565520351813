# The platform's commands. Each does its own set-up, so any of them works on a fresh machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help up down clean test demo airflow validate lint

help: ## list the commands
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

up: ## install what is missing and start PostgreSQL, MySQL, Kafka and Spark (idempotent)
	@bash local/up.sh

down: ## stop what `make up` and `make airflow` started, keeping data
	@bash local/down.sh

clean: down ## stop everything and delete the state folder (databases, topics, logs)
	@bash local/clean.sh

airflow: up ## start Airflow 3 locally (UI on http://localhost:8080)
	@bash local/airflow.sh start

demo: up ## run the whole flow end to end: generate, replicate, build marts, stream
	@bash local/demo.sh

validate: ## check every SQL pipeline without databases (Spark's parser in a bare JVM)
	@$(PY) -m runner validate

lint: ## ruff over the Python, sqlfluff over sql/ (rules in pyproject.toml)
	@$(PY) -m ruff check .
	@$(PY) -m sqlfluff lint sql/

test: ## bring up what the tests need, lint, then run the whole test suite
	@bash local/up.sh test
	@$(MAKE) --no-print-directory lint
	@bash local/test.sh
