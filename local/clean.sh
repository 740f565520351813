#!/usr/bin/env bash
# `make clean` (after `make down`): delete the state folder, and PostgreSQL's data if it lives elsewhere.
source "$(dirname "$0")/lib.sh"
if [ -L "$STATE/postgres" ]; then rm -rf "$(readlink -f "$STATE/postgres")"; fi
rm -rf "$STATE"
echo "removed .state"
