# One image for every Cutout process: the intake API (default), the worker and the
# ByByBG emulator. They run from TypeScript source with tsx's loader (a production
# dependency), so there is no compile step. docker-compose.yml picks the process:
#   node --import tsx apps/api/src/main.ts       (default CMD)
#   node --import tsx apps/worker/src/main.ts
#   node --import tsx apps/emulator/src/main.ts
#
# Build:  docker build -t cutout .
# Works with both the classic builder and BuildKit (no BuildKit-only syntax).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
# deps: production dependencies only. The lockfile and every workspace's
# package.json are copied before any source, so this layer is rebuilt only when
# dependencies change, not on every source edit.
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/package.json
COPY apps/api/package.json apps/api/package.json
COPY apps/worker/package.json apps/worker/package.json
COPY apps/emulator/package.json apps/emulator/package.json
# --ignore-scripts: sharp 0.35 and esbuild (under tsx) ship prebuilt binaries in
# platform-specific optional packages and need no install scripts; skipping them
# keeps the build reproducible and free of arbitrary install-time code.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    EMULATOR_HOST=0.0.0.0 \
    EMULATOR_PORT=4010

# node_modules (root and, should a workspace ever get its own, per workspace) plus
# the workspace package.json files. The @cutout/* entries in node_modules are
# relative symlinks into packages/ and apps/, which the source copy below fills in.
COPY --from=deps /app /app
COPY package.json tsconfig.json ./
COPY packages ./packages
COPY apps ./apps

# Files stay owned by root (read-only for the app). tsx caches its transforms in
# /tmp. .data is the only writable directory under /app, for the embedded S3
# fallback when a container is started without S3_ENDPOINT (development only).
RUN mkdir -p /app/.data && chown node:node /app/.data

USER node
# 3000 API, 4010 emulator, 9464 a worker's /metrics and /healthz.
EXPOSE 3000 4010 9464

# One node process with tsx's loader, not `npm run` or the tsx CLI: npm does not
# forward SIGTERM reliably, and the tsx CLI SIGKILLs its child when a busy event loop
# does not acknowledge a relayed signal within 30 ms, skipping the graceful shutdown.
# Compose also sets `init: true`, so a small init is PID 1 (forwards signals, reaps zombies).
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
