.PHONY: start test deps tools services-up services-down check build clean

# Everything runs on Node 24 LTS: the machine's Node when it is 24 or newer, else the official binary from
# PyPI installed into .tools/node (scripts/node.sh). CI also runs the unit and workflow tests on the
# machine's older Node while package.json's engines allow it.
NODE_BIN := $(shell bash scripts/node.sh bin)
ifeq ($(NODE_BIN),)
$(error scripts/node.sh could not provide Node 24; run it by hand to see why)
endif
export PATH := $(NODE_BIN):$(PATH)

# Run the product: Temporal dev server (UI on http://127.0.0.1:8233) and the worker. Ctrl-C stops it.
start:
	bash scripts/start.sh

# Install what is missing, start the services the tests need, run lint/format/type checks and the suite.
test: deps
	npm run --silent check
	npx vitest run
	npx vitest run --config vitest.suite-end.config.ts

deps:
	bash scripts/deps.sh

tools:
	bash scripts/postgres.sh install
	bash scripts/kafka.sh install
	bash scripts/temporal.sh install
	bash scripts/temporal-test-server.sh install
	bash scripts/kube.sh install
	bash scripts/prometheus-tools.sh install

services-up: tools
	bash scripts/postgres.sh start
	bash scripts/kafka.sh start
	TEMPORAL_PORT=17233 TEMPORAL_UI=off TEMPORAL_DATA_DIR=.data/temporal-test bash scripts/temporal.sh start
	bash scripts/kube.sh start

services-down:
	-TEMPORAL_PORT=17233 TEMPORAL_UI=off TEMPORAL_DATA_DIR=.data/temporal-test bash scripts/temporal.sh stop
	-bash scripts/kafka.sh stop
	-bash scripts/kube.sh stop
	-bash scripts/postgres.sh stop

check: deps
	npm run --silent check

# What production runs: dist/ and the prebuilt workflow bundle dist/workflows.bundle.js (docs/upgrades.md).
build: deps
	npm run --silent build

clean: services-down
	rm -rf .data dist
