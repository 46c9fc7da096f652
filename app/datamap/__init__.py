"""The per-customer data map: which mail and files belong to which customer (metadata only), kept by delta sync."""
