#!/usr/bin/env bash
# Load benchmark of a node's POST /v1/infer with wrk (Debian's `wrk`), next to the engine's own
# latency on the same model and input (vouch-bench), in the same run.
#
#   scripts/bench_node.sh [MODEL_FIXTURE ...]    # default: iris_mlp mnist_cnn
#
# Env: DURATION (s per load level, default 20), CONNECTIONS (levels, default "1 4 16 64"),
#      THREADS (wrk threads, default 1), PROFILE (exact|native, default exact).
# Builds release binaries, starts a node on a free loopback port with a fresh data directory,
# publishes each model, then for each connection count runs wrk. Every request carries a fresh
# random nonce, gets a signed receipt, and waits until that receipt is durable in the log with
# its inclusion proof: what a client of the node gets, end to end. wrk shares the machine's
# cores with the node, so the figures are a floor for a dedicated server.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-"1 4 16 64"}
THREADS=${THREADS:-1}
PROFILE=${PROFILE:-exact}
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(iris_mlp mnist_cnn)

command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p vouch-cli -p vouch-bench
VOUCH=$PWD/target/release/vouch
BENCH=$PWD/target/release/vouch-bench

WORK=$(mktemp -d)
NODE_PID=""
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

export VOUCH_HOME=$WORK/home VOUCH_KEYSTORE_PASSWORD=bench VOUCH_LOG=warn
"$VOUCH" keygen >/dev/null
cat >"$WORK/node.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$WORK/data"
[inference]
profile = "$PROFILE"
max_queued = 256
EOF
"$VOUCH" node --config "$WORK/node.toml" >"$WORK/node.out" 2>"$WORK/node.err" &
NODE_PID=$!
for _ in $(seq 600); do
  URL=$(sed -n 's/^vouch node listening on //p' "$WORK/node.out")
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { echo "the node did not start:" >&2; cat "$WORK/node.err" >&2; exit 1; }

# wrk: one POST per request with a random nonce; at the end, print latency percentiles in µs.
cat >"$WORK/infer.lua" <<'EOF'
local body_head, body_tail
function init(args)
  body_head = '{"model":"' .. args[1] .. '","inputs":' .. io.open(args[2]):read("*a") .. ',"nonce":"0x'
  body_tail = '"}'
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
local hex = "0123456789abcdef"
function request()
  local n = {}
  for i = 1, 64 do
    local k = math.random(1, 16)
    n[i] = hex:sub(k, k)
  end
  return wrk.format("POST", "/v1/infer", {["content-type"] = "application/json"},
    body_head .. table.concat(n) .. body_tail)
end
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %.1f %d %d %d\n", summary.requests, errors,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max))
end
EOF

printf '%s, profile %s, %s s per level, wrk -t%s; %s\n' "$(date -u +%F)" "$PROFILE" "$DURATION" \
  "$THREADS" "$(nproc) cores shared by wrk and the node"
for m in "${MODELS[@]}"; do
  model=tests/fixtures/models/$m.onnx input=tests/fixtures/models/$m.input.json
  "$VOUCH" model push "$model" --name "bench/$m" --version 1.0.0 --node "$URL" >/dev/null
  engine=$("$BENCH" "$model" -i "$input" --profile "$PROFILE" --iters 2000 --rounds 4)
  read -r eng trace < <(python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["engine_alone"]["p50_us"],1), round(r["with_receipt"]["p50_us"],1))' <<<"$engine")
  echo
  echo "### $m: engine alone p50 ${eng} µs; engine + trace + signed receipt p50 ${trace} µs"
  echo
  echo "| connections | requests/s | p50 ms | p99 ms | max ms | errors (non-2xx, socket) |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for c in $CONNECTIONS; do
    out=$(wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --timeout 10s -s "$WORK/infer.lua" "$URL" \
      -- "bench/$m@1.0.0" "$PWD/$input")
    read -r _ reqs errs secs p50 p99 max < <(grep '^RESULT' <<<"$out")
    awk -v c="$c" -v r="$reqs" -v s="$secs" -v a="$p50" -v b="$p99" -v x="$max" -v e="$errs" \
      'BEGIN { printf "| %d | %.0f | %.2f | %.2f | %.2f | %d |\n", c, r / s, a / 1000, b / 1000, x / 1000, e }'
  done
done
