#!/bin/sh
# shellcheck shell=dash
#
# start-agent-session.sh - start one agent in its own detached tmux session, once.
#
# usage: start-agent-session.sh [-w] [-r] AGENT
#        start-agent-session.sh -k AGENT
#
# Reads MAM_TMUX_SOCKET (tmux -L name), MAM_AGENT_WORKDIR (default: the current directory) and
# MAM_AGENT_COMMAND, or MAM_AGENT_RUNTIME (claude, codex, gemini, aider, opencode) when no
# command is given; with neither, the session runs a login shell. When MAM_CONFIG_DIR is set,
# $MAM_CONFIG_DIR/agents/AGENT.env is read (KEY=VALUE lines, never run as code).
#
# The agent's command gets MAM_AGENT_NAME, every MAM_* variable, the names set in its env file
# and those listed in MAM_AGENT_PASS_ENV. They reach it through a private 0600 file that the
# pane reads and deletes, because a tmux server started earlier (by the holder unit) does not
# pass our environment on, and command-line arguments are visible to every user in `ps`.
#
# -w, --wait     stay in the foreground until the session ends, then exit 1 (for systemd and
#                launchd, which restart it); SIGTERM, SIGINT or SIGHUP kill the session, exit 0.
# -r, --replace  end a running session of that exact name first, then start a fresh one.
# -k, --stop     end the session (exactly =AGENT) on the socket its settings name, and exit 0:
#                the units' ExecStop, so the socket comes from the env file, not the unit.
#
# exit: 0 started or already running, 1 tmux failed or (-w) the session ended,
#       64 usage (no or bad AGENT name), 66 workdir missing, 69 tmux missing, 78 unknown runtime

set -u

usage() {
    cat >&2 <<'EOF'
usage: start-agent-session.sh [-w] [-r] AGENT  |  start-agent-session.sh -k AGENT
  AGENT          session name: letters, digits, _ and -
  -w, --wait     wait in the foreground until the session ends (for service managers)
  -r, --replace  end a running session of that name first, then start a fresh one
  -k, --stop     end the session and exit (socket and settings as for a start)
environment: MAM_TMUX_SOCKET, MAM_AGENT_WORKDIR, MAM_AGENT_COMMAND or MAM_AGENT_RUNTIME,
             MAM_AGENT_PASS_ENV, MAM_CONFIG_DIR
exit: 0 started or already running, 1 tmux failed, 64 usage, 66 no workdir, 69 no tmux,
      78 unknown runtime
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
    printf 'start-agent-session.sh: error: lib.sh not found beside %s; reinstall with mam-install\n' \
        "$0" >&2
    return 69
}

runtime_command() {
    case $1 in
        claude) printf 'claude\n' ;;
        codex) printf 'codex\n' ;;
        gemini) printf 'gemini\n' ;;
        aider) printf 'aider\n' ;;
        opencode) printf 'opencode\n' ;;
        *) return 1 ;;
    esac
}

# Names of MAM_* variables in our environment (values are read with eval on a checked name).
exported_mam_names() {
    env | sed -n 's/^\(MAM_[ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_]*\)=.*/\1/p'
}

# Single-quote a value for a file that /bin/sh will read.
shell_quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

write_env_handoff() {
    _names="MAM_AGENT_NAME $(exported_mam_names | tr '\n' ' ') ${mam_env_keys:-} ${MAM_AGENT_PASS_ENV:-}"
    set -f  # split the list into names, never glob it against files
    for _n in $_names; do
        valid_env_name "$_n" || continue
        eval "_set=\${$_n+x}"
        [ -n "$_set" ] || continue
        _v=""
        eval "_v=\$$_n"
        printf 'export %s=%s\n' "$_n" "$(shell_quote "$_v")"
    done >"$env_file"
    set +f
}

valid_env_name() {
    case $1 in
        "" | [0123456789]*) return 1 ;;
        *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]*) return 1 ;;
    esac
}

create_session() {
    env_file=$(mktemp "${TMPDIR:-/tmp}/mam-agent-env.XXXXXX") || {
        mam_err "cannot create a temporary file in ${TMPDIR:-/tmp}; set TMPDIR to a writable directory"
        return 1
    }
    MAM_AGENT_NAME=$name
    export MAM_AGENT_NAME
    write_env_handoff
    # tmux (2.0 and later) runs a multi-word command with exec, not through a shell: the file
    # name and the agent command arrive as plain arguments.
    # shellcheck disable=SC2016
    if ! mam_tmux new-session -d -s "$name" -c "$workdir" -- /bin/sh -c \
        '. "$1" && rm -f -- "$1" && if [ -n "$2" ]; then exec /bin/sh -c "$2"; else exec "${SHELL:-/bin/sh}" -l; fi' \
        mam-agent "$env_file" "$agent_command"; then
        rm -f -- "$env_file"
        # Lost a race with another start of the same agent: that is success, once.
        if mam_tmux has-session -t "=$name" 2>/dev/null; then
            mam_say "agent session $name already running"
            return 0
        fi
        mam_err "tmux could not start session $name on the ${MAM_TMUX_SOCKET:-default} server"
        return 1
    fi
    mam_say "started agent session $name in $workdir${MAM_TMUX_SOCKET:+ (tmux -L $MAM_TMUX_SOCKET)}"
}

stop_session() {
    mam_tmux kill-session -t "=$name" 2>/dev/null
    exit 0
}

# launchd has no ExecStop: being told to stop must end the session too (exactly =NAME).
wait_for_session_end() {
    trap stop_session TERM INT HUP
    while mam_tmux has-session -t "=$name" 2>/dev/null; do
        sleep "${MAM_AGENT_POLL_SECONDS:-5}" &
        wait $!
    done
    mam_err "agent session $name has ended"
    return 1
}

main() {
    load_lib || return $?
    wait_mode="" replace="" stop_only=""
    # getopts knows no long options: turn each known one into its letter first.
    _left=$#
    while [ "$_left" -gt 0 ]; do
        _arg=$1
        shift
        _left=$((_left - 1))
        case $_arg in
            --wait) set -- "$@" -w ;;
            --replace) set -- "$@" -r ;;
            --stop) set -- "$@" -k ;;
            --help) set -- "$@" -h ;;
            --)
                set -- "$@" --
                while [ "$_left" -gt 0 ]; do
                    set -- "$@" "$1"
                    shift
                    _left=$((_left - 1))
                done
                ;;
            --*) mam_err "unknown option $_arg"; usage; return 64 ;;
            *) set -- "$@" "$_arg" ;;
        esac
    done
    OPTIND=1
    while getopts ':wrkh' opt; do
        case $opt in
            w) wait_mode=1 ;;
            r) replace=1 ;;
            k) stop_only=1 ;;
            h) usage; return 0 ;;
            *) mam_err "unknown option -$OPTARG"; usage; return 64 ;;
        esac
    done
    shift $((OPTIND - 1))
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        mam_err "no agent name given"
        usage
        return 64
    fi
    name=$1
    if ! mam_valid_name "$name"; then
        mam_err "agent name '$name' must be 1-64 letters, digits, _ or - and start with a letter or digit"
        return 64
    fi
    mam_load_env
    if [ -n "${MAM_CONFIG_DIR:-}" ] && [ -f "$MAM_CONFIG_DIR/agents/$name.env" ]; then
        mam_load_env_file "$MAM_CONFIG_DIR/agents/$name.env" || return 1
    fi
    mam_need_tmux || return 69
    if [ -n "$stop_only" ]; then
        mam_tmux kill-session -t "=$name" 2>/dev/null \
            && mam_say "stopped agent session $name${MAM_TMUX_SOCKET:+ (tmux -L $MAM_TMUX_SOCKET)}"
        return 0
    fi

    workdir=${MAM_AGENT_WORKDIR:-$PWD}
    if [ ! -d "$workdir" ]; then
        mam_err "MAM_AGENT_WORKDIR $workdir is not a directory; create it or fix the setting"
        return 66
    fi
    agent_command=${MAM_AGENT_COMMAND:-}
    if [ -z "$agent_command" ] && [ -n "${MAM_AGENT_RUNTIME:-}" ]; then
        agent_command=$(runtime_command "$MAM_AGENT_RUNTIME") || {
            mam_err "unknown MAM_AGENT_RUNTIME '$MAM_AGENT_RUNTIME'; use claude, codex, gemini, aider or opencode, or set MAM_AGENT_COMMAND"
            return 78
        }
    fi

    if [ -n "$replace" ] && mam_tmux has-session -t "=$name" 2>/dev/null; then
        mam_tmux kill-session -t "=$name" 2>/dev/null
        mam_say "ended the running agent session $name to replace it"
    fi
    # A service manager may stop us the moment the session exists: be ready before it does.
    [ -z "$wait_mode" ] || trap stop_session TERM INT HUP
    if mam_tmux has-session -t "=$name" 2>/dev/null; then
        mam_say "agent session $name already running"
    else
        create_session || return 1
    fi
    [ -z "$wait_mode" ] || wait_for_session_end
}

main "$@" || exit $?
