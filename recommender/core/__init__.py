"""Typed values, protocols and pure array helpers shared by every stage (imports nothing above)."""
