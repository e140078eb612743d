# archive: make help lists the targets.
PREFIX ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
SHELL_FILES = steps/*.sh testdata/*.sh testdata/servers/*.sh .ci/run

.PHONY: help build test lint demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build ./archive (it finds its steps in ./steps)
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.libStepsDir=$(PREFIX)/lib/archive/steps" -o archive .

test: lint ## lint, then every test against real local servers (CI=true: a missing server fails)
	$(GO) test -count=1 $(TESTFLAGS) ./...
	bash testdata/mail_test.sh

lint: ## gofmt, go vet, shellcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	shellcheck -x $(SHELL_FILES)

demo: ## the whole job on a local HTTPS source and a local sshd (installs missing packages as root)
	bash testdata/demo.sh

clean: ## remove build outputs
	rm -rf archive build
