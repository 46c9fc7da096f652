"""Do-not-disclose: the one guard every output of customer information goes through."""
