# syntax=docker/dockerfile:1
# kyc-gateway image. One image, three commands:
#   node dist/server.js           the API (default)
#   node dist/db/migrate.js       apply prisma/migrations (one-shot; same bookkeeping as `prisma migrate deploy`)
#   node dist/simulator/main.js   the local cloudauth-intl simulator (development only)

# ---- build: all dependencies, generate the Prisma client, compile TypeScript ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script is needed (esbuild finds its platform package by itself; Prisma's
# engine download is not used, since `prisma generate` runs without a schema engine, see package.json),
# and it keeps the build independent of Prisma's CDN. (npm 11.19, as on the dev machines, already skips
# install scripts that are not allow-listed; the npm 10 in node:20 images would run them.)
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
# `prisma generate` needs no database: prisma.config.ts tolerates an unset DATABASE_URL.
RUN npm run build

# ---- runtime: production dependencies and compiled output only ----
FROM node:20-bookworm-slim AS runtime
# Memory (README, Performance; `npm run bench` runs the service with these two settings):
# - the old-space cap keeps V8's heap near what is live (~50 MB after load; uncapped, V8 grew to ~200 MB of
#   mostly garbage before collecting). Raise it if the live set grows (a cap it outgrows ends the process);
# - 4 MB semi-spaces (V8's default grows them to 16 MB) and two malloc arenas (glibc makes one per thread that
#   allocates) took RSS under load from ~180 to ~145 MB. 2 MB semi-spaces saved ~10 MB more but cost a third of
#   the throughput under a flood (objects of in-flight requests get promoted, then need full GCs).
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    NODE_OPTIONS="--max-old-space-size=96 --max-semi-space-size=4" \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional as well: the Prisma CLI and TypeScript are optional peers of @prisma/client, so the lockfile
# marks them devOptional and --omit=dev alone would still install them (275 packages instead of 149). The only
# optional-only production package is pg-cloudflare (Cloudflare Workers only). Revisit this if a production
# dependency ever relies on optional platform packages.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The migrations are read at run time by dist/db/migrate.js.
COPY prisma ./prisma
USER node
EXPOSE 3000
# Readiness (PostgreSQL, Redis, not overloaded; answers within ~0.5 s); /healthz stays the liveness probe.
# No curl in the slim image: node's fetch does the probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]
