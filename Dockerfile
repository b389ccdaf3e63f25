# PokeWatch image: the package, its notebooks and scripts; runs the API by default.
# docker-compose.yml runs it twice: `pokewatch serve` (api) and cron (pipeline).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TQDM_DISABLE=1

# cron for the pipeline service; util-linux (flock, runuser) is already in the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cron \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 pokewatch

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pokewatch ./pokewatch
# Editable install: the package's paths (runs/, data/, notebooks/) then resolve under /app.
RUN pip install -e . && pokewatch --help > /dev/null
COPY notebooks ./notebooks
COPY scripts ./scripts
RUN mkdir -p runs data logs .cache \
    && chown -R pokewatch:pokewatch runs data logs .cache \
    && python -m ipykernel install --name python3 --sys-prefix > /dev/null

USER pokewatch
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status != 200)"
CMD ["pokewatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
