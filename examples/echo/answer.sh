#!/bin/sh
# One connection: a greeting, then the client's first line back, then the connection closes.
echo "echo from instance $TRC_INSTANCE_ID"
IFS= read -r line && echo "$line"
