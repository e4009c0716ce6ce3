# Keyhold. `make test` needs only Go and a Postgres server, which it starts
# itself if the machine has one installed (scripts/ensure-postgres.sh).

GO      ?= go
BIN     ?= bin/keyhold
PKGS    ?= ./...
# VERSION is what keyhold --version prints: the nearest tag, else the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test race bench bench-scale lint tidy clean

## run: start Keyhold (embedded NATS; creates or starts the database it needs)
run:
	$(GO) run ./cmd/keyhold serve

## build: build the binary into bin/keyhold, stamped with VERSION and the commit
build:
	$(GO) build -buildvcs=auto -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/keyhold

## test: lint (gofmt, go vet), then run every package's tests (make race adds the race detector)
test: lint
	bash scripts/ensure-postgres.sh
	$(GO) test -count=1 -p 2 -timeout 15m $(PKGS)

## race: every package's tests under the race detector (about 2 minutes here)
race:
	bash scripts/ensure-postgres.sh
	$(GO) test -race -count=1 -p 2 -timeout 15m $(PKGS)

## bench: run the load benchmark
bench:
	$(GO) run ./cmd/keyhold bench

## bench-scale: load SCALE service accounts (default 1000000) and report memory, restart and p99s
SCALE ?= 1000000
bench-scale:
	$(GO) run ./cmd/keyhold bench --scale $(SCALE)

## lint: gofmt must list no file, and go vet must pass
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l lists files that need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## tidy: tidy go.mod and go.sum
tidy:
	$(GO) mod tidy

## clean: remove build and test output
clean:
	rm -rf bin coverage*.out cpu.prof mem.prof
