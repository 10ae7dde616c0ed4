# Every target installs what it needs first, so each works on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test tables bench package install clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## make run: the whole local stack (DynamoDB Local, SQS, WeChat simulator, API, worker) with demo data
run: $(STAMP)
	$(PY) -m local.stack

## make test: every test (unit, moto, DynamoDB Local, end to end)
test: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	REQUIRE_DYNAMODB_LOCAL=1 $(PY) -m pytest

## make tables: create every table and queue at the configured endpoints, and the first admin
tables: $(STAMP)
	$(PY) -m local.provision

## make bench: cold start; DynamoDB calls, capacity and latency per request (login, cart, products, preview, order) beside the engine floor; writes bench/results/
bench: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .local .pytest_cache
