#!/usr/bin/env bash
# Makes the base image of the service's image without any image registry: a minimal Debian
# bookworm root file system (python3, pip, venv, CA certificates) made by mmdebstrap from
# this machine's Debian mirror, with this machine's extra CA certificates trusted (pip and
# uv behind a TLS-inspecting proxy need them), imported into podman's storage.
#
# Prints the image's name. The name carries a hash of this recipe and of the certificates:
# an image of that name already in storage is reused (a second run takes a second).
#
# Environment: SCORING_APT_SOURCES  the apt sources file mmdebstrap reads (default: the
#                                   machine's debian.sources or sources.list)
#              SCORING_CA_DIR       extra CA certificates (default /usr/local/share/ca-certificates)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

suite=bookworm
packages=python3,python3-venv,python3-pip,ca-certificates
ca_dir=${SCORING_CA_DIR:-/usr/local/share/ca-certificates}
sources=${SCORING_APT_SOURCES:-}
if [[ -z $sources ]]; then
    for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [[ -s $candidate ]]; then sources=$candidate; break; fi
    done
fi
[[ -n $sources ]] || { echo "base.sh: no apt sources found; set SCORING_APT_SOURCES" >&2; exit 2; }

# what the image is made of: this script, the sources, the certificates
recipe=$( { cat "$0" "$sources"
            if [[ -d $ca_dir ]]; then
                find "$ca_dir" -type f -name '*.crt' -print0 | sort -z | xargs -0r cat
            fi; } | sha256sum | cut -c1-12)
image=localhost/scoring-base:$suite-$recipe
if podman image exists "$image"; then
    echo "base.sh: reusing $image" >&2
    echo "$image"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hooks=()
if [[ -d $ca_dir ]] && compgen -G "$ca_dir/*.crt" >/dev/null; then
    hooks+=(--customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates\""
            --customize-hook="copy-in $ca_dir/. /usr/local/share/ca-certificates"
            --customize-hook='chroot "$1" update-ca-certificates')
fi
echo "base.sh: mmdebstrap $suite ($packages) from $sources" >&2
mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "${hooks[@]}" "$suite" "$work/rootfs.tar" "$sources" >&2

# PIP_BREAK_SYSTEM_PACKAGES: BentoML's Dockerfile pip-installs uv into the system Python;
# SSL_CERT_FILE, UV_SYSTEM_CERTS: pip and uv trust the system store (with the certificates above);
# UV_NO_CACHE, PIP_NO_CACHE_DIR: no download caches in the image's layers
podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV UV_SYSTEM_CERTS=1' \
    --change 'ENV UV_NO_CACHE=1' \
    --change 'ENV PIP_NO_CACHE_DIR=1' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$image" >/dev/null
echo "$image"
