# pkglog: the same steps as the README (npm ci, npm start), in two stages, running as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds its native addon with node-gyp when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY bin ./bin
COPY core ./core
COPY log-store ./log-store
COPY server ./server
COPY witness ./witness
COPY client ./client

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    PKGLOG_DATA_DIR=/data \
    PKGLOG_LISTEN=0.0.0.0:8080
COPY --from=build /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["node", "bin/pkglog.js"]
CMD ["serve"]
