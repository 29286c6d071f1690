# psiturk-async: serves the project folder mounted (or copied) at /project.
#   docker run -p 22362:22362 -v "$PWD":/project -e DATABASE_URL=postgresql://... psiturk-async
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PSITURK_HOST=0.0.0.0

RUN useradd --create-home --uid 10001 psiturk

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
COPY migrations ./migrations
COPY client ./client
# tests/test_docker_install.py runs this same install line and command in a fresh virtual environment.
# With the `legacy` extra, so a psiTurk 3 project's Flask custom.py runs in the image unchanged.
RUN pip install --no-cache-dir -c constraints.txt ".[legacy]"

USER psiturk
WORKDIR /project
EXPOSE 22362
CMD ["psiturk-async", "serve"]
