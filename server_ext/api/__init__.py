"""The REST handlers (thin: parse, authorize, call the lifecycle, answer), the OpenAI-compatible
proxy and the OpenAPI description."""
