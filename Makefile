# make run    — build the dashboard and run the example server on :8080
# make test   — vet, the dashboard's unit tests and build, race-enabled Go tests (with the
#               @microsoft/signalr conformance suite, tsc on notify/ts, end-to-end runs of the
#               example server and the dashboard in headless Chromium)
# make deps   — install the npm packages the tests drive (from the lockfiles)
# make dashboard — build the React dashboard that examples/server embeds
# make bench  — the hub fan-out benchmark against philippseith/signalr's default

CLIENT    := hub/testdata/client
STAMP     := $(CLIENT)/node_modules/.installed
TS        := notify/ts
TSSTAMP   := $(TS)/node_modules/.installed
DASH      := examples/dashboard
DASHSTAMP := $(DASH)/node_modules/.installed

.PHONY: run test deps vet bench dashboard dashboard-test

run: dashboard
	go run ./examples/server

# The dashboard is built first: the end-to-end test in ./examples/dashboard
# serves the build to Chromium.
test: deps dashboard dashboard-test
	go vet ./...
	go test -race -count=1 -timeout 20m ./...

deps: $(STAMP) $(TSSTAMP) $(DASHSTAMP)

$(STAMP): $(CLIENT)/package-lock.json
	npm ci --prefix $(CLIENT) --no-audit --no-fund
	touch $@

$(TSSTAMP): $(TS)/package-lock.json
	npm ci --prefix $(TS) --no-audit --no-fund
	touch $@

$(DASHSTAMP): $(DASH)/package-lock.json
	npm ci --prefix $(DASH) --no-audit --no-fund
	touch $@

dashboard: $(DASHSTAMP)
	npm run --prefix $(DASH) build

dashboard-test: $(DASHSTAMP)
	npm test --prefix $(DASH)

vet:
	go vet ./...

bench:
	go run ./examples/hubbench run -n 5000 -m 200
