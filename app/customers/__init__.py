"""The customer registry: who the reseller's customers are, their domains, contacts, consent flags and holds."""
