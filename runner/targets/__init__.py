"""Where results land: one target per database kind, behind the interface in base.py."""
