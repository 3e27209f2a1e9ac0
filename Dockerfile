# One image for the code location (default command: `dagster api grpc`), the webserver and the daemon;
# infra/ runs it three times with different commands. Build from the repository root:
#   docker build -t etl-platform .
FROM python:3.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Microsoft's ODBC Driver 18 (pyodbc → Azure SQL), from Microsoft's repository for Debian 12. Versions are
# not pinned: both repositories replace old versions with security fixes, so a pin breaks the next build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && curl -fsSL https://packages.microsoft.com/keys/microsoft.asc | gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg \
    && curl -fsSL https://packages.microsoft.com/config/debian/12/prod.list -o /etc/apt/sources.list.d/mssql-release.list \
    && apt-get update \
    && ACCEPT_EULA=Y apt-get install -y --no-install-recommends msodbcsql18 unixodbc \
    && apt-get purge -y curl gnupg \
    && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/etl
COPY pyproject.toml README.md ./
COPY etl_assets ./etl_assets
COPY etl_resources ./etl_resources
# This installs the project itself; its dependencies carry their version bounds in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[deploy]'

COPY infra/dagster/dagster.yaml infra/dagster/workspace.yaml /opt/dagster/home/
RUN useradd --create-home --uid 10001 etl \
    && chown -R etl /opt/dagster/home /opt/etl
USER 10001

# 4000: the code location's gRPC server; 3000: the webserver when the image runs it.
EXPOSE 4000 3000
CMD ["dagster", "api", "grpc", "--module-name", "etl_assets.definitions", "--host", "0.0.0.0", "--port", "4000"]
