# The worker, the receiver and incidentctl as one container image. Build, naming the build for Worker
# Versioning (docs/upgrades.md):
#   docker build --build-arg BUILD_ID="$(bash scripts/build-id.sh)" -t fte-incident-response:"$(bash scripts/build-id.sh)" .
# Without BUILD_ID the worker is unversioned unless TEMPORAL_BUILD_ID is set where it runs.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Compiles to dist/ and writes the workflow bundle the worker runs, dist/workflows.bundle.js.
RUN npm run build

FROM node:24-bookworm-slim
ARG BUILD_ID=
WORKDIR /app
ENV NODE_ENV=production
ENV TEMPORAL_BUILD_ID=${BUILD_ID}
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY runbooks ./runbooks
COPY config ./config
COPY migrations ./migrations
# Compiled JavaScript only: with no src/ beside it, bin/incidentctl.js runs dist/cli/incidentctl.js.
COPY bin ./bin
USER node
# The worker's health endpoint (docs/operations.md); a receiver container overrides the check (compose does).
ENV WORKER_HEALTH_HOST=0.0.0.0 WORKER_HEALTH_PORT=8081
EXPOSE 8081 8088
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/worker.js"]
