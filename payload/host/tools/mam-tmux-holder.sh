#!/bin/sh
# shellcheck shell=dash
#
# mam-tmux-holder.sh - own the named tmux server the agent sessions live in, in the foreground,
# so a service manager (systemd, launchd) can keep it alive and stop it.
#
# usage: mam-tmux-holder.sh [-L SOCKET]            hold the server until it exits or we get SIGTERM
#        mam-tmux-holder.sh [-L SOCKET] -w SECONDS wait until the server answers (ExecStartPost)
#        mam-tmux-holder.sh [-L SOCKET] -k         kill exactly that server (ExecStop)
#
# The server keeps running with no sessions (exit-empty off). When MAM_HOLDER_SESSION is set
# (the roster's tmux.holder_session) a session of that name is kept in it too, so `tmux -L SOCKET
# ls` shows whose server it is. SIGTERM, SIGINT and SIGHUP kill exactly this server (tmux -L
# SOCKET kill-server) and nothing else. When the server dies on its own the holder exits 1, so
# the service manager restarts it.
#
# exit: 0 stopped by signal, killed or ready, 1 server gone or not ready in time, 64 usage,
#       69 no tmux

set -u

usage() {
    cat >&2 <<'EOF'
usage: mam-tmux-holder.sh [-L SOCKET] [-w SECONDS | -k]
  -L SOCKET   tmux socket name (default: $MAM_TMUX_SOCKET; one is required)
  -w SECONDS  do not hold: wait up to SECONDS for the server to answer, then exit
  -k          do not hold: kill that server (and only it), then exit
EOF
}

load_lib() {
    _dir=$(dirname -- "$0")
    for MAM_LIB in "$_dir/lib.sh" "$_dir/../lib.sh"; do
        if [ -f "$MAM_LIB" ]; then
            # shellcheck source-path=SCRIPTDIR source-path=SCRIPTDIR/.. source=lib.sh
            . "$MAM_LIB"
            return 0
        fi
    done
    printf 'mam-tmux-holder.sh: error: lib.sh not found beside %s; reinstall with mam-install\n' \
        "$0" >&2
    return 69
}

server_pid() {
    _pid=$(mam_tmux display-message -p '#{pid}' 2>/dev/null) || return 1
    case $_pid in
        "" | *[!0123456789]*) return 1 ;;
    esac
    printf '%s\n' "$_pid"
}

wait_ready() {
    _left=$(($1 * 10))
    while [ "$_left" -gt 0 ]; do
        server_pid >/dev/null && return 0
        sleep 0.1 2>/dev/null || { sleep 1; _left=$((_left - 9)); }
        _left=$((_left - 1))
    done
    mam_err "tmux server $MAM_TMUX_SOCKET did not answer within $1 s; see the holder's log"
    return 1
}

stop_server() {
    mam_tmux kill-server 2>/dev/null
    exit 0
}

hold() {
    # One tmux invocation, so exit-empty is off before the server could exit for lack of sessions.
    if ! mam_tmux start-server \; set-option -g exit-empty off; then
        mam_err "cannot start tmux server $MAM_TMUX_SOCKET; run \`${MAM_TMUX:-tmux} -L $MAM_TMUX_SOCKET start-server\` to see why"
        return 1
    fi
    pid=$(server_pid) || {
        mam_err "tmux server $MAM_TMUX_SOCKET started but does not answer"
        return 1
    }
    trap stop_server TERM INT HUP
    if [ -n "${MAM_HOLDER_SESSION:-}" ] \
        && ! mam_tmux has-session -t "=$MAM_HOLDER_SESSION" 2>/dev/null; then
        # A session that does nothing, for good: it only names the server's owner.
        # shellcheck disable=SC2016
        mam_tmux new-session -d -s "$MAM_HOLDER_SESSION" -- /bin/sh -c \
            'trap "" HUP INT; while :; do sleep 3600; done' \
            || mam_warn "could not create the holder session $MAM_HOLDER_SESSION; holding the server without it"
    fi
    mam_say "holding tmux server $MAM_TMUX_SOCKET (pid $pid)"
    while kill -0 "$pid" 2>/dev/null; do
        sleep "${MAM_HOLDER_POLL_SECONDS:-5}" &
        wait $!
    done
    mam_err "tmux server $MAM_TMUX_SOCKET (pid $pid) exited"
    return 1
}

main() {
    load_lib || return $?
    socket="" ready_wait="" kill_only=""
    OPTIND=1
    while getopts ':L:w:kh' opt; do
        case $opt in
            L) socket=$OPTARG ;;
            w) ready_wait=$OPTARG ;;
            k) kill_only=1 ;;
            h) usage; return 0 ;;
            :) mam_err "-$OPTARG needs a value"; usage; return 64 ;;
            *) mam_err "unknown option -$OPTARG"; usage; return 64 ;;
        esac
    done
    shift $((OPTIND - 1))
    [ -z "$socket" ] || MAM_TMUX_SOCKET=$socket
    if ! mam_valid_socket_name "${MAM_TMUX_SOCKET:-}"; then
        mam_err "set MAM_TMUX_SOCKET or pass -L SOCKET (letters, digits, ., _ and -): the holder never takes over your default tmux server"
        return 64
    fi
    if [ -n "${MAM_HOLDER_SESSION:-}" ] && ! mam_valid_name "$MAM_HOLDER_SESSION"; then
        mam_err "MAM_HOLDER_SESSION '$MAM_HOLDER_SESSION' must be 1-64 letters, digits, _ or -"
        return 64
    fi
    mam_need_tmux || return 69
    if [ -n "$kill_only" ]; then
        mam_tmux kill-server 2>/dev/null && mam_say "stopped tmux server $MAM_TMUX_SOCKET"
        return 0
    fi
    if [ -n "$ready_wait" ]; then
        case $ready_wait in
            *[!0123456789]*) mam_err "-w takes whole seconds, not $ready_wait"; return 64 ;;
        esac
        wait_ready "$ready_wait"
        return $?
    fi
    hold
}

main "$@" || exit $?
