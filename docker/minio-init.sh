#!/bin/sh
# One-shot set-up for the compose `minio-init` service (image minio/mc): the bucket, and the
# user the api and worker connect as, whose policy reaches that bucket only. MinIO's root
# credentials are used here and nowhere else in the stack.
# Idempotent: safe to run on every `docker compose up`.
set -eu

MINIO_URL="${MINIO_URL:-http://minio:9000}"
S3_BUCKET="${S3_BUCKET:-cutout}"
POLICY="cutout-bucket-${S3_BUCKET}"
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER must be set}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD must be set}"
: "${MINIO_APP_USER:?MINIO_APP_USER must be set}"
: "${MINIO_APP_PASSWORD:?MINIO_APP_PASSWORD must be set (8+ characters)}"
if [ "$MINIO_APP_USER" = "$MINIO_ROOT_USER" ]; then
  echo "minio-init: MINIO_APP_USER must differ from MINIO_ROOT_USER: the app must not hold the root credentials" >&2
  exit 1
fi

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

# What Cutout does with S3: HeadBucket (ListBucket), objects put (also multipart), read,
# copied and deleted. Nothing on other buckets, and no bucket administration (policies,
# lifecycle, deletion), so a leaked app key cannot make results public or reach other data.
# The image (ubi-micro) has a shell and coreutils, not grep or sed: builtins only below.
policy_file=/tmp/cutout-bucket-policy.json
printf '%s\n' '{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::'"$S3_BUCKET"'"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::'"$S3_BUCKET"'/*"]
    }
  ]
}' > "$policy_file"
mc admin policy create cutout "$POLICY" "$policy_file"
rm -f "$policy_file"
# Adding an existing user sets its secret again, so a changed MINIO_APP_PASSWORD takes effect.
mc admin user add cutout "$MINIO_APP_USER" "$MINIO_APP_PASSWORD"
# Attaching a policy that is already attached fails; only attach it when it is not.
case "$(mc admin user info cutout "$MINIO_APP_USER")" in
  *"$POLICY"*) ;;
  *) mc admin policy attach cutout "$POLICY" --user "$MINIO_APP_USER" ;;
esac

# Objects stay private: clients get results through short-lived presigned URLs
# (RESULT_URL_TTL) or the API's 302 redirect, never through a public bucket policy.
echo "minio-init: bucket '$S3_BUCKET' and user '$MINIO_APP_USER' (policy $POLICY) are ready"
