FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mirror ./mirror
RUN pip install --no-cache-dir . && rm -rf /src

# The embedded default config serves ./data relative to the working directory; mount a
# config at /etc/mirror/config.yml (or set REGISTRY_* variables) to change anything.
WORKDIR /var/lib/registry
COPY config.yml /etc/mirror/config.yml
ENV REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/registry
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["mirror"]
CMD ["serve", "--config", "/etc/mirror/config.yml"]
