from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Latency, Outlook and SharePoint limits, injected faults and the request log (to be written)."""
