#!/bin/sh
# echo's entrypoint: busybox nc forks /app/answer.sh for every connection on port 7000.
echo "echo: listening on port 7000 (release $TRC_RELEASE_ID)"
exec nc -ll -p 7000 -e /app/answer.sh
