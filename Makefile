# make run        — build the dashboard and run the example server on :8080
# make test       — set up what the tests need (scripts/testenv.sh), vet, check that the committed
#                   dashboard build matches its sources, the dashboard's unit tests, race-enabled Go
#                   tests (with the @microsoft/signalr conformance suite, tsc on notify/ts, end-to-end
#                   runs of the example server and the dashboard in headless Chromium)
# make testenv    — only the set-up: install (as root) and start PostgreSQL, Redis, Chromium
# make deps       — install the npm packages the tests drive (from the lockfiles)
# make dashboard  — build the React dashboard into examples/dashboard/dist (committed, embedded)
# make screenshot — refresh examples/dashboard/screenshot.png, the README's picture
# make bench      — the hub fan-out benchmark against philippseith/signalr's default

CLIENT    := hub/testdata/client
STAMP     := $(CLIENT)/node_modules/.installed
TS        := notify/ts
TSSTAMP   := $(TS)/node_modules/.installed
DASH      := examples/dashboard
DASHSTAMP := $(DASH)/node_modules/.installed

.PHONY: run test testenv deps vet bench dashboard dashboard-check dashboard-test screenshot

run: dashboard
	go run ./examples/server

# testenv comes first, so that a machine that lacks something says so at once.
test: testenv deps dashboard-check dashboard-test
	go vet ./...
	go test -race -count=1 -timeout 20m ./...

testenv:
	scripts/testenv.sh

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

# The build in $(DASH)/dist is committed (Go embeds it); it must be what the
# sources build to. Rebuild into a temporary directory and compare.
dashboard-check: $(DASHSTAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	npm run --silent --prefix $(DASH) build -- --outDir "$$tmp" --emptyOutDir --logLevel warn && \
	if ! diff -rq "$$tmp" $(DASH)/dist; then \
		echo "$(DASH)/dist is stale: the dashboard's sources build to something else." >&2; \
		echo "Run 'make dashboard' and commit $(DASH)/dist with the sources." >&2; \
		exit 1; \
	fi; \
	echo "$(DASH)/dist matches its sources"

# The README's picture: TestScreenshot fills the dashboard with the example
# server's simulation and photographs it in headless Chromium.
screenshot: $(DASHSTAMP)
	DASHBOARD_SCREENSHOT=$(CURDIR)/$(DASH)/screenshot.png go test -count=1 -run '^TestScreenshot$$' ./$(DASH)

dashboard-test: $(DASHSTAMP)
	npm test --prefix $(DASH)

vet:
	go vet ./...

bench:
	go run ./examples/hubbench run -n 5000 -m 200
