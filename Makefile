# The two quick-start commands: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/fedcop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# bovine (a test peer, pulled in by bovine-herd and fediverse-pasture-inputs) pins
	# cryptography<46, which holds the GIL while it signs; 47 and later release it
	# (pyca/cryptography#14370), so the delivery worker signs in parallel with its event loop,
	# as a production install (no bovine) does. bovine's own tests here pass with it. pip
	# reports the pin as a conflict and installs it anyway.
	$(BIN)/pip install --quiet --no-deps 'cryptography>=47'
	touch $@

# A trial instance at http://localhost:8000 on SQLite, with a demo community.
run: $(BIN)/fedcop
	FEDCOP_DOMAIN=localhost:8000 FEDCOP_SCHEME=http FEDCOP_ACCESS_LOG=1 $(BIN)/fedcop serve --demo --port 8000

# The whole suite: lint, types, then tests on SQLite and (when reachable) PostgreSQL.
test: $(BIN)/fedcop
	$(BIN)/ruff check fedcop tests bench migrations
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(BIN)/fedcop
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) fedcop.db fedcop.db-wal fedcop.db-shm
