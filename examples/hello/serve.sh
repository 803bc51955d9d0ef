#!/bin/sh
# hello's entrypoint: serves https://hello.localhost/index.html with openssl s_server, using the
# certificate and key in the image (/app/tls). The page greets with the GREETING secret.

# Secrets arrive as one file (docs/secrets.md); values here are plain text.
if [ -r /run/secrets/platform.env ]; then
  while IFS= read -r line; do
    case "$line" in '#'*|'') continue ;; esac
    key=${line%%=*}; value=${line#*=}
    case "$value" in base64:*) value=$(printf %s "${value#base64:}" | base64 -d) ;; esac
    export "$key=$value"
  done < /run/secrets/platform.env
fi

if [ ! -r /app/tls/key.pem ]; then
  echo "hello: cannot serve TLS: /app/tls/key.pem is missing from the image" >&2
  exit 1
fi

mkdir -p /tmp/www
echo "${GREETING:-hello} from $TRC_APP/$TRC_ENV, release $TRC_RELEASE_ID, instance $TRC_INSTANCE_ID" > /tmp/www/index.html
echo "hello: serving https on port 8443 (release $TRC_RELEASE_ID, greeting: ${GREETING:-hello})"
cd /tmp/www
exec openssl s_server -accept '[::]:8443' -cert /app/tls/cert.pem -key /app/tls/key.pem -WWW -quiet
