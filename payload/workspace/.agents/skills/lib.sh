#!/bin/sh
# shellcheck shell=dash
#
# lib.sh - shared helpers for the mam tools (multi-agent-mux).
#
# Source it from bash, zsh, ksh or any POSIX sh:   . /path/to/lib.sh
# or run one helper directly:                      sh lib.sh mam_session_name /some/dir
#
# Public functions (all leave the caller's shell options alone):
#   mam_script_dir              absolute directory holding this lib.sh
#   mam_workspace_root [DIR]    nearest ancestor of DIR (default: $PWD) holding .mam, .git or .env
#   mam_load_env                load MAM_* settings from $MAM_ENV_FILE or <root>/.env, once;
#                               <root> is found from $MAM_WORKSPACE, else from the workspace this
#                               lib.sh is installed in, else from $PWD
#   mam_load_env_file FILE [PREFIX]
#                               parse KEY=VALUE lines of FILE into the environment without
#                               running anything; variables already set win; the names the
#                               file sets are left in $mam_env_keys
#   mam_is_network_fs PATH      exit 0 network filesystem, 1 local, 2 unknown
#   mam_session_name DIR        tmux-safe session name: <slug>-<8 hex of the absolute path>
#                               (CRC-32 by cksum, else SHA-256; exit 69 with neither)
#   mam_valid_name NAME         exit 0 if NAME is a safe session or job name
#   mam_valid_socket_name NAME  exit 0 if NAME is a safe tmux -L socket name
#   mam_tmux ARGS...            run tmux ($MAM_TMUX) on the $MAM_TMUX_SOCKET server when set
#   mam_need_tmux               exit 69 with the fix when tmux is missing
#   mam_b64encode / mam_b64decode   stdin to stdout, one line, portable
#   mam_say / mam_warn / mam_err MESSAGE   one line to stderr;  mam_have CMD   is CMD on PATH
#
# Executed, it runs one of mam_script_dir, mam_workspace_root, mam_is_network_fs,
# mam_session_name or mam_valid_name and exits with its status.
#
# Every variable here is prefixed _mam_, mam_ or MAM_: POSIX sh has no `local`, and zsh reserves
# names such as `path` and `status`.

# Where this file lives, captured while it is being sourced: only then can each shell tell.
_mam_lib_path=""
if [ -n "${BASH_VERSION:-}" ]; then
    eval '_mam_lib_path=${BASH_SOURCE[0]:-}'
elif [ -n "${ZSH_VERSION:-}" ]; then
    eval '_mam_lib_path=${(%):-%x}'
else
    case ${KSH_VERSION:-} in
        *93*) eval '_mam_lib_path=${.sh.file:-}' ;;
    esac
fi
if [ -z "$_mam_lib_path" ]; then
    if [ -n "${MAM_LIB:-}" ]; then
        _mam_lib_path=$MAM_LIB
    else
        case ${0##*/} in
            lib.sh) _mam_lib_path=$0 ;;
        esac
    fi
fi

_mam_cr=$(printf '\r')
# The blanks a settings line may hold, spelled out: posh and other pdksh shells have no
# [$_mam_ws] class, and with one silently matching nothing every line would be read as empty.
_mam_ws=$(printf ' \t\v\f\r')

mam_say() {
    printf 'mam: %s\n' "$*" >&2
}

mam_err() {
    printf 'mam: error: %s\n' "$*" >&2
}

mam_warn() {
    printf 'mam: warning: %s\n' "$*" >&2
}

mam_have() {
    command -v "$1" >/dev/null 2>&1
}

# Safe for tmux targets, file names and MQTT topic levels: no ':', '.', '/', '+', '#', spaces.
mam_valid_name() {
    case ${1:-} in
        "" | [!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789]*) return 1 ;;
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-]*) return 1 ;;
    esac
    [ "${#1}" -le 64 ]
}

# A tmux -L socket name: as above, and '.' is fine too.
mam_valid_socket_name() {
    case ${1:-} in
        "" | -*) return 1 ;;
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-]*) return 1 ;;
    esac
    [ "${#1}" -le 64 ]
}

mam_script_dir() {
    if [ -z "$_mam_lib_path" ]; then
        mam_err "this shell cannot tell where lib.sh lives; set MAM_LIB=/path/to/lib.sh before sourcing it"
        return 1
    fi
    (CDPATH='' cd -P -- "$(dirname -- "$_mam_lib_path")" 2>/dev/null && pwd -P) || {
        mam_err "cannot enter the directory of $_mam_lib_path; check it still exists"
        return 1
    }
}

# Physical absolute path of the nearest existing directory at or above $1.
_mam_existing_dir() {
    _mam_p=$1
    case $_mam_p in
        /*) ;;
        *) _mam_p=$PWD/$_mam_p ;;
    esac
    while [ ! -d "$_mam_p" ]; do
        _mam_p=${_mam_p%/*}
        [ -n "$_mam_p" ] || _mam_p=/
    done
    (CDPATH='' cd -P -- "$_mam_p" 2>/dev/null && pwd -P)
}

mam_workspace_root() {
    _mam_start=${1:-$PWD}
    _mam_d=$(_mam_existing_dir "$_mam_start") || {
        mam_err "cannot enter $_mam_start to look for the workspace; check its permissions"
        return 1
    }
    while :; do
        if [ -e "$_mam_d/.mam" ] || [ -e "$_mam_d/.git" ] || [ -e "$_mam_d/.env" ]; then
            printf '%s\n' "$_mam_d"
            return 0
        fi
        [ "$_mam_d" != / ] || break
        _mam_d=${_mam_d%/*}
        [ -n "$_mam_d" ] || _mam_d=/
    done
    mam_err "no .mam, .git or .env in $_mam_start or any parent; run from inside a workspace or set MAM_WORKSPACE"
    return 1
}

# Names a settings file must never set: they change how this very shell parses and runs.
_mam_reserved_name() {
    case $1 in
        IFS | PS1 | PS2 | PS4 | ENV | BASH_ENV | CDPATH | OPTIND | OPTARG | SHELLOPTS | BASHOPTS \
            | LD_* | DYLD_* | _mam_*) return 0 ;;
    esac
    return 1
}

# Parse one line; return 1 if it is not a blank, a comment or KEY=VALUE.
# The rules match mqtt_common.parse_env_text so shell and Python tools agree.
# $_mam_ws stays unquoted inside [...]: its characters are meant as the set, and posh does not
# accept quotes inside a bracket expression.
# shellcheck disable=SC2295
_mam_env_line() {
    _mam_l=${1%"$_mam_cr"}
    _mam_l=${_mam_l#"${_mam_l%%[!$_mam_ws]*}"}
    case $_mam_l in
        "" | "#"*) return 0 ;;
        "export "*) _mam_l=${_mam_l#export }
                    _mam_l=${_mam_l#"${_mam_l%%[!$_mam_ws]*}"} ;;
    esac
    case $_mam_l in
        *=*) ;;
        *) return 1 ;;
    esac
    _mam_k=${_mam_l%%=*}
    _mam_k=${_mam_k%"${_mam_k##*[!$_mam_ws]}"}
    _mam_v=${_mam_l#*=}
    _mam_v=${_mam_v#"${_mam_v%%[!$_mam_ws]*}"}
    case $_mam_k in
        "" | [0123456789]*) return 1 ;;
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]*) return 1 ;;
    esac
    case $_mam_v in
        \"*)
            _mam_v=${_mam_v%"${_mam_v##*[!$_mam_ws]}"}
            case $_mam_v in
                \"*\") [ "${#_mam_v}" -ge 2 ] || return 1 ;;
                *) return 1 ;;
            esac
            _mam_v=${_mam_v#\"}
            _mam_v=${_mam_v%\"}
            ;;
        \'*)
            _mam_v=${_mam_v%"${_mam_v##*[!$_mam_ws]}"}
            case $_mam_v in
                \'*\') [ "${#_mam_v}" -ge 2 ] || return 1 ;;
                *) return 1 ;;
            esac
            _mam_v=${_mam_v#\'}
            _mam_v=${_mam_v%\'}
            ;;
        *)
            _mam_v=${_mam_v%%[$_mam_ws]\#*}
            _mam_v=${_mam_v%"${_mam_v##*[!$_mam_ws]}"}
            ;;
    esac
    case $_mam_k in
        "$_mam_prefix"*) ;;
        *) return 0 ;;
    esac
    if _mam_reserved_name "$_mam_k"; then
        mam_warn "$_mam_file:$_mam_n: $_mam_k is not settable from a settings file; ignored"
        return 0
    fi
    mam_env_keys="$mam_env_keys $_mam_k"
    eval "_mam_isset=\${$_mam_k+x}"
    [ -z "$_mam_isset" ] || return 0
    # The key is checked to be a plain name above; the value is assigned, never expanded.
    eval "$_mam_k=\$_mam_v"
    eval "export $_mam_k"
    return 0
}

mam_load_env_file() {
    _mam_file=$1
    _mam_prefix=${2:-}
    if [ ! -r "$_mam_file" ]; then
        mam_err "cannot read settings file $_mam_file; check that it exists and is readable"
        return 1
    fi
    _mam_n=0
    mam_env_keys=""
    while IFS= read -r _mam_line || [ -n "$_mam_line" ]; do
        _mam_n=$((_mam_n + 1))
        _mam_env_line "$_mam_line" \
            || mam_warn "$_mam_file:$_mam_n: ignored a line that is not KEY=VALUE"
    done <"$_mam_file"
    return 0
}

# Where to look for .env: the workspace this lib.sh is installed in, else the current directory.
_mam_default_env_start() {
    if [ -n "${MAM_WORKSPACE:-}" ]; then
        printf '%s\n' "$MAM_WORKSPACE"
        return 0
    fi
    _mam_sd=$(mam_script_dir 2>/dev/null) || _mam_sd=""
    case $_mam_sd in
        */.agents/skills) printf '%s\n' "${_mam_sd%/.agents/skills}" ;;
        *) printf '%s\n' "$PWD" ;;
    esac
}

mam_load_env() {
    [ -z "${_mam_env_loaded:-}" ] || return 0
    if [ -n "${MAM_ENV_FILE:-}" ]; then
        _mam_env_loaded=$MAM_ENV_FILE
    else
        _mam_root=$(mam_workspace_root "$(_mam_default_env_start)" 2>/dev/null) || {
            _mam_env_loaded=none
            return 0
        }
        _mam_env_loaded=$_mam_root/.env
    fi
    [ -f "$_mam_env_loaded" ] || return 0
    mam_load_env_file "$_mam_env_loaded" MAM_
}

# Filesystem type and mount flags of the mount holding directory $1, from a mount table.
_mam_fstype_from_mountinfo() {
    mam_awk_path=$1 awk '
        function unescape(s,   out, c) {
            out = ""
            while (match(s, /\\[0-7][0-7][0-7]/)) {
                c = substr(s, RSTART + 1, 1) * 64 + substr(s, RSTART + 2, 1) * 8 + substr(s, RSTART + 3, 1)
                out = out substr(s, 1, RSTART - 1) sprintf("%c", c)
                s = substr(s, RSTART + 4)
            }
            return out s
        }
        BEGIN { p = ENVIRON["mam_awk_path"]; best = -1 }
        {
            for (i = 7; i <= NF && $i != "-"; i++) ;
            if (i >= NF) next
            mp = unescape($5)
            if (mp == "/" || p == mp || index(p, mp "/") == 1) {
                if (length(mp) >= best) { best = length(mp); fs = $(i + 1) }
            }
        }
        END { if (best >= 0) print fs, "linux" }
    ' "$2"
}

_mam_fstype_from_mount_output() {
    mam_awk_path=$1 awk '
        BEGIN { p = ENVIRON["mam_awk_path"]; best = -1 }
        {
            i = index($0, " on ")
            if (!i) next
            rest = substr($0, i + 4)
            if (match(rest, / type [^ ]+ \(/)) {
                mp = substr(rest, 1, RSTART - 1)
                t = substr(rest, RSTART + 6)
                sub(/ .*/, "", t)
                flag = "linux"
            } else {
                j = 0
                for (k = length(rest); k > 1; k--) if (substr(rest, k - 1, 2) == " (") { j = k - 1; break }
                if (!j) next
                mp = substr(rest, 1, j - 1)
                inner = substr(rest, j + 2)
                sub(/\)[ \t]*$/, "", inner)
                n = split(inner, a, /, */)
                t = a[1]
                flag = "nonlocal"
                for (k = 2; k <= n; k++) if (a[k] == "local") flag = "local"
            }
            if (mp == "/" || p == mp || index(p, mp "/") == 1) {
                if (length(mp) >= best) { best = length(mp); fs = t; fl = flag }
            }
        }
        END { if (best >= 0) print fs, fl }
    ' "$2"
}

# The network filesystem types, the same lists as the installer's _netfs.py (a test holds
# them equal): kernel types, and the FUSE subtypes of fuse.X (FreeBSD: fusefs.X).
_mam_network_fs_types="9p afpfs afs beegfs ceph cifs coda davfs ftp gfs2 glusterfs gpfs lustre ncp ncpfs nfs nfs4 ocfs2 openafs orangefs pvfs2 smb smb2 smb3 smbfs sshfs webdav"
_mam_network_fuse_subtypes="ceph ceph-fuse davfs2 gcsfuse glusterfs goofys juicefs rclone s3fs sshfs"

mam_is_network_fs() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        mam_err "usage: mam_is_network_fs PATH"
        return 2
    fi
    _mam_dir=$(_mam_existing_dir "$1") || return 2
    _mam_mountinfo=${MAM_MOUNTINFO:-/proc/self/mountinfo}
    if [ -n "${MAM_MOUNT_TABLE:-}" ]; then
        _mam_fs=$(_mam_fstype_from_mount_output "$_mam_dir" "$MAM_MOUNT_TABLE")
    elif [ -r "$_mam_mountinfo" ]; then
        _mam_fs=$(_mam_fstype_from_mountinfo "$_mam_dir" "$_mam_mountinfo")
    elif mam_have mount; then
        # BSD and macOS: `mount` lists each mount's type and whether it is local (MNT_LOCAL).
        _mam_fs=$(mount 2>/dev/null | _mam_fstype_from_mount_output "$_mam_dir" -)
    else
        return 2
    fi
    _mam_flag=${_mam_fs#* }
    _mam_fs=$(printf '%s' "${_mam_fs%% *}" | tr '[:upper:]' '[:lower:]')
    [ -n "$_mam_fs" ] || return 2
    case " $_mam_network_fs_types " in
        *" $_mam_fs "*) return 0 ;;
    esac
    case $_mam_fs in
        fuse.* | fusefs.*)
            case " $_mam_network_fuse_subtypes " in
                *" ${_mam_fs#*.} "*) return 0 ;;
            esac
            ;;
    esac
    case $_mam_flag in
        local) return 1 ;;
        nonlocal) return 2 ;;
    esac
    case $_mam_fs in
        fuseblk | fuse.lxcfs | fuse.snapfuse | fuse.squashfuse | fuse.portal) return 1 ;;
        fuse | fuse.* | autofs) return 2 ;;
    esac
    return 1
}

mam_session_name() (
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        mam_err "usage: mam_session_name DIR"
        exit 64
    fi
    case $1 in
        /*) d=$1 ;;
        *) d=$PWD/$1 ;;
    esac
    if [ -d "$d" ]; then
        d=$(CDPATH='' cd -P -- "$d" && pwd -P) || exit 1
    fi
    base=${d%/}
    base=${base##*/}
    slug=$(printf '%s' "$base" | LC_ALL=C tr -c 'A-Za-z0-9_-' '-' | LC_ALL=C tr -s '-' | cut -c1-24)
    while :; do
        case $slug in
            -*) slug=${slug#-} ;;
            *-) slug=${slug%-} ;;
            *) break ;;
        esac
    done
    [ -n "$slug" ] || slug=root
    sum=$(printf '%s' "$d" | _mam_path_sum) || exit 69
    printf '%s-%s\n' "$slug" "$sum"
)

# 8 hex digits summing stdin: POSIX cksum (CRC-32) where there is one, else the first 8 hex of
# a SHA-256 (BusyBox may be built without cksum). A machine keeps to one tool, so its names are
# stable; never the same sum for every path, which would make /a/src and /b/src collide.
_mam_path_sum() {
    if mam_have cksum; then
        _mam_sum=$(cksum) || _mam_sum=""
        _mam_sum=${_mam_sum%% *}
        case $_mam_sum in
            "" | *[!0123456789]*) ;;
            *) printf '%08x\n' "$_mam_sum"; return 0 ;;
        esac
    elif mam_have sha256sum; then
        _mam_sum=$(sha256sum)
    elif mam_have shasum; then
        _mam_sum=$(shasum -a 256)
    elif mam_have openssl; then
        _mam_sum=$(openssl dgst -sha256 -r)
    else
        _mam_sum=""
    fi
    _mam_sum=$(printf '%s' "$_mam_sum" | cut -c1-8)
    case $_mam_sum in
        ???????? ) case $_mam_sum in *[!0123456789abcdef]*) ;; *) printf '%s\n' "$_mam_sum"; return 0 ;; esac ;;
    esac
    mam_err "no working checksum tool (cksum, sha256sum, shasum or openssl) to name sessions with; install one (coreutils or busybox with cksum)"
    return 1
}

mam_tmux() {
    if [ -n "${MAM_TMUX_SOCKET:-}" ]; then
        "${MAM_TMUX:-tmux}" -L "$MAM_TMUX_SOCKET" "$@"
    else
        "${MAM_TMUX:-tmux}" "$@"
    fi
}

mam_need_tmux() {
    if ! mam_have "${MAM_TMUX:-tmux}"; then
        mam_err "tmux not found (${MAM_TMUX:-tmux}); install it (apt-get install tmux, brew install tmux) or set MAM_TMUX"
        return 69
    fi
}

mam_b64encode() {
    if mam_have base64; then
        base64 | tr -d '\r\n'
    else
        openssl base64 -A
    fi
}

mam_b64decode() {
    # GNU and BusyBox spell it -d, macOS before 13 only -D; openssl is the last resort.
    if printf 'YQ==' | base64 -d >/dev/null 2>&1; then
        base64 -d
    elif printf 'YQ==' | base64 -D >/dev/null 2>&1; then
        base64 -D
    else
        openssl base64 -d -A
    fi
}

_mam_lib_usage() {
    cat >&2 <<'EOF'
usage: lib.sh FUNCTION [ARGS...]
  mam_script_dir | mam_workspace_root [DIR] | mam_is_network_fs PATH | mam_session_name DIR
EOF
}

_mam_lib_main() {
    set -u
    if [ $# -lt 1 ]; then
        _mam_lib_usage
        return 64
    fi
    case $1 in
        -h | --help) _mam_lib_usage; return 0 ;;
        mam_script_dir | mam_workspace_root | mam_is_network_fs | mam_session_name \
            | mam_valid_name | mam_valid_socket_name) ;;
        *) mam_err "lib.sh has no command $1"; _mam_lib_usage; return 64 ;;
    esac
    "$@"
}

# Run as a command only when executed. Decided at top level: inside a function zsh sets $0 to
# the function's name, and while sourcing it sets $0 to the sourced file (ZSH_EVAL_CONTEXT tells).
_mam_run_as_command=""
case ${ZSH_EVAL_CONTEXT:-toplevel} in
    *file*) ;;
    *)
        case ${0##*/} in
            lib.sh) _mam_run_as_command=1 ;;
        esac
        ;;
esac
if [ -n "$_mam_run_as_command" ]; then
    _mam_lib_main "$@"
    exit $?
fi
