#!/usr/bin/env bash
# Start `switchyard serve` with the local llama.cpp fleet (examples/local.yaml) and, once it is
# ready, print copy-paste examples. Ctrl-C (or SIGTERM) stops the gateway, which stops its
# llama.cpp children. Used by `make run`; environment: VENV, HOST, PORT, CONFIG.
set -euo pipefail
VENV="${VENV:-.venv}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8080}"
CONFIG="${CONFIG:-examples/local.yaml}"
URL="http://${HOST}:${PORT}"

answers() {  # HTTP 2xx from $1 (no curl needed)
  "${VENV}/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$1" >/dev/null 2>&1
}

if answers "${URL}/healthz"; then
  echo "something already answers on ${URL}; stop it or use: make run PORT=8090" >&2
  exit 1
fi

started=$(date +%s)
gateway=$$  # after `exec` below, this shell's pid is the gateway's: signals reach it directly

# In the background: wait until the gateway is ready, then print the examples.
(
  until answers "${URL}/readyz"; do
    kill -0 "${gateway}" 2>/dev/null || exit 0
    sleep 0.5
  done
  cat <<MSG

switchyard is ready on ${URL} after $(( $(date +%s) - started ))s  (Ctrl-C stops it)

# curl (routed: this one goes to the code model)
curl -s ${URL}/v1/chat/completions -H 'content-type: application/json' \\
  -d '{"model": "auto", "max_tokens": 64,
       "messages": [{"role": "user", "content": "Write a Python function that adds two numbers."}]}'

# openai SDK (Python)
${VENV}/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="${URL}/v1", api_key="unused")
reply = client.chat.completions.with_raw_response.create(
    model="auto", max_tokens=48, messages=[{"role": "user", "content": "What is the capital of Japan?"}])
print(reply.headers["x-switchyard-model"], "->", reply.parse().choices[0].message.content)
PY

# a mixed set of prompts with routing, latency and cost:
${VENV}/bin/switchyard demo --url ${URL}

MSG
) &

echo "starting switchyard on ${URL} (starting both llama.cpp servers; first start ~10-60 s)..."
exec "${VENV}/bin/switchyard" serve --config "${CONFIG}" --host "${HOST}" --port "${PORT}"
