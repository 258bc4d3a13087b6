#!/bin/sh
# shellcheck shell=dash
#
# agent-send.sh - send a message to another agent's tmux session, here or on another host,
# prefixed with where it came from so the receiving agent knows whom to answer.
#
# usage: agent-send.sh [-L SOCKET] -s SESSION [-H SSH_TARGET] [-n HOST] (-m MSG | -f FILE | stdin)
#                      [-S LABEL] [-r N] [-v]
#
# The message becomes "[from HOST:LABEL] MSG". Locally it goes through send-message.sh; with -H
# the same send-message.sh (with lib.sh in front) is piped to `ssh SSH_TARGET sh -s` and the body
# travels base64-encoded as one argument, so no shell ever re-parses it.
#
# Over ssh the body travels as one argument, so it is capped at 96 KiB (arguments over 128 KiB
# cannot be run); locally send-message.sh's MAM_SEND_MAX_BYTES applies.
#
# exit: 0 delivered, 1 session not found, 2 not seen submitted, 3 usage, 4 ssh failed,
#       5 message too large, 69 tmux, ssh or lib.sh missing

set -u

usage() {
    cat >&2 <<'EOF'
usage: agent-send.sh [-L SOCKET] -s SESSION [-H SSH_TARGET] [-n HOST] (-m MSG | -f FILE | stdin)
                     [-S LABEL] [-r N] [-v]
  -L SOCKET      tmux socket name (default: $MAM_TMUX_SOCKET, else tmux's default server)
  -s SESSION     the receiving agent's session name (exact match)
  -H SSH_TARGET  deliver on that host over ssh (user@host or an ssh config alias)
  -n HOST        host name to show as the sender (default: this host's short name)
  -m MSG         message text     -f FILE   read it from FILE   (else stdin)
  -S LABEL       sender label (default: the current tmux session, else $USER)
  -r N           extra Enter presses while the text is still unsent (default 3)
  -v             say what is done
exit: 0 delivered, 1 session not found, 2 not seen submitted, 3 usage, 4 ssh failed,
      5 too large, 69 missing tool
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
    printf 'agent-send.sh: error: lib.sh not found beside %s; reinstall with mam-install\n' "$0" >&2
    return 69
}

read_message() {
    case $source_kind in
        m) message=$source_arg ;;
        f)
            if [ ! -r "$source_arg" ] || [ -d "$source_arg" ]; then
                mam_err "cannot read message file $source_arg; check the path"
                return 3
            fi
            message=$(cat -- "$source_arg") || return 3
            ;;
        *)
            if [ -t 0 ]; then
                mam_err "no message: give -m MSG or -f FILE, or pipe it on stdin"
                return 3
            fi
            message=$(cat) || return 3
            ;;
    esac
    if [ -z "$message" ]; then
        mam_err "the message is empty; nothing to send"
        return 3
    fi
}

sender_label() {
    if [ -n "$label" ]; then
        printf '%s\n' "$label"
    elif [ -n "${TMUX:-}" ] && _s=$("${MAM_TMUX:-tmux}" display-message -p '#S' 2>/dev/null) \
        && [ -n "$_s" ]; then
        printf '%s\n' "$_s"
    else
        printf '%s\n' "${USER:-$(id -un 2>/dev/null || echo unknown)}"
    fi
}

send_local() {
    set -- -t "=$session" -r "$retries"
    [ -z "${MAM_TMUX_SOCKET:-}" ] || set -- "$@" -L "$MAM_TMUX_SOCKET"
    [ -z "$verbose" ] || set -- "$@" -v
    printf '%s' "$full" | "$tools_dir/send-message.sh" "$@"
}

send_remote() {
    _ssh=${MAM_SSH:-ssh}
    if ! mam_have "$_ssh"; then
        mam_err "ssh not found ($_ssh); install an OpenSSH client or set MAM_SSH"
        return 69
    fi
    _b64=$(printf '%s' "$full" | mam_b64encode) || return 1
    if [ "${#_b64}" -gt 131072 ]; then
        mam_err "the message is larger than 96 KiB, the most one ssh argument can carry; nothing was sent. Copy it to $ssh_target as a file and send its path"
        return 5
    fi
    # Every word below is checked to be [A-Za-z0-9_.=+/-], so the remote shell cannot misread it.
    set -- sh -s -- -t "=$session" -r "$retries" -b "$_b64"
    [ -z "${MAM_TMUX_SOCKET:-}" ] || set -- "$@" -L "$MAM_TMUX_SOCKET"
    [ -z "$verbose" ] || set -- "$@" -v
    [ -z "$verbose" ] || mam_say "delivering to $session on $ssh_target over ssh"
    cat -- "$MAM_LIB" "$tools_dir/send-message.sh" \
        | "$_ssh" -T -o BatchMode=yes -- "$ssh_target" "$@"
    _rc=$?
    if [ "$_rc" -eq 255 ]; then
        mam_err "ssh to $ssh_target failed; check that \`ssh $ssh_target true\` works without a prompt"
        return 4
    fi
    return "$_rc"
}

main() {
    load_lib || return $?
    socket="" session="" ssh_target="" host="" label="" retries=3 verbose=""
    source_kind="" source_arg=""
    OPTIND=1
    while getopts ':L:s:H:n:m:f:S:r:vh' opt; do
        case $opt in
            L) socket=$OPTARG ;;
            s) session=$OPTARG ;;
            H) ssh_target=$OPTARG ;;
            n) host=$OPTARG ;;
            m | f)
                if [ -n "$source_kind" ]; then
                    mam_err "give only one of -m, -f"
                    return 3
                fi
                source_kind=$opt
                source_arg=$OPTARG
                ;;
            S) label=$OPTARG ;;
            r) retries=$OPTARG ;;
            v) verbose=1 ;;
            h) usage; return 0 ;;
            :) mam_err "-$OPTARG needs a value"; usage; return 3 ;;
            *) mam_err "unknown option -$OPTARG"; usage; return 3 ;;
        esac
    done
    shift $((OPTIND - 1))
    if [ $# -gt 0 ]; then
        mam_err "unexpected argument: $1 (quote the message and pass it with -m)"
        usage
        return 3
    fi
    if ! mam_valid_name "$session"; then
        mam_err "-s needs a session name of letters, digits, _ and - (got '$session')"
        usage
        return 3
    fi
    case $retries in
        "" | *[!0123456789]*) mam_err "-r takes a whole number, not $retries"; return 3 ;;
    esac
    case $ssh_target in
        -*) mam_err "-H $ssh_target looks like an option; give user@host or an ssh alias"; return 3 ;;
    esac
    mam_load_env
    [ -z "$socket" ] || MAM_TMUX_SOCKET=$socket
    if [ -n "${MAM_TMUX_SOCKET:-}" ] && ! mam_valid_socket_name "$MAM_TMUX_SOCKET"; then
        mam_err "socket name '$MAM_TMUX_SOCKET' must be letters, digits, ., _ and -"
        return 3
    fi
    read_message || return $?
    [ -n "$host" ] || host=$(uname -n 2>/dev/null | cut -d. -f1)
    full="[from ${host:-unknown}:$(sender_label)] $message"
    tools_dir=$(dirname -- "$0")
    if [ -n "$ssh_target" ]; then
        send_remote
    else
        mam_need_tmux || return 69
        send_local
    fi
}

main "$@" || exit $?
