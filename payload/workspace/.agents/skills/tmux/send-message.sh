#!/bin/sh
# shellcheck shell=dash
#
# send-message.sh - type a message into a tmux pane and submit it, verifying it was submitted.
#
# usage: send-message.sh [-L SOCKET] -t TARGET (-m MSG | -f FILE | -b BASE64 | stdin) [-r RETRIES] [-v]
#
# The message is pasted as a bracketed paste through a named buffer (no keystroke quoting, no
# half-typed lines), Enter is pressed, and the pane is read back: while the message still sits
# on the cursor line unsent, Enter is pressed again, up to RETRIES times (default 3).
# A bare NAME or =NAME target means exactly the session NAME (=NAME:), never a prefix match.
# A message is at most $MAM_SEND_MAX_BYTES bytes (default 1048576, 1 MiB); a longer one is
# refused whole (exit 5) before anything reaches the pane, never cut short.
#
# exit: 0 delivered, 1 target not found, 2 pasted but not seen submitted, 3 usage,
#       5 message larger than MAM_SEND_MAX_BYTES, 69 tmux or lib.sh missing

set -u

usage() {
    cat >&2 <<'EOF'
usage: send-message.sh [-L SOCKET] -t TARGET (-m MSG | -f FILE | -b BASE64 | stdin) [-r RETRIES] [-v]
  -L SOCKET   tmux server socket name (default: $MAM_TMUX_SOCKET, else tmux's default server)
  -t TARGET   session name (exact), or a full tmux pane target such as =name:1.0 or %3
  -m MSG      message text            -f FILE   read the message from FILE
  -b BASE64   message, base64-encoded (stdin is read when none of -m, -f, -b is given)
  -r RETRIES  extra Enter presses while the text is still unsent (default 3)
  -v          say what is done
environment: MAM_SEND_MAX_BYTES  largest message accepted (default 1048576)
exit: 0 delivered, 1 target not found, 2 not seen submitted, 3 usage, 5 too large,
      69 tmux missing
EOF
}

# lib.sh is beside us (host tools dir) or one level up (.agents/skills); over ssh it arrives
# already loaded, concatenated in front of this script.
load_lib() {
    if command -v mam_tmux >/dev/null 2>&1; then
        return 0
    fi
    _dir=$(dirname -- "$0")
    for MAM_LIB in "$_dir/lib.sh" "$_dir/../lib.sh"; do
        if [ -f "$MAM_LIB" ]; then
            # shellcheck source-path=SCRIPTDIR source-path=SCRIPTDIR/.. source=lib.sh
            . "$MAM_LIB"
            return 0
        fi
    done
    printf 'send-message.sh: error: lib.sh not found beside %s; reinstall with mam-install\n' "$0" >&2
    return 69
}

say_verbose() {
    [ -z "$verbose" ] || printf 'send-message.sh: %s\n' "$*" >&2
}

# A session name alone would let tmux prefix-match (agent -> agent0); pin it to =NAME:.
normalize_target() {
    case $1 in
        *:* | *.* | %* | @* | \$*) printf '%s\n' "$1" ;;
        =*) printf '%s:\n' "$1" ;;
        *) printf '=%s:\n' "$1" ;;
    esac
}

# Copy at most one byte more than the limit, so an endless source cannot fill the disk.
capped_copy() {
    head -c "$((max_bytes + 1))"
}

# Write the message to $msg_file without trailing newlines: our Enter is the only submit.
stage_message() {
    case $source_kind in
        m) printf '%s' "$source_arg" >"$msg_file" ;;
        f)
            if [ ! -r "$source_arg" ] || [ -d "$source_arg" ]; then
                mam_err "cannot read message file $source_arg; check the path"
                return 3
            fi
            capped_copy <"$source_arg" >"$msg_file" || return 3
            ;;
        b)
            case $source_arg in
                *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=]*)
                    mam_err "-b takes base64 (A-Z a-z 0-9 + / =); encode the message with base64"
                    return 3 ;;
            esac
            if ! printf '%s' "$source_arg" | mam_b64decode >"$msg_file" 2>/dev/null; then
                mam_err "-b value is not valid base64; encode the message with base64"
                return 3
            fi
            ;;
        *)
            if [ -t 0 ]; then
                mam_err "no message: give -m MSG, -f FILE or -b BASE64, or pipe it on stdin"
                return 3
            fi
            capped_copy >"$msg_file" || return 3
            ;;
    esac
    check_size || return $?
    # $(...) drops the trailing newlines; it is linear in the size, unlike ${x##*...} patterns.
    message=$(cat -- "$msg_file")
    if [ -z "$message" ]; then
        mam_err "the message is empty; nothing to send"
        return 3
    fi
    printf '%s' "$message" >"$msg_file"
    message=""
    # Only the end of the last line is compared with the pane: the cursor row is at most a
    # pane wide, and a value over 128 KiB could not be handed to awk through the environment.
    last_line=$(tail -n 1 -- "$msg_file" | tail -c 4096)
}

check_size() {
    _size=$(wc -c <"$msg_file" | tr -d ' ')
    if [ "$_size" -gt "$max_bytes" ]; then
        mam_err "the message is larger than $max_bytes bytes (MAM_SEND_MAX_BYTES); nothing was sent. Send a file path instead, or raise MAM_SEND_MAX_BYTES"
        return 5
    fi
}

resolve_pane() {
    _out=$(mam_tmux display-message -p -t "$target" '#{pane_id}' 2>&1)
    case $_out in
        %*) pane=$_out; return 0 ;;
    esac
    _sock=${MAM_TMUX_SOCKET:+-L $MAM_TMUX_SOCKET }
    mam_err "no tmux pane $target_given on the ${MAM_TMUX_SOCKET:-default} tmux server${_out:+ ($_out)}; list panes with: tmux ${_sock}list-panes -a"
    return 1
}

# 0 while the last line of the message still sits on the pane's cursor line, 1 once it is
# gone, 2 when the pane cannot be read (never taken for "submitted").
still_unsent() {
    _y=$(mam_tmux display-message -p -t "$pane" '#{cursor_y}') || return 2
    case $_y in
        "" | *[!0123456789]*) return 2 ;;
    esac
    _line=$(mam_tmux capture-pane -p -t "$pane" | sed -n "$((_y + 1))p")
    mam_awk_line=$_line mam_awk_last=$last_line LC_ALL=C awk 'BEGIN {
        line = ENVIRON["mam_awk_line"]; last = ENVIRON["mam_awk_last"]
        sub(/[ \t]+$/, "", line); sub(/^[ \t]+/, "", line)
        sub(/[ \t]+$/, "", last); sub(/^[ \t]+/, "", last)
        if (line == "" || last == "") exit 1
        tail = length(last) > 20 ? substr(last, length(last) - 19) : last
        if (index(line, tail)) exit 0
        # a wrapped last line leaves only its end on the cursor row
        if (length(line) >= 4 && length(line) <= length(last) \
            && substr(last, length(last) - length(line) + 1) == line) exit 0
        exit 1
    }'
}

pause() {
    sleep "$1" 2>/dev/null || sleep 1
}

deliver() {
    buffer=mam-send-$$
    mam_tmux load-buffer -b "$buffer" "$msg_file" || return 1
    if ! mam_tmux paste-buffer -p -r -d -b "$buffer" -t "$pane"; then
        mam_tmux delete-buffer -b "$buffer" 2>/dev/null
        return 1
    fi
    say_verbose "pasted $(wc -c <"$msg_file" | tr -d ' ') bytes into $target_given ($pane)"
    pause "${MAM_SEND_DELAY:-0.2}"
    mam_tmux send-keys -t "$pane" Enter || return 1
    _try=0
    while :; do
        pause "${MAM_SEND_VERIFY_DELAY:-0.4}"
        still_unsent
        case $? in
            0) ;;
            1) break ;;
            *)
                mam_err "message pasted into $target_given but its pane could not be read back; check the pane"
                return 2 ;;
        esac
        if [ "$_try" -ge "$retries" ]; then
            mam_err "message pasted into $target_given but still unsent after $retries extra Enter presses; check the pane"
            return 2
        fi
        _try=$((_try + 1))
        say_verbose "text still on the input line; pressing Enter again ($_try/$retries)"
        mam_tmux send-keys -t "$pane" Enter || return 1
    done
    say_verbose "delivered to $target_given"
    return 0
}

cleanup() {
    [ -z "${msg_file:-}" ] || rm -f -- "$msg_file"
}

main() {
    load_lib || return $?
    socket="" target_given="" source_kind="" source_arg="" retries=3 verbose=""
    OPTIND=1
    while getopts ':L:t:m:f:b:r:vh' opt; do
        case $opt in
            L) socket=$OPTARG ;;
            t) target_given=$OPTARG ;;
            m | f | b)
                if [ -n "$source_kind" ]; then
                    mam_err "give only one of -m, -f, -b"
                    usage
                    return 3
                fi
                source_kind=$opt
                source_arg=$OPTARG
                ;;
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
    if [ -z "$target_given" ]; then
        mam_err "no target: pass -t SESSION"
        usage
        return 3
    fi
    case $retries in
        "" | *[!0123456789]*) mam_err "-r takes a whole number, not $retries"; return 3 ;;
    esac
    mam_load_env
    max_bytes=${MAM_SEND_MAX_BYTES:-1048576}
    case $max_bytes in
        "" | *[!0123456789]*)
            mam_err "MAM_SEND_MAX_BYTES must be a whole number of bytes, not $max_bytes"
            return 3 ;;
    esac
    [ -z "$socket" ] || MAM_TMUX_SOCKET=$socket
    mam_need_tmux || return 69

    msg_file=$(mktemp "${TMPDIR:-/tmp}/mam-send.XXXXXX") || {
        mam_err "cannot create a temporary file in ${TMPDIR:-/tmp}; set TMPDIR to a writable directory"
        return 1
    }
    trap cleanup EXIT
    trap 'cleanup; exit 130' INT TERM HUP
    stage_message || return $?
    target=$(normalize_target "$target_given")
    resolve_pane || return 1
    deliver
}

main "$@" || exit $?
