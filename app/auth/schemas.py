from app.kit.schemas import ResponseSchema


class PrincipalRead(ResponseSchema):
    subject: str
    name: str
    roles: list[str]
    is_service: bool
