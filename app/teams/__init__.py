"""The Teams approval bot (Teams SDK, mounted into the FastAPI app), its cards and its guard."""
