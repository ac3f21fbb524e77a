#!/usr/bin/env bash
# Apache zkCli (Debian package `zookeeper`, Java client 3.8) against any
# ZooKeeper-wire server: create (-e -s -c), ls, ls -s, get, get -s, set, stat,
# delete, deleteall, sync, addWatch (+ events seen in the same session),
# getAllChildrenNumber, getEphemerals, whoami, and the CLI's error messages.
#   tests/interop/zkcli.sh HOST:PORT[,HOST:PORT...]
# Exit 0 iff every expected output was seen; otherwise prints what mismatched.
set -u
hosts=${1:?usage: zkcli.sh HOST:PORT[,...]}
ZKCLI=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
ZKCLI_TIMEOUT=${ZKCLI_TIMEOUT:-90}
[ -x "$ZKCLI" ] || { echo "zkcli.sh: $ZKCLI not found (apt-get install zookeeper)" >&2; exit 2; }

N=/zkcli-it-$$-$RANDOM
out=$(mktemp)
trap 'rm -f "$out" "$out".*' EXIT

# Every step is followed by a marker command whose error line splits the
# output into sections ("Node does not exist: /__zkcli_mark_<step>").
cmds=()
step() { # step NAME COMMAND...
  local name=$1; shift
  cmds+=("$@" "get /__zkcli_mark_$name")
}
step create_plain     "create $N v1"
step create_eph       "create -e $N/e ev"
step create_seq       "create -s $N/s- sv"
step create_container "create -c $N/c"
step ls               "ls $N"
step ls_s             "ls -s $N"
step get              "get $N"
step get_s_eph        "get -s $N/e"
step set_get_s        "set $N v2" "get -s $N"
step stat             "stat $N"
step sync             "sync $N"
step getall           "getAllChildrenNumber $N"
step getephemerals    "getEphemerals $N"
step whoami           "whoami"
step add_watch        "addWatch $N"
step watch_triggers   "create $N/w wv" "set $N/w wv2" "delete $N/w"
step err_notempty     "delete $N"
step err_exists       "create $N dup"
step err_nonode       "get $N/nope"
step err_noparent     "create $N/no/x"
step err_version      "set -v 7 $N x"
step delete_leaf      "delete $N/c" "ls $N"
step deleteall        "deleteall $N" "ls $N"
step after            "stat $N"
cmds+=("quit")

start=$(date +%s)
printf '%s\n' "${cmds[@]}" | timeout "$ZKCLI_TIMEOUT" "$ZKCLI" -server "$hosts" > "$out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
# zkCli's exit status is that of its last command (an error on purpose here),
# so only a timeout counts; completeness is checked through the last marker.
if [ $rc -eq 124 ] || [ $rc -ge 128 ]; then
  echo "zkcli.sh: zkCli timed out or died (exit $rc) after ${secs}s"
else
  rc=0
fi
if ! grep -qx "Node does not exist: /__zkcli_mark_after" "$out"; then
  echo "zkcli.sh: zkCli did not run every command (last marker missing)"
  rc=1
fi

# section NAME -> output lines of that step (watch output removed)
section() {
  awk -v want="$1" '
    /^Node does not exist: \/__zkcli_mark_/ {
      name = $0; sub(/^Node does not exist: \/__zkcli_mark_/, "", name)
      if (name == want) { exit } ; buf = ""; next
    }
    /^WATCHER::$|^WatchedEvent |^$|^SLF4J|^Connecting to|^Welcome to|^JLine support/ { next }
    { buf = buf $0 "\n" }
    END { printf "%s", buf }' "$out"
}

fails=0 checks=0
fail() { echo "MISMATCH [$1]: $2"; fails=$((fails + 1)); }
# expect SECTION REGEX (line must match the whole line, ERE)
expect() {
  checks=$((checks + 1))
  section "$1" | grep -qxE -- "$2" || { fail "$1" "expected a line matching /$2/, got:"; section "$1" | sed 's/^/    | /'; }
}
expect_not() {
  checks=$((checks + 1))
  section "$1" | grep -qxE -- "$2" && fail "$1" "unexpected line matching /$2/"
}
expect_empty() {
  checks=$((checks + 1))
  local s; s=$(section "$1")
  [ -z "$s" ] || { fail "$1" "expected no output, got:"; echo "$s" | sed 's/^/    | /'; }
}
expect_all() { # event lines anywhere in the output
  checks=$((checks + 1))
  grep -qxE -- "$1" "$out" || fail "watch" "expected a line matching /$1/ anywhere"
}

expect create_plain     "Created $N"
expect create_eph       "Created $N/e"
expect create_seq       "Created $N/s-0000000001"
expect create_container "Created $N/c"
expect ls               "\[c, e, s-0000000001\]"
expect ls_s             "\[c, e, s-0000000001\]"
expect ls_s             "numChildren = 3"
expect ls_s             "cversion = 3"
expect ls_s             "dataLength = 2"
expect ls_s             "ephemeralOwner = 0x0"
expect get              "v1"
expect get_s_eph        "ev"
expect get_s_eph        "ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*"
expect get_s_eph        "dataVersion = 0"
expect get_s_eph        "cZxid = 0x[0-9a-f]+"
expect get_s_eph        "ctime = .+"
expect set_get_s        "v2"
expect set_get_s        "dataVersion = 1"
expect set_get_s        "dataLength = 2"
expect stat             "dataVersion = 1"
expect stat             "numChildren = 3"
expect stat             "aclVersion = 0"
expect_not stat         "v2"
expect sync             "Sync is OK"
expect getall           "3"
expect getephemerals    "\[$N/e\]"
expect whoami           "Auth scheme: User"
expect whoami           "ip: 127\.0\.0\.1"
expect_empty add_watch
expect watch_triggers   "Created $N/w"
expect_all              "WatchedEvent state:SyncConnected type:NodeCreated path:$N/w"
expect_all              "WatchedEvent state:SyncConnected type:NodeDataChanged path:$N/w"
expect_all              "WatchedEvent state:SyncConnected type:NodeDeleted path:$N/w"
expect err_notempty     "Node not empty: $N"
expect err_exists       "Node already exists: $N"
expect err_nonode       "Node does not exist: $N/nope"
expect err_noparent     "Node does not exist: $N/no/x"
expect err_version      "version No is not valid : $N"
expect delete_leaf      "\[e, s-0000000001\]"
expect deleteall        "Node does not exist: $N"
expect after            "Node does not exist: $N"
# the recursive watch also saw deleteall remove the tree
expect_all              "WatchedEvent state:SyncConnected type:NodeDeleted path:$N"

if [ $fails -ne 0 ] || [ $rc -ne 0 ]; then
  echo "---- full zkCli output ----"
  grep -v '^SLF4J' "$out"
  echo "zkcli.sh: FAILED $fails of $checks checks ($hosts, ${secs}s)"
  exit 1
fi
echo "zkcli.sh: OK $checks checks ($hosts, ${secs}s)"
