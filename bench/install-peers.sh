#!/usr/bin/env bash
# Installs the peers `doppel bench` runs beside Doppel: the Debian-packaged
# VictoriaMetrics and InfluxDB 1.x. Idempotent: a peer already on PATH is left
# alone. Exits non-zero with a clear message when apt cannot install them.
#
# Usage: bench/install-peers.sh        (as root, or with sudo available)
set -euo pipefail

need=()
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)

if [ ${#need[@]} -eq 0 ]; then
    echo "peers already installed:"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: apt-get not found; install ${need[*]} with your package manager" >&2
        echo "       (the benchmarks document the Debian-packaged versions)" >&2
        exit 1
    fi
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo_cmd=(sudo)
        else
            echo "error: installing ${need[*]} needs root (run as root or install sudo)" >&2
            exit 1
        fi
    fi
    echo "installing ${need[*]} with apt-get ..."
    # The packages start system services on install; the benchmark starts its
    # own instances on other ports in temporary directories, so the services
    # are stopped again below where systemd is present.
    if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
        echo "error: apt-get update failed; check network access and apt sources" >&2
        exit 1
    fi
    if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; then
        echo "error: apt-get install ${need[*]} failed; see the apt output above" >&2
        exit 1
    fi
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        "${sudo_cmd[@]}" systemctl stop victoria-metrics influxdb 2>/dev/null || true
    fi
    echo "installed:"
fi

# The Debian build of VictoriaMetrics prints an empty -version, so the
# package version is what identifies it.
package_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "version unknown"
}
if command -v victoria-metrics >/dev/null 2>&1; then
    echo "  $(command -v victoria-metrics): victoria-metrics $(package_version victoria-metrics)"
fi
if command -v influxd >/dev/null 2>&1; then
    echo "  $(command -v influxd): $(influxd version 2>&1 | head -n1) (package $(package_version influxdb))"
fi
if ! command -v victoria-metrics >/dev/null 2>&1 || ! command -v influxd >/dev/null 2>&1; then
    echo "error: a peer is still missing from PATH after installation" >&2
    exit 1
fi
