#!/usr/bin/env bash
# The Debian packages the tests use for real: redis-cli / redis-benchmark (compatibility),
# redis-server (the benchmark's reference), chromium (the notebook UI test), mosquitto (a
# real MQTT broker for the review-room bridge; the tests start their own, by PID).
set -euo pipefail
need=()
command -v redis-cli >/dev/null       || need+=(redis-tools)
command -v redis-server >/dev/null    || need+=(redis-server)
command -v chromium >/dev/null        || need+=(chromium)
[ -x /usr/sbin/mosquitto ]            || need+=(mosquitto)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "Missing system packages: ${need[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
