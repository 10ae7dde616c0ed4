# Every target installs what it needs first, so each works on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test screenshots fuzz tables bench hammer package install clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip<26.3'  # chalice 1.34 requires pip<26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## make run: the whole local stack (DynamoDB Local, SQS, WeChat simulator, API, worker) with demo data
run: $(STAMP)
	$(PY) -m local.stack

## make test: every test (unit, moto, DynamoDB Local, end to end), in TEST_WORKERS processes (3: the
## suite mostly waits on DynamoDB Local, the simulator and local stacks; each worker starts its own)
TEST_WORKERS ?= 3
test: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	$(PY) -m local.chromium --install
	REQUIRE_DYNAMODB_LOCAL=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

## make screenshots: PNGs of the console's main pages (dashboard, products, orders, order detail, after-sales, marketing) in docs/console/
screenshots: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	$(PY) -m tests.console.screenshots --out docs/console

## make fuzz: schemathesis on every route of /openapi.json on the local stack, FUZZ_EXAMPLES (100) cases per route and mode,
## with the simulator and with a foreign WeChat (tests/fuzz/foreign_wechat.py; `make test` fuzzes only the auth and WeChat routes so)
fuzz: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_FOREIGN=$${FUZZ_FOREIGN:-all} $(PY) -m pytest tests/fuzz -q

## make tables: create every table and queue at the configured endpoints, and the first admin
tables: $(STAMP)
	$(PY) -m local.provision

## make hammer: on the running stack (make run, in another terminal), a flash sale hammered by 200 buyers; HAMMER_ARGS for more
hammer: $(STAMP)
	$(PY) -m local.flash_hammer $(HAMMER_ARGS)

## make bench: cold start beside the dependencies' import; DynamoDB calls, capacity and latency per request (login, cart, products, preview, order, pay notifies) beside the engine floor; flash-sale surge; throughput with 1 and 4 workers; writes bench/results/
bench: $(STAMP)
	$(PY) -m local.dynamodb_local --install
	$(PY) -m bench

## make package: the stage's CloudFormation package (STAGE=prod by default): app, tables, queues, alarms, IAM policy; linted
## (the posters' font goes in as Noto Sans CJK SC cut to GB2312, vendor/poster_fonts/: 3 MB, not the full 32 MB)
package: PACKAGE_STAGE = $(or $(STAGE),prod)
package: $(STAMP)
	$(PY) -m infra.build_template --stage $(PACKAGE_STAGE) --out build/infra.json
	$(PY) -m infra.poster_font
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(PACKAGE_STAGE) \
		--merge-template build/infra.json build/package
	$(VENV)/bin/cfn-lint build/package/sam.json
	@echo "CloudFormation package for stage $(PACKAGE_STAGE): build/package/sam.json (+ build/package/deployment.zip);"
	@echo "deploy it as docs/operations.md says (Deploying with CloudFormation)."

clean:
	rm -rf $(VENV) .local .pytest_cache
