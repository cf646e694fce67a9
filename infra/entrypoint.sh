#!/bin/sh
# Container entrypoint: `docker run IMAGE compress IN OUT` runs `s2c compress IN OUT`; a command that
# exists (bash, ray, python) runs as given. The Ray cluster launcher starts containers as
# `docker run ... IMAGE bash`, and KubeRay sets the container command itself, so both keep working.
set -e
if [ "$#" -eq 0 ]; then
    set -- --help
fi
case "$1" in
    -*) exec s2c "$@" ;;
esac
if command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
exec s2c "$@"
