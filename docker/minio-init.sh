#!/bin/sh
# One-shot bucket creation for the compose `minio-init` service (image minio/mc).
# Idempotent: safe to run on every `docker compose up`.
set -eu

MINIO_URL="${MINIO_URL:-http://minio:9000}"
S3_BUCKET="${S3_BUCKET:-cutout}"
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER must be set}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD must be set}"

# compose waits for MinIO's healthcheck first; retry anyway in case it is still settling.
attempt=0
until mc alias set cutout "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1 \
  && mc mb --ignore-existing "cutout/$S3_BUCKET"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "minio-init: could not create bucket '$S3_BUCKET' at $MINIO_URL after $attempt attempts" >&2
    exit 1
  fi
  sleep 2
done

# Objects stay private: clients get results through short-lived presigned URLs
# (RESULT_URL_TTL) or the API's 302 redirect, never through a public bucket policy.
echo "minio-init: bucket '$S3_BUCKET' is ready"
