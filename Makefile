# The platform's commands. Each does its own set-up, so any of them works on a fresh machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help up down clean test demo airflow validate

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

validate: ## check every SQL pipeline without Spark or databases
	@$(PY) -m runner validate

test: ## bring up what the tests need and run the whole test suite
	@bash local/up.sh test
	@bash local/test.sh
