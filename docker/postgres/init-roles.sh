#!/usr/bin/env bash
# Runs from /docker-entrypoint-initdb.d on the first start of an empty data directory only.
set -euo pipefail

: "${NFTWATCH_OWNER_PASSWORD:?NFTWATCH_OWNER_PASSWORD is required}"
: "${NFTWATCH_APP_PASSWORD:?NFTWATCH_APP_PASSWORD is required}"

psql --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    --set owner_password="$NFTWATCH_OWNER_PASSWORD" \
    --set app_password="$NFTWATCH_APP_PASSWORD" \
    --file /nftwatch/roles.sql
