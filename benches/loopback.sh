#!/usr/bin/env bash
# Loopback benchmark, "the number users feel": one smtp-sink (PIPELINING) on 127.0.0.1, and in one run
#   1. 10,000 messages of 1 KiB over one connection: smtp-send --count, Postfix's smtp-source -d, lettre with
#      TCP_NODELAY, lettre as shipped (200 messages, rate extrapolated), the raw pipelined reference (one round
#      trip a message) and the raw lock-step variant (two round trips a message, smtp-send's shape);
#   2. one 50 MiB message: smtp-send, smtp-source, lettre, the raw push (and smtp-send 3 times in one session,
#      timed by smtp-send itself, since a single message has no timing in its JSON);
#   3. 20 connections at once: smtp-send --connections 20 --count 10000 (its pool), smtp-source -s 20 -m 10000;
#      and each adapter alone (benches/src/bin/adapter_send.rs: smtp-blocking, smtp-smol, smtp-tokio) on one
#      connection (10,000 x 1 KiB, the batch send) and over its pool of 20;
#   4. (full mode only) one 1 GiB message with smtp-send: its peak RSS;
#   5. over STARTTLS, against this workspace's TLS sink (benches/loopback/src/bin/tls_sink.rs: rustls, a
#      test CA made at start): 10,000 messages of 1 KiB over one connection, smtp-send --count against the
#      raw pipelined reference with --starttls (the same bytes through rustls's StreamOwned); and a 50 MiB
#      message 3 times in one session, smtp-send against the raw rustls push of the pre-stuffed bytes.
# Each case runs 3 times, the repetitions interleaved (rep 1 of every client, then rep 2, ...) so that noise
# from other work on the machine spreads evenly; the table shows the median of each column, the goals the
# median of per-repetition ratios of cases run back to back (in turns: which goes first alternates). With two CPUs
# or more the sinks run on CPU 0 and every client on CPU 1 (taskset), so client and sink never share one.
#
# Usage: benches/loopback.sh [--quick] [--reps N]
#   --quick: 500 messages, 5 MiB, 20 x 25, one repetition, no 1 GiB: proves in well under a minute (once
#            built) that everything still runs, TLS included; its figures mean little.
#   --reps N: N repetitions instead of 3 (the table shows the median and the range of the rate column).
# Needs: cargo, Postfix's smtp-sink/smtp-source (installed by scripts/install-test-servers when missing, root
# needed), GNU time (/usr/bin/time, for the peak RSS; installed from Debian when missing, root needed), jq;
# taskset (util-linux) for pinning, if present.
# Every client run is bounded by `timeout`; the sink is stopped and the temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0 reps_arg=
while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
    --quick) quick=1 ;;
    --reps)
        reps_arg=${1:?--reps needs a number}
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "loopback.sh: unknown argument $a" >&2
        exit 64
        ;;
    esac
done

if ((quick)); then
    reps=1 n_small=500 n_shipped=20 big_mib=5 conns=20 per_conn=25 n_big_session=2
else
    reps=3 n_small=10000 n_shipped=200 big_mib=50 conns=20 per_conn=500 n_big_session=3
fi
[ -n "$reps_arg" ] && reps=$reps_arg
from=alice@example.org to=bob@example.org

say() { printf 'loopback.sh: %s\n' "$*" >&2; }

# --- what it needs ----------------------------------------------------------------------------------------
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    say "smtp-sink/smtp-source missing: running scripts/install-test-servers"
    bash scripts/install-test-servers
fi
sink_bin=$(command -v smtp-sink) source_bin=$(command -v smtp-source)
if [ ! -x /usr/bin/time ]; then
    [ "$(id -u)" -eq 0 ] || {
        say "/usr/bin/time (Debian package 'time') is missing and installing it needs root"
        exit 1
    }
    say "installing GNU time"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
fi
command -v jq >/dev/null || {
    say "jq is missing (apt-get install jq)"
    exit 1
}

say "building (release): smtp-send, benches/loopback (clients and the TLS sink)"
cargo build --release --quiet -p smtp-send
cargo build --release --quiet -p smtp-benches --bin adapter_send
cargo build --release --quiet --manifest-path benches/loopback/Cargo.toml
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case $CARGO_TARGET_DIR in /*) t=$CARGO_TARGET_DIR ;; *) t=$root/$CARGO_TARGET_DIR ;; esac
    smtp_send=$t/release/smtp-send adapter_send=$t/release/adapter_send bench_dir=$t/release
else
    smtp_send=$root/target/release/smtp-send adapter_send=$root/target/release/adapter_send
    bench_dir=$root/benches/loopback/target/release
fi
lettre_send=$bench_dir/lettre_send raw_send=$bench_dir/raw_send tls_sink=$bench_dir/tls_sink

# Sinks on CPU 0, clients on CPU 1 (when there are two CPUs and taskset): a client and its sink never
# compete for one CPU, and runs compare like with like.
sink_pin=() client_pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    sink_pin=(taskset -c 0) client_pin=(taskset -c 1)
fi

# --- temp dir, messages, the sink -------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/loopback.XXXXXX)
sink_pid= tls_pid=
cleanup() {
    local rc=$?
    local p
    for p in $sink_pid $tls_pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen_message FILE SIZE: headers, then lines of 76 'x' + CRLF, padded to exactly SIZE octets (CRLF, no dots).
gen_message() {
    local file=$1 size=$2 head lines rest
    head=$(printf 'From: <%s>\r\nTo: <%s>\r\nSubject: loopback bench\r\nMessage-ID: <bench@example.org>\r\n\r\n' "$from" "$to")
    lines=$(((size - ${#head} - 2) / 78))
    rest=$((size - ${#head} - lines * 78 - 2))
    {
        printf '%s' "$head"
        { yes "$(printf 'x%.0s' {1..76})"$'\r' || true; } | head -n "$lines"
        printf '%*s\r\n' "$rest" '' | tr ' ' y
    } >"$file"
    [ "$(stat -c %s "$file")" -eq "$size" ] || {
        say "gen_message: $file is not $size octets"
        exit 1
    }
}
gen_message "$tmp/1k.eml" 1024
big=$((big_mib * 1024 * 1024))
gen_message "$tmp/big.eml" "$big"

# free_port: a port nobody listens on (prints nothing when none is found).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        if [ -z "$(ss -Hltn "sport = :$p")" ]; then
            echo "$p"
            return
        fi
    done
}
# wait_port PORT LOG: until something listens on PORT (5 s at most).
wait_port() {
    for _ in $(seq 100); do
        [ -n "$(ss -Hltn "sport = :$1")" ] && return
        sleep 0.05
    done
    say "the sink on port $1 did not start:"
    cat "$2" >&2
    exit 1
}
port=$(free_port)
tls_port=$(free_port)
[ -n "$port" ] && [ -n "$tls_port" ] && [ "$port" != "$tls_port" ] || {
    say "no two free ports found"
    exit 1
}
server=127.0.0.1:$port
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(-u nobody)
# PIPELINING is on by default; 1024 is the listen backlog.
"${sink_pin[@]}" "$sink_bin" "${user_opt[@]}" "$server" 1024 >"$tmp/sink.log" 2>&1 &
sink_pid=$!
wait_port "$port" "$tmp/sink.log"
# The TLS sink writes its test CA before it listens.
tls_server=127.0.0.1:$tls_port
"${sink_pin[@]}" "$tls_sink" --listen "$tls_server" --ca-out "$tmp/ca.pem" >"$tmp/tls_sink.log" 2>&1 &
tls_pid=$!
wait_port "$tls_port" "$tmp/tls_sink.log"
clk_tck=$(getconf CLK_TCK)
# The CPU seconds so far (user + system, all threads) of the sink serving the current case, from /proc.
active_sink=$sink_pid
sink_cpu() { awk -v t="$clk_tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$active_sink/stat"; }
# cpu_mark FILE: records the CPU time of this shell's finished children so far (bash's `times`, to the
# millisecond; GNU time's own figures come in 10 ms steps, too coarse for a CPU-a-message ratio). It must
# run in this shell, not in a command substitution (a subshell has no finished children).
cpu_mark() { times >"$1"; }
# cpu_between A B: user and system seconds between two marks.
cpu_between() {
    awk 'function sec(t, p) { split(t, p, /[ms]/); return p[1] * 60 + p[2] }
        FNR == 2 { u[FILENAME] = sec($1); s[FILENAME] = sec($2) }
        END { printf "%.3f %.3f\n", u[ARGV[2]] - u[ARGV[1]], s[ARGV[2]] - s[ARGV[1]] }' "$1" "$2"
}

# --- one measured run ---------------------------------------------------------------------------------------
# measure CASE REP EXPECTED_MESSAGES BYTES_PER_MESSAGE COMMAND...
# Appends to results.tsv: case rep messages seconds wall bytes user sys rss_kib sink_cpu.
# `seconds` is the client's own connect-to-QUIT time when it reports one (JSON `seconds`), else the wall
# time of the process (smtp-source; smtp-send with a single message, whose JSON has no timing).
results=$tmp/results.tsv
: >"$results"
measure() {
    local case=$1 rep=$2 expect=$3 size=$4
    shift 4
    local s0 s1 w0 w1 rc=0 user sys rss wall seconds messages bytes
    s0=$(sink_cpu)
    cpu_mark "$tmp/cpu0"
    w0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$tmp/time" timeout 600 "${client_pin[@]}" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    w1=$EPOCHREALTIME
    cpu_mark "$tmp/cpu1"
    s1=$(sink_cpu)
    if [ "$rc" -ne 0 ]; then
        say "$case (rep $rep) failed with status $rc: $*"
        cat "$tmp/out" "$tmp/err" >&2
        exit 1
    fi
    read -r rss <"$tmp/time"
    read -r user sys < <(cpu_between "$tmp/cpu0" "$tmp/cpu1")
    wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.6f", b - a }')
    if grep -q '"seconds"' "$tmp/out"; then
        seconds=$(jq -r .seconds "$tmp/out")
        messages=$(jq -r .messages "$tmp/out")
        bytes=$(jq -r .bytes "$tmp/out")
    else
        seconds=$wall messages=$expect bytes=$((expect * size))
    fi
    if [ "$messages" -ne "$expect" ]; then
        say "$case (rep $rep): $messages messages sent, $expect expected"
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$rep" "$messages" "$seconds" "$wall" "$bytes" \
        "$user" "$sys" "$rss" "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", b - a }')" >>"$results"
    say "$(printf '%-28s rep %s: %6s messages in %8.3f s' "$case" "$rep" "$messages" "$seconds")"
}

send=("$smtp_send" --server "$server" --tls none --from "$from" --to "$to" --json --quiet)
src=("$source_bin" -f "$from" -t "$to")
lettre=("$lettre_send" --server "$server" --from "$from" --to "$to")
raw=("$raw_send" --server "$server" --from "$from" --to "$to")
adapter=("$adapter_send" --server "$server" --from "$from" --to "$to")
send_tls=("$smtp_send" --server "$tls_server" --tls starttls-required --ca-file "$tmp/ca.pem" --from "$from" --to "$to" --json --quiet)
raw_tls=("$raw_send" --server "$tls_server" --starttls --ca-file "$tmp/ca.pem" --from "$from" --to "$to")

# The cases compared against each other by the goals run back to back, in turns: smtp-send first in odd
# repetitions, the raw reference first in even ones, so that neither always follows the same case.
m_1k_send() { measure "1k smtp-send" "$rep" "$n_small" 1024 "${send[@]}" --count "$n_small" "$tmp/1k.eml"; }
m_1k_raw() { measure "1k raw pipelined" "$rep" "$n_small" 1024 "${raw[@]}" --count "$n_small" --file "$tmp/1k.eml"; }
m_big_send() { measure "big smtp-send session" "$rep" "$n_big_session" "$big" "${send[@]}" --count "$n_big_session" "$tmp/big.eml"; }
m_big_raw() { measure "big raw push" "$rep" 1 "$big" "${raw[@]}" --count 1 --file "$tmp/big.eml"; }
m_tls1k_send() { measure "tls1k smtp-send" "$rep" "$n_small" 1024 "${send_tls[@]}" --count "$n_small" "$tmp/1k.eml"; }
m_tls1k_raw() { measure "tls1k raw pipelined" "$rep" "$n_small" 1024 "${raw_tls[@]}" --count "$n_small" --file "$tmp/1k.eml"; }
m_tlsbig_send() { measure "tlsbig smtp-send session" "$rep" "$n_big_session" "$big" "${send_tls[@]}" --count "$n_big_session" "$tmp/big.eml"; }
m_tlsbig_raw() { measure "tlsbig raw push" "$rep" "$n_big_session" "$big" "${raw_tls[@]}" --count "$n_big_session" --file "$tmp/big.eml"; }
m_1k_adapter() { measure "1k $1" "$rep" "$n_small" 1024 "${adapter[@]}" --adapter "$1" --count "$n_small" --file "$tmp/1k.eml"; }
m_c20_adapter() {
    measure "c20 $1 pool" "$rep" $((conns * per_conn)) 1024 "${adapter[@]}" --adapter "$1" --connections "$conns" \
        --count $((conns * per_conn)) --file "$tmp/1k.eml"
}
in_turns() {
    if ((rep % 2)); then
        "$1"
        "$2"
    else
        "$2"
        "$1"
    fi
}

say "smtp-sink on $server; $reps repetition(s); 1 KiB x $n_small, ${big_mib} MiB, $conns x $per_conn"
for rep in $(seq "$reps"); do
    # 1. 1 KiB messages over one connection.
    in_turns m_1k_send m_1k_raw
    for a in blocking smol tokio; do m_1k_adapter "$a"; done
    measure "1k smtp-source" "$rep" "$n_small" 1024 "${src[@]}" -d -s 1 -m "$n_small" -l 1024 "$server"
    measure "1k lettre nodelay" "$rep" "$n_small" 1024 "${lettre[@]}" --count "$n_small" --file "$tmp/1k.eml"
    measure "1k lettre shipped" "$rep" "$n_shipped" 1024 "${lettre[@]}" --no-nodelay --count "$n_shipped" --file "$tmp/1k.eml"
    measure "1k raw lockstep" "$rep" "$n_small" 1024 "${raw[@]}" --mode lockstep --count "$n_small" --file "$tmp/1k.eml"
    # 2. One large message.
    in_turns m_big_send m_big_raw
    measure "big smtp-send" "$rep" 1 "$big" "${send[@]}" "$tmp/big.eml"
    measure "big smtp-source" "$rep" 1 "$big" "${src[@]}" -d -s 1 -m 1 -l "$big" "$server"
    measure "big lettre nodelay" "$rep" 1 "$big" "${lettre[@]}" --count 1 --file "$tmp/big.eml"
    # 3. Many connections at once.
    measure "c20 smtp-send" "$rep" $((conns * per_conn)) 1024 "${send[@]}" --connections "$conns" --count "$((conns * per_conn))" "$tmp/1k.eml"
    measure "c20 smtp-source" "$rep" $((conns * per_conn)) 1024 "${src[@]}" -d -s "$conns" -m $((conns * per_conn)) -l 1024 "$server"
    for a in blocking smol tokio; do m_c20_adapter "$a"; done
    # 5. Over STARTTLS, against the TLS sink.
    active_sink=$tls_pid
    in_turns m_tls1k_send m_tls1k_raw
    in_turns m_tlsbig_send m_tlsbig_raw
    active_sink=$sink_pid
done

if ((!quick)); then
    # 4. 1 GiB, once: peak RSS (goal: under 16 MiB).
    rm -f "$tmp/big.eml"
    gen_message "$tmp/gib.eml" $((1024 * 1024 * 1024))
    measure "gib smtp-send" 1 1 $((1024 * 1024 * 1024)) "${send[@]}" "$tmp/gib.eml"
    rm -f "$tmp/gib.eml"
fi

# --- the table ----------------------------------------------------------------------------------------------
if [ ${#client_pin[@]} -gt 0 ]; then
    pinned="Sinks pinned to CPU 0, clients to CPU 1."
else
    pinned="Not pinned (taskset missing or one CPU)."
fi
label() {
    case $1 in
    "1k smtp-send") echo "smtp-send --count $n_small" ;;
    "1k smtp-source") echo "smtp-source -d -s 1 -m $n_small -l 1024" ;;
    "1k lettre nodelay") echo "lettre 0.11, TCP_NODELAY" ;;
    "1k lettre shipped") echo "lettre 0.11 as shipped ($n_shipped msgs, rate extrapolated)" ;;
    "1k raw pipelined") echo "raw reference, pipelined (1 RTT/msg)" ;;
    "1k raw lockstep") echo "raw, lock-step (2 RTT/msg, smtp-send's shape)" ;;
    "big smtp-send") echo "smtp-send (wall, incl. exec + file scan)" ;;
    "big smtp-send session") echo "smtp-send --count $n_big_session (own timing, per message)" ;;
    "big smtp-source") echo "smtp-source -m 1 -l $big" ;;
    "big lettre nodelay") echo "lettre 0.11, TCP_NODELAY" ;;
    "big raw push") echo "raw push (pre-stuffed)" ;;
    "c20 smtp-send") echo "smtp-send --connections $conns --count $((conns * per_conn))" ;;
    "c20 smtp-source") echo "smtp-source -d -s $conns -m $((conns * per_conn)) -l 1024" ;;
    "1k blocking" | "1k smol" | "1k tokio") echo "smtp-${1#1k } alone: connect, batch send, QUIT" ;;
    "c20 blocking pool" | "c20 smol pool" | "c20 tokio pool")
        a=${1#c20 }
        echo "smtp-${a% pool} pool of $conns, batch send on each"
        ;;
    "gib smtp-send") echo "smtp-send, 1 GiB file" ;;
    "tls1k smtp-send") echo "smtp-send --tls starttls-required --count $n_small" ;;
    "tls1k raw pipelined") echo "raw reference, pipelined, rustls (--starttls)" ;;
    "tlsbig smtp-send session") echo "smtp-send --count $n_big_session (own timing, per message)" ;;
    "tlsbig raw push") echo "raw rustls push, $n_big_session in one session (pre-stuffed)" ;;
    esac
}
# Table order, whatever order the cases ran in.
order=("1k smtp-send" "1k blocking" "1k smol" "1k tokio" "1k smtp-source" "1k lettre nodelay" "1k lettre shipped"
    "1k raw pipelined" "1k raw lockstep"
    "big smtp-send" "big smtp-send session" "big smtp-source" "big lettre nodelay" "big raw push"
    "c20 smtp-send" "c20 blocking pool" "c20 smol pool" "c20 tokio pool" "c20 smtp-source" "gib smtp-send"
    "tls1k smtp-send" "tls1k raw pipelined" "tlsbig smtp-send session" "tlsbig raw push")
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# row CASE: median of each derived figure over the repetitions, tab-separated:
# messages msgs/s MB/s seconds cpu_s cpu_us_per_msg rss_mib sink_cpu_s, then min and max of msgs/s and MB/s
row() {
    awk -F'\t' -v c="$1" '$1 == c {
        printf "%s\t%.6f\t%.6f\t%s\t%.2f\t%.3f\t%.3f\t%.3f\n", $3, $3 / $4, $6 / 1e6 / $4, $4, $7 + $8,
            ($7 + $8) * 1e6 / $3, $9 / 1024, $10 }' "$results" >"$tmp/row"
    local out=() k
    for k in 1 2 3 4 5 6 7 8; do out+=("$(cut -f"$k" "$tmp/row" | median)"); done
    for k in 2 3; do out+=("$(cut -f"$k" "$tmp/row" | sort -g | head -1)" "$(cut -f"$k" "$tmp/row" | sort -g | tail -1)"); done
    (
        IFS=$'\t'
        echo "${out[*]}"
    )
}
printf '\n| case | client | messages | msgs/s | MB/s | range (min–max) | seconds | client CPU s | CPU µs/msg | peak RSS MiB | sink CPU s | ratio to smtp-send |\n'
printf '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for section in 1k big c20 gib tls1k tlsbig; do
    base=
    case $section in
    1k) title="1 KiB x $n_small, 1 conn" base="1k smtp-send" by=msgs ;;
    big) title="${big_mib} MiB x 1" base="big smtp-send session" by=mbs ;;
    c20) title="1 KiB, $conns conns" base="c20 smtp-send" by=msgs ;;
    gib) title="1 GiB x 1" base= by=mbs ;;
    tls1k) title="1 KiB x $n_small, STARTTLS, 1 conn" base="tls1k smtp-send" by=msgs ;;
    tlsbig) title="${big_mib} MiB x $n_big_session, STARTTLS, 1 conn" base="tlsbig smtp-send session" by=mbs ;;
    esac
    [ -n "$base" ] && IFS=$'\t' read -r _ bmsgs bmbs _ < <(row "$base")
    while IFS= read -r c; do
        IFS=$'\t' read -r m mps mbs secs cpu cpum rss sink mps0 mps1 mbs0 mbs1 < <(row "$c")
        if [ "$by" = msgs ]; then
            range=$(awk -v a="$mps0" -v b="$mps1" 'BEGIN { printf "%.0f–%.0f msgs/s", a, b }')
        else
            range=$(awk -v a="$mbs0" -v b="$mbs1" 'BEGIN { printf "%.1f–%.1f MB/s", a, b }')
        fi
        ratio="—"
        if [ -n "$base" ]; then
            if [ "$by" = msgs ]; then
                ratio=$(awk -v a="$mps" -v b="$bmsgs" 'BEGIN { printf "%.2fx", a / b }')
            else
                ratio=$(awk -v a="$mbs" -v b="$bmbs" 'BEGIN { printf "%.2fx", a / b }')
            fi
        fi
        if [ "$by" = msgs ]; then
            mps=$(printf '%.0f' "$mps") cpum=$(printf '%.1f' "$cpum")
        else
            mps="—" cpum="—" # a few large messages: the rate and the CPU a message are MB/s and CPU s
        fi
        printf '| %s | %s | %s | %s | %.1f | %s | %.3f | %.2f | %s | %.1f | %.2f | %s |\n' "$title" "$(label "$c")" \
            "$m" "$mps" "$mbs" "$range" "$secs" "$cpu" "$cpum" "$rss" "$sink" "$ratio"
    done < <(for c in "${order[@]}"; do case $c in "$section "*) grep -q "^$c"$'\t' "$results" && echo "$c" ;; esac; done)
done
printf '\nMedian of %s interleaved run(s) per row; ratio: msgs/s (MB/s for the large message, against smtp-send'\''s own\ntiming) over smtp-send'\''s. seconds: the client'\''s connect-to-QUIT time where it reports one, else wall time\n(smtp-source; smtp-send with one message). client CPU: user+sys of the whole process (bash times, ms); sink CPU: the\nsink'\''s user+sys over the same run (/proc; smtp-sink, or tls_sink for the STARTTLS rows). MB = 10^6 octets of\nmessage (CRLF, unstuffed; smtp-source: its -l payload). %s\n' "$reps" "$pinned"

# --- the issue's goals ----------------------------------------------------------------------------------------
goal() { awk -v v="$2" -v t="$3" -v op="$4" -v what="$1" -v unit="$5" 'BEGIN {
    ok = (op == ">=") ? (v >= t) : (op == "<=") ? (v <= t) : (v < t)
    printf "- %s: %.3g%s (goal %s %s%s): %s\n", what, v, unit, op, t, unit, ok ? "met" : "NOT met" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
# paired A B WHAT: the ratio A / B of one figure (msgs: messages/s; mbs: MB/s; cpu: CPU a message) in each
# repetition, A and B having run back to back: "median min max" over the repetitions. Less exposed to
# drift on a shared machine than the ratio of the medians.
paired() {
    awk -F'\t' -v a="$1" -v b="$2" -v what="$3" '
        function fig(m, secs, bytes, cpu) {
            return what == "msgs" ? m / secs : what == "mbs" ? bytes / secs : cpu / m }
        $1 == a { x[$2] = fig($3, $4, $6, $7 + $8) }
        $1 == b { y[$2] = fig($3, $4, $6, $7 + $8) }
        END { for (r in x) if (r in y) print x[r] / y[r] }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END { printf "%s %s %s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'
}
# pgoal TEXT A B WHAT THRESHOLD OP: a goal judged on the median paired ratio, its range shown.
pgoal() {
    local med lo hi
    read -r med lo hi < <(paired "$2" "$3" "$4")
    goal "$1 (per-repetition ratios $(printf '%.2f–%.2f' "$lo" "$hi"))" "$med" "$5" "$6" "x"
}
IFS=$'\t' read -r _ send_mps _ _ _ send_cpum _ < <(row "1k smtp-send")
IFS=$'\t' read -r _ raw_mps _ _ _ raw_cpum _ < <(row "1k raw pipelined")
IFS=$'\t' read -r _ _ sess_mbs _ < <(row "big smtp-send session")
IFS=$'\t' read -r _ _ push_mbs _ < <(row "big raw push")
IFS=$'\t' read -r _ tsend_mps _ _ _ tsend_cpum _ < <(row "tls1k smtp-send")
IFS=$'\t' read -r _ traw_mps _ _ _ traw_cpum _ < <(row "tls1k raw pipelined")
IFS=$'\t' read -r _ _ tsess_mbs _ < <(row "tlsbig smtp-send session")
IFS=$'\t' read -r _ _ tpush_mbs _ < <(row "tlsbig raw push")
if [ "$quick" = 1 ]; then
    printf '\nGoals: not evaluated in --quick mode (one short repetition proves the clients run, nothing more).\n'
    exit 0
fi
printf '\nGoals (median of the per-repetition ratios of cases run back to back):\n'
pgoal "messages/s on one connection, smtp-send / raw pipelined" "1k smtp-send" "1k raw pipelined" msgs 0.9 ">="
for a in blocking smol tokio; do
    pgoal "messages/s on one connection, smtp-$a alone / raw pipelined" "1k $a" "1k raw pipelined" msgs 0.9 ">="
done
pgoal "messages/s over $conns connections, smtp-send's pool / smtp-source -s $conns" "c20 smtp-send" "c20 smtp-source" msgs 1.5 ">="
for a in blocking smol tokio; do
    pgoal "messages/s over $conns connections, the smtp-$a pool / smtp-source -s $conns" "c20 $a pool" "c20 smtp-source" msgs 1.5 ">="
done
pgoal "client CPU a message, smtp-send / raw pipelined ($(printf '%.1f / %.1f' "$send_cpum" "$raw_cpum") µs, medians)" "1k smtp-send" "1k raw pipelined" cpu 1.1 "<="
pgoal "${big_mib} MiB MB/s, smtp-send (own timing) / raw push" "big smtp-send session" "big raw push" mbs 0.95 ">="
pgoal "STARTTLS messages/s on one connection, smtp-send / raw pipelined rustls" "tls1k smtp-send" "tls1k raw pipelined" msgs 0.9 ">="
pgoal "STARTTLS client CPU a message, smtp-send / raw pipelined rustls ($(printf '%.1f / %.1f' "$tsend_cpum" "$traw_cpum") µs, medians)" "tls1k smtp-send" "tls1k raw pipelined" cpu 1.1 "<="
pgoal "STARTTLS ${big_mib} MiB MB/s, smtp-send / raw rustls push" "tlsbig smtp-send session" "tlsbig raw push" mbs 0.9 ">="
IFS=$'\t' read -r _ _ _ _ _ _ gib_rss _ < <(row "gib smtp-send")
goal "1 GiB message, smtp-send peak RSS" "$gib_rss" 16 "<" " MiB"
