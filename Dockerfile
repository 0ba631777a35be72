# The readmit image: the CLI as entrypoint, for `docker run`, ECS tasks and Kubernetes pods.
#   docker build -t readmit:$(git rev-parse --short HEAD) --build-arg READMIT_GIT_REVISION=$(git rev-parse HEAD) .
#   docker run --rm -e READMIT_DATAMART_URI=s3://... readmit:TAG step run train_xgboost
# Settings come from environment variables (READMIT_CONFIG, READMIT_RAW, READMIT_DATAMART_URI,
# READMIT_REGISTRY_URI) and AWS credentials from the task/pod role; see docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp1: the OpenMP runtime used by xgboost and scikit-learn's parallel code.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Only what the package build needs (see .dockerignore); the source is removed once installed.
# The tested versions (constraints.txt); XGBoost is the CPU build (no CUDA libraries), and
# Airflow is not in the image: it runs the steps, the scheduler lives elsewhere.
COPY pyproject.toml README.md constraints.txt /tmp/readmit-src/
COPY src /tmp/readmit-src/src
RUN pip install "/tmp/readmit-src[s3,serve]" -c /tmp/readmit-src/constraints.txt && rm -rf /tmp/readmit-src

# The commit the image was built from, recorded in every model's metadata (no .git in here):
#   docker build --build-arg READMIT_GIT_REVISION=$(git rev-parse HEAD) ...
ARG READMIT_GIT_REVISION=""
ENV READMIT_GIT_REVISION=${READMIT_GIT_REVISION}

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin readmit
WORKDIR /home/readmit
# The default config (used when READMIT_CONFIG is not set), as in the repository.
COPY --chown=readmit:readmit conf ./conf
USER readmit

ENTRYPOINT ["readmit"]
CMD ["--help"]
