"""Bundled fonts (SIL Open Font License 1.1); see README.md in this folder."""
