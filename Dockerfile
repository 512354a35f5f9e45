# The worker image. TypeScript runs through tsx (a runtime dependency), so there is no
# build stage: the image holds the sources and the production dependencies only.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY schemas ./schemas
COPY migrations ./migrations

# tsx caches its transforms under the temporary directory, which `node` may write.
USER node

# Worker metrics and probes: /metrics, /healthz, /readyz.
EXPOSE 9464
CMD ["node", "bin/arbiter.js", "worker"]
