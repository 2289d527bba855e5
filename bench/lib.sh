# Shared by the bench scripts (sourced): the wrk script that gives every
# request a new client id, and a matchmakerd started on 127.0.0.1 ports the
# kernel picks, waited for by its banner.

# write_ids_lua FILE PREFIX: every request a new Authorization (client id);
# wrk runs one Lua state per thread.
write_ids_lua() {
  cat > "$1" <<LUA
local n = 0
local tag = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  return wrk.format("POST", nil, {["Authorization"] = "$2-" .. tag .. "-" .. n}, "")
end
LUA
}

# start_matchmakerd BIN DIR [FLAGS...]: runs BIN/matchmakerd with its data in
# DIR/data and output in DIR/mm.out; sets pid, admin and client.
start_matchmakerd() {
  local bin=$1 dir=$2
  shift 2
  "$bin/matchmakerd" --data-dir "$dir/data" --admin-listen 127.0.0.1:0 --listen 127.0.0.1:0 --log-level warn \
    "$@" > "$dir/mm.out" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q "admin=" "$dir/mm.out" && break; sleep 0.01; done
  admin=$(grep -o 'admin=[0-9.:]*' "$dir/mm.out" | cut -d= -f2)
  client=$(grep -o 'client=[0-9.:]*' "$dir/mm.out" | cut -d= -f2)
}
