FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e .
# Not root: a compromised process cannot rewrite the code it runs. The folders
# it writes (attachments, collected static files) belong to it; a new media
# volume takes this ownership from the image.
RUN useradd --system --create-home --uid 10001 helpdesk \
    && mkdir -p /app/media /app/staticfiles \
    && chown -R helpdesk:helpdesk /app/media /app/staticfiles
USER helpdesk
EXPOSE 8000
# Production mode unless DJANGO_DEBUG says otherwise: the secrets come from the
# environment (docs/deploy.md).
ENV DJANGO_DEBUG=false
CMD ["uvicorn", "helpdesk.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
