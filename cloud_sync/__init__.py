"""Hearth cloud side (collector + dashboard). Empty until the sync issue lands; the package exists so the
distribution layout is stable and `pip install` of the project installs both packages."""
