# The worker, the receiver and incidentctl as one container image. Build: docker build -t fte-incident-response .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY runbooks ./runbooks
COPY config ./config
COPY migrations ./migrations
# incidentctl runs from its TypeScript sources through tsx (a production dependency).
COPY bin ./bin
COPY src ./src
USER node
CMD ["node", "dist/worker.js"]
