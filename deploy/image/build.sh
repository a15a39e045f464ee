#!/usr/bin/env bash
# Builds the service's OCI image with podman/buildah, without any image registry:
#   1. the base image (base.sh: mmdebstrap + podman import; reused when it exists),
#   2. the bentofile for the image (bentofile.py: base image, SCORING_BUNDLE, pinned versions),
#   3. `bentoml build` of the bento with the bundle SCORING_BUNDLE names,
#   4. `bentoml containerize --backend buildah` (BentoML's own Dockerfile and build).
# Logs go to stderr, the time of each step, the image's size and the `podman run` command
# that runs it here to stderr and to report.txt in SCORING_IMAGE_OUT (default build/image,
# beside the generated bentofile, with image.txt naming the image for `make run-image`);
# the last line on stdout is the image's name.
#
# Environment: SCORING_BUNDLE  bundle to pack (default breast_cancer_svc:latest)
#              SCORING_IMAGE   image name (default localhost/scoring/explained_model:<bento version>)
#              SCORING_IMAGE_BACKEND  buildah (default) or podman
#              SCORING_IMAGE_LAYERS   0 (default): no layer cache, no image left behind but
#                              the one built; 1: keep buildah's ~30 intermediate images as
#                              a cache for the next build (14 GB in `podman system df`)
#              VENV_BIN        the project's virtualenv bin directory (default .venv/bin)
#              BENTOML_HOME    BentoML's store, as for bentoml itself
#              UV_DEFAULT_INDEX / PIP_INDEX_URL, http(s)_proxy  the package index and proxy
#                              uv in the build uses (passed at build time, not kept in the image)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${VENV_BIN:-$root/.venv/bin}
backend=${SCORING_IMAGE_BACKEND:-buildah}
out=${SCORING_IMAGE_OUT:-$root/build/image}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
export SCORING_BUNDLE=${SCORING_BUNDLE:-breast_cancer_svc:latest}
export BENTOML_DO_NOT_TRACK=True
mkdir -p "$out"
: >"$out/report.txt"

for tool in podman "$backend" mmdebstrap; do
    command -v "$tool" >/dev/null || {
        echo "build.sh: $tool not found; on Debian: apt-get install podman buildah mmdebstrap runc" >&2
        exit 2
    }
done

report() { echo "$*" | tee -a "$out/report.txt" >&2; }
step_start=0
start() { step_start=${EPOCHREALTIME/./}; echo "build.sh: $1" >&2; }
took() {
    local ms=$(( (${EPOCHREALTIME/./} - step_start) / 1000 ))
    report "$(printf '%-12s %4d.%d s' "$1" $((ms / 1000)) $((ms % 1000 / 100)))"
}

# the index uv uses in the build: the one pip uses here, unless it is a local directory
index=${UV_DEFAULT_INDEX:-${UV_INDEX_URL:-${PIP_INDEX_URL:-$("$bin/pip" config get global.index-url 2>/dev/null || true)}}}
builder_opts=()
if [[ ${SCORING_IMAGE_LAYERS:-0} != 0 ]]; then
    builder_opts+=(--opt layers)
fi
if [[ -n $index && $index != file:* ]]; then
    builder_opts+=(--opt "build-arg=UV_DEFAULT_INDEX=$index")
fi

start "base image"
base=$("$here/base.sh")
took base

start "bentofile for $SCORING_BUNDLE"
"$bin/python" "$here/bentofile.py" --base-image "$base" --output "$out/bentofile.yaml" >/dev/null

start "bentoml build"
bento=$(cd "$root" && "$bin/bentoml" build -f "$out/bentofile.yaml" --output tag . | tail -n 1)
bento=${bento#__tag__:}
took bento
image=${SCORING_IMAGE:-localhost/scoring/explained_model:${bento#*:}}

# BentoML renders the Dockerfile template from a temporary copy of the bento and refuses
# templates outside the working directory: keep that copy under it
start "bentoml containerize $bento --backend $backend"
mkdir -p "$out/tmp"
# BentoML's closing hint (a `podman run` without the CONTAINERS_CONF it needs here) is
# left out: the command that works is reported below
(cd "$out" && TMPDIR="$out/tmp" "$bin/bentoml" containerize "$bento" --backend "$backend" \
    --opt squash "${builder_opts[@]}" -t "$image" | sed '/To run your newly built Bento/,+1d' >&2)
took containerize

size=$(podman image inspect --format '{{.Size}}' "$image")
report "$(printf 'image        %s %d MB (bento %s, base %s)' "$image" $((size / 1000000)) "$bento" "$base")"
report "run it:      CONTAINERS_CONF=$CONTAINERS_CONF podman run --rm -p 127.0.0.1:3000:3000 $image"
echo "$image" >"$out/image.txt"
echo "$image"
