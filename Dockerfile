# One image for every Cutout process: the intake API (default), the worker and the
# ByByBG emulator. Node 24 runs the TypeScript sources itself (type stripping: the code
# is erasable syntax only), so there is no compile step and no loader in the image.
# docker-compose.yml picks the process:
#   node apps/api/src/main.ts       (default CMD)
#   node apps/worker/src/main.ts
#   node apps/emulator/src/main.ts
#
# Build:  docker build -t cutout .
# Works with both the classic builder and BuildKit (no BuildKit-only syntax).
#
# Stages: deps (the official Node image: npm installs the production dependencies),
# runtime (Debian slim of the same release, plus only the node binary from deps: no npm,
# yarn, corepack or C headers in the image that runs).

ARG NODE_IMAGE=node:24.22.3-trixie-slim
ARG RUNTIME_IMAGE=debian:trixie-slim

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
COPY apps/cli/package.json apps/cli/package.json
# A development dependency (Node 24 for npm scripts on a Node 20 machine); the lockfile names it.
COPY tools/dev-node/package.json tools/dev-node/package.json
# --ignore-scripts: sharp 0.35 ships its prebuilt binary in a platform-specific optional
# package and needs no install script; skipping them keeps the build reproducible and free
# of arbitrary install-time code. TypeScript is removed afterwards: it is an optional peer
# of valibot (under @bull-board/api), which npm keeps because the project has it as a
# development dependency, and nothing in production loads it.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/typescript node_modules/@typescript node_modules/.bin/tsc node_modules/.bin/tsserver \
 && npm cache clean --force

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# The same unprivileged user (uid/gid 1000) as the official Node image.
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/sh --create-home node
# The Node binary links only glibc, libstdc++ and libgcc, which Debian slim has.
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
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

# Files stay owned by root (read-only for the app). .data is the only writable
# directory under /app.
RUN mkdir -p /app/.data && chown node:node /app/.data

USER node
# 3000 API, 4010 emulator, 9464 a worker's /metrics and /healthz.
EXPOSE 3000 4010 9464

# For the default process, the API (PORT). docker-compose.yml gives the worker (its
# WORKER_METRICS_PORT) and the emulator health checks of their own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT ?? 3000}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# One node process, not `npm run`: npm does not forward SIGTERM reliably, which would
# skip the graceful shutdown. Compose also sets `init: true`, so a small init is PID 1
# (forwards signals, reaps zombies).
CMD ["node", "apps/api/src/main.ts"]
