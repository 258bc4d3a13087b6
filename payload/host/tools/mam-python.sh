#!/bin/sh
# shellcheck shell=dash
#
# mam-python.sh - run one of mam's Python tools with the interpreter the settings name.
#
# usage: mam-python.sh TOOL.py [ARGS...]
#
# The interpreter is MAM_PYTHON (from the environment or the settings file lib.sh loads:
# $MAM_ENV_FILE, else the workspace .env), else python3 on PATH. Units run tools through this
# so that they never hard-code the interpreter that happened to run the installer.
#
# exit: the tool's own status; 64 usage, 69 no usable interpreter or lib.sh missing

set -u

load_lib() {
    _dir=$(dirname -- "$0")
    for MAM_LIB in "$_dir/lib.sh" "$_dir/../lib.sh"; do
        if [ -f "$MAM_LIB" ]; then
            # shellcheck source-path=SCRIPTDIR source-path=SCRIPTDIR/.. source=lib.sh
            . "$MAM_LIB"
            return 0
        fi
    done
    printf 'mam-python.sh: error: lib.sh not found beside %s; reinstall with mam-install\n' "$0" >&2
    return 69
}

main() {
    load_lib || return $?
    if [ $# -lt 1 ]; then
        mam_err "usage: mam-python.sh TOOL.py [ARGS...]"
        return 64
    fi
    mam_load_env
    python=${MAM_PYTHON:-python3}
    case $python in
        */*) [ -x "$python" ] || python="" ;;
        *) python=$(command -v "$python" 2>/dev/null) || python="" ;;
    esac
    if [ -z "$python" ]; then
        mam_err "no Python to run $1: MAM_PYTHON=${MAM_PYTHON:-} is not an executable and python3 is not on PATH ($PATH); set MAM_PYTHON in ${MAM_ENV_FILE:-your settings file} to an absolute path"
        return 69
    fi
    exec "$python" "$@"
}

main "$@" || exit $?
