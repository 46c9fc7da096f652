from tests.app.customers.conftest import api_emulator, api_tenant, staff_tokens, steward

__all__ = ["api_emulator", "api_tenant", "staff_tokens", "steward"]
