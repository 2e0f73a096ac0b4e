#!/usr/bin/env bash
# The project's one test command (CI runs exactly this through .ci/run).
#
#   ./scripts/test.sh                      checks, then go test -race -count=1 ./...
#   ./scripts/test.sh -run Foo ./storage/...   extra arguments go to go test
#
# The checks come first and any failure stops the run before the tests:
#   go mod tidy -diff   go.mod and go.sum are as go mod tidy writes them
#   gofmt -l            every .go file is gofmt'ed
#   go vet              on the packages given (default ./...)
#   staticcheck         on the same packages; v0.8.2, built through the Go
#                       module proxy into a temporary directory (nothing is
#                       kept in the repository). Without the proxy it is
#                       skipped with a warning, or fails when CI=true.
#
# It provides the database servers the tests use, and tells them where
# through the environment (a variable already set is kept as it is):
#   LLMPROXY_TEST_MONGODB   a FerretDB it builds from tools/ferretdb and
#                           starts on a free loopback port; each test picks
#                           its own database name. The binary is cached in
#                           $LLMPROXY_CACHE_DIR (default ~/.cache/llm-proxy),
#                           named by a hash of its sources, so fresh clones
#                           (CI's) reuse it; the first build takes minutes.
#   LLMPROXY_TEST_POSTGRES  the PostgreSQL on 127.0.0.1:5432, started if down
#   LLMPROXY_TEST_REDIS     the Redis on 127.0.0.1:6379, or a throwaway one
#   LLMPROXY_CHROMIUM       Debian's chromium, for the web console's browser
#                           test (console/e2e); installed with apt-get when
#                           missing and running as root
# A server that cannot be had is an error when CI=true; otherwise the tests
# that need it skip, saying so.
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null; then
	log "go is not installed (https://go.dev/doc/install); it is needed to build and test"
	exit 1
fi

ci=false
[[ "${CI:-}" == "true" ]] && ci=true
missing=()

work=$(mktemp -d "${TMPDIR:-/tmp}/llmproxy-test.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n "${redis_port:-}" ]]; then
		redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- arguments ------------------------------------------------------------------
pkgs=()
flags=()
prev=
for a in "$@"; do
	# Package patterns (./x/..., ./x, and . unless it is a flag's value as
	# in -bench .) go to the checks and to go test; the rest to go test.
	if [[ "$a" == ./* || ("$a" == . && "$prev" != -*) ]]; then pkgs+=("$a"); else flags+=("$a"); fi
	prev=$a
done
((${#pkgs[@]})) || pkgs=(./...)

# --- checks ---------------------------------------------------------------------
# Every check runs, so that one run lists every problem; then any failure
# stops here, before the servers and the tests.
failed=()

log "go mod tidy -diff"
if ! tidy=$(go mod tidy -diff 2>&1); then
	printf '%s\n' "$tidy" >&2
	if [[ "$tidy" == *"diff current/go."* ]]; then
		failed+=("go.mod or go.sum is not as go mod tidy writes it (the diff is above): run go mod tidy")
	else
		failed+=("go mod tidy -diff could not run (above)")
	fi
fi

log "gofmt -l"
# Every Go file of the repository, tools/ferretdb's too; none of npm's.
unformatted=$(find . \( -name .git -o -name node_modules \) -prune -o -name '*.go' -print0 | xargs -0 gofmt -l)
if [[ -n "$unformatted" ]]; then
	printf '%s\n' "$unformatted" >&2
	failed+=("gofmt: the files listed above are not formatted: run gofmt -w on them")
fi

log "go vet ${pkgs[*]}"
if ! go vet "${pkgs[@]}"; then
	failed+=("go vet reported the problems above")
fi

staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2
log "staticcheck ${pkgs[*]} ($staticcheck)"
# Built into $work (removed on exit); Go's module and build caches make it
# quick after the first time. GOFLAGS= as for FerretDB: a -race or -mod
# meant for the tests is not the linter's.
if ! GOBIN=$work/bin GOFLAGS= go install "$staticcheck" 2>"$work/staticcheck.log"; then
	cat "$work/staticcheck.log" >&2
	if $ci; then
		failed+=("staticcheck: go install $staticcheck failed (above); it needs the Go module proxy ($(go env GOPROXY))")
	else
		log "warning: staticcheck skipped: go install $staticcheck failed (above); it needs the Go module proxy ($(go env GOPROXY)). With CI=true this is a failure."
	fi
elif ! "$work/bin/staticcheck" "${pkgs[@]}"; then
	failed+=("staticcheck reported the problems above (a false positive takes a //lint:ignore CHECK reason comment)")
fi

if ((${#failed[@]})); then
	for f in "${failed[@]}"; do
		log "FAILED: $f"
	done
	exit 1
fi

# answers HOST PORT: something accepts TCP connections there.
answers() {
	timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# free_port prints a TCP port free on 127.0.0.1.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		answers 127.0.0.1 "$p" || { echo "$p"; return 0; }
	done
	return 1
}

# --- MongoDB (FerretDB) -----------------------------------------------------
start_ferretdb() {
	local cache=${LLMPROXY_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/llm-proxy} sum bin
	sum=$(cat tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/*.go | sha256sum | cut -c1-16)
	bin=$cache/ferretdb-$sum
	if [[ ! -x "$bin" ]]; then
		log "building FerretDB (tools/ferretdb) into $cache; the first build takes several minutes"
		mkdir -p "$cache" || return 1
		local t0=$SECONDS
		# Never with -race: FerretDB then becomes a slow debug build.
		if ! (cd tools/ferretdb && GOFLAGS= go build -o "$bin.$$" .); then
			log "building tools/ferretdb failed"
			rm -f "$bin.$$"
			return 1
		fi
		mv "$bin.$$" "$bin" # atomic: a concurrent run sees all or nothing
		log "built FerretDB in $((SECONDS - t0))s"
	fi
	# Tests that stop and restart a MongoDB server of their own run this one.
	export LLMPROXY_FERRETDB_BIN=$bin
	"$bin" -listen 127.0.0.1:0 -dir "$work/ferretdb" -uri-file "$work/mongodb.uri" \
		>/dev/null 2>"$work/ferretdb.log" &
	pids+=($!)
	for _ in $(seq 300); do
		if [[ -s "$work/mongodb.uri" ]]; then
			LLMPROXY_TEST_MONGODB=$(cat "$work/mongodb.uri")
			export LLMPROXY_TEST_MONGODB
			log "FerretDB at $LLMPROXY_TEST_MONGODB"
			return 0
		fi
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	log "FerretDB did not start:"
	cat "$work/ferretdb.log" >&2
	return 1
}

if [[ -z "${LLMPROXY_TEST_MONGODB:-}" ]]; then
	start_ferretdb || missing+=("MongoDB: FerretDB (tools/ferretdb) could not be built or started; it needs Go and the Go module proxy")
fi

# --- PostgreSQL ---------------------------------------------------------------
if [[ -z "${LLMPROXY_TEST_POSTGRES:-}" ]]; then
	if ! answers 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
		version=$(ls /etc/postgresql | sort -V | tail -n1)
		log "starting PostgreSQL $version (cluster main)"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
		for _ in $(seq 50); do answers 127.0.0.1 5432 && break; sleep 0.2; done
	fi
	if answers 127.0.0.1 5432; then
		export LLMPROXY_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	else
		missing+=("PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres: apt-get install postgresql, then pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start")
	fi
fi

# --- Redis --------------------------------------------------------------------
if [[ -z "${LLMPROXY_TEST_REDIS:-}" ]]; then
	if answers 127.0.0.1 6379; then
		export LLMPROXY_TEST_REDIS="redis://127.0.0.1:6379/0"
	elif command -v redis-server >/dev/null; then
		redis_port=$(free_port)
		log "starting a throwaway Redis on 127.0.0.1:$redis_port"
		redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
			--daemonize yes --dir "$work" --logfile "$work/redis.log" >&2
		for _ in $(seq 50); do answers 127.0.0.1 "$redis_port" && break; sleep 0.1; done
		if answers 127.0.0.1 "$redis_port"; then
			export LLMPROXY_TEST_REDIS="redis://127.0.0.1:$redis_port/0"
		else
			redis_port=
		fi
	fi
	if [[ -z "${LLMPROXY_TEST_REDIS:-}" ]]; then
		missing+=("Redis on 127.0.0.1:6379: apt-get install redis-server, then redis-server --daemonize yes --port 6379 --save '' --appendonly no")
	fi
fi
# TestRedisOutage stops and restarts a Redis of its own.
for bin in redis-server redis-cli; do
	command -v "$bin" >/dev/null ||
		missing+=("$bin, for the test that stops and restarts a Redis of its own: apt-get install redis-server")
done

# --- Chromium -------------------------------------------------------------------
# The console's browser test drives Debian's chromium through playwright-core
# (never a browser that playwright downloads).
if [[ -z "${LLMPROXY_CHROMIUM:-}" ]]; then
	chromium=$(command -v chromium || true)
	if [[ -z "$chromium" && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "installing chromium (apt-get install -y chromium) for the console's browser test"
		export DEBIAN_FRONTEND=noninteractive
		# A fresh machine may have no package lists yet: update, then retry.
		if ! apt-get install -y chromium >"$work/apt-chromium.log" 2>&1; then
			{ apt-get update && apt-get install -y chromium; } >>"$work/apt-chromium.log" 2>&1 ||
				tail -n 20 "$work/apt-chromium.log" >&2
		fi
		chromium=$(command -v chromium || true)
	fi
	if [[ -n "$chromium" ]]; then
		export LLMPROXY_CHROMIUM=$chromium
	else
		missing+=("chromium, for the web console's browser test (console/e2e): apt-get install chromium, as root")
	fi
fi

if ((${#missing[@]})); then
	for m in "${missing[@]}"; do
		log "missing: $m"
	done
	if $ci; then
		log "CI=true: a missing server is a failure"
		exit 1
	fi
	log "the tests that need these will skip"
fi

# --- test ---------------------------------------------------------------------
log "go test -race -count=1 ${flags[*]} ${pkgs[*]}"
# Nothing is printed after go test: its summary lines close the output.
go test -race -count=1 "${flags[@]}" "${pkgs[@]}"
