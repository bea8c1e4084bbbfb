# syntax=docker/dockerfile:1
#
# The forecast service image, in three stages:
#   deps     production node_modules only; better-sqlite3 (a native addon) is compiled here
#   build    every dependency, then `npm run build` (TypeScript to dist/)
#   runtime  node + dist/ + the production node_modules: no compiler, no dev dependencies
#
#   docker build -t forecast-service .
#   docker run -p 8000:8000 -e API_KEYS=... -v "$PWD/bundles:/models:ro" forecast-service
#
# Bundles are read from /models (laid out name/version/): mount them there, or put them in
# deploy/models/ before building to bake them into the image. See docs/deploy.md.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS toolchain
# better-sqlite3 downloads a prebuilt binary when it can and compiles with node-gyp when it
# cannot, which needs python3, make and a C++ compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# node-gyp builds against the headers shipped in the image instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json .npmrc ./

FROM toolchain AS deps
RUN npm ci --omit=dev \
 && npm cache clean --force

FROM toolchain AS build
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# tini: PID 1 that forwards SIGTERM to node (graceful shutdown) and reaps zombies.
# fonts-dejavu-core: the font report charts are drawn with (src/report/charts.ts).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    PORT=8000 \
    HISTORY_DB=/data/history.sqlite \
    DEMO_DIR=/data/demo-bundle
WORKDIR /app
# Application files stay owned by root: the service user can read them, not change them.
# package.json is needed at run time: it marks dist/*.js as ES modules.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY deploy/models/ /models/
# The only writable place: the SQLite history when DATABASE_URL is not set.
RUN mkdir -p /data \
 && chown node:node /data
USER node
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/cli/index.js", "serve", "--models", "/models"]
