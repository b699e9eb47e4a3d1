# One image for every Twinlabel service: web (bin/web), worker and gpu-worker (bin/worker).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHON=python
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 1000 twinlabel && mkdir -p /data/media /app/var && chown -R twinlabel /data /app/var
USER twinlabel
EXPOSE 8000
CMD ["bin/web"]
