# The image behind docker-compose.yml: the Python package plus the built web page.
FROM node:22-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN mkdir -p ../api && npm run build

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY schema schema
COPY api api
COPY workers workers
COPY bourse bourse
COPY benchmarks benchmarks
COPY config config
COPY --from=web /src/api/static api/static
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["bourse", "api", "--host", "0.0.0.0", "--port", "8000"]
