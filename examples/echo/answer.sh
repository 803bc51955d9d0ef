#!/bin/sh
# One connection: a greeting, then every line back until the client closes.
echo "echo from instance $TRC_INSTANCE_ID"
while IFS= read -r line; do
  echo "$line"
done
