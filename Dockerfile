# pkglog: the same steps as the README (npm ci, npm start), in two stages, running as a non-root user.
# The build stage installs every dependency (TypeScript included), compiles the sources into dist/ (npm ci runs the
# `prepare` script, `npm run build`), then drops the dev dependencies; the final image holds bin/, dist/ and the
# production node_modules only — no TypeScript sources, no tsc, no tsx.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds its native addon with node-gyp when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
# The context is package.json, package-lock.json, tsconfig*.json, bin/ and the sources (.dockerignore drops the rest).
COPY . .
RUN npm ci && npm prune --omit=dev && test -f dist/server/cli.js && test ! -e node_modules/tsx

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    PKGLOG_DATA_DIR=/data \
    PKGLOG_LISTEN=0.0.0.0:8080
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Ready = store open, sequencer running, newest checkpoint fresh (and cosigned by the quorum, if one is set): GET /readyz
# (docs/operations.md, "Health"). No curl in the slim image: node's fetch. The port comes from PKGLOG_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.PKGLOG_LISTEN||'0.0.0.0:8080').split(':').pop();fetch('http://127.0.0.1:'+p+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# node is PID 1 and gets `docker stop`'s SIGTERM directly (the server handles SIGTERM/SIGINT itself).
ENTRYPOINT ["node", "bin/pkglog.js"]
CMD ["serve"]
