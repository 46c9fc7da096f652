"""A local Microsoft 365 tenant: Entra ID, Microsoft Graph v1.0 and the Teams peers Steward talks to.

It is an independent reading of Microsoft's documented contract. Nothing here imports app/, connectors/ or jobs/,
and they never import it: the product reaches it only over HTTPS, exactly as it reaches Microsoft.
"""
