"""pydantic v2 models for request and response bodies and queue messages."""
