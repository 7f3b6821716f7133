"""HTTP API (FastAPI): versioned routes under /api/v1, OpenAPI docs at /docs."""
