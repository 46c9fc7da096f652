"""Base classes for API schemas.

Request bodies subclass RequestSchema: unknown fields are refused (422 naming the field) rather than ignored, so
nobody can mass-assign a field the endpoint never meant to take (`"status": "approved"`), and a misspelt optional
field fails loudly instead of silently keeping its default. Responses subclass ResponseSchema, which reads ORM
objects and leaves out anything not declared (secrets and message bodies are simply never declared).
"""

from pydantic import BaseModel, ConfigDict


class RequestSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)
