#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's chromium for the browser
# tests, Java 17 and pyspark for the Spark test) and run the whole test suite. Extra
# arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: chromium is not installed and apt-get is missing; browser tests will fail" >&2
    fi
fi
if ! command -v java >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    else
        echo "warning: Java is not installed and apt-get is missing; the Spark test will fail" >&2
    fi
fi
ensure_requirements requirements-dev.txt
ensure_requirements requirements-spark.txt
exec .venv/bin/python -m pytest "$@"
