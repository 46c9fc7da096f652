"""Compelled disclosure: a legal demand from intake to release (or stay), with its holds, notices and export."""
