# make test   — vet, race-enabled tests, the @microsoft/signalr conformance suite and tsc on notify/ts
# make deps   — install the npm packages the tests drive (from the lockfile)
# make bench  — the hub fan-out benchmark against philippseith/signalr's default

CLIENT  := hub/testdata/client
STAMP   := $(CLIENT)/node_modules/.installed
TS      := notify/ts
TSSTAMP := $(TS)/node_modules/.installed

.PHONY: test deps vet bench

test: $(STAMP) $(TSSTAMP)
	go vet ./...
	go test -race -count=1 -timeout 15m ./...

deps: $(STAMP) $(TSSTAMP)

$(STAMP): $(CLIENT)/package-lock.json
	npm ci --prefix $(CLIENT) --no-audit --no-fund
	touch $@

$(TSSTAMP): $(TS)/package-lock.json
	npm ci --prefix $(TS) --no-audit --no-fund
	touch $@

vet:
	go vet ./...

bench:
	go run ./examples/hubbench run -n 5000 -m 200

# make dashboard — build the React dashboard that examples/server embeds (npm ci from the lockfile, vite build)
DASH      := examples/dashboard
DASHSTAMP := $(DASH)/node_modules/.installed

.PHONY: dashboard dashboard-test

deps: $(DASHSTAMP)

# The dashboard's unit tests (Vitest), and its build, which the end-to-end
# test in ./examples/dashboard drives in Chromium.
test: dashboard dashboard-test

$(DASHSTAMP): $(DASH)/package-lock.json
	npm ci --prefix $(DASH) --no-audit --no-fund
	touch $@

dashboard: $(DASHSTAMP)
	npm run --prefix $(DASH) build

dashboard-test: $(DASHSTAMP)
	npm test --prefix $(DASH)
