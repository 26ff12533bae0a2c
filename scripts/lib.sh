# Shell helpers shared by ensure-tools.sh and with-services.sh: free loopback
# ports and readiness probes that use the server for real.

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if port_free "$p"; then echo "$p"; return 0; fi
	done
	echo "no free port found" >&2
	return 1
}

# redis_pong PORT: a PING on PORT answers PONG.
redis_pong() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && timeout 2 head -c 7 <&3 | grep -q PONG) 2>/dev/null
}

# cluster_ok HOST:PORT...: every node reports cluster_state:ok (all slots
# served).
cluster_ok() {
	local node
	for node in "$@"; do
		redis-cli -h "${node%:*}" -p "${node##*:}" cluster info 2>/dev/null |
			tr -d '\r' | grep -q '^cluster_state:ok$' || return 1
	done
}

# minio_live PORT: MinIO's liveness endpoint on PORT answers 200.
minio_live() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf 'GET /minio/health/live HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
		timeout 2 head -n 1 <&3 | grep -q ' 200 ') 2>/dev/null
}

# http_get PORT PATH: the whole response (status line, headers, body) to a
# GET of PATH on loopback PORT.
http_get() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3 &&
		timeout 2 cat <&3) 2>/dev/null
}

# prometheus_ready PORT: Prometheus on PORT says it is ready to serve queries.
prometheus_ready() {
	local r
	r=$(http_get "$1" /-/ready) && [[ $r == "HTTP/1."?" 200 "* ]]
}

# prometheus_scraped PORT JOB: Prometheus on PORT answers the instant query
# up{job="JOB"} with a sample of 1, so it has scraped that job's target.
prometheus_scraped() {
	local r
	r=$(http_get "$1" "/api/v1/query?query=up%7Bjob%3D%22$2%22%7D") &&
		[[ $r =~ \"value\":\[[0-9.]+,\"1\"\] ]]
}

# wait_for PID TRIES PROBE ARGS...: runs the probe every 0.1 s until it
# succeeds (0), PID exits or TRIES run out (1).
wait_for() {
	local pid=$1 tries=$2
	shift 2
	for _ in $(seq 1 "$tries"); do
		if "$@"; then return 0; fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
