# npmgate. `make run` serves the embedded default; `make test` runs every test.
GO       ?= go
BIN      := bin/npmgate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/npmgate/npmgate/proxy.Version=$(VERSION)
# Client versions the end-to-end tests drive, installed from the npm registry.
TOOLS    := $(CURDIR)/.tools
YARN1    := yarn@1.22.22
YARN4    := @yarnpkg/cli-dist@4.18.1
PNPM     := pnpm@10.34.8
# The S3-compatible server the scale-out tests run (PostgreSQL comes from
# Debian's packages).
VERSITYGW := github.com/versity/versitygw/cmd/versitygw@v1.8.0

.PHONY: build run test unit tools prometheus services chromium bench fuzz lint clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/npmgate

run: build
	./$(BIN) serve

# Everything: unit, component and end-to-end tests with real npm, yarn and pnpm.
test: tools prometheus services chromium
	NPMGATE_TOOLS=$(TOOLS) $(GO) test -count=1 -timeout 20m ./...

# Go tests without the client tools (the end-to-end tests then say what is missing).
unit:
	$(GO) test -count=1 ./...

tools: $(TOOLS)/.installed

$(TOOLS)/.installed:
	mkdir -p $(TOOLS)/yarn1 $(TOOLS)/yarn4 $(TOOLS)/pnpm
	npm install --no-audit --no-fund --prefix $(TOOLS)/yarn1 $(YARN1)
	npm install --no-audit --no-fund --prefix $(TOOLS)/yarn4 $(YARN4)
	npm install --no-audit --no-fund --prefix $(TOOLS)/pnpm $(PNPM)
	touch $@

# The e2e test of the metrics runs a real Prometheus, from Debian's packages.
prometheus:
	@command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || \
	      { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }; \
	  else echo "prometheus is missing: sudo apt-get install prometheus (the metrics e2e test needs it)"; fi; }

# The scale-out tests start a PostgreSQL (Debian's postgresql package) and
# an S3-compatible server (Versity Gateway, built from the Go module proxy)
# on loopback. Without them those tests skip, unless
# NPMGATE_REQUIRE_SERVICES=1 (CI sets it).
services: $(TOOLS)/bin/versitygw
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 || \
	      { apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql >/dev/null; }; \
	  else echo "postgresql is missing: sudo apt-get install postgresql (the scale-out tests need it)"; fi; }

# The web UI's browser test drives Debian's Chromium (with chromedp); without
# it that test skips, unless NPMGATE_REQUIRE_SERVICES=1.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	  else echo "chromium is missing: sudo apt-get install chromium (the web UI's browser test needs it)"; fi; }

$(TOOLS)/bin/versitygw:
	GOBIN=$(TOOLS)/bin $(GO) install $(VERSITYGW)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A short run of every fuzz target (their seed corpora also run in `make test`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 20s $$pkg || exit 1; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
